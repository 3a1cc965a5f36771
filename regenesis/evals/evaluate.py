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
import math
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import dspy
from dspy.lm15 import Config, Message, Request
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from regenesis.errors import BadInput
from regenesis.tasks.example import Example
from regenesis.models import describe, error_kind
from regenesis.prompting import INSTRUCTION, user_prompt
from regenesis.runfiles import append_jsonl, check_settings, read_jsonl, repair_jsonl, run_lock

Z_95 = 1.959963984540054  # the 97.5% quantile of the standard normal
MAX_CONSECUTIVE_ERRORS = 5


# ---------------------------------------------------------------------------------------------
# Statistics


def wilson_interval(successes: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval for a binomial proportion (95% by default); (0, 1) when n is 0."""
    if not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n, got {successes} of {n}")
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    z2 = z * z
    denominator = 1 + z2 / n
    center = (p + z2 / (2 * n)) / denominator
    half_width = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denominator
    low = 0.0 if successes == 0 else max(0.0, center - half_width)
    high = 1.0 if successes == n else min(1.0, center + half_width)
    return low, high


@dataclass(frozen=True)
class TaskScore:
    """Counts of one task, or of a task family (``bbh``) pooled over its subtasks.

    ``n`` counts the answered examples, the ones accuracy is over; ``errors`` counts the examples whose
    model call failed (not answers, so neither right nor wrong), by kind in ``error_kinds``.
    ``truncated`` counts the answers cut off by the token limit.
    """

    task: str
    n: int
    correct: int
    errors: int = 0
    truncated: int = 0
    domain: str | None = None
    subtasks: tuple[str, ...] = ()
    error_kinds: Mapping[str, int] = field(default_factory=dict)

    @property
    def accuracy(self) -> float:
        return self.correct / self.n if self.n else 0.0

    @property
    def interval(self) -> tuple[float, float]:
        return wilson_interval(self.correct, self.n)

    def to_dict(self) -> dict:
        low, high = self.interval
        return {"task": self.task, "domain": self.domain, "n": self.n, "correct": self.correct,
                "errors": self.errors, "error_kinds": dict(self.error_kinds), "truncated": self.truncated,
                "accuracy": self.accuracy, "ci_low": low, "ci_high": high, "subtasks": list(self.subtasks)}

    @classmethod
    def from_dict(cls, data: Mapping) -> TaskScore:
        return cls(task=data["task"], n=data["n"], correct=data["correct"], errors=data.get("errors", 0),
                   truncated=data.get("truncated", 0), domain=data.get("domain"),
                   subtasks=tuple(data.get("subtasks", ())), error_kinds=dict(data.get("error_kinds", {})))


@dataclass(frozen=True)
class MacroAverage:
    """The unweighted mean accuracy over the tasks of one domain (a task family counts once).

    The interval extends the Agresti-Coull interval to a mean of independent proportions: each task
    counts as (c + z²/2) / (n + z²), with variance p(1 - p) / (n + z²), so a task at 0% or 100% still
    carries uncertainty; the normal interval around the mean of those is clipped to [0, 1]. For a
    single task it is that task's Agresti-Coull interval.
    """

    domain: str
    tasks: tuple[str, ...]
    accuracy: float
    ci_low: float
    ci_high: float
    errors: int = 0  # the model errors of its tasks, which their accuracies leave out

    @classmethod
    def of(cls, domain: str, scores: list[TaskScore]) -> MacroAverage:
        k = len(scores)
        adjusted = [_agresti_coull(s.correct, s.n) for s in scores]
        center = sum(p for p, _ in adjusted) / k
        half_width = Z_95 * math.sqrt(sum(variance for _, variance in adjusted)) / k
        return cls(domain, tuple(s.task for s in scores), sum(s.accuracy for s in scores) / k,
                   max(0.0, center - half_width), min(1.0, center + half_width), sum(s.errors for s in scores))

    def to_dict(self) -> dict:
        return {"domain": self.domain, "tasks": list(self.tasks), "accuracy": self.accuracy,
                "ci_low": self.ci_low, "ci_high": self.ci_high, "errors": self.errors}

    @classmethod
    def from_dict(cls, data: Mapping) -> MacroAverage:
        return cls(data["domain"], tuple(data["tasks"]), data["accuracy"], data["ci_low"], data["ci_high"],
                   data.get("errors", 0))


def _agresti_coull(correct: int, n: int) -> tuple[float, float]:
    """The adjusted proportion and its variance."""
    adjusted_n = n + Z_95 * Z_95
    p = (correct + Z_95 * Z_95 / 2) / adjusted_n
    return p, p * (1 - p) / adjusted_n


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


def family_of(task: str) -> str | None:
    """``bbh`` for ``bbh/navigate``; None for a task without subtasks."""
    return task.split("/", 1)[0] if "/" in task else None


def score_tasks(records_by_task: Mapping[str, list[dict]], domains: Mapping[str, str | None]) -> dict[str, TaskScore]:
    """One score per task in the given order, each family of two or more subtasks pooled into a line before them."""
    scores = {task: _score(task, records, domains.get(task)) for task, records in records_by_task.items()}
    families: dict[str, list[TaskScore]] = {}
    for score in scores.values():
        if family := family_of(score.task):
            families.setdefault(family, []).append(score)
    ordered: dict[str, TaskScore] = {}
    for task, score in scores.items():
        family = family_of(task)
        members = families.get(family, [])
        if len(members) > 1 and family not in ordered:
            ordered[family] = _pool(family, members)
        ordered[task] = score
    return ordered


def _score(task: str, records: list[dict], domain: str | None) -> TaskScore:
    answered = [r for r in records if r.get("error") is None]
    kinds = Counter(r.get("error_kind") or "other" for r in records if r.get("error") is not None)
    return TaskScore(task=task, n=len(answered), correct=sum(bool(r["correct"]) for r in answered),
                     errors=sum(kinds.values()), truncated=sum(r.get("finish_reason") == "length" for r in answered),
                     domain=domain, error_kinds=dict(sorted(kinds.items())))


def _pool(family: str, members: list[TaskScore]) -> TaskScore:
    domains = {m.domain for m in members}
    kinds: Counter[str] = Counter()
    for member in members:
        kinds.update(member.error_kinds)
    return TaskScore(task=family, n=sum(m.n for m in members), correct=sum(m.correct for m in members),
                     errors=sum(m.errors for m in members), truncated=sum(m.truncated for m in members),
                     domain=domains.pop() if len(domains) == 1 else None,
                     subtasks=tuple(m.task for m in members), error_kinds=dict(sorted(kinds.items())))


def headline_scores(scores: Mapping[str, TaskScore]) -> list[TaskScore]:
    """The lines that count once in an average: plain tasks, pooled families, and lone subtasks."""
    pooled = {sub for score in scores.values() for sub in score.subtasks}
    return [score for score in scores.values() if score.task not in pooled]


def domain_averages(scores: Mapping[str, TaskScore]) -> dict[str, MacroAverage]:
    by_domain: dict[str, list[TaskScore]] = {}
    for score in headline_scores(scores):
        if score.domain:
            by_domain.setdefault(score.domain, []).append(score)
    return {domain: MacroAverage.of(domain, members) for domain, members in sorted(by_domain.items())}


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
    from regenesis.answers import extract_answer, is_correct

    if record.get("error") is not None:
        return {**record, "gold": example.gold, "answer": None, "correct": False}
    text = record["output"]
    return {**record, "gold": example.gold,
            "answer": extract_answer(text, example.answer_type, example.choices, example.labels),
            "correct": bool(is_correct(text, example))}


# ---------------------------------------------------------------------------------------------
# Asking the model


def model_identity(lm: dspy.BaseLM) -> str:
    """The model name, and for an in-process model its file: two checkpoints in folders of the same name differ."""
    return describe(lm) if isinstance(lm, dspy.LM) else lm.model


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
    """A rich progress bar per task (accuracy over the answered, model errors apart) and one for the run."""

    def __init__(self, examples: Mapping[str, list[Example]], done: Mapping[str, list[dict]], enabled: bool):
        self.progress = Progress(TextColumn("{task.description:<28}", markup=False), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[status]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                                 console=Console(stderr=True), disable=not enabled)
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
        return accuracy + (f"  [red]{counts['errors']} model errors[/red]" if counts["errors"] else "")

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
    output_tokens = consecutive_errors = 0
    executor = ThreadPoolExecutor(max_workers=max(1, num_threads))
    try:
        running = {executor.submit(ask, lm, example): example for example in pending}
        while running:
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                example = running.pop(future)
                record = judged(future.result(), example)
                # in the OS before anything else happens: kill -9 loses nothing
                append_jsonl(raw_file(raw_dir, example.task), [record])
                display.add(record)
                output_tokens += record["output_tokens"]
                consecutive_errors = consecutive_errors + 1 if record["error"] else 0
                if consecutive_errors >= MAX_CONSECUTIVE_ERRORS:
                    raise RuntimeError(f"{consecutive_errors} model calls in a row failed, the last with "
                                       f"{record['error']}; what finished is saved, rerun to resume")
    finally:
        executor.shutdown(wait=False, cancel_futures=True)
    return Throughput(problems=len(pending), seconds=time.perf_counter() - started, output_tokens=output_tokens)


def run_settings(lm: dspy.BaseLM) -> dict:
    """What determines an answer besides the question; a run folder holds the answers of one such setting."""
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
    from regenesis.tasks import TASKS

    return {task: getattr(TASKS.get(task), "domain", None) for task in tasks}


def task_domains(tasks: Iterable[str], overrides: Mapping[str, str | None]) -> dict[str, str | None]:
    """Each task's domain: an override for the task or for its family, else the registry's (None if unknown)."""
    registry = registry_domains(tasks)
    return {task: overrides.get(task, overrides.get(family_of(task), registry[task])) for task in registry}
