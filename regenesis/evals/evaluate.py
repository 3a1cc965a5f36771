"""Zero-shot evaluation: ask each problem exactly as the training rows do, decode greedily, score the answer line.

Each outcome is appended to ``<raw_dir>/<task>.jsonl`` the moment it is known, so an interrupted run
(even ``kill -9``) loses nothing and a rerun asks only what is missing or failed. Scores are always
recomputed from those files: every number in a report traces back to a raw output, and every verdict is
derived again from the stored output and the current gold answer and matcher, so correcting a gold answer
changes the score on the next run without asking the model again. A stored output stands for an example
only while the example's question is the one the model was asked; a changed question is asked again.

A model error is not a wrong answer: it is counted apart, by kind (``regenesis.models.error_kind``), and
retried by the next run. A model that cannot be loaded at all stops the run.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import dspy
from dspy.lm15 import Config, Message, Request

from regenesis.answers import extract_answer, is_correct
from regenesis.errors import BadInput
from regenesis.evals.scores import MacroAverage, TaskScore, domain_averages, family_of, headline_scores, score_tasks
from regenesis.models import error_kind, model_identity
from regenesis.parallel import progress_display, run_parallel
from regenesis.prompting import INSTRUCTION, user_prompt
from regenesis.runfiles import append_jsonl, check_settings, read_jsonl, repair_jsonl, run_lock
from regenesis.tasks import TASKS
from regenesis.tasks.example import Example

MAX_CONSECUTIVE_ERRORS = 5


# ---------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class Throughput:
    """What this run itself asked the model (resumed outcomes excluded); cached answers count too."""

    problems: int
    seconds: float
    output_tokens: int

    @property
    def problems_per_s(self) -> float:
        return self.problems / self.seconds if self.seconds else 0.0

    @property
    def tokens_per_s(self) -> float:
        return self.output_tokens / self.seconds if self.seconds else 0.0

    def to_dict(self) -> dict:
        return {**asdict(self), "problems_per_s": self.problems_per_s, "tokens_per_s": self.tokens_per_s}

    @classmethod
    def from_dict(cls, data: Mapping) -> Throughput:
        return cls(data["problems"], data["seconds"], data["output_tokens"])


@dataclass
class EvalResult:
    """Per-task scores (task families pooled into one more line), domain averages and where the raw outputs are."""

    model: str
    settings: dict
    scores: dict[str, TaskScore]
    averages: dict[str, MacroAverage]
    raw_files: dict[str, str]
    throughput: Throughput | None = None

    @property
    def errors(self) -> int:
        """The examples that ended in a model error, each counted once (a family's pooled line is not added)."""
        return sum(score.errors for score in headline_scores(self.scores))

    def error_kinds(self) -> dict[str, int]:
        kinds: Counter[str] = Counter()
        for score in headline_scores(self.scores):
            kinds.update(score.error_kinds)
        return dict(kinds)

    def to_dict(self) -> dict:
        return {
            "model": self.model,
            "settings": self.settings,
            "tasks": {name: score.to_dict() for name, score in self.scores.items()},
            "averages": {domain: average.to_dict() for domain, average in self.averages.items()},
            "raw_files": self.raw_files,
            "throughput": self.throughput.to_dict() if self.throughput else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> EvalResult:
        return cls(
            model=data["model"],
            settings=dict(data.get("settings", {})),
            scores={name: TaskScore.from_dict(score) for name, score in data["tasks"].items()},
            averages={domain: MacroAverage.from_dict(avg) for domain, avg in data.get("averages", {}).items()},
            raw_files=dict(data.get("raw_files", {})),
            throughput=Throughput.from_dict(data["throughput"]) if data.get("throughput") else None,
        )


# ---------------------------------------------------------------------------------------------
# Raw output files


def raw_file(raw_dir: Path, task: str) -> Path:
    return Path(raw_dir) / f"{task}.jsonl"


def read_records(path: Path) -> list[dict]:
    """The complete outcome records of a raw file; a line cut short by a killed run is skipped."""
    return [record for record in read_jsonl(path) if isinstance(record, dict) and "id" in record]


def latest_by_id(records: Iterable[dict]) -> dict[str, dict]:
    """The last record of each id: a failed call retried by a later run is superseded by its retry."""
    return {str(record["id"]): record for record in records}


def stored_records(raw_dir: Path, task: str, examples: list[Example]) -> dict[str, dict]:
    """The latest record of each example that was asked its current question, judged against its current gold."""
    latest = latest_by_id(read_records(raw_file(raw_dir, task)))
    return {example.id: judged(latest[example.id], example) for example in examples
            if example.id in latest and latest[example.id].get("question") == example.question}


def judged(record: dict, example: Example) -> dict:
    """``record`` with its answer and verdict derived from its output and the example's gold answer."""
    if record.get("error") is not None:
        return {**record, "gold": example.gold, "answer": None, "correct": False}
    text = record["output"]
    return {**record, "gold": example.gold,
            "answer": extract_answer(text, example.answer_type, example.choices, example.labels),
            "correct": bool(is_correct(text, example))}


# ---------------------------------------------------------------------------------------------
# Asking the model


def max_tokens_of(lm: dspy.BaseLM) -> int | None:
    return lm.kwargs.get("max_tokens") or lm.kwargs.get("max_completion_tokens")


def eval_request(lm: dspy.BaseLM, question: str) -> Request:
    """The one user turn of a training row, decoded greedily."""
    return Request(model=lm.model, messages=(Message.user(user_prompt(question)),),
                   config=Config(temperature=0.0, max_tokens=max_tokens_of(lm)))


def ask(lm: dspy.BaseLM, example: Example) -> dict:
    """One raw record, without a verdict. An explicit Request returns its own usage, so no shared
    ``lm.history`` is read. A model that cannot be loaded raises: no example is to blame for it."""
    started = time.perf_counter()
    record: dict[str, Any] = {"id": example.id, "task": example.task, "question": example.question}
    try:
        response = lm(eval_request(lm, example.question))
    except Exception as exc:  # the LM already retried what is retryable
        kind = error_kind(exc)
        if kind == "model_load":
            raise
        return {**record, "output": None, "error": f"{type(exc).__name__}: {exc}", "error_kind": kind,
                "finish_reason": None, "input_tokens": 0, "output_tokens": 0,
                "seconds": round(time.perf_counter() - started, 3)}
    return {**record, "output": response.text or "", "error": None, "error_kind": None,
            "finish_reason": response.finish_reason, "input_tokens": response.usage.input_tokens or 0,
            "output_tokens": response.usage.output_tokens or 0, "seconds": round(time.perf_counter() - started, 3)}


class _Display:
    """A progress bar per task (accuracy over the answered, model errors apart) and one for the run."""

    def __init__(self, examples: Mapping[str, list[Example]], done: Mapping[str, list[dict]], enabled: bool):
        self.progress = progress_display(enabled)
        self.counts = {task: Counter() for task in examples}
        for records in done.values():
            for record in records:
                self._count(record)
        self.bars = {task: self.progress.add_task(task, total=len(group), completed=len(done[task]),
                                                  status=self._status(task)) for task, group in examples.items()}
        already = sum(len(records) for records in done.values())
        self.run_bar = self.progress.add_task("all", total=sum(map(len, examples.values())), completed=already,
                                              status="")
        self.started = time.perf_counter()
        self.output_tokens = 0

    def _count(self, record: dict) -> None:
        counts = self.counts[record["task"]]
        counts["errors" if record["error"] is not None else "answered"] += 1
        counts["correct"] += bool(record["correct"])

    def _status(self, task: str) -> str:
        counts = self.counts[task]
        answered = counts["answered"]
        accuracy = f"acc {counts['correct'] / answered:6.1%} of {answered} answered" if answered else "acc    -  "
        return accuracy + (f"  {counts['errors']} model errors" if counts["errors"] else "")

    def add(self, record: dict) -> None:
        self._count(record)
        self.output_tokens += record["output_tokens"]
        self.progress.update(self.bars[record["task"]], advance=1, status=self._status(record["task"]))
        rate = self.output_tokens / max(time.perf_counter() - self.started, 1e-9)
        self.progress.update(self.run_bar, advance=1, status=f"{rate:7.1f} generated tok/s")

    def __enter__(self):
        self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        return self.progress.__exit__(*exc)


class _DropTruncationWarnings(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "truncated" not in record.getMessage()


@contextmanager
def _quiet_truncation_warnings():
    """DSPy warns at every answer cut off by max_tokens; here each one is counted in the scores instead."""
    logger = logging.getLogger("dspy.clients.lm")
    drop = _DropTruncationWarnings()
    logger.addFilter(drop)
    try:
        yield
    finally:
        logger.removeFilter(drop)


def _group_by_task(examples: Iterable[Example]) -> dict[str, list[Example]]:
    groups: dict[str, list[Example]] = {}
    for example in examples:
        if not example.task:
            raise ValueError(f"example {example.id!r} has no task name")
        group = groups.setdefault(example.task, [])
        group.append(example)
    for task, group in groups.items():
        ids = [example.id for example in group]
        if len(set(ids)) != len(ids):
            raise BadInput(f"task {task}: example ids are not unique, so a run could not be resumed")
    return groups


def _run_pending(lm, pending: list[Example], raw_dir: Path, num_threads: int, display: _Display) -> Throughput:
    for task in {example.task for example in pending}:
        repair_jsonl(raw_file(raw_dir, task))  # creates the file (and its folder), or cuts a torn last line
    started = time.perf_counter()
    errors_in_a_row = 0

    def keep(example: Example, outcome: dict) -> None:
        nonlocal errors_in_a_row
        record = judged(outcome, example)
        # in the OS before anything else happens: kill -9 loses nothing
        append_jsonl(raw_file(raw_dir, example.task), [record])
        display.add(record)
        errors_in_a_row = errors_in_a_row + 1 if record["error"] else 0
        if errors_in_a_row >= MAX_CONSECUTIVE_ERRORS:
            raise RuntimeError(f"{errors_in_a_row} model calls in a row failed, the last with {record['error']}; "
                               "what finished is saved, rerun to resume")

    run_parallel(lambda example: ask(lm, example), pending, keep, num_threads)
    return Throughput(problems=len(pending), seconds=time.perf_counter() - started,
                      output_tokens=display.output_tokens)


def run_settings(lm: dspy.BaseLM) -> dict:
    """What determines an answer besides the question; a run folder holds the answers of one such setting.

    The model is named by ``model_identity``, the name its answers are cached under: a local model's
    name is fingerprinted by its files, so two checkpoints in folders of the same name differ."""
    return {"model": model_identity(lm), "api_base": lm.kwargs.get("api_base"), "temperature": 0.0,
            "max_tokens": max_tokens_of(lm), "instruction": INSTRUCTION}


def evaluate(
    lm: dspy.BaseLM,
    examples: Iterable[Example],
    *,
    raw_dir: str | Path,
    num_threads: int = 1,
    progress: bool = True,
    domains: Mapping[str, str | None] | None = None,
    settings: Mapping[str, Any] | None = None,
) -> EvalResult:
    """Ask ``lm`` every example not yet answered in ``raw_dir``, then score all of them from the raw files.

    ``domains`` maps a task or a task family (``bbh``) to ``"in"``/``"out"``, over the task registry's
    domains; ``settings`` are extra facts recorded in the result (the task list, the split ...). Another
    run on the same ``raw_dir`` is refused (``BadInput``) while this one holds it.
    """
    raw_dir = Path(raw_dir)
    groups = _group_by_task(examples)
    run = run_settings(lm)
    with run_lock(raw_dir):
        check_settings(raw_dir, run)
        done = {task: [record for record in stored_records(raw_dir, task, group).values() if record["error"] is None]
                for task, group in groups.items()}
        done_ids = {(task, record["id"]) for task, records in done.items() for record in records}
        pending = [example for task, group in groups.items() for example in group if (task, example.id) not in done_ids]
        with _quiet_truncation_warnings(), _Display(groups, done, progress) as display:
            throughput = _run_pending(lm, pending, raw_dir, num_threads, display)
        records_by_task = {task: list(stored_records(raw_dir, task, group).values()) for task, group in groups.items()}
    scores = score_tasks(records_by_task, task_domains(groups, domains or {}))
    return EvalResult(
        model=lm.model,
        settings={**run, "num_threads": num_threads, **(settings or {})},
        scores=scores,
        averages=domain_averages(scores),
        raw_files={task: str(raw_file(raw_dir, task)) for task in groups},
        throughput=throughput,
    )


def registry_domains(tasks: Iterable[str]) -> dict[str, str | None]:
    return {task: getattr(TASKS.get(task), "domain", None) for task in tasks}


def task_domains(tasks: Iterable[str], overrides: Mapping[str, str | None]) -> dict[str, str | None]:
    """Each task's domain: an override for the task or for its family, else the registry's (None if unknown)."""
    registry = registry_domains(tasks)
    return {task: overrides.get(task, overrides.get(family_of(task), registry[task])) for task in registry}
