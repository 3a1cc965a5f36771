"""Experiment stages keyed by fingerprints; bad TOML refused before any model call; one run per folder.

The generator (synthesis and the base evaluation) is the local fake OpenAI-compatible server of
``tests/fake_server.py``; fine-tuning and the tuned model's evaluation run the real embedded model for
one step, and only in the test marked ``model``.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from regenesis.cli import main
from regenesis.errors import BadInput
from regenesis.experiment import EvalSection, ExperimentConfig, FinetuneSection, TrainSection, run_experiment
from regenesis.experiment.stages import STAGE_FILE, StageFailed
from regenesis.finetune import FinetuneConfig
from regenesis.optimize.config import SynthesisConfig
from regenesis.runfiles import read_jsonl, run_lock
from tests.fake_server import Fault, FakeServer, fields_reply, last_user_text, output_fields

PROBLEMS = [(f"What is {a} + {b}?", a + b) for a, b in [(2, 3), (4, 4), (10, 3), (6, 1), (7, 2), (5, 5)]]

CONFIG = """
name = "stages"
model = "openai/{model}"
api_base = "{api_base}"
num_threads = 2
allow_train_on_eval = true  # the test trains and evaluates on one small file

[train]
task = "{data}"
answer_type = "number"
limit = {train_limit}

[eval]
tasks = ["{data}"]
answer_type = "number"
limit = {eval_limit}
max_tokens = {eval_max_tokens}

[methods.cot]
method = "cot"
generations = 2
temperature = {temperature}

[finetune]
base = "local/smollm2-135m"
max_steps = 1
batch_size = 2
max_length = 256
export_gguf = ""
"""


def arithmetic(body: dict, right: bool = True) -> str:
    """The fake model: it adds the two numbers of the question (or answers 0 when not ``right``), as a
    chain-of-thought prediction for DSPy's prompts and as plain text for the evaluation's prompt."""
    a, b = map(int, re.search(r"What is (\d+) \+ (\d+)\?", last_user_text(body)).groups())
    total = a + b if right else 0
    if output_fields(body):
        return fields_reply(body, {"reasoning": f"We add the two numbers: {a} + {b} = {a + b}. So the sum is {a + b}.",
                                   "answer": str(total)})
    return f"{a} + {b} = {a + b}.\nThe answer is {total}."


def wrong(body: dict) -> str:
    return arithmetic(body, right=False)


def write_config(tmp_path: Path, server: FakeServer, model: str, **values) -> Path:
    data = tmp_path / "sums.jsonl"
    data.write_text("".join(json.dumps({"question": q, "answer": a}) + "\n" for q, a in PROBLEMS))
    settings = {"temperature": 0.8, "eval_max_tokens": 32, "train_limit": 3, "eval_limit": 3, **values}
    config = tmp_path / "stages.toml"
    config.write_text(CONFIG.format(model=model, api_base=server.url, data=data, **settings))
    return config


def unique_model() -> str:
    # Each test its own model name: DSPy's cache is shared by the whole test session.
    return f"stages-{uuid.uuid4().hex[:8]}"


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ``folder`` but the run lock (it names the last run's pid): its bytes and modification time."""
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.rglob("*")
            if p.is_file() and p.name != ".lock"}


def stale_folders(folder: Path) -> list[Path]:
    return sorted(folder.parent.glob(f"{folder.name}.stale-*"))


@pytest.fixture
def one_torch_thread():
    import torch  # heavy, and only the test that fine-tunes needs it

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.model
def test_a_changed_synthesis_setting_recomputes_that_stage_and_the_stages_after_it(tmp_path, one_torch_thread):
    out, model = tmp_path / "out", unique_model()
    with FakeServer(arithmetic) as server:
        # One evaluation question: the tuned model's evaluations (run twice) are the test's slowest part.
        config = write_config(tmp_path, server, model, eval_limit=1)
        first = run_experiment(config, out, progress=False)
        assert first.ran == ["eval base", "synthesize cot", "finetune cot", "eval cot"] and first.skipped == []
        base_eval = snapshot(out / "eval" / "base")

        again = run_experiment(config, out, progress=False)
        assert again.ran == [] and again.skipped == first.ran and again.recomputed == []
        sent = len(server.requests)

        config = write_config(tmp_path, server, model, temperature=0.9, eval_limit=1)
        changed = run_experiment(config, out, progress=False)
        assert changed.skipped == ["eval base"]
        assert changed.ran == ["synthesize cot", "finetune cot", "eval cot"]
        assert {body.get("temperature") for body in server.requests[sent:]} == {0.9}  # no cached 0.8 samples

    assert snapshot(out / "eval" / "base") == base_eval  # the stage before: untouched, byte for byte
    synthesis, finetuning, tuned_eval = changed.recomputed
    assert synthesis.startswith("synthesize cot: changed temperature 0.8 → 0.9; recomputing it and what follows")
    assert finetuning.startswith("finetune cot: changed synthesize cot was recomputed")
    assert tuned_eval.startswith("eval cot: changed ") and "finetune cot was recomputed" in tuned_eval
    for folder in (out / "round-1" / "cot" / "data", out / "round-1" / "cot" / "checkpoint", out / "eval" / "cot"):
        (stale,) = stale_folders(folder)
        old, new = (json.loads((f / STAGE_FILE).read_text()) for f in (stale, folder))
        assert old["fingerprint"] != new["fingerprint"] and new["finished"]
    old_synthesis = json.loads((stale_folders(out / "round-1" / "cot" / "data")[0] / STAGE_FILE).read_text())
    assert old_synthesis["inputs"]["temperature"] == 0.8
    assert (out / old_synthesis["config"]).read_text() != (out / "config.toml").read_text()  # both configs kept
    assert "temperature = 0.9" in (out / "config.toml").read_text() and len(list((out / "configs").iterdir())) == 2
    report = (out / "report.md").read_text()
    for section in ("## Paired comparisons", "Δ cot − base", "## Contamination check", "## Where the generations went",
                    "## Training curves", "## Provenance", "| dspy | "):
        assert section in report
    assert (out / "funnel-cot.png").stat().st_size and (out / "training_curves.png").stat().st_size
    summary = json.loads((out / "summary.json").read_text())
    (paired,) = summary["paired"]
    assert (paired["baseline"], paired["other"]) == ("base", "cot") and paired["tasks"]["sums"]["n"] == 1
    assert summary["contamination"]["cot"]["exact"] == 1  # it trains on the questions it is evaluated on


def test_a_changed_evaluation_setting_recomputes_the_evaluation_and_not_the_synthesis(tmp_path):
    out, model = tmp_path / "out", unique_model()
    with FakeServer(wrong) as server:  # wrong answers: nothing is kept, so no fine-tuning
        first = run_experiment(write_config(tmp_path, server, model), out, progress=False)
        assert first.ran == ["eval base", "synthesize cot"] and first.not_tuned == ["cot"]
        synthesis = snapshot(out / "round-1" / "cot" / "data")
        changed = run_experiment(write_config(tmp_path, server, model, eval_max_tokens=48), out, progress=False)
    assert changed.ran == ["eval base"] and changed.skipped == ["synthesize cot"]
    assert changed.recomputed[0].startswith("eval base: changed eval.max_tokens 32 → 48")
    assert snapshot(out / "round-1" / "cot" / "data") == synthesis
    (stale,) = stale_folders(out / "eval" / "base")
    assert (stale / "results.json").is_file()  # the old output is kept aside, never reused
    summary = json.loads((out / "summary.json").read_text())
    assert summary["stages"]["eval base"] == json.loads((out / "eval" / "base" / STAGE_FILE).read_text())["fingerprint"]


def test_a_stage_finished_by_an_older_regenesis_without_a_fingerprint_is_recomputed(tmp_path):
    out = tmp_path / "out"
    (out / "eval" / "base").mkdir(parents=True)
    (out / "eval" / "base" / STAGE_FILE).write_text('{"finished": "2026-01-01T00:00:00", "seconds": 1.0}')
    with FakeServer(wrong) as server:
        experiment = run_experiment(write_config(tmp_path, server, unique_model()), out, progress=False)
    assert experiment.ran == ["eval base", "synthesize cot"]
    assert experiment.recomputed[0].startswith("eval base: was made by an older regenesis that recorded no fingerprint")
    (stale,) = stale_folders(out / "eval" / "base")
    assert json.loads((stale / STAGE_FILE).read_text())["seconds"] == 1.0


def test_training_on_evaluation_questions_is_refused_unless_the_config_allows_it(tmp_path, capsys):
    with FakeServer(wrong) as server:
        config = write_config(tmp_path, server, unique_model())
        config.write_text(config.read_text().replace("allow_train_on_eval = true", ""))
        assert main(["experiment", str(config), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    error = capsys.readouterr().err
    assert "3 of its 3 questions are in eval task" in error and "allow_train_on_eval = true" in error
    assert not server.requests and not (tmp_path / "out").exists()


def test_training_on_evaluation_questions_when_allowed_is_warned_about_and_reported(tmp_path):
    with FakeServer(wrong) as server:
        experiment = run_experiment(write_config(tmp_path, server, unique_model()), tmp_path / "out", progress=False)
    (warning,) = experiment.train_on_eval
    assert "train task" in warning and "3 of its 3 questions are in eval task" in warning
    assert warning in (tmp_path / "out" / "report.md").read_text()
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["train_on_eval"] == [warning]


def test_a_stage_whose_model_calls_failed_stays_unfinished_and_the_rerun_retries_it(tmp_path, capsys):
    server_broken = True

    def flaky(body):
        if server_broken and output_fields(body) and "4 + 4" in last_user_text(body):
            return Fault(status=400)
        return wrong(body)

    out = tmp_path / "out"
    data = out / "round-1" / "cot" / "data"
    with FakeServer(flaky) as server:
        config = write_config(tmp_path, server, unique_model())
        assert main(["experiment", str(config), "--out", str(out), "--quiet"]) == 1
        assert "synthesize cot: 1 problems failed" in " ".join(capsys.readouterr().err.split())
        assert json.loads((data / STAGE_FILE).read_text())["finished"] is None and not (out / "report.md").exists()
        with pytest.raises(StageFailed):
            run_experiment(config, out, progress=False)
        server_broken = False
        resumed = run_experiment(config, out, progress=False)
    assert resumed.skipped == ["eval base"] and resumed.ran == ["synthesize cot"]
    report = json.loads((out / "summary.json").read_text())["synthesis"]["cot"]
    assert report["problems"] == 3 and report["failed"] == 0


BAD_INPUTS = [  # (what the config gets instead, the TOML key the error must name)
    (('name = "stages"', 'name = "stages"\ncolour = "blue"'), "colour: unknown key"),
    (("[train]", "[train]\nlimt = 2"), "train.limt: unknown key (did you mean limit?)"),
    (("[eval]", "[eval]\nmax_token = 5"), "eval.max_token: unknown key"),
    (("[methods.cot]", "[methods.cot]\ntemprature = 0.5"), "methods.cot.temprature: unknown key"),
    (("[finetune]", "[methods.cot.filters]\narithmetik = false\n[finetune]"), "methods.cot.filters.arithmetik: unknown key"),
    (("[finetune]", "[finetune]\nepoch = 2"), "finetune.epoch: unknown key"),
    (("num_threads = 2", 'num_threads = 2\nrounds = "2"'), "rounds: expected a whole number, got '2'"),
    (("temperature = 0.8", 'temperature = "hot"'), "methods.cot.temperature: expected a number, got 'hot'"),
    (("tasks = [", 'tasks = "gsm8k"  # ['), "eval.tasks: expected a list of strings, got 'gsm8k'"),
    (("limit = 3\n", "limit = 3\nin_domain = [1]\n"), "eval.in_domain: expected a list of strings, got [1]"),
    (("limit = 6", "limit = -1"), "train.limit: must be at least 1, got -1"),
    (("generations = 2", "generations = 2\npreset = \"fast\""), "methods.cot.preset: unknown preset 'fast'"),
    (("[finetune]", "[methods.cot.filters]\njudge_model = \"local/nope\"\n[finetune]"),
     "methods.cot.filters.judge_model: Unknown model spec 'local/nope'"),
    (('task = "', 'task = "gsm8kk"  # "'), "train.task: unknown task 'gsm8kk'"),
    (("max_steps = 1", "max_steps = 1\nlr = -1.0"), "finetune: lr must be positive"),
]


@pytest.mark.parametrize(("edit", "named"), BAD_INPUTS, ids=[named.split(":")[0] for _, named in BAD_INPUTS])
def test_bad_toml_exits_2_naming_the_key_before_any_model_call_or_write(tmp_path, capsys, edit, named):
    out = tmp_path / "out"
    with FakeServer(arithmetic) as server:
        config = write_config(tmp_path, server, unique_model(), train_limit=6)
        text = config.read_text()
        assert edit[0] in text
        config.write_text(text.replace(edit[0], edit[1], 1))
        assert main(["experiment", str(config), "--out", str(out), "--quiet"]) == 2
    message = " ".join(capsys.readouterr().err.split())  # the console wraps a long line at its width
    assert f"stages.toml: {named}" in message
    assert server.requests == [] and not out.exists()


def test_an_out_that_is_a_file_exits_2_before_any_model_call(tmp_path, capsys):
    out = tmp_path / "out.txt"
    out.write_text("not a folder")
    with FakeServer(arithmetic) as server:
        config = write_config(tmp_path, server, unique_model())
        assert main(["experiment", str(config), "--out", str(out), "--quiet"]) == 2
    assert "--out" in capsys.readouterr().err and server.requests == []
    assert out.read_text() == "not a folder"


def test_a_second_run_on_a_busy_out_folder_is_refused(tmp_path, capsys):
    out = tmp_path / "out"
    with FakeServer(wrong) as server:
        config = write_config(tmp_path, server, unique_model())
        with run_lock(out):  # another run holds the folder
            with pytest.raises(BadInput, match="in use by another regenesis run"):
                run_experiment(config, out, progress=False)
            assert main(["experiment", str(config), "--out", str(out), "--quiet"]) == 2
        assert server.requests == [] and not (out / "eval").exists()
        assert run_experiment(config, out, progress=False).ran == ["eval base", "synthesize cot"]  # once released
    assert "in use by another regenesis run" in capsys.readouterr().err


def test_an_experiment_killed_mid_synthesis_resumes_without_losing_or_repeating_a_problem(tmp_path):
    def slow_wrong(body):
        if output_fields(body):
            time.sleep(0.5)  # a synthesis call: slow enough to be killed between problems
        return wrong(body)

    out, model = tmp_path / "out", unique_model()
    problems = out / "round-1" / "cot" / "data" / "problems.jsonl"
    with FakeServer(slow_wrong) as server:
        config = write_config(tmp_path, server, model, train_limit=6)
        run = subprocess.Popen([sys.executable, "-m", "regenesis", "experiment", str(config), "--out", str(out),
                                "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while not (problems.is_file() and len(read_jsonl(problems)) >= 2) and time.monotonic() < deadline:
            assert run.poll() is None, "the run ended before it could be killed"
            time.sleep(0.05)
        os.kill(run.pid, signal.SIGKILL)
        run.wait()
        finished_before = {record["problem_id"] for record in read_jsonl(problems)}
        assert 2 <= len(finished_before) < 6
        resumed = run_experiment(config, out, progress=False)
    assert resumed.skipped == ["eval base"] and resumed.ran == ["synthesize cot"] and resumed.recomputed == []
    ids = [record["problem_id"] for record in read_jsonl(problems)]
    assert len(ids) == len(set(ids)) == 6 and finished_before <= set(ids)
    assert json.loads((out / "summary.json").read_text())["synthesis"]["cot"]["problems"] == 6


def test_a_finished_evaluation_is_scored_again_from_its_stored_outputs_without_asking_the_model(tmp_path):
    out, model = tmp_path / "out", unique_model()
    with FakeServer(wrong) as server:
        run_experiment(write_config(tmp_path, server, model), out, progress=False)
        asked = len(server.requests)
        results = out / "eval" / "base" / "results.json"
        stored = json.loads(results.read_text())
        stored["tasks"]["sums"]["correct"] = 3  # a verdict that no stored output supports
        results.write_text(json.dumps(stored))
        again = run_experiment(write_config(tmp_path, server, model), out, progress=False)
        derived = json.loads(results.read_text())
        derived["averages"]["in"] = {"domain": "in", "tasks": ["sums"], "accuracy": 0.0, "ci_low": 0.5,
                                     "ci_high": 0.9}  # an average no score supports, as an older formula made
        results.write_text(json.dumps(derived))
        run_experiment(write_config(tmp_path, server, model), out, progress=False)
    assert again.skipped[0] == "eval base" and len(server.requests) == asked
    rescored = json.loads(results.read_text())
    assert rescored["tasks"]["sums"]["correct"] == 0 and "in" not in rescored["averages"]
    assert "| sums | 0.0 [" in (out / "report.md").read_text()


def test_an_experiment_built_in_python_runs_with_the_fingerprints_of_its_toml_file(tmp_path):
    def stages(out: Path) -> dict:
        return json.loads((out / "summary.json").read_text())["stages"]

    model = unique_model()
    with FakeServer(wrong) as server:
        from_file = run_experiment(write_config(tmp_path, server, model), tmp_path / "toml", progress=False)
        data = str(tmp_path / "sums.jsonl")
        config = ExperimentConfig(
            name="stages", model=f"openai/{model}", api_base=server.url, num_threads=2, allow_train_on_eval=True,
            train=TrainSection(task=data, answer_type="number", limit=3),
            eval=EvalSection(tasks=[data], answer_type="number", limit=3, max_tokens=32),
            methods={"cot": SynthesisConfig(method="cot", generations=2, temperature=0.8)},
            finetune=FinetuneSection(base="local/smollm2-135m", export_gguf="",
                                     settings=FinetuneConfig(max_steps=1, batch_size=2, max_length=256)))
        from_python = run_experiment(config, tmp_path / "python", progress=False)
        assert from_python.ran == from_file.ran == ["eval base", "synthesize cot"]
        assert stages(tmp_path / "python") == stages(tmp_path / "toml")

        kept = tmp_path / "python" / "config.toml"  # the file that reproduces the Python run
        assert ExperimentConfig.load(kept) == config
        again = run_experiment(kept, tmp_path / "python", progress=False)
    assert again.ran == [] and again.skipped == ["eval base", "synthesize cot"]
    assert f"regenesis experiment {kept} --out {tmp_path / 'python'}" in (tmp_path / "python" / "report.md").read_text()
