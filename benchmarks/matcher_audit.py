"""Audit the answer matcher against the gold answers of every task.

For each task this loads the local copy (default ``../shared/datasets``), then writes each gold
answer the ways models write answers and checks that the matcher accepts it (agreement), and
writes a different valid answer the same ways and checks that the matcher rejects it.

With ``--reference`` (the ``audit`` extra installed) it reads GSM8K and MATH texts with ours and with
the field's reference extractors (``reference_extractors.py``): the writings above, the gold
solutions (and each ending in a different answer), and with ``--outputs`` a ``regenesis eval``
run's raw outputs. It prints how often the verdicts agree, the disagreements, precision and recall
on the texts whose truth is known, time per text, and whether each comparison stays bounded on a
power tower when called from a worker thread.

    .venv/bin/python benchmarks/matcher_audit.py [--data-root DIR] [--limit N] [--show-failures K]
    .venv/bin/python benchmarks/matcher_audit.py --reference [--outputs results.raw/] [--limit N]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling module below, however this file is loaded

import reference_extractors  # noqa: E402
from reference_extractors import Verdict  # noqa: E402
from regenesis.answers import answers_equal, format_number, is_correct  # noqa: E402
from regenesis.errors import BadInput  # noqa: E402
from regenesis.tasks import BBH_TASKS, IN_DOMAIN, OUT_OF_DOMAIN, load_task  # noqa: E402
from regenesis.tasks.example import Example  # noqa: E402

DEFAULT_DATA_ROOT = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
REFERENCE_TASKS = ("gsm8k", "math")  # the tasks the reference extractors have rules for

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


def writings(examples: list[Example]) -> Iterator[tuple[str, Example, str, bool]]:
    """Each example's gold answer, then a different valid answer, written each way of ``WRITINGS``:
    (way, example, text, whether the text gives the gold answer)."""
    for position, example in enumerate(examples):
        neighbours = examples[position + 1:position + 4] + examples[max(0, position - 3):position]
        wrong = different_answer(example, neighbours)
        for name, template in WRITINGS[example.answer_type]:
            text = written(example, example.gold, template)
            if text is not None:
                yield name, example, text, True
            wrong_text = written(example, wrong, template) if wrong is not None else None
            if wrong_text is not None:
                yield name, example, wrong_text, False


def audit(examples: list[Example]) -> tuple[int, int, int, int, list[str]]:
    accepted = positives = rejected = negatives = 0
    failures = []
    for name, example, text, gives_gold in writings(examples):
        if gives_gold:
            positives += 1
            if is_correct(text, example):
                accepted += 1
            else:
                failures.append(f"{example.id} [{name}] gold={example.gold!r} rejected: {text!r}")
        else:
            negatives += 1
            if not is_correct(text, example):
                rejected += 1
            else:
                failures.append(f"{example.id} [{name}] gold={example.gold!r} accepted: {text!r}")
    return accepted, positives, rejected, negatives, failures


# --- agreement with the field's reference extractors ---------------------------------------------

@dataclass(frozen=True)
class AuditedText:
    """A text read by every extractor; ``truth`` is whether it gives the gold answer, where known."""

    source: str
    text: str
    example: Example
    truth: bool | None


def gold_solution_texts(examples: list[Example]) -> list[AuditedText]:
    """Each gold solution as written in the dataset (true), and again ending in a different answer (false)."""
    texts = []
    for position, example in enumerate(examples):
        solution = example.meta.get("solution", "")
        wrong = different_answer(example, examples[position + 1:position + 4] + examples[max(0, position - 3):position])
        if example.task == "gsm8k":
            true_text = f"{solution}\n#### {example.gold}"
            false_text = f"{solution}\n#### {wrong}" if wrong is not None else None
        else:
            true_text, false_text = solution, with_boxed(solution, wrong) if wrong is not None else None
        texts.append(AuditedText("gold solutions", true_text, example, True))
        if false_text is not None:
            texts.append(AuditedText("gold solutions", false_text, example, False))
    return texts


def with_boxed(solution: str, answer: str) -> str | None:
    """The solution with its one ``\\boxed{}`` holding ``answer``; None unless it has exactly one."""
    start = solution.find("\\boxed{")
    if start < 0 or solution.count("\\boxed") != 1:
        return None
    depth = 0
    for position in range(start + len("\\boxed"), len(solution)):
        depth += {"{": 1, "}": -1}.get(solution[position], 0)
        if depth == 0:
            return f"{solution[:start]}\\boxed{{{answer}}}{solution[position + 1:]}"
    return None


def model_output_texts(task: str, outputs: Path, data_root: Path) -> list[AuditedText]:
    """The raw outputs of a ``regenesis eval`` run (its ``results.raw/`` folder) for the task."""
    path = outputs / f"{task}.jsonl"
    if not path.exists():
        return []
    examples = {example.id: example for example in load_task(task, data_root=data_root, skip_bad_rows=True)}
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [AuditedText("model outputs", row["output"], examples[row["id"]], None)
            for row in rows if row.get("output") is not None and row["id"] in examples]


@dataclass
class Readings:
    """Every extractor's verdict on each text, and the seconds it took."""

    texts: list[AuditedText]
    verdicts: dict[str, list[Verdict]]
    seconds: dict[str, list[float]]

    def disagreements(self, reference: str, source: str | None = None) -> list[int]:
        """Positions of the texts (of ``source``, or all) where ``reference`` and ours differ."""
        return [index for index, item in enumerate(self.texts) if source in (None, item.source)
                and self.verdicts[reference][index].correct != self.verdicts["ours"][index].correct]

    def accepts(self, name: str, source: str | None = None) -> int:
        return sum(verdict.correct for verdict, item in zip(self.verdicts[name], self.texts)
                   if source in (None, item.source))

    def confusion(self, name: str) -> tuple[int, int, int]:
        """(true accepts, false accepts, false rejects) of ``name`` on the texts of known truth."""
        pairs = [(verdict.correct, item.truth) for verdict, item in zip(self.verdicts[name], self.texts)
                 if item.truth is not None]
        return (sum(said and truth for said, truth in pairs), sum(said and not truth for said, truth in pairs),
                sum(truth and not said for said, truth in pairs))


def read_all(task: str, texts: list[AuditedText]) -> Readings:
    """Ours and each reference extractor of the task on every text, timed one text at a time."""
    extractors = {"ours": reference_extractors.ours, **reference_extractors.references(task)}
    readings = Readings(texts, {}, {})
    for name, extractor in extractors.items():
        extractor(texts[0].text, texts[0].example)  # its imports and caches load outside the timing
        readings.verdicts[name], readings.seconds[name] = [], []
        for item in texts:
            started = time.perf_counter()
            readings.verdicts[name].append(extractor(item.text, item.example))
            readings.seconds[name].append(time.perf_counter() - started)
    return readings


def reference_report(console: Console, task: str, readings: Readings, show: int) -> None:
    """Agreement of our verdicts with each reference, per source; precision and recall where the
    truth is known; time per text; the first ``show`` disagreements per source and reference."""
    texts, references = readings.texts, [name for name in readings.verdicts if name != "ours"]
    agreement = Table(title=f"{task}: verdicts of ours and of the reference extractors, same texts")
    for column in ("source", "texts", "reference", "agreement", "ours correct", "reference correct"):
        agreement.add_column(column, justify="left" if column in ("source", "reference") else "right")
    lines = []
    for source in dict.fromkeys(item.source for item in texts):
        count = sum(item.source == source for item in texts)
        for name in references:
            differ = readings.disagreements(name, source)
            agreement.add_row(source, str(count), name, percent(count - len(differ), count),
                              str(readings.accepts("ours", source)), str(readings.accepts(name, source)))
            lines += [disagreement(task, name, texts[index], readings.verdicts["ours"][index],
                                   readings.verdicts[name][index]) for index in differ[:show]]
    console.print(agreement)
    known = sum(item.truth is not None for item in texts)
    quality = Table(title=f"{task}: on the {known} texts of known truth (writings, gold solutions); "
                          f"time per text on all {len(texts)}")
    for column in ("extractor", "precision", "recall", "false accepts", "false rejects", "ms mean", "ms max"):
        quality.add_column(column, justify="left" if column == "extractor" else "right")
    for name, seconds in readings.seconds.items():
        true_accepts, false_accepts, false_rejects = readings.confusion(name)
        quality.add_row(name, percent(true_accepts, true_accepts + false_accepts),
                        percent(true_accepts, true_accepts + false_rejects), str(false_accepts), str(false_rejects),
                        f"{1000 * sum(seconds) / len(seconds):.2f}", f"{1000 * max(seconds):.1f}")
    console.print(quality)
    for line in lines:
        console.print(line, highlight=False, markup=False)


def disagreement(task: str, reference: str, item: AuditedText, ours: Verdict, theirs: Verdict) -> str:
    truth = "" if item.truth is None else f" truth={'correct' if item.truth else 'wrong'}"
    return (f"{task} [{item.source}] {item.example.id} gold={item.example.gold!r}{truth}: "
            f"ours {ours.extracted!r} {mark(ours)}, {reference} {shorten(theirs.extracted)!r} {mark(theirs)}; "
            f"text ends {shorten(item.text)!r}")


def mark(verdict: Verdict) -> str:
    return "accepts" if verdict.correct else "rejects"


def shorten(text: str | None, keep: int = 160) -> str | None:
    return text if text is None or len(text) <= keep else "..." + text[-keep:]


def thread_report(console: Console, wait_seconds: float) -> None:
    """Whether each comparison stays bounded on a power tower, called from a worker thread (as synthesis
    and evaluation call the matcher) and, for Math-Verify, from a main thread."""
    example = Example(id="hostile", question="", gold="1", answer_type="math", task="math")
    hostile = reference_extractors.HOSTILE_MATH
    in_child = reference_extractors.math_verify_in_child
    reference_extractors.ours("$\\frac{1}{2}$", example)  # sympy loads outside the timing
    console.print(f"On {hostile!r} (Math-Verify's seconds include its child process starting):",
                  highlight=False, markup=False)
    outcomes = {"ours, worker thread": reference_extractors.in_worker_thread(
                    lambda: reference_extractors.ours(hostile, example), wait_seconds),
                "Math-Verify, its 5 s timeouts, main thread": in_child(5, wait_seconds, worker_thread=False),
                "Math-Verify, its 5 s timeouts, worker thread": in_child(5, wait_seconds),
                "Math-Verify, timeouts off, worker thread": in_child(None, wait_seconds)}
    for name, (outcome, seconds) in outcomes.items():
        console.print(f"  {name}: {outcome} ({seconds:.2f} s)", highlight=False, markup=False)


def reference_main(args: argparse.Namespace, console: Console) -> int:
    missing = reference_extractors.missing_extra()
    if missing:
        print(f"--reference needs {', '.join(missing)}: pip install -e '.[audit]'", file=sys.stderr)
        return 2
    if args.outputs is not None and not args.outputs.is_dir():
        print(f"--outputs: {args.outputs} is not a folder (give the results.raw/ of a regenesis eval run)",
              file=sys.stderr)
        return 2
    for task in REFERENCE_TASKS:
        examples = load_task(task, data_root=args.data_root, limit=args.limit, skip_bad_rows=True)
        texts = [AuditedText("writings", text, example, gives_gold)
                 for _, example, text, gives_gold in writings(examples)]
        texts += gold_solution_texts(examples)
        if args.outputs is not None:
            texts += model_output_texts(task, args.outputs, args.data_root)
        reference_report(console, task, read_all(task, texts), args.show_failures)
    thread_report(console, args.thread_wait)
    return 0


def percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.2f}%" if whole else "-"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA_ROOT)
    parser.add_argument("--limit", type=int, default=None, help="examples per task (bbh: per subtask)")
    parser.add_argument("--show-failures", type=int, default=3, metavar="K", help="failures to print per task")
    parser.add_argument("--bbh-subtasks", action="store_true", help="one row per BBH subtask")
    parser.add_argument("--reference", action="store_true",
                        help="compare with lm-eval-harness and Math-Verify on gsm8k and math (the audit extra)")
    parser.add_argument("--outputs", type=Path, default=None, metavar="DIR",
                        help="with --reference: also the raw outputs of a regenesis eval run (its results.raw/)")
    parser.add_argument("--thread-wait", type=float, default=30, metavar="SECONDS",
                        help="with --reference: how long a comparison in a worker thread may run")
    args = parser.parse_args(argv)
    console = Console(width=132)
    if args.reference:
        return reference_main(args, console)
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
