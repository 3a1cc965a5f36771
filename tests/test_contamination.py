"""Decontamination: planted overlaps are found, clean splits are not flagged, bundled splits as measured."""

import pytest

from regenesis.evals.contamination import check_experiment, find_overlaps, normalize, question_texts
from regenesis.tasks.example import Example
from regenesis.tasks import load_task
from regenesis.prompting import training_messages

LONG = ("A farmer has 17 cows and buys 5 more at the spring market, then sells 3 of them to a neighbour "
        "who keeps goats. How many cows does the farmer have now?")


def _example(id_, question):
    return Example(id=id_, question=question, gold="1", answer_type="number", task=id_.split("/")[0])


def test_normalize_ignores_case_punctuation_and_spacing():
    assert normalize("  Janet’s ducks: lay 16 eggs,\n per DAY!") == "janets ducks lay 16 eggs per day"


def test_a_planted_copy_is_found_exactly_and_a_reworded_copy_by_13_grams():
    evaluation = question_texts([_example("t/test/0", LONG), _example("t/test/1", "Is the sky green?")])
    reworded = "Here is one I saw: " + LONG.replace("How many cows", "Tell me how many cows")
    train = [("copy", LONG.upper()), ("reworded", reworded), ("short", "is the SKY green"),
             ("clean", "A baker sells 12 muffins in the morning and 9 in the afternoon; how many in all?")]
    report = find_overlaps(train, evaluation)
    found = {(o.train_id, o.eval_id): o.kind for o in report.overlaps}
    assert found == {("copy", "t/test/0"): "exact", ("reworded", "t/test/0"): "near_duplicate",
                     ("short", "t/test/1"): "exact"}
    assert report.counts() == {"train_texts": 4, "eval_items": 2, "exact": 2, "near_duplicate": 0, "ngram": 0,
                               "contaminated_eval_items": 2}


def test_one_shared_13_gram_is_flagged_with_its_coverage():
    shared = " ".join(f"w{i}" for i in range(13))
    evaluation = [("e", f"{shared} " + " ".join(f"x{i}" for i in range(30)))]
    report = find_overlaps([("t", f"prefix words {shared} other words")], evaluation)
    [overlap] = report.overlaps
    assert (overlap.kind, overlap.shared_ngrams) == ("ngram", 1)
    assert overlap.coverage == pytest.approx(1 / 31, abs=1e-4)


def test_twelve_shared_tokens_are_not_an_overlap():
    shared = " ".join(f"w{i}" for i in range(12))
    assert find_overlaps([("t", f"a {shared} b")], [("e", f"c {shared} d")]).overlaps == []


def test_kept_rows_are_checked_message_by_message():
    row = {"messages": training_messages("What is 2 + 2?", f"As the test asked: {LONG} The answer is 19."),
           "meta": {"problem_id": "train/4", "sample_index": 2}}
    report = check_experiment([_example("t/train/4", "What is 2 + 2?")], [row], [_example("t/test/0", LONG)])
    assert [(o.train_id, o.eval_id, o.kind) for o in report.overlaps] == [
        ("train/4#2/assistant", "t/test/0", "near_duplicate")]
    assert report.train_texts == 3


@pytest.mark.parametrize("task, train_split, eval_split", [("gsm8k-sample", "train", "test"),
                                                          ("strategyqa-sample", "train", "dev")])
def test_bundled_benchmark_splits_are_clean(task, train_split, eval_split):
    report = find_overlaps(question_texts(load_task(task, split=train_split)),
                           question_texts(load_task(task, split=eval_split)))
    assert report.overlaps == []
    assert (report.train_texts, report.eval_items) == {"gsm8k-sample": (300, 200),
                                                       "strategyqa-sample": (200, 100)}[task]


def test_a_split_checked_against_itself_is_all_exact():
    items = question_texts(load_task("strategyqa-sample", split="dev"))
    assert find_overlaps(items, items).counts()["exact"] == len(items)
