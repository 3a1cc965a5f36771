"""The checks a run uses, and the order they run in."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from regenesis.models import resolve_lm
from regenesis.optimize.filters.arithmetic import ArithmeticFilter
from regenesis.optimize.filters.choice_support import ChoiceSupportFilter
from regenesis.optimize.filters.form import FormFilter
from regenesis.optimize.filters.hinted import DEFAULT_HINT_PHRASES
from regenesis.optimize.filters.judge import JudgeFilter
from regenesis.optimize.filters.number_support import NumberSupportFilter
from regenesis.optimize.filters.verdict import PathFilter, Verdict
from regenesis.tasks.example import Example


@dataclass
class FilterOptions:
    """Which filters the bootstrap loop runs; each one is counted in the run's report by its name."""

    arithmetic: bool = True
    form: bool = True
    choice_support: bool = True
    number_support: bool = True
    judge_model: str | None = None  # a model spec (see regenesis.models); None turns the judge off
    hinted_derivation: bool = True  # a hinted path must compute its number answer (derives_answer)
    max_chars: int = 4000
    hint_phrases: tuple[str, ...] = DEFAULT_HINT_PHRASES


def build_filters(options: FilterOptions, label_free: bool = False) -> list[PathFilter]:
    """The checks ``options`` turns on, cheapest first; the judge, when on, comes last."""
    checks = [
        (options.form, lambda: FormFilter(options.max_chars, options.hint_phrases)),
        (options.arithmetic, ArithmeticFilter),
        (options.number_support, NumberSupportFilter),
        (options.choice_support, ChoiceSupportFilter),
        (options.judge_model, lambda: JudgeFilter(resolve_lm(options.judge_model), label_free=label_free)),
    ]
    return [make() for enabled, make in checks if enabled]


def check_path(filters: Sequence[PathFilter], path: str, example: Example) -> list[Verdict]:
    """The verdicts of ``filters`` on ``path`` in order, up to and including the first failure.

    A filter that raises fails the path (reason ``checker_error: <type>``): one unreadable path must
    not end a run whose other paths are fine."""
    verdicts = []
    for path_filter in filters:
        try:
            verdict = path_filter.check(path, example)
        except Exception as error:  # the last line of defence; each check's bounds should make it unreachable
            verdict = Verdict(path_filter.name, False, f"checker_error: {type(error).__name__}")
        verdicts.append(verdict)
        if not verdict.passed:
            break
    return verdicts
