"""Evaluation reports: ``results.json`` and ``results.md`` for one model, a rich table for the terminal, and the
Markdown table and PNG chart that compare several models (a base and its tuned versions) task by task.

Accuracies are shown in percent with their 95% interval: Wilson score for a task, Agresti-Coull style for a
domain average (see ``MacroAverage``). Changes against the baseline are in percentage points.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from os import PathLike
from pathlib import Path

from rich.table import Table
from rich.text import Text

from regenesis.charts import pyplot, save_png
from regenesis.evals.evaluate import EvalResult
from regenesis.evals.scores import MacroAverage, TaskScore, headline_scores
from regenesis.redact import redact
from regenesis.runfiles import atomic_write_text, write_json

DOMAIN_NAMES = {"in": "in-domain average", "out": "out-of-domain average"}
NOTE = ("Accuracy in percent of the answered problems, [95% Wilson score interval]; counts come from the raw "
        "output files. A model error (a failed call, by kind) is not an answer: it is counted apart, left out of "
        "the accuracy, and asked again by a rerun; truncated answers hit the token limit. Domain averages are "
        "macro averages: the unweighted mean over tasks, a task family such as bbh counted once with its "
        "subtasks pooled; the interval of a single task's average is its Agresti-Coull interval, that of "
        "several a normal interval around the mean with the tasks' Agresti-Coull variances.")

ResultLike = EvalResult | Mapping | str | PathLike


# ---------------------------------------------------------------------------------------------
# One model


def write_results(result: EvalResult, out_path: str | Path) -> tuple[Path, Path]:
    """Write ``out_path`` (JSON) and the Markdown table next to it (same name, ``.md``), each in one step."""
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    write_json(out_path, result.to_dict())
    markdown_path = out_path.with_suffix(".md")
    atomic_write_text(markdown_path, redact(markdown_report(result)))
    return out_path, markdown_path


def load_results(path: str | Path) -> EvalResult:
    return EvalResult.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


def percent(value: float) -> str:
    return f"{100 * value:.1f}"


def with_interval(accuracy: float, low: float, high: float) -> str:
    return f"{percent(accuracy)} [{percent(low)}, {percent(high)}]"


def errors_text(errors: int, kinds: Mapping[str, int] | None = None) -> str:
    """``3 (server_error 2, timeout 1)``; empty when there were none."""
    if not errors:
        return ""
    detail = ", ".join(f"{kind} {count}" for kind, count in (kinds or {}).items())
    return f"{errors} ({detail})" if detail else str(errors)


def _score_cells(score: TaskScore) -> list[str]:
    low, high = score.interval
    return [score.task, score.domain or "", str(score.n), str(score.correct), str(score.truncated),
            percent(score.accuracy), f"[{percent(low)}, {percent(high)}]",
            errors_text(score.errors, score.error_kinds) or "0"]


def _average_cells(average: MacroAverage) -> list[str]:
    count = len(average.tasks)
    return [DOMAIN_NAMES.get(average.domain, f"{average.domain} average"), average.domain,
            f"{count} task{'s' if count != 1 else ''}", "", "", percent(average.accuracy),
            f"[{percent(average.ci_low)}, {percent(average.ci_high)}]", str(average.errors)]


HEADER = ["task", "domain", "answered", "correct", "truncated", "accuracy %", "95% CI", "model errors"]


def _markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def markdown_report(result: EvalResult) -> str:
    rows = [_score_cells(score) for score in result.scores.values()]
    rows += [_average_cells(average) for average in result.averages.values()]
    raw = "\n".join(f"- {task}: `{path}`" for task, path in result.raw_files.items())
    return f"# Evaluation of {result.model}\n\n{_markdown(HEADER, rows)}\n{NOTE}\n\nRaw outputs:\n\n{raw}\n"


RICH_HEADER = ["task", "dom", "answered", "ok", "cut", "accuracy % [95% CI]", "model errors"]


def _rich_score_row(score: TaskScore) -> list[str]:
    return [score.task, score.domain or "", str(score.n), str(score.correct), str(score.truncated),
            with_interval(score.accuracy, *score.interval), errors_text(score.errors, score.error_kinds)]


def _rich_average_row(average: MacroAverage) -> list[str]:
    return [DOMAIN_NAMES.get(average.domain, f"{average.domain} average"), average.domain, "", "", "",
            with_interval(average.accuracy, average.ci_low, average.ci_high), errors_text(average.errors)]


def rich_table(result: EvalResult) -> Table:
    """The scores for the terminal; every cell is plain text, so a task or model name is never read as markup."""
    table = Table(title=Text(f"{result.model}, zero-shot, greedy"),
                  caption="accuracy over the answered problems; ok correct, cut hit the token limit, model errors "
                          "failed calls (not answers); averages are macro averages")
    for name in RICH_HEADER:
        table.add_column(name, justify="left" if name in ("task", "dom") else "right",
                         no_wrap=name in ("task", "accuracy % [95% CI]"))
    scores = list(result.scores.values())
    for i, score in enumerate(scores):
        table.add_row(*map(Text, _rich_score_row(score)), end_section=i == len(scores) - 1)
    for average in result.averages.values():
        table.add_row(*map(Text, _rich_average_row(average)), style="bold")
    return table


# ---------------------------------------------------------------------------------------------
# Several models


def as_result(value: ResultLike) -> EvalResult:
    """An ``EvalResult`` from itself, its ``to_dict()`` form, or the path of a ``results.json``."""
    if isinstance(value, EvalResult):
        return value
    if isinstance(value, Mapping):
        return EvalResult.from_dict(value)
    return load_results(value)


Cell = tuple[float, float, float, int]  # accuracy, interval low and high, model errors


def _comparison_rows(results: Mapping[str, EvalResult]) -> list[tuple[str, dict[str, Cell]]]:
    """(row name, {label: cell}) for every task any model has, then each domain average."""
    rows: dict[str, dict[str, Cell]] = {}
    for label, result in results.items():
        for name, score in result.scores.items():
            rows.setdefault(name, {})[label] = (score.accuracy, *score.interval, score.errors)
    for label, result in results.items():
        for domain, average in result.averages.items():
            name = DOMAIN_NAMES.get(domain, f"{domain} average")
            rows.setdefault(name, {})[label] = (average.accuracy, average.ci_low, average.ci_high, average.errors)
    return list(rows.items())


def _comparison_cell(cell: Cell) -> str:
    accuracy, low, high, errors = cell
    shown = with_interval(accuracy, low, high)
    return f"{shown} ({errors} model error{'s' if errors != 1 else ''})" if errors else shown


def comparison_table(results_by_label: Mapping[str, ResultLike], baseline: str = "base") -> str:
    """Markdown: a row per task and per domain average, a column per model (``acc [lo, hi]``, then its model
    errors when it had any) and, for each model but the baseline, its change against the baseline in points."""
    results = {label: as_result(value) for label, value in results_by_label.items()}
    if baseline not in results:
        raise ValueError(f"baseline {baseline!r} is not one of {list(results)}")
    others = [label for label in results if label != baseline]
    header = ["task", baseline] + [column for label in others for column in (label, f"Δ {label} (pts)")]
    rows = []
    for name, cells in _comparison_rows(results):
        base = cells.get(baseline)
        row = [name, _comparison_cell(base) if base else "—"]
        for label in others:
            cell = cells.get(label)
            row.append(_comparison_cell(cell) if cell else "—")
            row.append(f"{100 * (cell[0] - base[0]):+.1f}" if cell and base else "—")
        rows.append(row)
    return _markdown(header, rows) + f"\n{NOTE}\n"


def _chart_rows(results: Mapping[str, EvalResult]) -> list[str]:
    """Headline tasks (a family once, not its subtasks) then the domain averages, in first-seen order."""
    names: dict[str, None] = {}
    for result in results.values():
        names.update({score.task: None for score in headline_scores(result.scores)})
    for result in results.values():
        names.update({DOMAIN_NAMES.get(domain, f"{domain} average"): None for domain in result.averages})
    return list(names)


def comparison_chart(results_by_label: Mapping[str, ResultLike], path_png: str | Path) -> Path:
    """Grouped bars (a group per task and per domain average, a bar per model) with 95% interval error bars."""
    plt = pyplot()
    results = {label: as_result(value) for label, value in results_by_label.items()}
    names = _chart_rows(results)
    cells = dict(_comparison_rows(results))
    width = 0.8 / max(1, len(results))
    figure, axes = plt.subplots(figsize=(max(6.0, 1.2 * len(names) * max(1, len(results)) / 2 + 2), 4.5))
    for i, label in enumerate(results):
        xs, heights, below, above = [], [], [], []
        for x, name in enumerate(names):
            if label in cells[name]:
                accuracy, low, high = (100 * v for v in cells[name][label][:3])
                xs.append(x + (i - (len(results) - 1) / 2) * width)
                heights.append(accuracy)
                below.append(accuracy - low)
                above.append(high - accuracy)
        axes.bar(xs, heights, width, yerr=[below, above], capsize=3, label=label)
    axes.set_xticks(range(len(names)), names, rotation=30, ha="right")
    axes.set_ylabel("accuracy % (95% CI)")
    axes.set_ylim(0, 100)
    axes.legend()
    figure.tight_layout()
    return save_png(figure, path_png, dpi=120)
