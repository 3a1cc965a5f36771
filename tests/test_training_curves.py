"""Runs you can watch: every fine-tuning run writes its loss and learning rate per logged step and a PNG
curve to the checkpoint; `--report-to tensorboard` writes TensorBoard event files there, and nothing else.
The run inspected is the session's one short real fine-tune through the command line (``tiny_finetune``)."""

import importlib.util
import json
from pathlib import Path

import pytest
from PIL import Image

from regenesis.cli import main
from regenesis.errors import BadInput
from regenesis.experiment import ExperimentConfig
from regenesis.finetune import FinetuneConfig
from regenesis.finetune.curves import curves_chart, read_training_log
from tests.finetune_rows import ROWS, TINY_FINETUNE_STEPS

EXAMPLES = Path(__file__).parent.parent / "examples"

def event_scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar in the TensorBoard event files under ``folder``: tag -> [(step, value)]."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    scalars: dict[str, list[tuple[int, float]]] = {}
    for events in sorted(folder.rglob("events.out.tfevents.*")):
        accumulator = EventAccumulator(str(events))
        accumulator.Reload()
        for tag in accumulator.Tags()["scalars"]:
            scalars.setdefault(tag, []).extend((event.step, event.value) for event in accumulator.Scalars(tag))
    return scalars


@pytest.mark.model
def test_the_log_holds_one_entry_per_logged_step_with_loss_and_learning_rate(tiny_finetune):
    steps = read_training_log(tiny_finetune)
    assert [entry["step"] for entry in steps] == list(range(1, TINY_FINETUNE_STEPS + 1))
    assert all(entry["loss"] > 0 and entry["learning_rate"] > 0 for entry in steps)
    # the linear schedule decays from the set rate towards zero
    assert steps[0]["learning_rate"] <= 1e-4 and steps[-1]["learning_rate"] < steps[0]["learning_rate"]
    result = json.loads((tiny_finetune / "finetune.json").read_text())["result"]
    assert (result["first_loss"], result["final_loss"]) == (steps[0]["loss"], steps[-1]["loss"])


@pytest.mark.model
def test_the_curve_beside_the_log_is_a_png_with_something_drawn(tiny_finetune):
    path = tiny_finetune / "training_curve.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.format == "PNG" and image.height > 300
        colours = image.convert("RGB").getcolors(maxcolors=1_000_000)
    assert len(colours) > 50  # two panels of axes, ticks and lines, not a blank canvas
    assert not list(tiny_finetune.glob(".*.tmp"))


@pytest.mark.model
def test_report_to_tensorboard_writes_event_files_in_the_checkpoint(tiny_finetune):
    pytest.importorskip("tensorboard")
    assert not (tiny_finetune / "checkpoints").exists()  # the event files left it before it was removed
    scalars = event_scalars(tiny_finetune / "runs")
    steps = read_training_log(tiny_finetune)
    for tag, key in (("train/loss", "loss"), ("train/learning_rate", "learning_rate")):
        assert [step for step, _ in scalars[tag]] == [entry["step"] for entry in steps]
        assert [value for _, value in scalars[tag]] == pytest.approx([entry[key] for entry in steps], rel=1e-6)
    assert json.loads((tiny_finetune / "finetune.json").read_text())["report_to"] == "tensorboard"


@pytest.mark.model
def test_runs_side_by_side_get_one_column_each(tiny_finetune, tmp_path):
    steps = read_training_log(tiny_finetune)
    one = curves_chart({"regenesis": steps}, tmp_path / "one.png")
    two = curves_chart({"regenesis": steps, "star": steps[:2]}, tmp_path / "two.png")
    with Image.open(one) as single, Image.open(two) as double:
        assert double.height == single.height and double.width > 1.8 * single.width


def test_an_unknown_tracker_is_refused_on_the_command_line_and_in_python(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["finetune", "--data", str(ROWS), "--out", str(tmp_path / "out"), "--report-to", "mlflow"])
    assert exit_.value.code == 2 and "--report-to" in capsys.readouterr().err
    with pytest.raises(BadInput, match="report_to must be one of none, tensorboard, trackio, wandb"):
        FinetuneConfig(report_to="mlflow")


@pytest.mark.skipif(importlib.util.find_spec("wandb") is not None, reason="wandb is installed here")
def test_a_tracker_that_is_not_installed_is_named_before_any_training(tmp_path, capsys):
    assert main(["finetune", "--data", str(ROWS), "--out", str(tmp_path / "out"), "--report-to", "wandb"]) == 2
    error = capsys.readouterr().err.strip()
    assert "report_to wandb needs the wandb package (pip install wandb)" in error and len(error.splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_the_experiment_config_takes_report_to(tmp_path):
    config = (EXAMPLES / "quickstart.toml").read_text()
    assert "[finetune]" in config
    path = tmp_path / "watched.toml"
    path.write_text(config.replace("[finetune]", '[finetune]\nreport_to = "tensorboard"', 1))
    settings = ExperimentConfig.load(path).finetune.settings
    assert settings.report_to == "tensorboard"
    assert "report_to" not in settings.model_settings()  # what a resume must match: the tracker may change
    path.write_text(config.replace("[finetune]", '[finetune]\nreport_to = "mlflow"', 1))
    with pytest.raises(BadInput, match=rf"{path}: finetune: report_to must be one of"):
        ExperimentConfig.load(path)
