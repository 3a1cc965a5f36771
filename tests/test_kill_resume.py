"""kill -9 in the middle of ``regenesis synthesize`` and ``regenesis eval``, then the same command again:
nothing lost, nothing duplicated, no torn file, and the same rows as a run that was never interrupted.

The killed commands run as subprocesses against a local fake server whose answers are slow enough to
kill a run mid-way, and deterministic, so an interrupted run and an uninterrupted one can be compared;
the rerun and the uninterrupted run are the same command line, called in this process.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from regenesis.cli import main
from tests.fake_server import FakeServer, fields_reply, last_user_text

PROBLEMS = 8
REPLY_SECONDS = 0.25


def slow_plus_reply(body):
    time.sleep(REPLY_SECONDS)
    k = int(re.search(r"What is (\d+) plus", last_user_text(body)).group(1))
    return fields_reply(body, {"reasoning": f"{k} + {k} = {2 * k}.", "answer": str(2 * k)})


def plus_problems(path: Path) -> Path:
    path.write_text("".join(json.dumps({"question": f"What is {k} plus {k}?", "answer": 2 * k}) + "\n"
                            for k in range(1, PROBLEMS + 1)))
    return path


def subprocess_of(arguments: list[str]) -> list[str]:
    return [sys.executable, "-m", "regenesis", *arguments]


def synthesize_command(data: Path, url: str, out: Path) -> list[str]:
    return ["synthesize", "--method", "cot", "--generations", "1", "--no-hint",
            "--num-threads", "2", "--task", str(data), "--answer-type", "number", "--model", "openai/kill-synth",
            "--api-base", url, "--out", str(out)]


def lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def kill_when(command: list[str], written: Path, at_least: int) -> None:
    """Start ``command`` and SIGKILL it as soon as ``written`` holds ``at_least`` lines."""
    environment = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    process = subprocess.Popen(subprocess_of(command), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               env=environment)
    deadline = time.monotonic() + 120
    try:
        while lines(written) < at_least:
            assert process.poll() is None, process.stderr.read().decode()
            assert time.monotonic() < deadline, "the run never got that far"
            time.sleep(0.02)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]  # a torn line fails here


def test_synthesize_killed_twice_then_rerun_has_every_row_once(tmp_path):
    data = plus_problems(tmp_path / "plus.jsonl")
    out, whole = tmp_path / "killed", tmp_path / "whole"
    with FakeServer(slow_plus_reply) as server:
        command = synthesize_command(data, server.url, out)
        kill_when(command, out / "problems.jsonl", 1)
        kill_when(command, out / "problems.jsonl", PROBLEMS // 2 + 1)
        assert lines(out / "problems.jsonl") < PROBLEMS  # killed before the end
        assert main(command) == 0
        assert main(synthesize_command(data, server.url, whole)) == 0

    problems = [p["problem_id"] for p in records(out / "problems.jsonl")]
    assert len(problems) == len(set(problems)) == PROBLEMS
    key = lambda row: (row["meta"]["problem_id"], row["meta"]["sample_index"])  # noqa: E731
    rows = sorted(records(out / "train.jsonl"), key=key)
    assert len({key(row) for row in rows}) == len(rows) == PROBLEMS
    assert rows == sorted(records(whole / "train.jsonl"), key=key)
    report = json.loads((out / "report.json").read_text())
    assert (report["finished"], report["failed"], report["kept_rows"]) == (PROBLEMS, 0, PROBLEMS)


def slow_reply(body):
    time.sleep(REPLY_SECONDS)
    return fields_reply(body, {"reasoning": "2 + 2 = 4.", "answer": "4"})


def eval_command(url: str, out: Path) -> list[str]:
    return ["eval", "--tasks", "gsm8k-sample", "--limit", str(PROBLEMS),
            "--num-threads", "2", "--no-progress", "--model", "openai/kill-eval", "--api-base", url, "--out", str(out)]


def test_eval_killed_twice_then_rerun_has_every_answer_once(tmp_path):
    out, whole = tmp_path / "killed.json", tmp_path / "whole.json"
    raw = tmp_path / "killed.raw" / "gsm8k-sample.jsonl"
    with FakeServer(slow_reply) as server:
        command = eval_command(server.url, out)
        kill_when(command, raw, 1)
        kill_when(command, raw, PROBLEMS // 2 + 1)
        assert lines(raw) < PROBLEMS
        assert main(command) == 0
        assert main(eval_command(server.url, whole)) == 0

    answered = [record["id"] for record in records(raw)]
    assert len(answered) == len(set(answered)) == PROBLEMS
    killed, uninterrupted = json.loads(out.read_text()), json.loads(whole.read_text())
    assert killed["tasks"] == uninterrupted["tasks"]
