"""The synthesis filters and the metric read the same final answer out of every path.

The filters keep a path for the answer its last line states; evaluation scores the answer
``regenesis.answers`` extracts. If the two readings could differ, synthesis would keep paths for an
answer evaluation does not see. Both take their rules from ``regenesis.answers``, so agreement holds
by construction; these tests guard it on every labelled fixture path and every matcher-audit writing
(the bundled tasks always, ``../shared/datasets`` when present).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from regenesis.answers import answers_equal, extract_answer, final_answer_spans, is_correct
from regenesis.optimize.filters import final_answer
from regenesis.optimize.filters.reading import logical_lines, states_answer
from regenesis.tasks import IN_DOMAIN, OUT_OF_DOMAIN, TASKS, load_task
from regenesis.tasks.example import Example
from tests.benchmark_scripts import load_benchmark

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
BUNDLED = [name for name, spec in TASKS.items() if spec.bundled]
EXAMPLES_PER_TASK = 40
SHARED_EXAMPLES_PER_TASK = 15


matcher_audit = load_benchmark("matcher_audit")


def disagreements(cases: list[tuple[str, Example]]) -> list[str]:
    """Each case where the filters' reading and the metric's differ, described: the final answer the
    filters read (where they read one) is not the metric's, or a line holds an answer span for the
    metric and states no answer for the filters."""
    found = []
    for text, example in cases:
        metric = extract_answer(text, example.answer_type, example.choices, example.labels)
        filters = final_answer(text, example)
        if filters is not None and (filters != metric or
                                    answers_equal(filters, example.gold, example.answer_type)
                                    != is_correct(text, example)):
            found.append(f"{example.id}: filters read {filters!r}, the metric {metric!r}: {text[-200:]!r}")
        for line in logical_lines(text):
            if final_answer_spans(line) and not states_answer(line):
                found.append(f"{example.id}: the metric reads an answer span in {line[:200]!r}, the filters none")
    return found


def read_by_filters(cases: list[tuple[str, Example]]) -> int:
    """How many cases the filters read a final answer from: a test must not pass on readings of nothing."""
    return sum(final_answer(text, example) is not None for text, example in cases)


def audit_cases(examples: list[Example]) -> list[tuple[str, Example]]:
    """The matcher audit's writings of each gold answer and of a wrong one, for ``examples``."""
    return [(text, example) for _, example, text, _ in matcher_audit.writings(examples)]


def test_every_labelled_fixture_path_is_read_alike():
    path = SHARED / "fixtures" / "labelled-paths.jsonl"
    if not path.exists():
        pytest.skip(f"needs {path}")
    quality = load_benchmark("quality")
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    cases = [(row["text"], quality.example_of(row)) for row in rows]
    assert disagreements(cases) == []
    assert read_by_filters(cases) >= len(cases) // 2


@pytest.mark.parametrize("task", BUNDLED)
def test_every_audit_writing_of_a_bundled_task_is_read_alike(task):
    cases = audit_cases(list(load_task(task, limit=EXAMPLES_PER_TASK)))
    assert disagreements(cases) == []
    assert read_by_filters(cases) >= len(cases) // 3


@pytest.mark.parametrize("task", IN_DOMAIN + OUT_OF_DOMAIN)
def test_every_audit_writing_of_a_shared_dataset_is_read_alike(task):
    data_root = SHARED / "datasets"
    if not data_root.exists():
        pytest.skip(f"needs {data_root}")
    examples = list(load_task(task, data_root=data_root, limit=SHARED_EXAMPLES_PER_TASK, skip_bad_rows=True))
    cases = audit_cases(examples)
    assert disagreements(cases) == []
    assert read_by_filters(cases) >= len(cases) // 3


NUMBER = Example("n", "How many eggs are left?", "18", "number")
HALF = Example("m", "What is one over root two?", "\\frac{1}{\\sqrt{2}}", "math")
LETTER = Example("c", "Which one?\nA) condensation\nB) evaporation", "B", "letter",
                 choices=("condensation", "evaporation"))


@pytest.mark.parametrize("text, example, answer", [
    ("16 - 3 - 4 = 9 eggs, so 9 * 2 = 18.\nThe final answer = 18", NUMBER, "18"),
    ("16 - 3 - 4 = 9 eggs, so 9 * 2 = 18.\nIn all: #### 18", NUMBER, "18"),
    ("We rationalise.\nSo the value is $\\boxed{\\frac{1}{\\sqrt{2}}}$.", HALF, "\\frac{1}{\\sqrt{2}}"),
    ("We rationalise.\nSo $\\fbox{\\frac{1}{\\sqrt{2}}}$.", HALF, "\\frac{1}{\\sqrt{2}}"),
    ("Water rises as vapour.\nFirst I thought \\boxed{A}, but it is \\boxed{B}.", LETTER, "B"),
])
def test_the_answer_phrases_and_boxes_of_the_metric_are_the_filters_ones(text, example, answer):
    """Forms only the metric's rules know of (``answer =``, ``####`` within a line, nested braces and
    ``\\fbox`` in a box): a filter with rules of its own would read no answer, or another."""
    assert extract_answer(text, example.answer_type, example.choices, example.labels) == answer
    assert final_answer(text, example) == answer


def test_a_last_line_the_metric_reads_past_gives_no_final_answer():
    """The last line states an answer but its span holds no number, so the metric reads the span
    before (17) where the line alone would fall back to its last number (18): the filters then read no
    final answer rather than one evaluation would not score."""
    text = "The answer is 17.\n9 * 2 = 18 dollars, so the answer is: his takings."
    assert extract_answer(text, "number") == "17"
    assert extract_answer(text.splitlines()[-1], "number") == "18"
    assert final_answer(text, NUMBER) is None
