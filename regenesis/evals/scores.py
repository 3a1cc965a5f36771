"""Scores of an evaluation: each task's accuracy with its Wilson interval, task families pooled, and
the macro average of each domain with an interval for a mean of proportions.

Everything here is computed from judged outcome records (``{"correct", "error", "error_kind",
"finish_reason"}``), so a score can always be derived again from an evaluation's raw files.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

Z_95 = 1.959963984540054  # the 97.5% quantile of the standard normal


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

    For a single task the interval is that task's Agresti-Coull interval: around p = (c + z²/2) / (n + z²),
    with variance p(1 - p) / (n + z²), so a task at 0% or 100% still carries uncertainty. For several
    tasks it is the normal interval around the mean with the sum of those variances, clipped to [0, 1]:
    centred on the mean itself, since the adjusted proportions are pulled towards 50% by as much whatever
    the number of tasks while the width shrinks, and over several tasks near 0% an interval around their
    mean left out the mean it was for.
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
        accuracy = sum(s.accuracy for s in scores) / k
        center = adjusted[0][0] if k == 1 else accuracy
        half_width = Z_95 * math.sqrt(sum(variance for _, variance in adjusted)) / k
        return cls(domain, tuple(s.task for s in scores), accuracy,
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
