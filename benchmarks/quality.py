"""How well the quality filters tell sound reasoning paths from lucky ones.

    python benchmarks/quality.py [PATH] [--judge MODEL] [--show]
    python benchmarks/quality.py --synthesize [--model SPEC] [--problems 20] [--method regenesis]
                                 [--generations N] [--judge MODEL]
    python benchmarks/quality.py --from-run DIR

PATH is a JSONL file of labelled paths (default: ``shared/fixtures/labelled-paths.jsonl`` beside the
repository): one object per path with ``question`` (options rendered in it), ``gold``, ``text``,
``label`` (``sound``/``unsound``) and ``answer_matched``; ``has_false_arithmetic`` and
``has_repetition``, when present, measure the filter meant to catch each defect.

The filters run where the bootstrap loop runs them, on the paths whose answer matched. For each
filter alone and for all together the table shows how many paths are kept, the precision of "kept"
(the share of kept paths that are sound) and the share of sound paths kept. The last line is
``kept_precision=<x> sound_kept=<y>`` for all filters together.

``--synthesize`` also runs the bootstrap loop (all filters on, the judge too with ``--judge``) on
GSM8K problems with the embedded model (or ``--model``) and reports how many answer-matching paths
each filter removed. ``--from-run DIR`` reports the same counts for a synthesis run already made
(``regenesis synthesize --out DIR`` or ``benchmarks/synthesis.py``).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from regenesis.tasks.example import Example
from regenesis.tasks import load_task
from regenesis.optimize.filters import (ArithmeticFilter, FilterOptions, PathFilter, build_filters, check_path,
                                        degenerate_repetition)

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
DEFAULT_FIXTURE = SHARED / "fixtures" / "labelled-paths.jsonl"
GSM8K = SHARED / "datasets" / "gsm8k"
CHEAP_FILTERS = ("form", "arithmetic", "number_support", "choice_support")


def load_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def example_of(row: dict) -> Example:
    """The problem a labelled path answers; the answer type follows from the gold answer."""
    gold = str(row["gold"]).strip()
    options = re.findall(r"^\(?([A-J])\)\s*(.+)$", row["question"], re.M)
    if re.fullmatch(r"[A-J]", gold) and options:
        return Example(row["id"], row["question"], gold, "letter", choices=tuple(text for _, text in options))
    if gold.lower() in ("yes", "no"):
        return Example(row["id"], row["question"], gold.lower(), "yes_no")
    if re.fullmatch(r"-?\d+(?:\.\d+)?", gold):
        return Example(row["id"], row["question"], f"{float(gold):g}", "number")
    return Example(row["id"], row["question"], gold, "text")


def options_for(names: set[str], judge_model: str | None = None) -> FilterOptions:
    return FilterOptions(arithmetic="arithmetic" in names, form="form" in names,
                         choice_support="choice_support" in names, number_support="number_support" in names,
                         judge_model=judge_model if "judge" in names else None)


@dataclass(frozen=True)
class Score:
    name: str
    paths: int
    kept: int
    kept_sound: int
    sound: int

    @property
    def precision(self) -> float:
        return self.kept_sound / self.kept if self.kept else 0.0

    @property
    def sound_kept(self) -> float:
        return self.kept_sound / self.sound if self.sound else 0.0


def kept_by(filters: list[PathFilter], row: dict) -> bool:
    return all(v.passed for v in check_path(filters, row["text"], example_of(row)))


def score(name: str, filters: list[PathFilter], rows: list[dict]) -> Score:
    matched = [row for row in rows if row["answer_matched"]]
    kept = [row for row in matched if kept_by(filters, row)]
    return Score(name, len(matched), len(kept), sum(r["label"] == "sound" for r in kept),
                 sum(r["label"] == "sound" for r in matched))


def configurations(judge_model: str | None) -> list[tuple[str, set[str]]]:
    singles = [(name, {name}) for name in CHEAP_FILTERS + (("judge",) if judge_model else ())]
    together = set(CHEAP_FILTERS) | ({"judge"} if judge_model else set())
    return [("answer matching only", set()), *singles, ("all together", together)]


def score_table(rows: list[dict], judge_model: str | None = None) -> list[Score]:
    """One score per configuration: no filter, each filter alone, all together (last)."""
    return [score(name, build_filters(options_for(names, judge_model)), rows)
            for name, names in configurations(judge_model)]


@dataclass(frozen=True)
class Detection:
    """How one filter finds the paths a labelled defect column marks, over every row."""

    defect: str
    marked: int
    caught: int
    false_alarms: int
    unmarked: int


def detection(rows: list[dict], column: str, finds: Callable[[str, Example], bool]) -> Detection | None:
    if not rows or column not in rows[0]:
        return None
    caught = false_alarms = 0
    for row in rows:
        flagged = finds(row["text"], example_of(row))
        caught += flagged and row[column]
        false_alarms += flagged and not row[column]
    marked = sum(bool(row[column]) for row in rows)
    return Detection(column, marked, caught, false_alarms, len(rows) - marked)


def finds_false_arithmetic(text: str, example: Example) -> bool:
    return not ArithmeticFilter().check(text, example).passed


def finds_repetition(text: str, example: Example) -> bool:
    return bool(degenerate_repetition(text, example))


def detections(rows: list[dict]) -> list[Detection]:
    """The arithmetic filter against ``has_false_arithmetic``, the repetition check against ``has_repetition``."""
    found = [detection(rows, "has_false_arithmetic", finds_false_arithmetic),
             detection(rows, "has_repetition", finds_repetition)]
    return [d for d in found if d is not None]


def print_table(scores: list[Score], found: list[Detection]) -> None:
    print(f"{'filters':<22} {'paths':>5} {'kept':>5} {'kept sound':>10} {'precision':>9} {'sound kept':>10}")
    for s in scores:
        print(f"{s.name:<22} {s.paths:>5} {s.kept:>5} {s.kept_sound:>10} {s.precision:>9.3f} {s.sound_kept:>10.3f}")
    for d in found:
        print(f"{d.defect}: caught {d.caught}/{d.marked} marked paths, "
              f"flagged {d.false_alarms}/{d.unmarked} unmarked")


def print_mistakes(rows: list[dict], judge_model: str | None) -> None:
    """Each answer-matched path the filters together get wrong, with the deciding verdict."""
    filters = build_filters(options_for(set(CHEAP_FILTERS) | {"judge"}, judge_model))
    for row in rows:
        if not row["answer_matched"]:
            continue
        verdicts = check_path(filters, row["text"], example_of(row))
        kept = all(v.passed for v in verdicts)
        if kept != (row["label"] == "sound"):
            why = verdicts[-1].reason if not kept else row["reason"]
            print(f"  {'kept' if kept else 'dropped'} {row['label']} {row['id']}: {why}")


def synthesis_removals(model: str | None, problems: int, method: str, generations: int | None,
                       judge_model: str | None) -> dict:
    """Run the bootstrap loop on fresh GSM8K problems; its report's ``dropped`` counts per filter."""
    try:
        from regenesis.models import resolve_lm
        from regenesis.optimize.bootstrap import synthesize
        from regenesis.optimize.config import SynthesisConfig
    except ImportError as error:
        sys.exit(f"--synthesize needs the bootstrap loop (regenesis.optimize.bootstrap): {error}")
    with tempfile.TemporaryDirectory(prefix="quality-synthesis-") as out_dir:
        config = SynthesisConfig(method=method, generations=generations,
                                 filters=FilterOptions(judge_model=judge_model))
        examples = load_task("gsm8k", data=GSM8K, split="train", limit=problems)
        report = synthesize(resolve_lm(model), examples, out_dir, config)
    return report


def print_removals(report: dict) -> None:
    dropped = Counter(report.get("dropped", {}))
    candidates = report.get("candidates", 0)
    matched = candidates - dropped["answer"]
    print(f"\nsynthesis: {report.get('problems', 0)} GSM8K problems, {candidates} paths, "
          f"{matched} matched the gold answer")
    for name in ("hint_leak", "hint_not_derived", *CHEAP_FILTERS, "judge"):
        print(f"  removed by {name:<16} {dropped[name]:>4}")
    print(f"  kept rows                {report.get('kept_rows', 0):>4}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path", nargs="?", type=Path, default=DEFAULT_FIXTURE, help="labelled paths (JSONL)")
    parser.add_argument("--judge", metavar="MODEL", help="also score the model judge (any model spec)")
    parser.add_argument("--show", action="store_true", help="list the paths all filters together get wrong")
    parser.add_argument("--synthesize", action="store_true", help="also count removals on a fresh GSM8K run")
    parser.add_argument("--model", help="model spec for --synthesize (default: the embedded model)")
    parser.add_argument("--problems", type=int, default=20, help="GSM8K problems for --synthesize")
    parser.add_argument("--method", default="regenesis", help="method for --synthesize")
    parser.add_argument("--generations", type=int, help="generations per problem for --synthesize")
    parser.add_argument("--from-run", type=Path, metavar="DIR",
                        help="count the removals of a synthesis run already made (its folder, with report.json)")
    args = parser.parse_args(argv)
    if not args.path.is_file():
        sys.exit(f"{args.path}: no such file")

    rows = load_rows(args.path)
    scores = score_table(rows, args.judge)
    print(f"{scores[0].paths} answer-matched paths of {len(rows)} in {args.path.name}")
    print_table(scores, detections(rows))
    if args.show:
        print_mistakes(rows, args.judge)
    if args.from_run:
        report_file = args.from_run / "report.json"
        if not report_file.is_file():
            sys.exit(f"{report_file}: no such file (is {args.from_run} a synthesis run folder?)")
        print_removals(json.loads(report_file.read_text()))
    if args.synthesize:
        print_removals(synthesis_removals(args.model, args.problems, args.method, args.generations, args.judge))
    together = scores[-1]
    print(f"kept_precision={together.precision:.3f} sound_kept={together.sound_kept:.3f}")


if __name__ == "__main__":
    main()
