"""A tiny real experiment on the embedded model: the report's structure, and stage-by-stage resume."""

import json
from collections import Counter
from pathlib import Path

import pytest

from regenesis.errors import BadInput
from regenesis.evals.evaluate import EvalResult
from regenesis.evals.scores import MacroAverage
from regenesis.experiment import Experiment, ExperimentConfig, run_experiment
from regenesis.experiment.report import rounds_section, training_sets_section
from regenesis.tasks import TASKS

EASY = [("What is 2 + 3?", 5), ("What is 4 + 4?", 8), ("What is 10 - 3?", 7)]

CONFIG = """
name = "tiny"
rounds = 1
num_threads = 2
allow_train_on_eval = true  # three easy problems to train and evaluate on

[train]
task = "{data}"
answer_type = "number"
max_tokens = 160

[eval]
tasks = ["{data}", "bbh-sample/boolean_expressions"]
in_domain = ["{data}"]
answer_type = "number"
limit = 1
max_tokens = 64

[methods.star]
method = "star"
generations = 1
max_kept = 1

[finetune]
max_steps = 1
batch_size = 1
max_length = 512
lr = 1e-4
export_gguf = ""
"""


def write_config(tmp_path):
    data = tmp_path / "easy.jsonl"
    data.write_text("".join(json.dumps({"question": q, "answer": a}) + "\n" for q, a in EASY))
    config = tmp_path / "tiny.toml"
    config.write_text(CONFIG.replace("{data}", str(data)))
    return config


@pytest.mark.model
def test_a_tiny_experiment_reports_and_resumes_stage_by_stage(tmp_path):
    config, out = write_config(tmp_path), tmp_path / "out"
    first = run_experiment(config, out, progress=False)
    report = (out / "report.md").read_text()
    assert report.startswith("# tiny\n") and "| base" in report.replace("|  base", "| base")
    assert (out / "chart.png").stat().st_size > 0
    summary = json.loads((out / "summary.json").read_text())
    base_results = json.loads((out / "eval" / "base" / "results.json").read_text())
    raw = list((out / "eval" / "base" / "raw").rglob("*.jsonl"))
    assert len(raw) == 2 and sum(len(p.read_text().splitlines()) for p in raw) == 2
    assert set(base_results["tasks"]) == {"easy", "bbh-sample/boolean_expressions"}
    assert set(base_results["averages"]) == {"in", "out"}
    synthesis = summary["synthesis"]["star"]
    assert (out / "round-1" / "star" / "data" / "train.jsonl").exists()
    if synthesis["kept_rows"]:
        assert (out / "round-1" / "star" / "checkpoint" / "config.json").exists()
        assert "star" in summary["evaluations"] and "star" in report
    else:
        assert "Not fine-tuned" in report
    assert first.skipped == []
    timed = report.split("## Time per stage")[1]
    assert "| `eval/base` |" in timed and "| `round-1/star/data` |" in timed

    # Interrupted after the synthesis: the tuned model's evaluation never finished (its stage.json says so).
    (out / "report.md").unlink()
    if synthesis["kept_rows"]:
        marker = out / "eval" / "star" / "stage.json"
        marker.write_text(json.dumps({**json.loads(marker.read_text()), "finished": None}))
    second = run_experiment(config, out, progress=False)
    assert "eval base" in second.skipped and "synthesize star" in second.skipped
    assert second.ran == (["eval star"] if synthesis["kept_rows"] else []) and second.recomputed == []
    results_part = report.split("## Time per stage")[0]
    assert (out / "report.md").read_text().split("## Time per stage")[0] == results_part


@pytest.mark.model
def test_the_base_row_is_the_base_exported_as_the_tuned_models_are(tmp_path, monkeypatch):
    """Base and tuned rows differ only in the training: the embedded Q4_1 model is evaluated from the dense
    folder it is fine-tuned from, exported to the tuned models' GGUF type, and the export is made once."""
    import gguf

    from regenesis.experiment.stages import StageRunner
    from regenesis.finetune import dense_base
    from regenesis.models import resolve_lm

    dense = tmp_path / "dense"  # the cached dense folder seen through links, so that the export lands here
    dense.mkdir()
    for item in Path(dense_base(None)).iterdir():
        if item.is_file():
            (dense / item.name).symlink_to(item)
    monkeypatch.setattr("regenesis.experiment.stages.dense_base", lambda spec: str(dense))
    config = ExperimentConfig.load(write_config(tmp_path))
    config.finetune.export_gguf = "q8_0"
    runner = StageRunner(config, tmp_path / "out", progress=False)

    served = runner.served_base(None)
    assert served == str(dense / "gguf" / "model-q8_0.gguf")
    file_type = gguf.GGUFReader(served).fields["general.file_type"]
    assert file_type.parts[file_type.data[0]][0] == gguf.LlamaFileType.MOSTLY_Q8_0
    written = Path(served).stat().st_mtime_ns
    assert runner.served_base(None) == served and Path(served).stat().st_mtime_ns == written
    assert resolve_lm(served, max_tokens=4, cache=False)("What is 2 + 2?")[0]

    assert runner.served_base("openai/hosted") == "openai/hosted"  # a hosted model is served as it is
    config.finetune.export_gguf = ""
    assert runner.served_base(None) is None  # tuned models served unexported: so is the base


def test_bad_configs_name_the_problem(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[train]\ntask = "gsm8k-sample"\n[eval]\ntasks = ["gsm8k-sample"]\n[methods.x]\nmethod = "nope"\n')
    with pytest.raises(BadInput, match=r"methods\.x\.method: 'nope' is not one of"):
        ExperimentConfig.load(bad)
    bad.write_text('[train]\ntask = "gsm8k-sample"\n[methods.star]\n')
    with pytest.raises(BadInput, match=r"\[eval\] section is missing"):
        ExperimentConfig.load(bad)
    bad.write_text('colour = "blue"\n')
    with pytest.raises(BadInput, match="colour: unknown key"):
        ExperimentConfig.load(bad)
    with pytest.raises(BadInput, match="no such config file"):
        ExperimentConfig.load(tmp_path / "missing.toml")


def test_the_training_sets_table_shows_each_tasks_share_of_a_mixed_set():
    report = {"problems": 4, "solved_without_hint": 1, "solved_with_hint": 1, "kept_rows": 3, "generations": 28,
              "cached_generations": 0, "generations_per_kept_row": 9.33, "dropped": {"answer": 20},
              "by_task": {"gsm8k-sample": {"kept_rows": 0}, "strategyqa-sample": {"kept_rows": 3}}}
    table = "\n".join(training_sets_section({"star": report}))
    assert "| star | 4 | 1 | 1 | 3 (gsm8k-sample 0, strategyqa-sample 3) | 28 (0) | 9.33 | answer 20 |" in table


EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.parametrize("name", ["quickstart.toml", "paper.toml", "hosted.toml"])
def test_the_example_configs_name_registered_tasks_and_methods(name):
    config = ExperimentConfig.load(EXAMPLES / name)
    tasks = config.train.task_names + config.eval.tasks
    assert all(task in TASKS for task in tasks), tasks


def test_the_paper_config_has_the_gold_rationale_baseline():
    methods = ExperimentConfig.load(EXAMPLES / "paper.toml").methods
    assert {label: method.method for label, method in methods.items()}["gold-sft"] == "gold-sft"
    assert {"regenesis", "star", "lmsi"} <= {method.method for method in methods.values()}


def test_the_main_job_trains_on_wordmath_and_strategyqa_and_evaluates_harder_levels_new_wording_and_benchmarks(
        monkeypatch):
    monkeypatch.delenv("REGENESIS_DATA_ROOT", raising=False)
    config = ExperimentConfig.load(EXAMPLES / "quickstart.toml")
    experiment = Experiment(config, "unused")
    train = experiment.train_examples()
    assert [e.task for e in train] == ["wordmath-l1"] * 3 + ["strategyqa-sample"] * 3
    assert all("/train/" in e.id for e in train)
    evaluation = experiment.eval_examples()
    assert Counter(e.task for e in evaluation) == {task: 6 for task in (
        "wordmath-l1", "strategyqa-sample", "wordmath-l2", "wordmath-unseen", "svamp-sample",
        "bbh-sample/boolean_expressions")}
    assert {e.id.split("/")[1] for e in evaluation if e.task.startswith("wordmath")} == {"test"}
    assert {e.id.split("/")[1] for e in evaluation if e.task == "strategyqa-sample"} == {"dev"}
    assert config.eval.in_domain == ["wordmath-l1", "strategyqa-sample"]
    assert "wordmath-unseen" in config.eval.out_of_domain


def test_a_multi_round_experiment_shows_kept_rows_and_accuracy_per_round():
    def result(in_domain: float) -> EvalResult:
        return EvalResult(model="m", settings={}, scores={}, raw_files={},
                          averages={"in": MacroAverage("in", ("t",), in_domain, 0.0, 1.0)})

    rounds = {"star": [(1, "star-r1"), (2, "star-r2")]}
    syntheses = {"star-r1": {"kept_rows": 4}, "star-r2": {"kept_rows": 7}}
    lines = rounds_section(rounds, syntheses, {"base": result(0.1), "star-r1": result(0.25), "star-r2": result(0.3)})
    assert "| star | 1 | 4 | 25.0 |" in lines and "| star | 2 | 7 | 30.0 |" in lines
    assert rounds_section({"star": [(1, "star")]}, {"star": {"kept_rows": 1}}, {}) == []  # one round: no table
