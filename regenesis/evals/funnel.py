"""The synthesis funnel: where a run's generations went, read from its ``report.json``.

    generations (model calls) → samples tried → parsed paths → answer matched → each check in the
    order the bootstrap loop runs it → distinct → kept rows

Generations are model calls; every later stage counts candidate paths. The two differ by the method's
cost per path: a chain-of-thought or STaR path is one call, a ReGenesis path three or four (select for a
model-selected set, adapt, structure, solve), and a reply that fails to parse costs the ChatAdapter's
JSON retry too. A sample is one try at a path; one that could not be parsed gives none
(``dropped.parse``). From samples tried down, each stage is the one before less the candidates its
check dropped, and the last is ``kept_rows``. The path stages count finished problems only; the
generations count the calls of failed problems too.

The quality filters on by default always have a stage; the hint checks and the judge have one when
they dropped something. A filter turned off for the run shows as a stage that dropped nothing.
"""

from __future__ import annotations

from pathlib import Path

from regenesis.charts import pyplot, save_png
from regenesis.optimize.bootstrap import drop_order
from regenesis.optimize.filters import FilterOptions, JudgeFilter, build_filters

GENERATIONS = "generations (model calls)"
SAMPLES = "samples tried"
PARSED = "parsed paths"
STAGE_NAMES = {"answer": "answer matched", "duplicate": "distinct", "over_cap": "kept rows"}


def default_filters() -> list[str]:
    return [path_filter.name for path_filter in build_filters(FilterOptions())]


def funnel_order() -> list[str]:
    """Every reason a candidate can be dropped for, in the bootstrap loop's ``drop_order``, with all
    the quality filters (the judge last, as ``build_filters`` puts it)."""
    return list(drop_order([*default_filters(), JudgeFilter.name]))


def funnel_stages(report: dict) -> list[tuple[str, int]]:
    """(stage, count) from the top of the funnel down. A drop reason the order does not know gets a
    stage before ``distinct``, so the counts always add up; a report whose counts do not is a ValueError."""
    dropped = {reason: count for reason, count in report.get("dropped", {}).items() if count}
    parsed = report["candidates"]
    stages = [(GENERATIONS, report["generations"]), (SAMPLES, parsed + dropped.pop("parse", 0)), (PARSED, parsed)]
    order = funnel_order()
    cut = order.index("duplicate")
    reasons = [*order[:cut], *(reason for reason in dropped if reason not in order), *order[cut:]]
    shown = {"answer", *default_filters(), "duplicate", "over_cap"}
    remaining = parsed
    for reason in reasons:
        if reason in shown or reason in dropped:
            remaining -= dropped.get(reason, 0)
            stages.append((STAGE_NAMES.get(reason, f"passed {reason}"), remaining))
    if remaining != report["kept_rows"]:
        raise ValueError(f"report.json does not add up: {parsed} parsed paths less {sum(dropped.values())} "
                         f"dropped leave {remaining}, but kept_rows is {report['kept_rows']}")
    return stages


def funnel_rows(report: dict) -> list[tuple[str, int, int | None, str]]:
    """(stage, count, dropped by its check, % of the samples tried) per stage; the first two stages
    drop nothing of their own (generations are calls, samples the paths tried)."""
    (generations, calls), (samples, tried), *paths = funnel_stages(report)
    rows = [(generations, calls, None, ""), (samples, tried, None, _percent(tried, tried))]
    before = tried
    for name, count in paths:
        rows.append((name, count, before - count, _percent(count, tried)))
        before = count
    return rows


def failed_note(report: dict) -> str:
    """What the funnel leaves out of a run with failed problems, or ""."""
    if not report.get("failed"):
        return ""
    return f"{report['failed']} problem(s) failed: their calls are in the generations, their paths in no stage."


def funnel_table(report: dict) -> str:
    """The funnel as a Markdown table (``funnel_rows``), with ``failed_note`` below it."""
    lines = ["| stage | count | dropped | % of samples |", "|---|---|---|---|"]
    lines += [f"| {name} | {count} | {'' if dropped is None else dropped} | {share} |"
              for name, count, dropped, share in funnel_rows(report)]
    note = failed_note(report)
    return "\n".join(lines + ([f"\n{note}"] if note else []))


def funnel_chart(report: dict, path_png: str | Path, title: str = "") -> Path:
    """The funnel as horizontal bars, top stage first: model calls grey, paths blue, kept rows green."""
    stages = funnel_stages(report)
    names, counts = [name for name, _ in stages], [count for _, count in stages]
    figure, axes = pyplot().subplots(figsize=(7.5, 0.42 * len(stages) + 1.3))
    bars = axes.barh(range(len(stages)), counts,
                     color=["tab:gray"] + ["tab:blue"] * (len(stages) - 2) + ["tab:green"])
    axes.bar_label(bars, padding=3)
    axes.set_yticks(range(len(stages)), names)
    axes.invert_yaxis()
    axes.set_xlim(0, max(counts + [1]) * 1.12)
    axes.set_xlabel("model calls (grey), candidate paths (blue), training rows (green)")
    if title:
        axes.set_title(title)
    figure.tight_layout()
    return save_png(figure, path_png)


def _percent(count: int, whole: int) -> str:
    return f"{100 * count / whole:.1f}" if whole else "–"
