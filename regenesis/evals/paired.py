"""Paired comparisons of two models evaluated on the same items: is a change in accuracy more than noise?

Every model of an experiment answers the same problems, so the comparison is made item by item. Of the
items both models answered, ``b`` are those only the first (the baseline) got right and ``c`` those only
the other got right; the change is ``Δ = (c - b) / n``.

- **Interval**: a paired bootstrap; items are resampled with replacement, both models' outcomes together.
  Only the counts matter, so a resample of one task is drawn as its multinomial counts (b*, c*, rest),
  which is the same distribution as resampling the items and costs nothing for large n. A domain average
  resamples within each task and averages the task changes, as the report's macro average does.
- **Test**: for one task, McNemar's exact test: under no difference each discordant item is equally likely
  to favour either model, so ``c ~ Bin(b + c, 1/2)`` and ``p = min(1, 2 P(X <= min(b, c)))``. For a domain
  average the same null is applied to the macro statistic by a seeded sign-flip randomisation test (each
  task's ``c`` drawn from ``Bin(b + c, 1/2)``); a single table has the exact form, an average of tables does not.
- **Holds at 95%**: ``p < 0.05`` *and* the interval excludes 0. The exact test controls the error rate at
  any sample size; the percentile bootstrap does not when discordant items are few (with b = 0, c = 4
  among 40 items its interval is [2.5, 20.0] points while p = 0.125). Requiring both means a
  marked difference never sits beside an interval that includes 0.
- **Minimum detectable effect** (α = 0.05 two-sided, power 0.8): the smallest δ with
  ``δ >= z_{α/2} σ0 + z_β σ1``, where ``σ0² = ψ / n`` is the variance of Δ under no difference and
  ``σ1² = (ψ - δ²) / n`` under a difference δ, with ψ the discordance rate (b + c) / n (Connor 1987,
  the sample-size formula of McNemar's test solved for δ). ψ is taken as ``max(observed ψ, δ)``: a
  difference δ needs at least δ of the items to be discordant. A domain average has
  ``σ² = Σ_t σ_t² / K²`` over its K tasks.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from regenesis.evals.evaluate import latest_by_id, stored_records
from regenesis.evals.scores import family_of

ALPHA = 0.05
POWER = 0.8
Z_ALPHA = 1.959963984540054  # the 97.5% quantile of the standard normal
Z_POWER = 0.8416212335729143  # its 80% quantile
RESAMPLES = 10_000
SEED = 0

Outcomes = Mapping[str, "bool | None"]  # item id -> correct; None for a model error (not an answer)


class MisalignedItems(ValueError):
    """Two models' outcomes are not over the same items, so they cannot be compared item by item."""


@dataclass(frozen=True)
class PairedTable:
    """One task's paired outcomes: ``n`` items both models answered, ``b`` right only for the baseline,
    ``c`` right only for the other; ``skipped`` items with a model error on either side."""

    task: str
    n: int
    b: int
    c: int
    skipped: int = 0

    @property
    def delta(self) -> float:
        return (self.c - self.b) / self.n if self.n else 0.0

    @property
    def discordance(self) -> float:
        return (self.b + self.c) / self.n if self.n else 0.0


@dataclass(frozen=True)
class Comparison:
    """Δ in points with its paired 95% bootstrap interval, the p-value, and what the run could detect."""

    name: str
    n: int
    delta: float            # points
    ci_low: float           # points
    ci_high: float          # points
    p_value: float
    test: str               # "mcnemar_exact" (one task) or "sign_flip" (a domain average)
    b: int
    c: int
    skipped: int
    minimum_detectable: float  # points; inf when no item was answered by both

    @property
    def holds(self) -> bool:
        """The difference holds at 95%: p < 0.05 and the interval excludes 0 (see the module's note)."""
        return self.p_value < ALPHA and (self.ci_low > 0 or self.ci_high < 0)

    def to_dict(self) -> dict:
        return {**asdict(self), "holds": self.holds}


def outcomes_of(records: Iterable[dict]) -> dict[str, bool | None]:
    """Item id → correct from judged eval records (the last record of an id wins); None for a model error."""
    return {item: None if record.get("error") is not None else bool(record["correct"])
            for item, record in latest_by_id(records).items()}


def raw_outcomes(raw_dir: str | Path, task: str, examples: list) -> dict[str, bool | None]:
    """The outcomes of ``examples`` in an eval's raw folder, each verdict derived again from its stored output."""
    return outcomes_of(stored_records(Path(raw_dir), task, examples).values())


def pair(task: str, baseline: Outcomes, other: Outcomes) -> PairedTable:
    """The paired table of two models on one task; ``MisalignedItems`` unless both have the same item ids."""
    if baseline.keys() != other.keys():
        only_baseline = sorted(set(baseline) - set(other))
        only_other = sorted(set(other) - set(baseline))
        raise MisalignedItems(
            f"{task}: the two models were not evaluated on the same items ({len(only_baseline)} only in the baseline, "
            f"e.g. {only_baseline[:2]}; {len(only_other)} only in the other, e.g. {only_other[:2]})")
    answered = [(baseline[item], other[item]) for item in baseline
                if baseline[item] is not None and other[item] is not None]
    return PairedTable(task=task, n=len(answered), b=sum(x and not y for x, y in answered),
                       c=sum(y and not x for x, y in answered), skipped=len(baseline) - len(answered))


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value: ``min(1, 2 P(X <= min(b, c)))`` with ``X ~ Bin(b + c, 1/2)``."""
    m = b + c
    if m == 0:
        return 1.0
    tail = sum(math.comb(m, k) for k in range(min(b, c) + 1))
    return min(1.0, 2 * tail / 2 ** m)


def compare_task(table: PairedTable, resamples: int = RESAMPLES, seed: int = SEED) -> Comparison:
    low, high = _bootstrap_interval([table], np.random.default_rng(seed), resamples)
    return _comparison(table.task, [table], low, high, mcnemar_exact(table.b, table.c), "mcnemar_exact")


def compare_domain(name: str, tables: Sequence[PairedTable], resamples: int = RESAMPLES,
                   seed: int = SEED) -> Comparison:
    """The change of a macro average (the unweighted mean of the task changes) over ``tables``."""
    tables = [table for table in tables if table.n]
    if not tables:
        raise ValueError(f"{name}: no task with an item both models answered")
    rng = np.random.default_rng(seed)
    low, high = _bootstrap_interval(tables, rng, resamples)
    return _comparison(name, tables, low, high, _sign_flip_p(tables, rng, resamples), "sign_flip")


def _comparison(name, tables, low, high, p_value, test) -> Comparison:
    return Comparison(name=name, n=sum(t.n for t in tables), delta=100 * _macro_delta(tables),
                      ci_low=100 * low, ci_high=100 * high, p_value=p_value, test=test,
                      b=sum(t.b for t in tables), c=sum(t.c for t in tables),
                      skipped=sum(t.skipped for t in tables),
                      minimum_detectable=100 * minimum_detectable_effect(tables))


def _macro_delta(tables: Sequence[PairedTable]) -> float:
    return sum(table.delta for table in tables) / len(tables)


def _bootstrap_interval(tables, rng: np.random.Generator, resamples: int) -> tuple[float, float]:
    if not any(table.n for table in tables):
        return -1.0, 1.0
    deltas = np.zeros(resamples)
    for table in tables:
        if table.n:
            shares = [table.b / table.n, table.c / table.n, 1 - table.discordance]
            counts = rng.multinomial(table.n, shares, size=resamples)
            deltas += (counts[:, 1] - counts[:, 0]) / table.n
    deltas /= len(tables)
    low, high = np.percentile(deltas, [100 * ALPHA / 2, 100 * (1 - ALPHA / 2)])
    return float(low), float(high)


def _sign_flip_p(tables, rng: np.random.Generator, resamples: int) -> float:
    """P(|Δ*| >= |Δ|) under no difference, each discordant item's direction a fair coin; (hits + 1) / (R + 1)."""
    observed = abs(_macro_delta(tables))
    flipped = np.zeros(resamples)
    for table in tables:
        m = table.b + table.c
        flipped += (2 * rng.binomial(m, 0.5, size=resamples) - m) / table.n
    flipped = np.abs(flipped / len(tables))
    hits = int(np.sum(flipped >= observed - 1e-12))
    return min(1.0, (hits + 1) / (resamples + 1))


def minimum_detectable_effect(tables: Sequence[PairedTable]) -> float:
    """The smallest change (a proportion) a paired test of these tables detects with power 0.8 at α = 0.05.

    Solves ``δ = z_{α/2} σ0 + z_β σ1(δ)`` by bisection (see the module's note); ``inf`` without items."""
    tables = [table for table in tables if table.n]
    if not tables:
        return math.inf

    def shortfall(delta: float) -> float:
        null_variance = sum(max(t.discordance, delta) / t.n for t in tables) / len(tables) ** 2
        alternative_variance = sum((max(t.discordance, delta) - delta ** 2) / t.n for t in tables) / len(tables) ** 2
        return Z_ALPHA * math.sqrt(null_variance) + Z_POWER * math.sqrt(alternative_variance) - delta

    if shortfall(1.0) > 0:
        return math.inf  # too few items for any difference to be detected
    low, high = 0.0, 1.0
    for _ in range(60):
        middle = (low + high) / 2
        low, high = (middle, high) if shortfall(middle) > 0 else (low, middle)
    return high


@dataclass
class PairedResult:
    """One model against a baseline: a comparison per task (a family of subtasks also pooled into one
    line) and per domain average (``"in"``, ``"out"``), over the same lines the report averages."""

    baseline: str
    other: str
    tasks: dict[str, Comparison]
    averages: dict[str, Comparison]

    def to_dict(self) -> dict:
        return {"baseline": self.baseline, "other": self.other,
                "tasks": {name: c.to_dict() for name, c in self.tasks.items()},
                "averages": {domain: c.to_dict() for domain, c in self.averages.items()}}


def compare_runs(baseline: Mapping[str, Outcomes], other: Mapping[str, Outcomes], domains: Mapping[str, str | None],
                 labels: tuple[str, str] = ("base", "other"), resamples: int = RESAMPLES,
                 seed: int = SEED) -> PairedResult:
    """Compare two models' outcomes per task (``{task: {item id: correct}}``); ``domains`` maps a task to
    ``"in"``/``"out"`` (or None), as ``EvalResult.scores`` give it. As in the report's macro average, the
    subtasks of a family (``bbh/...``) are pooled into one line that counts once in its domain."""
    if baseline.keys() != other.keys():
        raise MisalignedItems(f"the two models were evaluated on different tasks: {sorted(baseline)} "
                              f"and {sorted(other)}")
    tables = {task: pair(task, baseline[task], other[task]) for task in baseline}
    families: dict[str, list[PairedTable]] = {}
    for task, table in tables.items():
        if family := family_of(task):
            families.setdefault(family, []).append(table)
    pooled = {family: PairedTable(family, sum(t.n for t in members), sum(t.b for t in members),
                                  sum(t.c for t in members), sum(t.skipped for t in members))
              for family, members in families.items() if len(members) > 1}
    domain_of = {**{task: domains.get(task) for task in tables},
                 **{family: _common({domains.get(t.task) for t in families[family]}) for family in pooled}}
    headline = list(pooled.values()) + [t for task, t in tables.items() if family_of(task) not in pooled]
    ordered: dict[str, PairedTable] = {}  # as the report orders them: a family's line before its subtasks
    for task, table in tables.items():
        if (family := family_of(task)) in pooled:
            ordered.setdefault(family, pooled[family])
        ordered[task] = table
    comparisons = {name: compare_task(table, resamples, seed) for name, table in ordered.items()}
    averages = {}
    for domain in sorted({domain_of[t.task] for t in headline} - {None}):
        members = [t for t in headline if domain_of[t.task] == domain and t.n]
        if members:
            averages[domain] = compare_domain(f"{domain} average", members, resamples, seed)
    return PairedResult(labels[0], labels[1], comparisons, averages)


def _common(values: set):
    return values.pop() if len(values) == 1 else None


def cell(comparison: Comparison) -> str:
    """``+12.5 [3.1, 21.9] p=0.012 ✓``: the check mark when the difference holds at 95%."""
    mark = " ✓" if comparison.holds else ""
    return (f"{comparison.delta:+.1f} [{comparison.ci_low:+.1f}, {comparison.ci_high:+.1f}] "
            f"p={comparison.p_value:.3g}{mark}")


def detectable(comparison: Comparison) -> str:
    return f"{comparison.minimum_detectable:.1f}" if math.isfinite(comparison.minimum_detectable) else "—"


def paired_table(results: Sequence[PairedResult], average_names: Mapping[str, str] | None = None) -> str:
    """Markdown: a row per task and per domain average; per comparison, ``Δ [95% CI] p`` and the smallest
    change its items could detect. ``average_names`` names the average rows (``{"in": "in-domain average"}``)."""
    names = average_names or {}
    header = ["task"]
    for r in results:
        header += [f"Δ {r.other} − {r.baseline} (pts)", f"detectable, {r.other} − {r.baseline}"]
    keys = list(dict.fromkeys(key for r in results for key in r.tasks))
    keys += list(dict.fromkeys(key for r in results for key in r.averages))
    rows = []
    for key in keys:
        row = [names.get(key, key)]
        for result in results:
            found = result.tasks.get(key) or result.averages.get(key)
            row += [cell(found), detectable(found)] if found else ["—", "—"]
        rows.append(row)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n\n" + PAIRED_NOTE + "\n"


PAIRED_NOTE = ("Δ in points on the items both models answered, [paired bootstrap 95% interval], p: exact McNemar "
               "test for a task, sign-flip randomisation test for a domain average; ✓ where the difference holds "
               "at 95% (p < 0.05 and the interval excludes 0). Detectable: the smallest change these items detect "
               "with power 0.8 at α = 0.05, given the observed share of items on which the models disagree. A "
               f"randomisation p-value is never below 1/{RESAMPLES + 1:,}, the resolution of its {RESAMPLES:,} draws.")
