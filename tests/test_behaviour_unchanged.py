"""Behaviour pinned across restructuring: the same runs give byte-identical rows and verdicts.

The snapshots in ``tests/data/behaviour/`` were recorded before the package was reorganised. Each
test reruns what made its snapshot and compares the result byte for byte:

- a scripted synthesis run (``DummyLM``) over several methods and answer types: kept rows and the
  per-problem verdict counts;
- the embedded model, sampled with seeded rollouts, on three easy yes/no questions: kept rows;
- the filters' verdicts and the metric's reading on every labelled fixture path, and the matcher
  audit's and the quality benchmark's figures (these read ``../shared`` and skip without it).

Record again, after a change meant to alter behaviour, with ``REGENESIS_RECORD_BEHAVIOUR=1``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from dspy.utils import DummyLM

from regenesis.tasks.example import Example
from regenesis.answers import extract_answer, is_correct
from regenesis.tasks import load_task
from regenesis.optimize.bootstrap import synthesize
from regenesis.optimize.config import SynthesisConfig
from regenesis.optimize.filters import FilterOptions, build_filters, check_path
from tests.benchmark_scripts import load_benchmark

ROOT = Path(__file__).resolve().parents[1]
SNAPSHOTS = ROOT / "tests" / "data" / "behaviour"
SHARED = ROOT.parent / "shared"
RECORD = os.environ.get("REGENESIS_RECORD_BEHAVIOUR") == "1"
VOLATILE = {"seconds", "this_run_seconds", "this_run_completion_tokens_per_second", "rows_file"}


def matches_snapshot(name: str, value) -> None:
    text = json.dumps(value, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    path = SNAPSHOTS / name
    if RECORD:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.read_text() == text, f"{name} differs from the recorded behaviour"


def run_record(out: Path) -> dict:
    """What a synthesis run decided: its rows as written, and each problem's record, timings aside."""
    problems = [{key: value for key, value in json.loads(line).items() if key not in VOLATILE}
                for line in (out / "problems.jsonl").read_text().splitlines()]
    report = {key: value for key, value in json.loads((out / "report.json").read_text()).items()
              if key not in VOLATILE}
    return {"rows": (out / "train.jsonl").read_text().splitlines(), "problems": problems, "report": report}


PENS = Example(id="t/0", question="If 3 pens cost 6 dollars, what do 5 pens cost?", gold="10",
               answer_type="number", task="t")
FRUIT = Example(id="c/0", question="Which is a fruit?\nA) carrot\nB) apple\nC) potato", gold="B",
                answer_type="letter", choices=("carrot", "apple", "potato"), task="c")
SKY = Example(id="y/0", question="Is the sky blue on a clear day?", gold="yes", answer_type="yes_no", task="y")

PEN_PATHS = [
    {"reasoning": "One pen costs 6 / 3 = 2 dollars. Five pens cost 5 * 2 = 10 dollars.", "answer": "10"},
    {"reasoning": "Five pens cost 5 + 6 = 11 dollars.", "answer": "11"},
    {"reasoning": "Five pens cost 5 * 3 = 10 dollars.", "answer": "10"},
    {"reasoning": "The given answer is 10, so 5 pens cost 10 dollars.", "answer": "10"},
    {"reasoning": "Pens are sold in a shop. Five pens cost 10 dollars there.", "answer": "10"},
    {"reasoning": "Each pen is 6 / 3 = 2 dollars, so 5 pens are 2 * 5 = 10 dollars.", "answer": "10"},
]
FRUIT_PATHS = [
    {"reasoning": "A carrot is a root vegetable and a potato is a tuber. An apple grows from a flower, "
                  "so it is a fruit.", "answer": "B"},
    {"reasoning": "Option A, carrot, is a fruit because it is orange.", "answer": "A"},
    {"reasoning": "B", "answer": "B"},
    {"reasoning": "Apples are fruits that grow on trees; carrots and potatoes are vegetables. So (B).",
     "answer": "B"},
]
SKY_PATHS = [
    {"reasoning": "Sunlight scatters off air molecules, blue light most, so a clear sky looks blue.",
     "answer": "yes"},
    {"reasoning": "At night the sky is dark, so no.", "answer": "no"},
    {"reasoning": "[bold]yes[/bold] the sky is blue", "answer": "yes"},
]


@pytest.mark.parametrize("method", ["cot", "star", "lmsi"])
def test_a_scripted_run_keeps_the_recorded_rows_and_verdicts(method, tmp_path):
    config = SynthesisConfig(method=method, generations=len(PEN_PATHS), num_threads=1)
    answers = PEN_PATHS * 2 + FRUIT_PATHS * 3 + SKY_PATHS * 4  # enough for a hinted pass of each
    report = synthesize(DummyLM(answers), [PENS], tmp_path / "pens", config, progress=False)
    assert report["finished"] == 1
    records = {"pens": run_record(tmp_path / "pens")}
    for name, example, paths in (("fruit", FRUIT, FRUIT_PATHS), ("sky", SKY, SKY_PATHS)):
        run_config = SynthesisConfig(method=method, generations=len(paths), num_threads=1)
        synthesize(DummyLM(paths * 2), [example], tmp_path / name, run_config, progress=False)
        records[name] = run_record(tmp_path / name)
    matches_snapshot(f"scripted-{method}.json", records)


def asks(field):
    return f"starting with the field `[[ ## {field} ## ]]`"


REGENESIS_STEPS = {
    asks("selected"): {"selected": "[1, 3]"},
    asks("adapted_guidelines"): {"adapted_guidelines": "Find the price of one pen first, then scale it."},
    asks("reasoning_structure"): {"reasoning_structure": "1. Price of one pen. 2. Price of five pens."},
    asks("reasoning"): PEN_PATHS[0],
}


@pytest.mark.parametrize("label_free", [False, True])
def test_a_scripted_regenesis_run_keeps_the_recorded_rows(label_free, tmp_path):
    config = SynthesisConfig(method="regenesis", generations=8, num_threads=1, label_free=label_free)
    synthesize(DummyLM(REGENESIS_STEPS), [PENS], tmp_path / "run", config, progress=False)
    matches_snapshot(f"scripted-regenesis{'-label-free' if label_free else ''}.json", run_record(tmp_path / "run"))


@pytest.mark.parametrize("method", [pytest.param("cot", marks=pytest.mark.slow), "star"])  # 14 s each
def test_the_embedded_model_keeps_the_recorded_rows(method, tmp_path):
    """Sampled with the seeds the rollout ids give, the embedded model is reproducible."""
    from regenesis.models import resolve_lm

    problems = list(load_task(str(SNAPSHOTS / "easy-yes-no.jsonl"), answer_type="yes_no"))
    config = SynthesisConfig(method=method, generations=3, temperature=0.7, num_threads=1,
                             hint_pass=method == "star")
    lm = resolve_lm(None, temperature=0.7, max_tokens=200)
    synthesize(lm, problems, tmp_path / "run", config, progress=False)
    record = run_record(tmp_path / "run")
    record["problems"] = [{key: value for key, value in problem.items()
                           if key not in {"cached_generations", "prompt_tokens", "completion_tokens"}}
                          for problem in record["problems"]]
    record.pop("report")
    matches_snapshot(f"embedded-{method}.json", record)


def fixture_rows() -> list[dict]:
    path = SHARED / "fixtures" / "labelled-paths.jsonl"
    if not path.exists():
        pytest.skip(f"needs {path}")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_filters_and_metric_read_every_labelled_path_as_recorded():
    quality = load_benchmark("quality")
    filters = build_filters(FilterOptions())
    readings = []
    for row in fixture_rows():
        example = quality.example_of(row)
        verdicts = check_path(filters, row["text"], example)
        readings.append({
            "answer": extract_answer(row["text"], example.answer_type, example.choices, example.labels),
            "correct": is_correct(row["text"], example),
            "verdicts": [[verdict.filter, verdict.passed, verdict.reason, verdict.detail] for verdict in verdicts],
        })
    matches_snapshot("fixture-verdicts.json", readings)


def test_the_quality_benchmark_gives_the_recorded_figures():
    quality = load_benchmark("quality")
    rows = [row for row in fixture_rows() if row.get("answer_matched")]
    scores = quality.score_table(rows)
    figures = {"scores": [vars(score) for score in scores],
               "detections": [vars(found) for found in quality.detections(rows)]}
    matches_snapshot("quality-figures.json", figures)


def test_the_matcher_audit_gives_the_recorded_figures():
    data_root = SHARED / "datasets"
    if not data_root.exists():
        pytest.skip(f"needs {data_root}")
    audit = load_benchmark("matcher_audit")
    figures = {}
    for task in audit.IN_DOMAIN + audit.OUT_OF_DOMAIN:
        examples = load_task(task, data_root=data_root, limit=150, skip_bad_rows=True)
        accepted, positives, rejected, negatives, failures = audit.audit(examples)
        figures[task] = [len(examples), accepted, positives, rejected, negatives, failures]
    matches_snapshot("matcher-audit.json", figures)
