"""Audit the answer matcher against the gold answers of every task.

For each task this loads the local copy (default ``../shared/datasets``), then writes each gold
answer the ways models write answers and checks that the matcher accepts it (agreement), and
writes a different valid answer the same ways and checks that the matcher rejects it.

    .venv/bin/python benchmarks/matcher_audit.py [--data-root DIR] [--limit N] [--show-failures K]
"""

from __future__ import annotations

import argparse
import sys
import time
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from pathlib import Path

from rich.console import Console
from rich.table import Table

from regenesis.errors import BadInput
from regenesis.tasks.example import Example
from regenesis.answers import answers_equal, format_number, is_correct
from regenesis.tasks import BBH_TASKS, IN_DOMAIN, OUT_OF_DOMAIN, load_task

DEFAULT_DATA_ROOT = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

# How models write a final answer X, per answer type: (name, template).
WRITINGS: dict[str, list[tuple[str, str]]] = {
    "number": [("answer line", "Let me compute step by step: 3 + 4 = 7.\nThe answer is {x}."),
               ("so the answer", "So the answer is {x}.\nI double-checked it in 2 ways."),
               ("boxed", "Therefore the result is $\\boxed{{{x}}}$."),
               ("gsm8k ####", "She pays 12 dollars.\n#### {x}"),
               ("currency, commas", "That makes ${grouped} in all, 2 times over.\nThe answer is ${grouped}.")],
    "letter": [("answer line", "The answer is {x}."), ("so (X)", "So the answer is ({x})."),
               ("boxed", "\\boxed{{{x}}}"), ("option text", "The answer is {text}.")],
    "yes_no": [("answer line", "The answer is {x}."), ("opening word", "{X}, because that is what the facts say."),
               ("boxed", "\\boxed{{{X}}}")],
    "label": [("answer line", "The answer is {x}."), ("so the answer", "So the answer is {X}."),
              ("boxed", "\\boxed{{{x}}}")],
    "math": [("boxed", "We simplify.\nThe final answer is $\\boxed{{{x}}}$."), ("answer line", "The answer is ${x}$."),
             ("minerva", "Final Answer: The final answer is ${x}$. I hope it is correct.")],
    "text": [("answer line", "The answer is {x}."), ("so the answer", "So the answer is {x}."),
             ("answer:", "Answer: {x}")],
}


def written(example: Example, answer: str, template: str) -> str | None:
    """The answer written with the template; None where the template does not apply."""
    text = ""
    if "{text}" in template:
        index = LETTERS.index(answer)
        if index >= len(example.choices) or list(example.choices).count(example.choices[index]) != 1:
            return None
        text = example.choices[index]
    shown = answer
    if example.answer_type == "yes_no" and example.task.startswith("bbh/boolean"):
        shown = "true" if answer == "yes" else "false"
    return template.format(x=shown, X=shown.capitalize(), text=text, grouped=grouped(answer))


def grouped(answer: str) -> str:
    """A number with thousands separators (``1,234.5``); other answers unchanged."""
    try:
        return f"{Decimal(answer):,}"
    except InvalidOperation:
        return answer


def different_answer(example: Example, others: list[Example]) -> str | None:
    """A valid answer for the example that is not its gold answer."""
    kind = example.answer_type
    if kind == "number":
        return format_number(Fraction(example.gold.replace(",", "")) + 1) if "/" not in example.gold else "-1"
    if kind == "letter":
        count = len(example.choices) or 4
        return LETTERS[(LETTERS.index(example.gold) + 1) % count] if count > 1 else None
    if kind == "yes_no":
        return "no" if example.gold == "yes" else "yes"
    if kind == "label":
        return next(label for label in example.labels if label != example.gold)
    for other in others:
        if other.answer_type == kind and not answers_equal(other.gold, example.gold, kind):
            return other.gold
    return None


def audit(examples: list[Example]) -> tuple[int, int, int, int, list[str]]:
    accepted = positives = rejected = negatives = 0
    failures = []
    for position, example in enumerate(examples):
        neighbours = examples[position + 1:position + 4] + examples[max(0, position - 3):position]
        wrong = different_answer(example, neighbours)
        for name, template in WRITINGS[example.answer_type]:
            text = written(example, example.gold, template)
            if text is not None:
                positives += 1
                if is_correct(text, example):
                    accepted += 1
                else:
                    failures.append(f"{example.id} [{name}] gold={example.gold!r} rejected: {text!r}")
            wrong_text = written(example, wrong, template) if wrong is not None else None
            if wrong_text is not None:
                negatives += 1
                if not is_correct(wrong_text, example):
                    rejected += 1
                else:
                    failures.append(f"{example.id} [{name}] gold={example.gold!r} accepted: {wrong_text!r}")
    return accepted, positives, rejected, negatives, failures


def percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.2f}%" if whole else "-"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA_ROOT)
    parser.add_argument("--limit", type=int, default=None, help="examples per task (bbh: per subtask)")
    parser.add_argument("--show-failures", type=int, default=3, metavar="K", help="failures to print per task")
    parser.add_argument("--bbh-subtasks", action="store_true", help="one row per BBH subtask")
    args = parser.parse_args(argv)
    console = Console(width=132)
    tasks = IN_DOMAIN + OUT_OF_DOMAIN + (BBH_TASKS if args.bbh_subtasks else [])
    table = Table(title=f"Matcher audit ({args.data_root})")
    for column in ("task", "loaded", "skipped", "gold accepted", "agreement", "other rejected", "rejection", "sec"):
        table.add_column(column, justify="left" if column == "task" else "right")
    shown_failures = []
    for task in tasks:
        started = time.perf_counter()
        try:
            examples = load_task(task, data_root=args.data_root, limit=args.limit, skip_bad_rows=True)
        except BadInput as exc:
            table.add_row(task, "-", "-", "-", f"not loaded: {exc}", "-", "-", "-")
            continue
        accepted, positives, rejected, negatives, failures = audit(examples)
        table.add_row(task, str(len(examples)), str(examples.skipped), f"{accepted}/{positives}",
                      percent(accepted, positives), f"{rejected}/{negatives}", percent(rejected, negatives),
                      f"{time.perf_counter() - started:.1f}")
        shown_failures += [f"{task}: {failure}" for failure in failures[:args.show_failures]]
    console.print(table)
    for failure in shown_failures:
        console.print(failure, highlight=False, markup=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
