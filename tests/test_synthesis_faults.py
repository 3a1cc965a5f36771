"""Synthesis under model faults and bad input, on a local fake OpenAI-compatible server.

Each fault runs a tiny real ``synthesize`` (chain of thought, one generation a problem) through DSPy's
own ``openai/`` client. A failed call fails its problem by kind, keeps no row, is never counted as a
cached generation, and is done again by the next run; bad input exits 2 before any model call.
"""

import json
import re
import socket
import time

import pytest

from regenesis.cli import main
from regenesis.tasks import load_task
from regenesis.models import resolve_lm
from regenesis.optimize.bootstrap import synthesize
from regenesis.optimize.config import SynthesisConfig
from regenesis.runfiles import run_lock
from tests.fake_server import Fault, FakeServer, fields_reply, last_user_text

COT = SynthesisConfig(method="cot", generations=1, num_threads=1, hint_pass=False)
FAKE_KEY = "hunter2-registered-key"  # not shaped like a key: hidden because resolve_lm registers it


def plus_problems(path, n=2):
    path.write_text("".join(json.dumps({"question": f"What is {k} plus {k}?", "answer": 2 * k}) + "\n"
                            for k in range(1, n + 1)))
    return path


def plus_reply(body):
    """A sound chain of thought for "What is k plus k?"."""
    k = int(re.search(r"What is (\d+) plus", last_user_text(body)).group(1))
    return fields_reply(body, {"reasoning": f"{k} + {k} = {2 * k}.", "answer": str(2 * k)})


def problems_file(out):
    return [json.loads(line) for line in (out / "problems.jsonl").read_text().splitlines()]


def rows_file(out):
    return [json.loads(line) for line in (out / "train.jsonl").read_text().splitlines()]


def fake_lm(server, name, **kwargs):
    return resolve_lm(f"openai/{name}", api_base=server.url, cache=False, **kwargs)


def test_a_transient_server_error_is_retried_with_backoff_and_gives_a_normal_result(tmp_path):
    seen = []

    def responder(body):
        seen.append(time.monotonic())
        return Fault(status=500) if len(seen) == 1 else plus_reply(body)

    examples = load_task(str(plus_problems(tmp_path / "plus.jsonl", 1)), answer_type="number")
    with FakeServer(responder) as server:
        report = synthesize(fake_lm(server, "transient", num_retries=2), examples, tmp_path / "out", COT,
                            progress=False)
    assert len(seen) == 2 and seen[1] - seen[0] >= 0.9  # DSPy waited (1 s) before the retry
    assert (report["finished"], report["failed"], report["kept_rows"]) == (1, 0, 1)
    assert (report["generations"], report["failed_calls"], report["cached_generations"]) == (1, 0, 0)


def test_cached_generations_are_the_calls_the_cache_answered(tmp_path):
    examples = load_task(str(plus_problems(tmp_path / "plus.jsonl", 3)), answer_type="number")
    with FakeServer(plus_reply) as server:
        lm = resolve_lm("openai/cached", api_base=server.url, num_retries=0)
        first = synthesize(lm, examples, tmp_path / "first", COT, progress=False)
        again = synthesize(lm, examples, tmp_path / "again", COT, progress=False)  # the same prompts
    assert (first["generations"], first["cached_generations"], len(server.requests)) == (3, 0, 3)
    assert (again["generations"], again["cached_generations"], again["completion_tokens"]) == (3, 3, 0)


def refused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # nothing listens there once the probe is closed


@pytest.mark.parametrize("fault, kind", [(Fault(status=500), "server_error"), (Fault(delay=3.0), "timeout"),
                                         (Fault(close=True), "connection")])
def test_a_failed_call_fails_its_problem_by_kind_and_the_rerun_retries_it(tmp_path, fault, kind):
    healthy = False
    examples = load_task(str(plus_problems(tmp_path / "plus.jsonl")), answer_type="number")
    out = tmp_path / "out"
    with FakeServer(lambda body: plus_reply(body) if healthy else fault) as server:
        lm = fake_lm(server, f"fault-{kind}", num_retries=0, timeout=0.5)
        report = synthesize(lm, examples, out, COT, progress=False)
        assert (report["finished"], report["failed"], report["failed_by_kind"]) == (0, 2, {kind: 2})
        assert (report["generations"], report["cached_generations"], report["failed_calls"]) == (0, 0, 2)
        assert [(p["status"], p["error_kind"]) for p in problems_file(out)] == [("failed", kind)] * 2
        assert rows_file(out) == []

        healthy = True
        report = synthesize(lm, examples, out, COT, progress=False)
    assert (report["finished"], report["failed"], report["kept_rows"]) == (2, 0, 2)
    assert sorted(p["problem_id"] for p in problems_file(out)) == sorted(e.id for e in examples)
    assert all(p["status"] == "finished" for p in problems_file(out))


def test_a_refused_connection_fails_the_problem_as_connection(tmp_path):
    examples = load_task(str(plus_problems(tmp_path / "plus.jsonl", 1)), answer_type="number")
    lm = resolve_lm("openai/refused", api_base=f"http://127.0.0.1:{refused_port()}/v1", cache=False, num_retries=0)
    report = synthesize(lm, examples, tmp_path / "out", COT, progress=False)
    assert report["failed_by_kind"] == {"connection": 1} and report["generations"] == 0


def test_unparseable_output_is_a_dropped_candidate_not_a_failed_problem(tmp_path):
    examples = load_task(str(plus_problems(tmp_path / "plus.jsonl", 1)), answer_type="number")
    with FakeServer(lambda body: "I will not use your format [[ ## nope") as server:
        report = synthesize(fake_lm(server, "unparseable", num_retries=0), examples, tmp_path / "out", COT,
                            progress=False)
    assert (report["finished"], report["failed"], report["dropped"]) == (1, 0, {"parse": 1})
    assert report["generations"] == 2  # the ChatAdapter's answer, then its JSON fallback's


def cli(tmp_path, server_url, model, *extra, out=None):
    data = plus_problems(tmp_path / "plus.jsonl", 1)
    return main(["synthesize", "--method", "cot", "--generations", "1", "--no-hint", "--num-threads", "1",
                 "--task", str(data), "--answer-type", "number", "--model", f"openai/{model}",
                 "--api-base", server_url, "--out", str(out or tmp_path / "out"), *extra])


def test_the_command_exits_1_while_a_problem_failed_and_0_once_the_rerun_finished_it(tmp_path, capsys):
    healthy = False
    markup = Fault(status=503, message="[/red] upstream [bold]down")  # provider text is never rich markup
    with FakeServer(lambda body: plus_reply(body) if healthy else markup) as server:
        assert cli(tmp_path, server.url, "cli-exit", "--retries", "0") == 1
        printed = capsys.readouterr().out
        assert re.search(r"failed \(a model call failed; retried by a rerun\)\s*│\s*1", printed)
        assert '{"server_error": 1}' in printed
        healthy = True
        assert cli(tmp_path, server.url, "cli-exit", "--retries", "0") == 0
    assert len(rows_file(tmp_path / "out")) == 1


def test_a_key_echoed_by_the_provider_or_the_model_is_in_no_file_written(tmp_path):
    calls = []

    def responder(body):
        calls.append(body)
        if len(calls) == 1:
            return Fault(status=400, message=f"Incorrect API key provided: {FAKE_KEY}")
        return fields_reply(body, {"reasoning": f"My key is {FAKE_KEY}, and 1 + 1 = 2.", "answer": "2"})

    examples = load_task(str(plus_problems(tmp_path / "plus.jsonl", 1)), answer_type="number")
    out = tmp_path / "out"
    with FakeServer(responder) as server:
        lm = fake_lm(server, "echo", api_key=FAKE_KEY, num_retries=0)
        assert synthesize(lm, examples, out, COT, progress=False)["failed"] == 1
        assert "[redacted]" in problems_file(out)[0]["error_examples"][0]
        second = synthesize(lm, examples, out, COT, progress=False)
    assert (second["finished"], second["dropped"]) == (1, {"form": 1})  # a path that holds a secret is no row
    for path in out.iterdir():
        assert FAKE_KEY not in path.read_text(), path.name


def test_a_second_run_on_the_same_out_exits_2_naming_the_run_that_holds_it(tmp_path, capsys):
    with run_lock(tmp_path / "out"):
        assert cli(tmp_path, f"http://127.0.0.1:{refused_port()}/v1", "locked") == 2
    assert "is in use by another regenesis run (pid" in capsys.readouterr().err
    assert not (tmp_path / "out" / "run.json").exists()


def test_an_out_that_is_a_file_exits_2_naming_it(tmp_path, capsys):
    (tmp_path / "taken").write_text("mine")
    assert cli(tmp_path, f"http://127.0.0.1:{refused_port()}/v1", "file-out", out=tmp_path / "taken") == 2
    assert "--out" in capsys.readouterr().err and (tmp_path / "taken").read_text() == "mine"


def test_a_bad_judge_exits_2_before_run_json_is_written(tmp_path, capsys):
    assert cli(tmp_path, f"http://127.0.0.1:{refused_port()}/v1", "judged", "--judge", "nosuchmodel") == 2
    assert "nosuchmodel" in capsys.readouterr().err
    assert not (tmp_path / "out" / "run.json").exists()


def test_synthesize_reads_the_train_split_unless_told_otherwise(tmp_path):
    with FakeServer(lambda body: fields_reply(body, {"reasoning": "2 + 2 = 4.", "answer": "4"})) as server:
        assert main(["synthesize", "--method", "cot", "--generations", "1", "--no-hint", "--task", "gsm8k-sample",
                     "--limit", "1", "--model", "openai/split", "--api-base", server.url,
                     "--out", str(tmp_path / "out")]) == 0
    assert [p["problem_id"].split("/")[1] for p in problems_file(tmp_path / "out")] == ["train"]
    settings = json.loads((tmp_path / "out" / "run.json").read_text())
    assert settings["split"] == "train" and settings["model"] == f"openai/split@{server.url}"
    assert settings["tasks"] == ["gsm8k-sample"] and settings["problems"] == 1 and settings["max_tokens"] == 1024


def test_a_task_without_a_train_split_needs_split(tmp_path, capsys):
    assert main(["synthesize", "--task", "bbh-sample/navigate", "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: --split: bbh-sample/navigate has no train split") and error.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_help_gives_the_exit_codes_and_what_the_hinted_pass_adds_to_the_budget(capsys):
    with pytest.raises(SystemExit):
        main(["synthesize", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "Exit codes: 0 success, 1 a failure during the run (model errors, failed problems)" in text
    assert "rerun the same command to resume it and to retry the problems that failed" in text
    assert "14 generations, and up to as many again in the hinted pass" in text
