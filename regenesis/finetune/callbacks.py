"""The trainer's callbacks: progress with rich (steps, loss, learning rate, elapsed and remaining time, on the
main process only), and no checkpoint at the final step."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from transformers import TrainerCallback


class SkipFinalCheckpoint(TrainerCallback):
    """The trainer checkpoints the final step (weights and optimizer state: 4 s for the embedded model) just
    before the model itself is saved and the checkpoints are deleted. A run killed in between resumes from
    its last periodic checkpoint and trains the same steps again."""

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step >= state.max_steps:
            control.should_save = False
        return control


class RichProgress(TrainerCallback):
    def __init__(self, console: Console):
        self.console = console
        self.progress: Progress | None = None
        self.task = None

    def on_train_begin(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        self.progress = Progress(TextColumn("fine-tuning"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[loss]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                                 console=self.console)
        self.progress.start()
        self.task = self.progress.add_task("fine-tuning", total=state.max_steps, completed=state.global_step,
                                           loss="")

    def on_step_end(self, args, state, control, **kwargs):
        if self.progress:
            self.progress.update(self.task, completed=state.global_step)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.progress and logs and "loss" in logs:
            rate = f"  lr {logs['learning_rate']:.1e}" if "learning_rate" in logs else ""
            self.progress.update(self.task, loss=f"loss {logs['loss']:.4f}{rate}")

    def on_train_end(self, args, state, control, **kwargs):
        self.close()

    def close(self) -> None:
        if self.progress:
            self.progress.stop()
            self.progress = None
