"""How long each reader and checker of model text takes on hostile outputs.

    .venv/bin/python benchmarks/hostile.py [--repeat 3]

The hostile outputs are those of ``tests/test_hostile_text.py`` (nested brackets, power bombs, long
runs of spaces, a 150,000-character output, console markup, ANSI escapes, an echoed key). For each
output and each reader or checker the table shows the slowest single call in milliseconds, over
every answer type (the examples of the test) and ``--repeat`` runs; the last line names the slowest
call overall.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from regenesis.answers import latex_sympy  # noqa: E402
from regenesis.answers.latex import latex_equal  # noqa: E402
from regenesis.optimize.filters.arithmetic import read_computations  # noqa: E402
from regenesis.answers import answers_equal, extract_answer, final_answer_spans, is_correct  # noqa: E402
from regenesis.optimize.filters import (ArithmeticFilter, ChoiceSupportFilter, FilterOptions, FormFilter,  # noqa: E402
                                        NumberSupportFilter, build_filters, check_path, derives_answer,
                                        mentions_hint, stated_computations)
from tests.test_hostile_text import EXAMPLES, HOSTILE_OUTPUTS, SOUND  # noqa: E402

ALL_FILTERS = build_filters(FilterOptions())
# name -> call(text, example); a call that does not depend on the example runs once per example all the same.
READERS = {
    "extract_answer": lambda text, ex: extract_answer(text, ex.answer_type, ex.choices, ex.labels),
    "is_correct": is_correct,
    "answers_equal": lambda text, ex: answers_equal(text, ex.gold, ex.answer_type),
    "final_answer_spans": lambda text, ex: final_answer_spans(text),
    "latex_equal": lambda text, ex: latex_equal(text, ex.gold),
    "form": FormFilter().check,
    "form (any length)": FormFilter(max_chars=10**9).check,
    "arithmetic": ArithmeticFilter().check,
    "number_support": NumberSupportFilter().check,
    "choice_support": ChoiceSupportFilter().check,
    "derives_answer": derives_answer,
    "stated_computations": lambda text, ex: stated_computations(text),
    "mentions_hint": lambda text, ex: mentions_hint(text),
    "check_path (all filters)": lambda text, ex: check_path(ALL_FILTERS, text, ex),
}


def forget_readings() -> None:
    """Empty the caches of parsed text, so that every call is timed reading its text afresh."""
    read_computations.cache_clear()
    latex_sympy.to_sympy.cache_clear()


def slowest_call(call, text: str, repeat: int) -> float:
    """The longest of ``repeat`` rounds of ``call`` on ``text`` with every example, in seconds."""
    slowest = 0.0
    for _ in range(repeat):
        for example in EXAMPLES:
            forget_readings()
            started = time.perf_counter()
            call(text, example)
            slowest = max(slowest, time.perf_counter() - started)
    return slowest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    width = max(len(name) for name in READERS)
    for call in READERS.values():  # imports (sympy's takes a second) and compiled patterns are not timed
        slowest_call(call, SOUND, 1)
    overall = (0.0, "", "")
    for name, text, *_ in HOSTILE_OUTPUTS:
        print(f"\n{name} ({len(text):,} characters)")
        for reader, call in READERS.items():
            seconds = slowest_call(call, text, args.repeat)
            overall = max(overall, (seconds, reader, name))
            print(f"  {reader:<{width}}  {seconds * 1000:9.2f} ms")
    seconds, reader, name = overall
    print(f"\nslowest: {reader} on {name!r}: {seconds * 1000:.2f} ms")


if __name__ == "__main__":
    main()
