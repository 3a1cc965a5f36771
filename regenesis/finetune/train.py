"""The distillation stage: TRL's SFTTrainer on the synthesized rows, loss on the assistant turn only.

A finished checkpoint folder ``OUT`` holds the model (safetensors, LoRA merged in), the tokenizer with
its training chat template, ``finetune.json`` (the run's settings and figures) and
``training_log.jsonl`` (loss and learning rate per logged step) with ``training_curve.png`` beside it.
It is a model spec as it stands: ``--model OUT``. While training, ``OUT/checkpoints`` holds the latest
resumable checkpoint; ``resume=True`` continues from it after an interruption and it is removed once the
run finishes. ``report_to`` is TRL's: ``tensorboard`` writes event files under ``OUT/checkpoints/runs``
while training, moved to ``OUT/runs`` at the end; ``trackio`` and ``wandb`` follow their own settings.
"""

from __future__ import annotations

import importlib.util
import json
import resource
import shutil
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from rich.console import Console

from regenesis.errors import BadInput
from regenesis.finetune.base import dense_base, load_model, load_tokenizer
from regenesis.finetune.chat_template import training_template
from regenesis.finetune.data import Rows, check_lengths, load_rows
from regenesis.finetune.curves import write_training_log
from regenesis.models import DEFAULT_MODEL
from regenesis.runfiles import atomic_write_text, write_json
from regenesis.settings import check, dotted, schema

console = Console(stderr=True)

RUN_FILE = "finetune.json"
CHECKPOINTS = "checkpoints"
TRACKER_LOGS = "runs"  # where transformers' TensorBoard callback writes, under the trainer's output_dir
PRECISIONS = ("auto", "fp32", "bf16")
TRACKER_PACKAGES = {"none": (), "tensorboard": ("tensorboard", "tensorboardX"), "trackio": ("trackio",),
                    "wandb": ("wandb",)}
REPORT_TO = tuple(TRACKER_PACKAGES)


@dataclass(frozen=True)
class FinetuneConfig:
    """Training settings; ``lr=None`` means 2e-5 for full fine-tuning and 2e-4 for LoRA."""

    lora: bool = False
    epochs: float = 2.0
    lr: float | None = None
    max_length: int = 1024
    batch_size: int = 4
    grad_accum: int = 1
    max_steps: int = -1
    precision: str = "auto"
    save_steps: int = 100
    seed: int = 0
    lora_r: int = 16
    lora_alpha: int = 32
    gradient_checkpointing: bool = False
    report_to: str = "none"

    def __post_init__(self):
        positive = {"epochs": self.epochs, "max_length": self.max_length, "batch_size": self.batch_size,
                    "grad_accum": self.grad_accum, "save_steps": self.save_steps, "lora_r": self.lora_r}
        if self.lr is not None:
            positive["lr"] = self.lr
        for name, value in positive.items():
            if value <= 0:
                raise BadInput(f"finetune: {name} must be positive (got {value})")
        if self.precision not in PRECISIONS:
            raise BadInput(f"finetune: precision must be one of {', '.join(PRECISIONS)} (got {self.precision!r})")
        if self.report_to not in TRACKER_PACKAGES:
            raise BadInput(f"finetune: report_to must be one of {', '.join(REPORT_TO)} (got {self.report_to!r})")
        packages = TRACKER_PACKAGES[self.report_to]
        if packages and not any(importlib.util.find_spec(package) for package in packages):
            raise BadInput(f"finetune: report_to {self.report_to} needs the {packages[0]} package "
                           f"(pip install {packages[0]})")

    @classmethod
    def of(cls, **settings: Any) -> FinetuneConfig:
        known = {field.name for field in fields(cls)}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise BadInput(f"finetune: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**settings)

    @classmethod
    def from_toml(cls, table: dict, where: str = "finetune") -> FinetuneConfig:
        """A ``[finetune]`` table of these fields; an unknown key or a value of the wrong type is named."""
        return cls(**check(table, schema(cls), dotted(where), where))

    @classmethod
    def from_args(cls, args) -> FinetuneConfig:
        """The ``finetune`` command's flags (an argparse namespace): ``--max-length`` sets ``max_length``."""
        return cls.from_toml({name: getattr(args, name) for name in FLAGS}, where="finetune")

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else (2e-4 if self.lora else 2e-5)

    def model_settings(self) -> dict[str, Any]:
        """The settings that decide the trained model, which a resume must match: all but the tracker."""
        settings = asdict(self)
        del settings["report_to"]
        return settings


# The finetune command's flags are these fields (``--grad-accum`` sets ``grad_accum``); the LoRA rank and
# alpha are set from a config file or from Python only.
FLAGS = tuple(field.name for field in fields(FinetuneConfig) if field.name not in ("lora_r", "lora_alpha"))


def finetune(data: str | Path, base: str | None, out: str | Path, *, resume: bool = False,
             callbacks: tuple = (), **settings: Any) -> Path:
    """Fine-tune ``base`` on the rows in ``data`` and save the checkpoint in ``out``; returns ``out``.

    ``settings`` are the fields of ``FinetuneConfig`` (``lora``, ``epochs``, ``lr``, ``max_length`` …).
    Every check on the input runs before any training starts. ``callbacks`` are extra TrainerCallbacks.
    """
    from regenesis.finetune.callbacks import RichProgress, SkipFinalCheckpoint  # heavy: transformers' trainer

    config = FinetuneConfig.of(**settings)
    base = base or DEFAULT_MODEL
    out = Path(out).expanduser()
    rows = load_rows(data)
    run = {"base": base, "data": str(rows.file.resolve()), "rows": len(rows.messages), "rows_digest": rows.digest(),
           "settings": config.model_settings(), "report_to": config.report_to}
    if _already_finished(out, run, resume):
        console.print(f"{out} already holds this finished run", markup=False, highlight=False)
        return out

    source = dense_base(base)
    tokenizer = load_tokenizer(source, base)
    tokenizer.chat_template = training_template(tokenizer, base)
    run["longest_row_tokens"] = check_lengths(rows, tokenizer, tokenizer.chat_template, config.max_length)
    model = load_model(source, base)

    run["device"], run["precision"] = _device_and_precision(config)
    progress = RichProgress(console)
    trainer = _trainer(model, tokenizer, rows, config, out, run["device"], run["precision"],
                       [progress, SkipFinalCheckpoint(), *callbacks])
    if trainer.is_world_process_zero():
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / RUN_FILE, run)
    checkpoint = _last_checkpoint(out) if resume else None
    if checkpoint:
        console.print(f"Resuming from {checkpoint}", markup=False, highlight=False)
    try:
        trainer.train(resume_from_checkpoint=checkpoint)
    finally:
        progress.close()
    _save(trainer, tokenizer, out, config.lora)
    if trainer.is_world_process_zero():
        _portable_tokenizer_config(out)
        write_training_log(out, trainer.state.log_history)
        write_json(out / RUN_FILE, {**run, "result": _result(trainer, _step_of(checkpoint))})
        _keep_tracker_logs(out)
        shutil.rmtree(out / CHECKPOINTS, ignore_errors=True)
        console.print(f"Saved the fine-tuned model to {out} (use it as --model {out})", markup=False, highlight=False)
    return out


def _already_finished(out: Path, run: dict, resume: bool) -> bool:
    """True when ``out`` holds this run finished; refuses to clobber another run or an unasked resume."""
    if not (out / RUN_FILE).is_file():
        if (out / "config.json").is_file():
            raise BadInput(f"{out} already holds a model; choose another --out")
        return False
    previous = json.loads((out / RUN_FILE).read_text())
    if not resume:
        what = "a fine-tuned model" if "result" in previous else "an interrupted run (pass --resume to continue it)"
        raise BadInput(f"{out} already holds {what}; choose another --out")
    changed = [key for key in ("base", "rows_digest", "settings") if previous.get(key) != run[key]]
    if changed:
        raise BadInput(f"{out}: cannot resume, the {', '.join(changed)} differ from the interrupted run's")
    return "result" in previous


def _device_and_precision(config: FinetuneConfig) -> tuple[str, str]:
    import torch  # heavy: torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    if config.precision != "auto":
        return device, config.precision
    return device, "bf16" if device == "cuda" and torch.cuda.is_bf16_supported() else "fp32"


def _trainer(model, tokenizer, rows: Rows, config: FinetuneConfig, out: Path, device: str, precision: str,
             callbacks: list):
    from transformers import PrinterCallback  # heavy: transformers
    from trl import SFTConfig, SFTTrainer  # heavy: trl

    args = SFTConfig(
        output_dir=str(out / CHECKPOINTS),
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        learning_rate=config.learning_rate,
        per_device_train_batch_size=config.batch_size,
        gradient_accumulation_steps=config.grad_accum,
        max_length=config.max_length,
        assistant_only_loss=True,
        bf16=precision == "bf16",
        use_cpu=device == "cpu",
        activation_checkpointing=config.gradient_checkpointing,
        logging_steps=1,
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=1,
        include_num_input_tokens_seen="non_padding",
        report_to=config.report_to,
        disable_tqdm=True,
        seed=config.seed,
    )
    trainer = SFTTrainer(model=model, args=args, train_dataset=rows.dataset(), processing_class=tokenizer,
                         peft_config=_lora_config(config) if config.lora else None,
                         callbacks=callbacks)
    trainer.remove_callback(PrinterCallback)  # rich shows the progress and the loss instead
    return trainer


def _lora_config(config: FinetuneConfig):
    from peft import LoraConfig  # heavy: peft, only for LoRA

    return LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=0.05,
                      target_modules="all-linear", task_type="CAUSAL_LM")


def _last_checkpoint(out: Path) -> str | None:
    from transformers.trainer_utils import get_last_checkpoint  # heavy: transformers

    folder = out / CHECKPOINTS
    return get_last_checkpoint(str(folder)) if folder.is_dir() else None


def _save(trainer, tokenizer, out: Path, lora: bool) -> None:
    if not lora:
        trainer.save_model(str(out))  # on every rank: sharded setups gather the weights together
        return
    if trainer.is_world_process_zero():
        merged = trainer.accelerator.unwrap_model(trainer.model).merge_and_unload()
        merged.save_pretrained(out)
        tokenizer.save_pretrained(out)


def _portable_tokenizer_config(out: Path) -> None:
    """transformers 5 names a tokenizer read from a GGUF file ``TokenizersBackend``, a class that
    transformers 4 (still under some vLLM and SGLang releases) lacks; ``PreTrainedTokenizerFast`` is the
    same class in both."""
    path = out / "tokenizer_config.json"
    config = json.loads(path.read_text())
    if config.get("tokenizer_class") == "TokenizersBackend":
        portable = {**config, "tokenizer_class": "PreTrainedTokenizerFast"}
        atomic_write_text(path, json.dumps(portable, indent=2) + "\n")  # a model file: not redacted


def _keep_tracker_logs(out: Path) -> None:
    """Move the tracker's local logs (TensorBoard's event files) out of the checkpoints folder, which goes."""
    logs = out / CHECKPOINTS / TRACKER_LOGS
    if not logs.is_dir():
        return
    (out / TRACKER_LOGS).mkdir(exist_ok=True)
    for session in logs.iterdir():  # one folder per training session: a resumed run has two
        shutil.move(session, out / TRACKER_LOGS / session.name)


def _step_of(checkpoint: str | None) -> int:
    return int(checkpoint.rsplit("-", 1)[1]) if checkpoint else 0


def _result(trainer, start_step: int) -> dict:
    """The run's figures. Speeds count this session's steps only (after a resume, not the earlier ones);
    peak memory is the GPU's on CUDA, the process's resident memory on a CPU."""
    import torch  # heavy: torch

    state = trainer.state
    summary = next((entry for entry in reversed(state.log_history) if "train_runtime" in entry), {})
    losses = [entry["loss"] for entry in state.log_history if "loss" in entry]
    seconds = summary.get("train_runtime", 0.0)
    steps = state.global_step - start_step
    tokens = state.num_input_tokens_seen * steps / state.global_step if state.global_step else 0
    if torch.cuda.is_available():
        peak_mb = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "steps": state.global_step,
        "train_seconds": round(seconds, 2),
        "seconds_per_step": round(seconds / steps, 3) if steps else None,
        "tokens_seen": int(state.num_input_tokens_seen),
        "tokens_per_second": round(tokens / seconds, 1) if seconds else None,
        "first_loss": losses[0] if losses else None,
        "final_loss": losses[-1] if losses else None,
        "peak_memory_mb": round(peak_mb),
    }
