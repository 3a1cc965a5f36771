"""Training curves: the loss and learning rate of each logged step, as JSONL and as a PNG.

A checkpoint folder holds ``training_log.jsonl`` (one record per logged step, as the trainer logged it:
``step``, ``epoch``, ``loss``, ``learning_rate``, ``grad_norm`` …) and ``training_curve.png`` beside it.
``curves_chart`` draws several runs side by side, one column per run, for a report comparing methods.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from regenesis.charts import pyplot, save_png
from regenesis.runfiles import read_jsonl, write_jsonl

LOG_FILE = "training_log.jsonl"
CURVE_FILE = "training_curve.png"


def logged_steps(log_history: list[dict]) -> list[dict]:
    """The trainer's per-step records; its closing summary (``train_runtime`` …) has no ``loss``."""
    return [entry for entry in log_history if "loss" in entry and "step" in entry]


def write_training_log(folder: Path, log_history: list[dict]) -> Path:
    """Write ``folder/training_log.jsonl`` and ``folder/training_curve.png``; returns the PNG's path."""
    steps = logged_steps(log_history)
    write_jsonl(folder / LOG_FILE, steps)
    return curves_chart({folder.name: steps}, folder / CURVE_FILE)


def read_training_log(folder: str | Path) -> list[dict]:
    return read_jsonl(Path(folder) / LOG_FILE)


def curves_chart(runs: Mapping[str, list[dict]], path_png: str | Path) -> Path:
    """Loss (top) and learning rate (bottom) against the step, one column per run; the loss axes are
    shared so that runs compare at a glance."""
    from matplotlib.ticker import MaxNLocator  # heavy: matplotlib, only to draw a chart

    plt = pyplot()

    columns = max(1, len(runs))
    figure, axes = plt.subplots(2, columns, figsize=(4.5 * columns, 5.5), sharex="col", sharey="row",
                                squeeze=False)
    for column, (label, steps) in enumerate(runs.items()):
        loss_axes, lr_axes = axes[0][column], axes[1][column]
        xs = [entry["step"] for entry in steps]
        loss_axes.plot(xs, [entry["loss"] for entry in steps], marker=".", color="tab:blue")
        lr_axes.plot(xs, [entry.get("learning_rate", float("nan")) for entry in steps], marker=".",
                     color="tab:orange")
        loss_axes.set_title(label)
        lr_axes.set_xlabel("step")
        lr_axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        lr_axes.ticklabel_format(axis="y", style="sci", scilimits=(0, 0))
    axes[0][0].set_ylabel("training loss")
    axes[1][0].set_ylabel("learning rate")
    figure.tight_layout()
    return save_png(figure, path_png)
