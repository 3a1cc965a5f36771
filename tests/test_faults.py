"""Fault injection, end to end: `regenesis synthesize` and `regenesis eval` against a local server that fails
or answers with hostile text, one fault kind at a time.

For every kind the run must end in bounded time with the documented exit code, count the fault under its
kind, keep no row that a fault produced, write no API key to any file, and (for failed calls) finish the
work on a rerun against a healthy server with every problem once.
"""

import contextlib
import json
import re
import socket
import threading
import time
from pathlib import Path

import pytest

from regenesis.cli import main
from tests.fake_server import FakeServer, Fault, fields_reply, last_user_text, output_fields

FAKE_KEY = "sk-faultsuite0123456789abcdefSECRET"
PROBLEMS = 3
STALL_SECONDS = 120  # a stall detector, not a speed target

PAREN_BOMB = "(" * 250 + "1 + 1" + ")" * 250 + " = 2."
POWER_BOMB = r"So we get \boxed{(1/2)^{10^{10}}} as the value of the product."
SPACE_BOMB = "The total is not" + " " * 100_000 + "4."
MARKUP = "[bold red]We add the numbers[/bold red] [/] and [link=file:///etc/passwd]check[/link] it."
HUGE = "We add the numbers once more. " * 5_000  # 150,000 characters


def healthy(body: dict) -> str:
    """A sound answer to "What is k plus k?", for DSPy's prompts and for the evaluation's plain prompt."""
    k = int(re.search(r"What is (\d+) plus", last_user_text(body)).group(1))
    if output_fields(body):
        return fields_reply(body, {"reasoning": f"We add {k} and {k}: {k} + {k} = {2 * k}.", "answer": str(2 * k)})
    return f"{k} + {k} = {2 * k}.\nThe answer is {2 * k}."


def hostile(reasoning: str):
    """The right answer after hostile reasoning: only the filters stand between it and a training row."""
    def respond(body):
        k = int(re.search(r"What is (\d+) plus", last_user_text(body)).group(1))
        if output_fields(body):
            return fields_reply(body, {"reasoning": reasoning, "answer": str(2 * k)})
        return f"{reasoning}\nThe answer is {2 * k}."
    return respond


def always(fault: Fault):
    return lambda body: fault


# kind → (responder, the error kind a failed call is counted under, or None when every call answers)
CALL_FAULTS = {
    "http_500": (always(Fault(status=500)), "server_error"),
    "http_503_echoing_the_key": (always(Fault(status=503, message="overloaded; key $API_KEY [bold]x[/]")),
                                 "server_error"),
    "timeout": (always(Fault(delay=3.0, text="late")), "timeout"),
    "dropped_connection": (always(Fault(close=True)), "connection"),
    "malformed_body": (always(Fault(body="<html>not an OpenAI response</html>")), "other"),
    "connection_refused": (None, "connection"),
}
CONTENT_FAULTS = {
    "empty_content": always(Fault(text="")),
    "nested_parentheses": hostile(PAREN_BOMB),
    "power_bomb": hostile(POWER_BOMB),
    "whitespace_regex_bomb": hostile(SPACE_BOMB),
    "rich_markup": hostile(MARKUP),
    "echoed_key": hostile("We add the numbers with key $API_KEY, so 1 + 1 = 2."),
    "150k_characters": hostile(HUGE),
}


def plus_problems(path: Path) -> Path:
    path.write_text("".join(json.dumps({"question": f"What is {k} plus {k}?", "answer": 2 * k}) + "\n"
                            for k in range(1, PROBLEMS + 1)))
    return path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # nothing listens there once the probe is closed


def run(argv: list[str]) -> tuple[int, float]:
    """``main(argv)`` with a stall detector: the exit code and the seconds it took."""
    outcome: dict = {}

    def target():
        started = time.monotonic()
        outcome["code"] = main(argv)
        outcome["seconds"] = time.monotonic() - started

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(STALL_SECONDS)
    assert not thread.is_alive(), f"{argv[0]} did not finish within {STALL_SECONDS} s"
    return outcome["code"], outcome["seconds"]


def synthesize(url: str, data: Path, out: Path, model: str) -> list[str]:
    return ["synthesize", "--method", "cot", "--generations", "1", "--no-hint", "--num-threads", "2",
            "--task", str(data), "--answer-type", "number", "--model", f"openai/{model}", "--api-base", url,
            "--api-key", FAKE_KEY, "--retries", "0", "--timeout", "1", "--out", str(out)]


def evaluate(url: str, data: Path, out: Path, model: str) -> list[str]:
    return ["eval", "--tasks", str(data), "--answer-type", "number", "--model", f"openai/{model}",
            "--api-base", url, "--api-key", FAKE_KEY, "--retries", "0", "--timeout", "1", "--num-threads", "2",
            "--no-progress", "--out", str(out)]


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def assert_no_key_written(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            assert FAKE_KEY not in path.read_text(errors="replace"), path


@pytest.mark.parametrize("fault", CALL_FAULTS)
def test_a_failed_call_fails_its_problem_by_kind_and_the_rerun_finishes_the_work(tmp_path, fault, capsys):
    responder, kind = CALL_FAULTS[fault]
    data, model, port = plus_problems(tmp_path / "plus.jsonl"), f"faults-{fault}", free_port()
    syn, results = tmp_path / "syn", tmp_path / "eval" / "results.json"
    url, broken = f"http://127.0.0.1:{port}/v1", True
    with contextlib.ExitStack() as servers:
        if responder is not None:
            servers.enter_context(FakeServer(lambda body: responder(body) if broken else healthy(body), port=port))
        assert run(synthesize(url, data, syn, model))[0] == 1
        assert run(evaluate(url, data, results, model))[0] == 1
        report = json.loads((syn / "report.json").read_text())
        assert (report["finished"], report["failed"], report["failed_by_kind"]) == (0, PROBLEMS, {kind: PROBLEMS})
        assert report["cached_generations"] == 0 and report["kept_rows"] == 0
        assert json.loads(results.read_text())["tasks"]["plus"]["error_kinds"] == {kind: PROBLEMS}
        printed = capsys.readouterr()
        assert FAKE_KEY not in printed.out + printed.err

        broken = False  # the server recovers, or comes up where nothing listened
        if responder is None:
            servers.enter_context(FakeServer(healthy, port=port))
        assert run(synthesize(url, data, syn, model))[0] == 0
        assert run(evaluate(url, data, results, model))[0] == 0
    rows, problems = jsonl(syn / "train.jsonl"), jsonl(syn / "problems.jsonl")
    finished = [p["problem_id"] for p in problems if p["status"] == "finished"]
    assert len(finished) == len(set(finished)) == PROBLEMS
    assert sorted(row["meta"]["problem_id"] for row in rows) == sorted(finished)  # one row each, none twice
    scores = json.loads(results.read_text())["tasks"]["plus"]
    assert (scores["n"], scores["correct"], scores["errors"]) == (PROBLEMS, PROBLEMS, 0)
    assert_no_key_written(tmp_path)


@pytest.mark.parametrize("fault", CONTENT_FAULTS)
def test_hostile_or_empty_output_is_a_counted_rejection_never_a_crash_or_a_training_row(tmp_path, fault, capsys):
    data, model = plus_problems(tmp_path / "plus.jsonl"), f"faults-{fault}"
    syn, results = tmp_path / "syn", tmp_path / "eval" / "results.json"
    with FakeServer(CONTENT_FAULTS[fault]) as server:
        assert run(synthesize(server.url, data, syn, model))[0] == 0
        assert run(evaluate(server.url, data, results, model))[0] == 0
    report = json.loads((syn / "report.json").read_text())
    assert (report["finished"], report["failed"], report["kept_rows"]) == (PROBLEMS, 0, 0)
    assert sum(report["dropped"].values()) == PROBLEMS  # each rejected, under a named reason
    assert not (syn / "train.jsonl").read_text()
    scores = json.loads(results.read_text())["tasks"]["plus"]
    assert (scores["n"], scores["errors"]) == (PROBLEMS, 0)  # answered (right or wrong), never a model error
    printed = capsys.readouterr()
    assert FAKE_KEY not in printed.out + printed.err
    assert_no_key_written(tmp_path)
