"""The task registry, loaders, user datasets, the hub path, and `regenesis tasks`."""

import json
from fractions import Fraction
from pathlib import Path

import pytest

from regenesis.cli import main
from regenesis.errors import BadInput
from regenesis.tasks.example import Example
from regenesis.answers import format_number, is_correct
from regenesis.tasks import BBH_TASKS, IN_DOMAIN, OUT_OF_DOMAIN, TASKS, load_task

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason=f"the offline benchmark copies are not at {SHARED}")
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
ROWS_PER_TASK = 40


# --- every task on real rows ---------------------------------------------------------------------

def as_models_write(example: Example, answer: str) -> str:
    """An answer written the way models write it, per answer type."""
    return {
        "number": f"Adding it all up gives the total.\nThe answer is {answer}.",
        "letter": f"Checking each option in turn.\nSo the answer is ({answer}).",
        "yes_no": f"{answer.capitalize()}, that follows from the facts.",
        "label": f"Comparing the statements.\nThe answer is {answer}.",
        "math": f"Simplifying, we get $\\boxed{{{answer}}}$.",
        "text": f"The answer is {answer}.",
    }[example.answer_type]


def another_valid_answer(example: Example, others: list[Example]) -> str | None:
    kind = example.answer_type
    if kind == "number":
        return format_number(Fraction(example.gold) + 1) if "/" not in example.gold else "0"
    if kind == "letter":
        return LETTERS[(LETTERS.index(example.gold) + 1) % len(example.choices)] if len(example.choices) > 1 else None
    if kind == "yes_no":
        return {"yes": "no", "no": "yes"}[example.gold]
    if kind == "label":
        return next(label for label in example.labels if label != example.gold)
    return next((other.gold for other in others if other.answer_type == kind
                 and not is_correct(as_models_write(example, other.gold), example)), None)


@needs_shared
@pytest.mark.parametrize("task", IN_DOMAIN + OUT_OF_DOMAIN + BBH_TASKS)
def test_gold_written_as_models_write_matches_itself_and_not_another_answer(task):
    examples = load_task(task, data_root=SHARED, limit=ROWS_PER_TASK if task != "bbh" else 3)
    assert examples and examples.skipped == 0
    checked_negatives = 0
    for example in examples:
        assert is_correct(as_models_write(example, example.gold), example), example
        wrong = another_valid_answer(example, [other for other in examples if other is not example])
        if wrong is not None:
            checked_negatives += 1
            assert not is_correct(as_models_write(example, wrong), example), (example, wrong)
    assert checked_negatives >= len(examples) // 2


@needs_shared
@pytest.mark.parametrize("task, split, rows", [
    ("gsm8k", "test", 1319), ("numglue", "subset", 3821), ("arc_challenge", "test", 1172),
    ("reclor", "validation", 500), ("strategyqa", "dev", 229), ("asdiv", "test", 2305), ("svamp", "test", 1000),
    ("aqua", "test", 254), ("math", "test", 5000), ("anli", "test", 3200), ("hellaswag", "validation", 10042),
    ("bbh", "test", 6511),
])
def test_each_task_loads_in_full_from_the_shared_copies(task, split, rows):
    examples = load_task(task, data_root=SHARED)
    assert (examples.split, len(examples), examples.skipped) == (split, rows, 0)
    assert len({example.id for example in examples}) == rows


@needs_shared
@pytest.mark.parametrize("task, split, rows", [
    ("gsm8k", "train", 7473), ("arc_challenge", "train", 1056), ("reclor", "train", 4638),
    ("strategyqa", "train", 2061), ("asdiv", "asdiv-a", 1218), ("aqua", "validation", 254),
    ("anli", "test_r3", 1200), ("anli", "dev", 3200),
])
def test_other_splits(task, split, rows):
    assert len(load_task(task, data_root=SHARED, split=split)) == rows


@needs_shared
def test_examples_are_normalised():
    gsm8k = load_task("gsm8k", data_root=SHARED, limit=1)[0]
    assert (gsm8k.id, gsm8k.gold, gsm8k.answer_type, gsm8k.task) == ("gsm8k/test/0", "18", "number", "gsm8k")
    arc = load_task("arc_challenge", data_root=SHARED, limit=1)[0]
    assert arc.id == "arc_challenge/test/Mercury_7175875" and arc.gold == "C" and len(arc.choices) == 4
    assert "(C) Planetary days will become shorter." in arc.question
    anli = load_task("anli", data_root=SHARED, limit=1)[0]
    assert anli.gold == "entailment" and anli.labels == ("entailment", "neutral", "contradiction")
    svamp = load_task("svamp", data_root=SHARED, limit=1)[0]
    assert svamp.gold == "51" and svamp.id == "svamp/test/chal-1"
    math = load_task("math", data_root=SHARED, limit=1)[0]
    assert (math.gold, math.answer_type) == ("2", "math")
    date = load_task("bbh/date_understanding", data_root=SHARED, limit=1)[0]
    assert date.gold == "B" and date.choices[1] == "12/25/1937" and date.question.endswith("(F) 07/25/1937")


@needs_shared
def test_numglue_answer_type_follows_the_record_type():
    by_type = {}
    for example in load_task("numglue", data_root=SHARED):
        by_type.setdefault(example.meta["numglue_type"], set()).add(example.answer_type)
    assert by_type[3] == {"letter"} and by_type[7] == {"label"} and "number" in by_type[8]


@needs_shared
def test_bbh_option_text_targets_are_scored_as_text():
    movie = [example for example in load_task("bbh/movie_recommendation", data_root=SHARED)
             if example.answer_type == "text"]
    assert [example.gold for example in movie] == ["Monsters, Inc"]


@needs_shared
def test_ids_are_stable_across_loads():
    first = [example.id for example in load_task("hellaswag", data_root=SHARED, limit=50)]
    assert first == [example.id for example in load_task("hellaswag", data_root=SHARED, limit=50)]
    assert first[3] == "hellaswag/validation/3"


@needs_shared
def test_bbh_limit_applies_per_subtask():
    examples = load_task("bbh", data_root=SHARED, limit=2)
    assert len(examples) == 2 * len(BBH_TASKS)
    assert {example.task for example in examples} == set(BBH_TASKS)


@needs_shared
def test_data_may_be_a_folder_or_a_single_file():
    assert len(load_task("gsm8k", data=SHARED / "gsm8k", split="test", limit=3)) == 3
    from_file = load_task("gsm8k", data=SHARED / "gsm8k" / "train.jsonl", limit=3)
    assert from_file.split == "train" and from_file[0].id == "gsm8k/train/0"
    assert len(load_task("bbh/navigate", data=SHARED / "bbh" / "bbh" / "navigate.json")) == 250


@needs_shared
def test_data_root_from_the_environment(monkeypatch):
    monkeypatch.setenv("REGENESIS_DATA_ROOT", str(SHARED))
    assert len(load_task("strategyqa")) == 229


@needs_shared
def test_reclor_unlabelled_test_split_is_refused():
    with pytest.raises(BadInput, match="no split 'test'.*available here: train, validation"):
        load_task("reclor", data_root=SHARED, split="test")


def test_other_original_release_layouts(tmp_path):
    arc = write_jsonl(tmp_path / "ARC-Challenge-Test.jsonl", [{"id": "Q1", "answerKey": "B", "question": {
        "stem": "Which?", "choices": [{"text": "p", "label": "A"}, {"text": "q", "label": "B"}]}}])
    assert load_task("arc_challenge", data=arc)[0].gold == "B"
    problem = tmp_path / "MATH" / "test" / "algebra" / "1.json"
    problem.parent.mkdir(parents=True)
    problem.write_text(json.dumps({"problem": "x?", "level": "Level 1", "type": "Algebra",
                                   "solution": "So $x=\\boxed{\\frac{1}{2}}$."}))
    assert load_task("math", data=tmp_path / "MATH")[0].gold == "\\frac{1}{2}"
    numglue = tmp_path / "numglue"
    numglue.mkdir()
    write_jsonl(numglue / "NumGLUE_test.json", [{"question": "q", "answer": 5, "type": "Type_1"},
                                                {"question": "q", "answer": "June", "type": "Type_1"}])
    assert [(e.answer_type, e.gold) for e in load_task("numglue", data=numglue)] == [("number", "5"), ("text", "June")]
    hellaswag = write_jsonl(tmp_path / "hellaswag_val.jsonl", [{"ind": 4, "activity_label": "Cooking", "ctx": "He",
                                                                "endings": ["a", "b", "c", "d"], "label": 2}])
    assert load_task("hellaswag", data=hellaswag)[0].gold == "C"


# --- the bundled sample --------------------------------------------------------------------------

def test_bundled_gsm8k_sample_needs_no_shared_data(monkeypatch):
    monkeypatch.delenv("REGENESIS_DATA_ROOT", raising=False)
    train, test = load_task("gsm8k-sample", split="train"), load_task("gsm8k-sample")
    assert (len(train), len(test), test.split) == (300, 200, "test")
    assert test[0].gold == "18" and test[0].id == "gsm8k-sample/test/0"


def test_bundled_strategyqa_sample_trains_on_train_and_evaluates_on_dev(monkeypatch):
    monkeypatch.delenv("REGENESIS_DATA_ROOT", raising=False)
    train, dev = load_task("strategyqa-sample", split="train"), load_task("strategyqa-sample")
    assert (len(train), len(dev), dev.split) == (200, 100, "dev")
    assert train[0].id == "strategyqa-sample/train/2bc9c4f9c19c167187f2" and train[0].gold == "yes"
    assert {e.gold for e in dev} == {"yes", "no"} and TASKS["strategyqa-sample"].domain == "in"


def test_no_non_commercial_dataset_is_shipped():
    data = Path(__file__).resolve().parents[1] / "regenesis" / "data"
    names = " ".join(str(path.relative_to(data)).lower() for path in data.rglob("*"))
    for forbidden in ("anli", "asdiv", "reclor"):
        assert forbidden not in names


# --- the hub path, through datasets, on files in the hub's layout -------------------------------

def write_hub_dataset(mirror: Path, hub_id: str, configs: dict[str, dict[str, list[dict]]]) -> None:
    """A hub dataset repository: parquet shards per config and split, and the README's config table."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    root = mirror / hub_id
    lines = ["---", "configs:"]
    for config, splits in configs.items():
        lines += [f"- config_name: {config}", "  data_files:"]
        for split, records in splits.items():
            (root / config).mkdir(parents=True, exist_ok=True)
            pq.write_table(pa.Table.from_pylist(records), root / config / f"{split}-00000-of-00001.parquet")
            lines += [f"  - split: {split}", f"    path: {config}/{split}-*"]
    (root / "README.md").write_text("\n".join(lines + ["---", ""]))


@pytest.fixture
def hub_mirror(tmp_path, monkeypatch):
    import datasets

    monkeypatch.setenv("REGENESIS_HUB_MIRROR", str(tmp_path / "hub"))
    monkeypatch.delenv("REGENESIS_DATA_ROOT", raising=False)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "cache")
    return tmp_path / "hub"


def test_registered_tasks_load_from_the_hub_through_datasets(hub_mirror):
    write_hub_dataset(hub_mirror, "openai/gsm8k", {"main": {
        "train": [{"question": "Q1?", "answer": "1 + 1 = 2\n#### 2"}],
        "test": [{"question": "Q2?", "answer": "so\n#### 1,000"}, {"question": "Q3?", "answer": "#### -4"}]}})
    write_hub_dataset(hub_mirror, "allenai/ai2_arc", {"ARC-Challenge": {"test": [
        {"id": "NYSED_1", "question": "Pick?", "choices": {"text": ["x", "y", "z", "w"], "label": ["1", "2", "3", "4"]},
         "answerKey": "3"}]}})
    write_hub_dataset(hub_mirror, "facebook/anli", {"plain_text": {
        f"test_r{round_}": [{"uid": f"u{round_}", "premise": "P.", "hypothesis": "H.", "label": round_ - 1,
                             "reason": ""}] for round_ in (1, 2, 3)}})
    write_hub_dataset(hub_mirror, "lukaemon/bbh", {"navigate": {"test": [{"input": "Go?", "target": "Yes"}]}})

    gsm8k = load_task("gsm8k")
    assert [(example.id, example.gold) for example in gsm8k] == [("gsm8k/test/0", "1000"), ("gsm8k/test/1", "-4")]
    assert load_task("gsm8k", split="train")[0].gold == "2"
    arc = load_task("arc_challenge")[0]
    assert (arc.id, arc.gold, arc.choices) == ("arc_challenge/test/NYSED_1", "C", ("x", "y", "z", "w"))
    assert [example.gold for example in load_task("anli")] == ["entailment", "neutral", "contradiction"]
    assert load_task("anli", split="test_r2")[0].id == "anli/test_r2/u2"
    assert load_task("bbh/navigate")[0].gold == "yes"


def test_user_dataset_from_the_hub(hub_mirror):
    write_hub_dataset(hub_mirror, "someone/quiz", {"default": {
        "train": [{"q": "2+2?", "a": 4}], "test": [{"q": "3+3?", "a": 6}]}})
    examples = load_task("hub:someone/quiz", question_field="q", answer_field="a", answer_type="number")
    assert [(example.id, example.gold) for example in examples] == [("quiz/test/0", "6")]
    assert load_task("hub:someone/quiz", split="train", question_field="q", answer_field="a",
                     answer_type="number")[0].gold == "4"


def test_unreachable_hub_is_a_clear_error(hub_mirror, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("datasets.config.HF_HUB_OFFLINE", True)
    with pytest.raises(BadInput, match="--data PATH"):
        load_task("svamp")


# --- user datasets -------------------------------------------------------------------------------

def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path


def test_user_jsonl_with_choices(tmp_path):
    path = write_jsonl(tmp_path / "quiz.jsonl", [
        {"question": "Capital of France?", "options": ["Rome", "Paris"], "answer": "B"},
        {"question": "Capital of Italy?", "options": ["Rome", "Paris"], "answer": "Rome"}])
    examples = load_task(str(path), answer_type="letter", choices_field="options")
    assert [example.gold for example in examples] == ["B", "A"]
    assert examples[0].question.endswith("(A) Rome\n(B) Paris") and examples[0].id == "quiz/all/0"


def test_user_csv_json_and_parquet(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "a.csv").write_text("Body,Question,Answer\nTom has 3.,How many?,3\n\"Two\nlines\",Sum?,\"1,200\"\n")
    csv = load_task(str(tmp_path / "a.csv"), question_field="Body,Question", answer_field="Answer",
                    answer_type="number")
    assert [example.gold for example in csv] == ["3", "1200"] and csv[0].question == "Tom has 3.\nHow many?"
    (tmp_path / "b.json").write_text(json.dumps({"data": [{"question": "Is it?", "answer": True}]}))
    assert load_task(str(tmp_path / "b.json"), answer_type="yes_no")[0].gold == "yes"
    pq.write_table(pa.Table.from_pylist([{"question": "x", "answer": "\\frac{1}{2}"}]), tmp_path / "c.parquet")
    assert load_task(str(tmp_path / "c.parquet"), answer_type="math")[0].gold == "\\frac{1}{2}"


def test_user_labels_given_or_read_off_the_data(tmp_path):
    path = write_jsonl(tmp_path / "nli.jsonl", [{"question": "p/h", "answer": label}
                                                for label in ("entailment", "neutral", "contradiction")])
    given = load_task(str(path), answer_type="label", labels="entailment,neutral,contradiction")
    assert given[1].labels == ("entailment", "neutral", "contradiction")
    inferred = load_task(str(path), answer_type="label")
    assert inferred[0].labels == ("contradiction", "entailment", "neutral")


def test_user_folder_of_split_files(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", [{"question": "a", "answer": 1}])
    write_jsonl(tmp_path / "test.jsonl", [{"question": "b", "answer": 2}, {"question": "c", "answer": 3}])
    assert len(load_task(str(tmp_path), answer_type="number")) == 2
    assert load_task(str(tmp_path), split="train", answer_type="number")[0].id == f"{tmp_path.name}/train/0"


# --- bad input -----------------------------------------------------------------------------------

def test_missing_field_lists_the_fields_that_exist(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"prompt": "x", "answer": 1}])
    with pytest.raises(BadInput, match=r"d.jsonl:1: no field 'question'; the fields are: prompt, answer"):
        load_task(str(path), answer_type="number")


def test_bad_gold_names_file_and_line_or_is_skipped_and_counted(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"question": "a", "answer": 1}, {"question": "b", "answer": "lots"},
                                              {"question": "c", "answer": 3}])
    with pytest.raises(BadInput, match=r"d.jsonl:2: bad gold answer.*--skip-bad-rows"):
        load_task(str(path), answer_type="number")
    examples = load_task(str(path), answer_type="number", skip_bad_rows=True)
    assert [example.gold for example in examples] == ["1", "3"] and examples.skipped == 1
    assert examples.skipped_rows[0].startswith(f"{path}:2")


def test_all_rows_bad_is_an_error_not_an_empty_dataset(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"question": "a", "answer": "lots"}])
    with pytest.raises(BadInput, match="no examples.*1 rows skipped"):
        load_task(str(path), answer_type="number", skip_bad_rows=True)


@pytest.mark.parametrize("kwargs, message", [
    ({"name": "gsm9k"}, "unknown task 'gsm9k'. Did you mean gsm8k"),
    ({"name": "missing.jsonl", "answer_type": "number"}, "missing.jsonl: no such file"),
    ({"name": "gsm8k", "data": "/nonexistent/gsm8k"}, "--data /nonexistent/gsm8k: no such file or folder"),
    ({"name": "gsm8k", "data_root": "/nonexistent"}, "--data-root /nonexistent: no folder 'gsm8k'"),
    ({"name": "gsm8k-sample", "split": "dev"}, "no split 'dev'"),
    ({"name": "gsm8k-sample", "limit": 0}, "--limit must be at least 1"),
    ({"name": "gsm8k-sample", "answer_field": "x"}, "answer_field: only for a user dataset"),
])
def test_bad_input_is_a_clear_error(kwargs, message):
    with pytest.raises(BadInput, match=message.replace("(", r"\(").replace(".", r"\.")):
        load_task(**kwargs)


def test_user_dataset_needs_an_answer_type(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"question": "a", "answer": 1}])
    with pytest.raises(BadInput, match="needs --answer-type"):
        load_task(str(path))


def test_malformed_jsonl_names_the_line(tmp_path):
    (tmp_path / "d.jsonl").write_text('{"question": "a", "answer": 1}\n{oops\n')
    with pytest.raises(BadInput, match=r"d.jsonl:2: not valid JSON"):
        load_task(str(tmp_path / "d.jsonl"), answer_type="number")


@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".csv"])
def test_a_data_file_that_is_not_utf8_names_the_file_and_line(tmp_path, suffix, capsys):
    rows = {".jsonl": '{"question": "a", "answer": 1}\n{"question": "caf\xe9", "answer": 2}\n',
            ".json": '[{"question": "a", "answer": 1},\n {"question": "caf\xe9", "answer": 2}]\n',
            ".csv": 'question,answer\ncaf\xe9,2\n'}[suffix]
    path = tmp_path / f"latin1{suffix}"
    path.write_bytes(rows.encode("latin-1"))
    with pytest.raises(BadInput, match=rf"latin1{suffix}:2: not UTF-8 text \(byte 0xe9\)"):
        load_task(str(path), answer_type="number")
    assert main(["tasks", "show", str(path), "--answer-type", "number"]) == 2
    assert f"latin1{suffix}:2: not UTF-8 text" in capsys.readouterr().err


def test_wrong_format_for_a_registered_task(tmp_path):
    write_jsonl(tmp_path / "test.jsonl", [{"prompt": "x"}])
    with pytest.raises(BadInput, match=r"test.jsonl:1: not gsm8k data: no field 'answer'; the fields are: prompt"):
        load_task("gsm8k", data=tmp_path)


# --- the command line ----------------------------------------------------------------------------

def test_tasks_command_lists_every_task(capsys):
    assert main(["tasks", "--json"]) == 0
    listed = {row["task"]: row for row in json.loads(capsys.readouterr().out)}
    assert set(listed) == set(TASKS)
    assert listed["gsm8k"]["hub_id"] == "openai/gsm8k" and listed["anli"]["answer_type"] == "label"
    assert main(["tasks"]) == 0
    assert "bbh/<subtask>" in capsys.readouterr().out


def test_tasks_show_prints_normalised_examples(capsys):
    assert main(["tasks", "show", "gsm8k-sample", "--limit", "2", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["loaded"] == 2 and shown["examples"][0]["gold"] == "18"
    assert main(["tasks", "show", "gsm8k-sample", "--split", "train", "--limit", "1"]) == 0
    assert "gsm8k-sample/train/0" in capsys.readouterr().out


def test_tasks_show_bad_input_exits_2(tmp_path, capsys):
    assert main(["tasks", "show", "nope"]) == 2
    assert "unknown task" in capsys.readouterr().err
    path = write_jsonl(tmp_path / "d.jsonl", [{"question": "a", "answer": "lots"}])
    assert main(["tasks", "show", str(path), "--answer-type", "number"]) == 2
    assert main(["tasks", "show", str(path), "--answer-type", "number", "--skip-bad-rows"]) == 2


def parsed(argv):
    from regenesis.cli import build_parser

    return build_parser().parse_args(argv)


def test_synthesis_reads_the_train_split_unless_told_otherwise(tmp_path):
    from regenesis.cli.tasks import examples_from_args

    examples = examples_from_args(parsed(["synthesize", "--task", "strategyqa-sample", "--limit", "2", "--out", "o"]))
    assert examples.split == "train" and all("/train/" in example.id for example in examples)
    dev = examples_from_args(parsed(["synthesize", "--task", "strategyqa-sample", "--split", "dev", "--limit", "1",
                                     "--out", "o"]))
    assert dev.split == "dev"
    # `tasks show` keeps the evaluation split
    assert examples_from_args(parsed(["tasks", "show", "strategyqa-sample", "--limit", "1"])).split == "dev"
    user = write_jsonl(tmp_path / "mine.jsonl", [{"question": "2+2?", "answer": "4"}])
    assert len(examples_from_args(parsed(["synthesize", "--task", str(user), "--answer-type", "number",
                                          "--out", "o"]))) == 1


def test_synthesis_from_a_task_without_a_train_split_needs_split(capsys):
    from regenesis.cli.tasks import examples_from_args

    with pytest.raises(BadInput, match=r"--split: bbh-sample/navigate has no train split \(its splits: test\)"):
        examples_from_args(parsed(["synthesize", "--task", "bbh-sample/navigate", "--out", "o"]))
    assert examples_from_args(parsed(["synthesize", "--task", "bbh-sample/navigate", "--split", "test", "--limit", "1",
                                      "--out", "o"])).split == "test"


def test_tasks_show_prints_text_that_looks_like_markup_as_it_is(tmp_path, capsys):
    path = write_jsonl(tmp_path / "d[red].jsonl", [{"question": "Is [bold]x[/bold] y?", "answer": "[/x] yes"}])
    assert main(["tasks", "show", str(path), "--answer-type", "text"]) == 0
    out = capsys.readouterr().out
    assert "[bold]x[/bold]" in out and "[/x] yes" in out and "d[red]" in out
