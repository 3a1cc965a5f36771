"""wordmath: deterministic, exact by construction, disjoint splits, the stated number of steps, loadable."""

import operator
import re
from importlib import resources
from pathlib import Path

import pytest

from regenesis.errors import BadInput
from regenesis.tasks import TASKS, load_task
from regenesis.tasks.wordmath import (
    BUNDLED_SEED, LEVEL_DESIGNS, SEEN, SPLIT_SIZES, UNSEEN, UNSEEN_SIZE, content_key, file_text, generate,
    write_bundle)

BUNDLE = Path(str(resources.files("regenesis") / "data" / "wordmath"))
ARITHMETIC = {"add": operator.add, "subtract": operator.sub, "multiply": operator.mul}


@pytest.fixture(scope="module")
def parts():
    return generate(BUNDLED_SEED)


def _recompute(record, max_value=max(design.max_value for design in LEVEL_DESIGNS.values())):
    value = record["start"]
    for operation, operand in record["steps"]:
        if operation == "divide":
            assert value % operand == 0, record
            value //= operand
        else:
            value = ARITHMETIC[operation](value, operand)
        assert 1 <= value <= max_value, record
    return value


def test_same_seed_same_problems_and_another_seed_others(parts):
    assert generate(BUNDLED_SEED) == parts
    other = generate(7)
    assert other.keys() == parts.keys()
    assert all(other[name] != parts[name] for name in parts)


def test_bundled_files_are_what_the_generator_writes(parts):
    for name, problems in parts.items():
        assert (BUNDLE / name).read_text(encoding="utf-8") == file_text(problems), name


def test_answers_are_correct_by_construction_and_the_text_states_every_number(parts):
    for problems in parts.values():
        for record in problems:
            assert record["answer"] == _recompute(record)
            stated = [int(number) for number in re.findall(r"\d+", record["question"])]
            assert stated == [record["start"]] + [operand for _, operand in record["steps"]], record["question"]


def test_each_level_keeps_to_its_operations_and_its_largest_quantity(parts):
    for problems in parts.values():
        for record in problems:
            design = LEVEL_DESIGNS[record["level"]]
            assert {operation for operation, _ in record["steps"]} <= set(design.operations), record
            assert all(operand <= design.max_operand for operation, operand in record["steps"]
                       if operation in ("add", "subtract")), record
            _recompute(record, design.max_value)
    easy = parts["l1-test.jsonl"] + parts["l2-test.jsonl"]
    assert {operation for record in easy for operation, _ in record["steps"]} == {"add", "subtract"}
    assert all(record["start"] < 10 and all(operand < 10 for _, operand in record["steps"]) for record in easy)
    hard = parts["l4-test.jsonl"]
    assert {operation for record in hard for operation, _ in record["steps"]} == set(LEVEL_DESIGNS[4].operations)


def test_levels_have_their_number_of_steps_and_one_sentence_each(parts):
    for name, problems in parts.items():
        levels = {1, 2} if name.startswith("unseen") else {int(name[1])}
        assert {record["level"] for record in problems} == levels
        for record in problems:
            assert len(record["steps"]) == record["level"]
            assert len(re.findall(r"[.?](?:\s|$)", record["question"])) == record["level"] + 2


def test_splits_are_disjoint_in_text_and_in_content(parts):
    seen_text, seen_content = set(), set()
    for problems in parts.values():
        texts = {record["question"] for record in problems}
        contents = {content_key(record) for record in problems}
        assert len(texts) == len(contents) == len(problems)
        assert not texts & seen_text and not contents & seen_content
        seen_text |= texts
        seen_content |= contents


def test_unseen_templates_appear_only_in_the_unseen_part(parts):
    unseen = {template.name for template in UNSEEN}
    assert not unseen & {template.name for template in SEEN}
    for name, problems in parts.items():
        used = {record["template"] for record in problems}
        assert used == unseen if name == "unseen-test.jsonl" else not used & unseen, name


def test_load_task_reads_each_part():
    train = load_task("wordmath-l3", split="train")
    assert len(train) == SPLIT_SIZES["train"] and train.split == "train"
    first = train[0]
    assert first.id == "wordmath-l3/train/0" and first.answer_type == "number" and first.meta["level"] == 3
    assert first.gold == str(_recompute({"start": first.meta["start"], "steps": first.meta["steps"]}))
    unseen = load_task("wordmath-unseen")
    assert len(unseen) == UNSEEN_SIZE and unseen.split == "test"
    assert [TASKS[f"wordmath-l{level}"].domain for level in (1, 2, 3, 4)] == ["in", "in", "out", "out"]
    with pytest.raises(BadInput, match="no split 'train'"):
        load_task("wordmath-unseen", split="train")


def test_another_seed_loads_through_data(tmp_path):
    write_bundle(tmp_path, seed=7)
    mine = load_task("wordmath-l1", data=tmp_path, limit=5)
    bundled = load_task("wordmath-l1", limit=5)
    assert [e.question for e in mine] != [e.question for e in bundled]
    assert mine.source == str(tmp_path)


def test_gold_sft_trains_on_the_worked_solution_of_every_generated_problem(tmp_path):
    from dspy.utils import DummyLM

    from regenesis.optimize.bootstrap import synthesize
    from regenesis.optimize.config import SynthesisConfig

    problems = list(load_task("wordmath-l4", split="train", limit=20))
    assert problems[0].meta["solution"].splitlines()[0] == f"The quantity starts at {problems[0].meta['start']}."
    report = synthesize(DummyLM([]), problems, tmp_path / "gold", SynthesisConfig(method="gold-sft", num_threads=1),
                        progress=False)
    assert report["generations"] == 0 and report["kept_rows"] == 20  # every step's computation passes the filters
