"""`grader eval --batch` against the loopback server's Files and Batches endpoints."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from eval_fakes import grade_responder, standard_rows, write_dataset
from typer.testing import CliRunner

from grader.cli import app
from grader.testing.openai_server import LoopbackOpenAIServer, Reply


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, ["eval", *args])


def routes(server: LoopbackOpenAIServer) -> list[str]:
    return [f"{r.method} {r.path}" for r in server.received]


def test_batch_run_uploads_submits_polls_and_downloads(tmp_path: Path) -> None:
    data = write_dataset(tmp_path / "d.jsonl", standard_rows(6))
    replies = iter([Reply.error(500, "model overloaded")])

    def responder(body: dict[str, Any]) -> Any:
        # the first request in the batch fails; the rest are graded
        return next(replies, None) or grade_responder(body)

    with LoopbackOpenAIServer(responder=responder) as server:
        result = invoke(
            str(data),
            "--batch",
            "--grader",
            "llm",
            "--base-url",
            server.base_url,
            "--poll-interval",
            "0.01",
            "--json",
            "--bootstrap",
            "0",
            "--no-report",
            "--out",
            str(tmp_path / "p.jsonl"),
        )
        assert result.exit_code == 0, result.stderr
        assert server.requests == []  # nothing went through live chat completions
        assert len(server.batch_requests) == 8
        seen = routes(server)
        assert seen[:2] == ["POST /v1/files", "POST /v1/batches"]
        assert seen.count("GET /v1/batches/batch_1") == 2
        assert "GET /v1/files/file-2/content" in seen and "GET /v1/files/file-3/content" in seen
        first_line = json.loads(server.files["file-1"].decode().splitlines()[0])
        assert first_line["custom_id"] == "d:1" and first_line["url"] == "/v1/chat/completions"
        assert first_line["body"]["tool_choice"]["function"]["name"] == "GradeResponse"
    assert "submitted batch batch_1 (8 requests)" in result.stderr
    out = json.loads(result.stdout)["data"]
    assert out["spec"]["batch"] is True
    overall = out["summary"]["overall"]
    assert (overall["graded"], overall["ungraded"]) == (7, 1)
    rows = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert rows[0]["verdict"] == "ungraded" and "model overloaded" in rows[0]["grade"]["reason"]
    assert rows[1]["predicted_score"] == 0.5


def test_interrupted_batch_resumes_by_batch_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from grader.evaluation import batch as batch_module

    data = write_dataset(tmp_path / "d.jsonl", standard_rows(3))
    run = tmp_path / "run"
    real_wait = batch_module._wait

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    with LoopbackOpenAIServer(responder=grade_responder) as server:
        monkeypatch.setattr(batch_module, "_wait", interrupted)
        first = invoke(
            str(data),
            "--batch",
            "--grader",
            "llm",
            "--base-url",
            server.base_url,
            "--run-dir",
            str(run),
            "--poll-interval",
            "0.01",
            "--no-report",
        )
        assert first.exit_code == 130
        state = json.loads((run / "batch.json").read_text())
        assert state["batch_id"] == "batch_1" and state["status"] == "submitted"

        monkeypatch.setattr(batch_module, "_wait", real_wait)
        resumed = invoke(
            "--resume", str(run), "--poll-interval", "0.01", "--json", "--bootstrap", "0"
        )
        assert resumed.exit_code == 0, resumed.stderr
        assert routes(server).count("POST /v1/files") == 1  # not submitted twice
        assert routes(server).count("POST /v1/batches") == 1
        assert json.loads(resumed.stdout)["data"]["summary"]["overall"]["graded"] == 5
        assert json.loads((run / "batch.json").read_text())["status"] == "collected"


def test_a_repeated_batch_run_is_answered_from_the_cache(tmp_path: Path) -> None:
    data = write_dataset(tmp_path / "d.jsonl", standard_rows(6))
    replies = iter([Reply.tool_call("GradeResponse", {"score": "high"})])

    def responder(body: dict[str, Any]) -> Any:
        # the first request in the batch gets an output that does not validate
        return next(replies, None) or grade_responder(body)

    common = ["--grader", "llm", "--poll-interval", "0.01", "--bootstrap", "0", "--no-report"]
    with LoopbackOpenAIServer(responder=responder) as server:
        url = ["--base-url", server.base_url]
        first = invoke(str(data), "--batch", *url, *common, "--out", str(tmp_path / "1.jsonl"))
        assert first.exit_code == 0, first.stderr
        assert len(server.batch_requests) == 8
        again = invoke(str(data), "--batch", *url, *common, "--out", str(tmp_path / "2.jsonl"))
        assert again.exit_code == 0, again.stderr
        # only the response whose output did not validate is submitted again (failures are
        # never cached); the other seven come from the cache
        assert len(server.batch_requests) == 9
        assert "7 responses answered from the cache" in again.stderr
        live = invoke(str(data), *url, *common, "--out", str(tmp_path / "3.jsonl"))
        assert live.exit_code == 0, live.stderr
        assert len(server.requests) == 0  # a live run of the same requests: all cached
    first_rows = [json.loads(line) for line in (tmp_path / "1.jsonl").read_text().splitlines()]
    assert first_rows[0]["verdict"] == "ungraded"
    assert first_rows[0]["grade"]["reason"] == (
        "batch output did not validate: key_points: Field required"
    )
    for name in ("2.jsonl", "3.jsonl"):  # every response graded, as the first run graded it
        rows = [json.loads(line) for line in (tmp_path / name).read_text().splitlines()]
        assert all(r["verdict"] != "ungraded" for r in rows)
        assert [r["grade"]["feedback"] for r in rows[1:]] == [
            r["grade"]["feedback"] for r in first_rows[1:]
        ]
