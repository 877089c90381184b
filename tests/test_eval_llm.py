"""`grader eval` with the real LLM grader against a loopback server: cache, record and replay."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from eval_fakes import grade_responder, record, standard_rows, write_dataset
from eval_process import eval_process, results_in, wait_for_results
from typer.testing import CliRunner

from grader.cli import app
from grader.testing.openai_server import LoopbackOpenAIServer, Reply

SECRET = "sk-test-secret-never-stored"
NOT_A_CASSETTE = "not a vcrpy cassette (no list of `interactions`)"


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, ["eval", *args])


def predictions(path: Path) -> list[tuple[Any, ...]]:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return [
        (
            r["id"],
            r["predicted_score"],
            r["verdict"],
            r["grade"]["feedback"],
            r["grade"]["key_points"],
        )
        for r in rows
    ]


def without_latency(path: Path) -> list[dict[str, Any]]:
    """Every prediction row in full but for `grade.evidence.latency_ms`, which each run measures
    for itself (a replay's is the time to find the exchange in the cassette)."""
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    for row in rows:
        del row["grade"]["evidence"]["latency_ms"]
    return rows


def test_repeated_run_makes_zero_api_calls(tmp_path: Path) -> None:
    data = write_dataset(tmp_path / "d.jsonl", standard_rows(9))
    common = ["--grader", "llm", "--bootstrap", "0", "--no-report", "--json"]
    with LoopbackOpenAIServer(responder=grade_responder) as server:
        url = ["--base-url", server.base_url]
        first = invoke(str(data), *url, *common, "--out", str(tmp_path / "1.jsonl"))
        assert first.exit_code == 0, first.stderr
        calls = len(server.requests)
        assert calls == 11
        overall = json.loads(first.stdout)["data"]["summary"]["overall"]
        # the loopback grades "FAIL" (human 4) and "right but wrong" (human 0) one point off
        assert overall["ungraded"] == 0 and overall["mae"]["value"] == pytest.approx(2 / 11)

        again = invoke(str(data), *url, *common, "--out", str(tmp_path / "2.jsonl"))
        assert again.exit_code == 0, again.stderr
        assert len(server.requests) == calls  # every answer came from the cache
        assert predictions(tmp_path / "1.jsonl") == predictions(tmp_path / "2.jsonl")

        fresh = invoke(str(data), *url, *common, "--no-cache")
        assert fresh.exit_code == 0, fresh.stderr
        assert len(server.requests) == 2 * calls


def test_record_then_replay_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    data = write_dataset(tmp_path / "d.jsonl", standard_rows(6))
    cassette = tmp_path / "cassettes" / "run.yaml"
    common = ["--bootstrap", "0", "--no-report", "-c", "4"]
    with LoopbackOpenAIServer(responder=grade_responder) as server:
        recorded = invoke(
            str(data),
            "--grader",
            "llm",
            "--base-url",
            server.base_url,
            "--record",
            str(cassette),
            "--out",
            str(tmp_path / "rec.jsonl"),
            *common,
        )
        assert recorded.exit_code == 0, recorded.stderr
        assert len(server.requests) == 8
    text = cassette.read_text()
    assert SECRET not in text and "REDACTED" in text

    monkeypatch.delenv("OPENAI_API_KEY")
    replayed = invoke(
        str(data),
        "--grader",
        "llm",
        "--replay",
        str(cassette),
        "--out",
        str(tmp_path / "rep.jsonl"),
        "--json",
        *common,
    )
    assert replayed.exit_code == 0, replayed.stderr
    spec = json.loads(replayed.stdout)["data"]["spec"]
    assert spec["cassette_mode"] == "replay" and spec["model"] == "gpt-4o-mini"
    assert without_latency(tmp_path / "rec.jsonl") == without_latency(tmp_path / "rep.jsonl")

    # an answer the recording never sent cannot replay, and says so
    rows = standard_rows(6)
    rows[0] = record(0, "an answer nobody recorded", 4, split="a", kind="verbatim")
    changed = write_dataset(tmp_path / "changed.jsonl", rows)
    other = invoke(str(changed), "--grader", "llm", "--replay", str(cassette), "--json", *common)
    assert other.exit_code == 0, other.stderr
    reasons = json.loads(other.stdout)["data"]["ungraded_reasons"]
    assert list(reasons.items()) == [
        (
            "no exchange recorded in the cassette matches this request (replaying: the data,"
            " prompt or settings differ from the recorded run's)",
            1,
        )
    ]


def test_a_key_the_server_echoes_is_stored_nowhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, grader_home: Path
) -> None:
    """Some servers repeat the key back ("Incorrect API key provided: sk-..."): neither the
    cassette nor the call log may keep it, nor the run's results."""
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    data = write_dataset(tmp_path / "d.jsonl", standard_rows(3))
    cassette = tmp_path / "echo.yaml"
    echoes = [
        Reply.error(400, f"Incorrect API key provided: {SECRET}"),
        Reply.content(f"your key is {SECRET}"),  # never validates: re-asked, then ungraded
    ]

    def echo(body: dict[str, Any]) -> Reply:
        return echoes[len(server.requests) % 2]

    with LoopbackOpenAIServer(responder=echo) as server:
        result = invoke(
            str(data),
            "--grader",
            "llm",
            "--base-url",
            server.base_url,
            "--record",
            str(cassette),
            "--run-dir",
            str(tmp_path / "run"),
            "--bootstrap",
            "0",
        )
    assert result.exit_code == 1  # nothing could be graded
    assert len(server.requests) > 2
    assert SECRET not in result.stdout + result.stderr
    stored = [cassette, *(tmp_path / "run").rglob("*"), *grader_home.rglob("*")]
    files = [p for p in stored if p.is_file()]
    assert any(p.name == "llm.sqlite3" for p in files)
    for path in files:
        assert SECRET.encode() not in path.read_bytes(), path
    assert "***" in cassette.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", NOT_A_CASSETTE),
        ("interactions: 5\n", NOT_A_CASSETTE),
        ("interactions:\n- request: 1\n", NOT_A_CASSETTE),
        ("name: a deck\ncards: []\n", NOT_A_CASSETTE),
        ("interactions: []\nversion: 1\n", "the cassette records no exchange; nothing to replay"),
    ],
)
def test_a_cassette_that_cannot_replay_is_one_line(tmp_path: Path, text: str, message: str) -> None:
    """Never a traceback, and never a silent fall-back to the offline grader."""
    cassette = tmp_path / "c.yaml"
    cassette.write_text(text, encoding="utf-8")
    data = write_dataset(tmp_path / "d.jsonl", standard_rows(3))
    result = invoke(str(data), "--replay", str(cassette), "--no-report")
    assert result.exit_code == 1
    assert result.stderr == f"error: {cassette}: {message}\n"


def test_resume_goes_on_only_with_the_runs_own_model_and_prompt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = write_dataset(tmp_path / "d.jsonl", standard_rows(4))
    run = tmp_path / "run"
    quiet = ["--bootstrap", "0", "--no-report"]
    with LoopbackOpenAIServer(responder=grade_responder) as server:
        llm = ["--grader", "llm", "--base-url", server.base_url]
        first = invoke(str(data), *llm, "--run-dir", str(run), *quiet)
        assert first.exit_code == 0, first.stderr
        calls = len(server.requests)
        spec = json.loads((run / "spec.json").read_text())

        other_model = invoke("--resume", str(run), "--model", "other-model", *quiet)
        assert other_model.exit_code == 2
        assert other_model.stderr.startswith(
            f"error: run {spec['run_id']} was graded with model {spec['model']}, "
            "and would now go on with other-model: "
        )

        prompts = tmp_path / "prompts"
        prompts.mkdir()
        for part in ("system", "user"):
            source = Path(__file__).resolve().parent.parent / "prompts" / f"grade.{part}.md"
            (prompts / source.name).write_text(source.read_text() + "\nBe brief.\n")
        with monkeypatch.context() as patched:
            patched.setattr("grader.llm.prompts.prompt_dirs", lambda: [prompts])
            other_prompt = invoke("--resume", str(run), *quiet)
        assert other_prompt.exit_code == 2
        assert f"was graded with prompt {spec['prompt_hash']}, and would now" in other_prompt.stderr

        same = invoke("--resume", str(run), "--base-url", server.base_url + "/", *quiet)
        assert same.exit_code == 0, same.stderr  # a trailing slash is the same endpoint
        assert len(server.requests) == calls  # refused runs sent nothing; the run was complete

        # a run against OpenAI's default endpoint (no base URL in its spec) is not resumed
        # against another one
        spec["base_url"] = None
        (run / "spec.json").write_text(json.dumps(spec))
        elsewhere = invoke("--resume", str(run), "--base-url", server.base_url, *quiet)
        assert elsewhere.exit_code == 2
        assert "was graded with base URL https://api.openai.com/v1, and would now" in (
            elsewhere.stderr
        )


def test_an_offline_run_resumes(tmp_path: Path) -> None:
    data = write_dataset(tmp_path / "d.jsonl", standard_rows(3))
    run = tmp_path / "run"
    quiet = ["--bootstrap", "0", "--no-report"]
    first = invoke(str(data), "--grader", "offline", "--run-dir", str(run), *quiet)
    assert first.exit_code == 0, first.stderr
    calibration = json.loads((run / "spec.json").read_text())["prompt_hash"]
    assert calibration  # the offline grader's calibration, recorded where a prompt's hash goes
    again = invoke("--resume", str(run), *quiet)
    assert again.exit_code == 0, again.stderr


def test_a_recording_killed_midway_resumes_into_a_complete_cassette(tmp_path: Path) -> None:
    """vcrpy saves a cassette when its context ends, which kill -9 never reaches: the responses
    graded by the killed process are graded again on resume, so a replay finds every one."""
    data = write_dataset(tmp_path / "d.jsonl", standard_rows(30))
    run, cassette = tmp_path / "run", tmp_path / "run.yaml"
    quiet = ["--bootstrap", "0", "--no-report"]
    with LoopbackOpenAIServer(responder=grade_responder, delay=0.05) as server:
        args = [str(data), "--grader", "llm", "--base-url", server.base_url, "-c", "2", *quiet]
        args += ["--record", str(cassette), "--run-dir", str(run)]
        with eval_process(args, tmp_path / "home") as child:
            wait_for_results(run, 6)
            child.kill()
        killed_with = len(results_in(run))
        assert not cassette.exists()  # nothing was saved

        resumed = invoke("--resume", str(run), "--out", str(tmp_path / "rec.jsonl"), *quiet)
        assert resumed.exit_code == 0, resumed.stderr
        assert f"{killed_with} responses were graded after the cassette was last saved" in (
            resumed.stderr
        )
    replayed = invoke(str(data), "--replay", str(cassette), "--out", str(tmp_path / "rep.jsonl"))
    assert replayed.exit_code == 0, replayed.stderr
    assert predictions(tmp_path / "rep.jsonl") == predictions(tmp_path / "rec.jsonl")
    assert len(predictions(tmp_path / "rep.jsonl")) == 32
    assert all(verdict != "ungraded" for _, _, verdict, _, _ in predictions(tmp_path / "rep.jsonl"))


def test_a_cassette_with_the_offline_grader_or_a_broken_spec_is_one_line(tmp_path: Path) -> None:
    data = write_dataset(tmp_path / "d.jsonl", standard_rows(3))
    cassette = tmp_path / "c.yaml"
    offline = invoke(str(data), "--grader", "offline", "--record", str(cassette), "--no-report")
    assert offline.exit_code == 2
    assert offline.stderr == (
        "error: --record and --replay need the LLM grader; this run grades offline\n"
    )

    run = tmp_path / "run"
    with LoopbackOpenAIServer(responder=grade_responder) as server:
        llm = ["--grader", "llm", "--base-url", server.base_url, "--bootstrap", "0"]
        assert invoke(str(data), *llm, "--run-dir", str(run), "--no-report").exit_code == 0
    spec = json.loads((run / "spec.json").read_text())
    del spec["grader"]
    (run / "spec.json").write_text(json.dumps(spec))
    broken = invoke("--resume", str(run))
    assert broken.exit_code == 1
    assert broken.stderr == (
        f"error: {run / 'spec.json'}: invalid run spec: field 'grader': Field required\n"
    )


@pytest.mark.parametrize(("own_limit", "grades_at_once"), [(3, 5), (8, 3)])
def test_llm_grades_run_ahead_of_the_connection_limit_but_requests_never_do(
    tmp_path: Path, own_limit: int, grades_at_once: int
) -> None:
    from grader.evaluation import runner
    from grader.evaluation.dataset import load_datasets
    from grader.graders.base import CALLS_AHEAD
    from grader.graders.llm import LLMGrader
    from grader.settings import Settings
    from grader.testing.openai_server import InFlight

    assert CALLS_AHEAD == 2
    items = load_datasets([write_dataset(tmp_path / "d.jsonl", standard_rows(24))]).items
    slow = InFlight(grade_responder, hold=0.05)
    with LoopbackOpenAIServer(responder=slow) as server:
        settings = Settings(base_url=server.base_url, model="m", max_connections=own_limit)
        grader = LLMGrader(settings.model_copy(update={"cache": False}), tmp_path)
        grading, peak = 0, 0
        agrade = grader.agrade

        async def counted(card: Any, answer: str) -> Any:
            nonlocal grading, peak
            grading += 1
            peak = max(peak, grading)
            try:
                return await agrade(card, answer)
            finally:
                grading -= 1

        grader.agrade = counted  # type: ignore[method-assign]
        results = runner.grade_into(tmp_path / "run", grader, items, max_connections=3)
        grader.close()
    assert len(results) == len(items) and "ungraded" not in {r.verdict for r in results.values()}
    # grades build their requests while 3 are on the wire, unless the grader's own limit is
    # higher than the run's: then it cannot be trusted to keep to the run's
    assert peak == grades_at_once
    assert slow.peak == 3
