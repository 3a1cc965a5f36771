"""The trainer's own flow decides when to checkpoint; ours only drops the final step's checkpoint."""

from transformers import TrainerControl, TrainerState, TrainingArguments
from transformers.trainer_callback import DefaultFlowCallback

from regenesis.finetune.callbacks import SkipFinalCheckpoint


def saves_at(step: int, max_steps: int, save_steps: int, tmp_path) -> bool:
    args = TrainingArguments(output_dir=str(tmp_path), save_strategy="steps", save_steps=save_steps, use_cpu=True)
    state = TrainerState(global_step=step, max_steps=max_steps, save_steps=save_steps)
    control = TrainerControl()
    for callback in (DefaultFlowCallback(), SkipFinalCheckpoint()):  # the order the trainer calls them in
        control = callback.on_step_end(args, state, control) or control
    return control.should_save


def test_periodic_checkpoints_stay_and_the_final_one_is_skipped(tmp_path):
    assert saves_at(2, max_steps=6, save_steps=2, tmp_path=tmp_path)  # a periodic checkpoint, to resume from
    assert not saves_at(3, max_steps=6, save_steps=2, tmp_path=tmp_path)
    assert not saves_at(6, max_steps=6, save_steps=2, tmp_path=tmp_path)  # final, and periodic too: the model is saved
    assert not saves_at(5, max_steps=5, save_steps=100, tmp_path=tmp_path)  # the trainer would save here on its own
