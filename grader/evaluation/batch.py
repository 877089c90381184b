"""`grader eval --batch`: grade through the OpenAI Batch API (half price, completes within 24 h).

Flow: one JSONL line per pending response (`custom_id` = the response's key, a chat-completions
body asking for the `GradeResponse` tool or JSON), uploaded to `/files`, submitted to `/batches`,
polled, and the output file downloaded and turned into grades. The batch id is saved in the run
directory (`batch.json`) before polling starts, so `grader eval --resume RUN` picks the same batch
up instead of paying for it twice. Uses plain HTTP (httpx2, which openai itself uses); the request
body mirrors what the live grader sends. An output that does not validate is `ungraded` (there are
no re-asks in a batch); `--resume` after the batch has ended submits a new batch for those.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from grader.atomic import write_text_atomic
from grader.errors import LLMError, first_error
from grader.evaluation import runner
from grader.evaluation.dataset import EvalItem, card_for
from grader.evaluation.runner import ProgressCallback, ResultRecord
from grader.models import Grade, GradeEvidence, Usage

BATCH_FILE = "batch.json"
ENDPOINT = "/v1/chat/completions"
TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})
DEFAULT_POLL_SECONDS = 10.0


class BatchState(BaseModel):
    """What the run directory remembers about its batch."""

    model_config = ConfigDict(extra="forbid")

    batch_id: str
    input_file_id: str
    keys: list[str]
    """custom_ids submitted, in order."""
    status: str = "submitted"
    output_file_id: str | None = None
    error_file_id: str | None = None


def _tool_name(response_model: type[BaseModel]) -> str:
    return response_model.__name__


def request_body(
    settings: Any, messages: list[dict[str, str]], response_model: type[BaseModel]
) -> dict[str, Any]:
    """A chat-completions body asking for `response_model`, like the live grader's request."""
    schema = response_model.model_json_schema()
    body: dict[str, Any] = {"model": settings.model, "temperature": settings.temperature}
    if settings.seed is not None:
        body["seed"] = settings.seed
    name = _tool_name(response_model)
    if settings.mode == "tools":
        body["messages"] = messages
        body["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": name,
                    "description": (response_model.__doc__ or "").strip(),
                    "parameters": schema,
                },
            }
        ]
        body["tool_choice"] = {"type": "function", "function": {"name": name}}
    elif settings.mode == "json_schema":
        body["messages"] = messages
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": name, "schema": schema},
        }
    else:  # json / md_json: the schema goes into the system message
        instructions = (
            "\n\nAnswer with one JSON object that matches this JSON schema:\n"
            + json.dumps(schema, ensure_ascii=False)
        )
        first, *rest = messages
        body["messages"] = [{**first, "content": first["content"] + instructions}, *rest]
        if settings.mode == "json":
            body["response_format"] = {"type": "json_object"}
    return body


def _arguments(body: dict[str, Any]) -> str:
    message = body["choices"][0]["message"]
    calls = message.get("tool_calls") or []
    if calls:
        return str(calls[0]["function"]["arguments"])
    content = str(message.get("content") or "")
    start, end = content.find("{"), content.rfind("}")
    if start < 0 or end < start:
        raise ValueError("no JSON object in the reply")
    return content[start : end + 1]


class _Http:
    """The few Files/Batches calls, with the key in the header and errors mapped to LLMError."""

    def __init__(self, settings: Any) -> None:
        import httpx2

        self.settings = settings
        base = (settings.base_url or "https://api.openai.com/v1").rstrip("/")
        self.client = httpx2.Client(
            base_url=base,
            headers={"Authorization": f"Bearer {settings.api_key_value()}"},
            timeout=settings.timeout,
        )

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        import httpx2

        try:
            response = self.client.request(method, path, **kwargs)
        except httpx2.HTTPError as exc:
            raise LLMError(self.settings.redact(f"batch API {method} {path}: {exc}")) from None
        if response.status_code >= 400:
            text = " ".join(response.text.split())[:200]
            raise LLMError(
                self.settings.redact(
                    f"batch API {method} {path}: HTTP {response.status_code} {text}"
                )
            )
        return response

    def close(self) -> None:
        self.client.close()


def _save(run_dir: Path, state: BatchState) -> None:
    write_text_atomic(run_dir / BATCH_FILE, state.model_dump_json(indent=2) + "\n")


def load_state(run_dir: Path) -> BatchState | None:
    path = run_dir / BATCH_FILE
    if not path.is_file():
        return None
    try:
        return BatchState.model_validate_json(path.read_text(encoding="utf-8"))
    except ValidationError:
        return None


def grade_with_batch(
    run_dir: Path,
    grader: Any,
    settings: Any,
    items: Sequence[EvalItem],
    *,
    notice: Callable[[str], None],
    progress: ProgressCallback | None = None,
    poll_seconds: float = DEFAULT_POLL_SECONDS,
) -> dict[str, ResultRecord]:
    """Submit (or pick up) the run's batch, wait for it, and store its grades in `run_dir`.
    Responses the request cache answers (a live or batch run of the same requests) are not
    submitted, and the batch's grades are cached in turn."""
    from grader.graders.llm import grade_messages
    from grader.llm.schemas import GradeResponse

    done = runner.read_results(run_dir)
    todo = runner.pending_items(items, done)
    by_key = {item.key: item for item in items}
    cache = _cache_of(grader)
    http = _Http(settings)
    try:
        state = load_state(run_dir)
        if state is not None and state.status in ("collected", "failed", "expired", "cancelled"):
            state = None  # that batch is finished with; submit what is still missing
        if state is None and todo and cache is not None:
            todo = _grade_from_cache(run_dir, grader, settings, cache, todo, done, notice)
        if state is None and todo:
            lines = []
            for item in todo:
                messages = grade_messages(
                    grader.template, card_for(item.record), item.record.student_answer
                )
                line = {
                    "custom_id": item.key,
                    "method": "POST",
                    "url": ENDPOINT,
                    "body": request_body(settings, messages, GradeResponse),
                }
                lines.append(json.dumps(line, ensure_ascii=False))
            payload = ("\n".join(lines) + "\n").encode()
            uploaded = http.call(
                "POST",
                "/files",
                data={"purpose": "batch"},
                files={"file": ("requests.jsonl", payload, "application/jsonl")},
            ).json()
            created = http.call(
                "POST",
                "/batches",
                json={
                    "input_file_id": uploaded["id"],
                    "endpoint": ENDPOINT,
                    "completion_window": "24h",
                },
            ).json()
            state = BatchState(
                batch_id=created["id"],
                input_file_id=uploaded["id"],
                keys=[item.key for item in todo],
            )
            _save(run_dir, state)
            notice(f"submitted batch {state.batch_id} ({len(todo)} requests); polling")
        if state is None:
            return done
        batch = _wait(http, state, len(items) - len(todo), len(items), progress, poll_seconds)
        state.status = str(batch["status"])
        state.output_file_id = batch.get("output_file_id")
        state.error_file_id = batch.get("error_file_id")
        _save(run_dir, state)
        if state.status != "completed":
            notice(f"batch {state.batch_id} ended {state.status}: its responses stay ungraded")
        outputs: dict[str, dict[str, Any]] = {}
        for file_id in (state.output_file_id, state.error_file_id):
            if file_id:
                text = http.call("GET", f"/files/{file_id}/content").text
                for line in text.splitlines():
                    if line.strip():
                        record = json.loads(line)
                        outputs[str(record.get("custom_id"))] = record
        with runner.ResultsWriter(run_dir / runner.RESULTS_FILE) as writer:
            for key in state.keys:
                target = by_key.get(key)
                if target is None:
                    continue
                grade = _grade_of(grader, settings, target, outputs.get(key), state, cache)
                result = runner.result_for(target, grade)
                writer.write(result)
                done[key] = result
        state.status = "collected"
        _save(run_dir, state)
    finally:
        http.close()
    runner.compact_results(run_dir, [i.key for i in items])
    return done


def _wait(
    http: _Http,
    state: BatchState,
    already: int,
    total: int,
    progress: ProgressCallback | None,
    poll_seconds: float,
) -> dict[str, Any]:
    while True:
        batch: dict[str, Any] = http.call("GET", f"/batches/{state.batch_id}").json()
        counts = batch.get("request_counts") or {}
        if progress is not None:
            finished = int(counts.get("completed", 0)) + int(counts.get("failed", 0))
            progress(
                runner.Progress(
                    done=already + finished,
                    total=total,
                    ungraded=int(counts.get("failed", 0)),
                    usage=Usage(),
                    cached=0,
                )
            )
        if batch.get("status") in TERMINAL:
            return batch
        time.sleep(poll_seconds)


def _cache_of(grader: Any) -> Any:
    """The grader's LLM client when it keeps a request cache (the real one does), else None."""
    from grader.llm.adapter import LLMClient

    client = getattr(grader, "client", None)
    return client if isinstance(client, LLMClient) else None


def _evidence(grader: Any, settings: Any, *, cached: bool = False) -> GradeEvidence:
    return GradeEvidence(
        grader="llm",
        model=settings.model,
        base_url=settings.base_url,
        prompt_hash=grader.template.hash,
        cached=cached,
        attempts=0 if cached else 1,
    )


def _grade_from_cache(
    run_dir: Path,
    grader: Any,
    settings: Any,
    cache: Any,
    todo: list[EvalItem],
    done: dict[str, ResultRecord],
    notice: Callable[[str], None],
) -> list[EvalItem]:
    """Store the grades the request cache holds for `todo`; return the items it does not."""
    from grader.graders.llm import grade_messages, to_grade
    from grader.llm.schemas import GradeResponse
    from grader.rubric import rubric_for

    missing = []
    with runner.ResultsWriter(run_dir / runner.RESULTS_FILE) as writer:
        for item in todo:
            card = card_for(item.record)
            rubric = rubric_for(card)
            messages = grade_messages(grader.template, card, item.record.student_answer)
            value = cache.cached(GradeResponse, messages, context={"rubric": rubric})
            if value is None:
                missing.append(item)
                continue
            result = runner.result_for(
                item, to_grade(value, rubric, _evidence(grader, settings, cached=True))
            )
            writer.write(result)
            done[item.key] = result
    if len(missing) < len(todo):
        notice(f"{len(todo) - len(missing)} responses answered from the cache")
    return missing


def _grade_of(
    grader: Any,
    settings: Any,
    item: EvalItem,
    output: dict[str, Any] | None,
    state: BatchState,
    cache: Any,
) -> Grade:
    from grader.graders.llm import grade_messages, to_grade
    from grader.llm.schemas import GradeResponse
    from grader.rubric import rubric_for

    evidence = _evidence(grader, settings)
    if output is None:
        return Grade.ungraded(f"missing from the output of batch {state.batch_id}", evidence)
    response = output.get("response") or {}
    body = response.get("body") or {}
    if output.get("error") or response.get("status_code") != 200:
        error = output.get("error") or body.get("error") or {}
        message = error.get("message") if isinstance(error, dict) else str(error)
        return Grade.ungraded(
            settings.redact(f"batch request failed: HTTP {response.get('status_code')} {message}"),
            evidence,
        )
    raw_usage = body.get("usage") or {}
    evidence.usage = Usage(
        prompt_tokens=int(raw_usage.get("prompt_tokens", 0)),
        completion_tokens=int(raw_usage.get("completion_tokens", 0)),
    )
    card = card_for(item.record)
    rubric = rubric_for(card)
    try:
        value = GradeResponse.model_validate_json(_arguments(body), context={"rubric": rubric})
    except ValidationError as exc:
        field, message = first_error(exc, "output")
        reason = " ".join(f"{field}: {message}".split())[:300]
        return Grade.ungraded(f"batch output did not validate: {reason}", evidence)
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        text = " ".join(str(exc).split())[:300]
        return Grade.ungraded(f"batch output did not validate: {text}", evidence)
    if cache is not None:
        messages = grade_messages(grader.template, card, item.record.student_answer)
        cache.remember(GradeResponse, messages, value, evidence.usage)
    return to_grade(value, rubric, evidence)
