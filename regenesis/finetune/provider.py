"""A ``dspy.Provider`` backed by the distillation stage, so DSPy's own optimizers can fine-tune a regenesis model.

    lm = finetunable_lm("local/smollm2-135m")            # any base that `regenesis finetune` accepts
    program.set_lm(lm)
    dspy.configure(lm=lm, adapter=adapter_for(lm))       # JSON rows, as the model is asked
    tuned = dspy.BootstrapFinetune(metric=..., train_kwargs={"epochs": 1}).compile(program, trainset=...)

DSPy's own JSONAdapter cannot format fine-tuning rows; ``adapter_for`` gives a model that decodes under
a schema the JSONAdapter that can (``regenesis.models.adapters``), so the rows are the prompts the tuned
model is sent. The tuned checkpoint, a Hugging Face
folder, runs in the transformers engine under the same JSON-schema constraint (xgrammar).

``train_kwargs`` are the ``FinetuneConfig`` fields, plus ``out`` (the checkpoint folder; by default a
folder under ``$REGENESIS_CACHE/finetuned`` named after the base, the rows and the settings, so a
rerun with the same rows reuses the finished checkpoint). The tuned LM is ``resolve_lm(checkpoint)``.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import dspy
from dspy.clients.provider import TrainingJob
from dspy.clients.utils_finetune import TrainDataFormat

from regenesis.errors import BadInput
from regenesis.finetune.base import cache_root
from regenesis.finetune.train import finetune
from regenesis.models import DEFAULT_MODEL, resolve_lm


def finetunable_lm(spec: str | None = None, **kwargs: Any) -> dspy.LM:
    """``resolve_lm(spec)`` that DSPy can fine-tune (``lm.finetune``, ``BootstrapFinetune``) with this stage."""
    spec = spec or DEFAULT_MODEL
    path = Path(spec).expanduser()
    base = str(path.resolve()) if path.exists() else spec  # the LM's own name drops the folder
    return resolve_lm(spec, provider=RegenesisProvider(), finetuning_model=base, **kwargs)


class RegenesisTrainingJob(TrainingJob):
    def status(self) -> str:
        return "done" if self.done() else "running"

    def set_result(self, result):
        # dspy answers with a copy of the base LM renamed to the checkpoint, still running the base
        # model's engine: resolve the checkpoint itself instead.
        if isinstance(result, dspy.LM):
            result = finetunable_lm(result.model, **result.kwargs)
        super().set_result(result)


class RegenesisProvider(dspy.Provider):
    def __init__(self):
        super().__init__()
        self.finetunable = True
        self.TrainingJob = RegenesisTrainingJob

    @staticmethod
    def finetune(job: TrainingJob, model: str, train_data: list[dict[str, Any]],
                 train_data_format: TrainDataFormat | str | None, train_kwargs: dict[str, Any] | None = None) -> str:
        if train_data_format not in (None, TrainDataFormat.CHAT, TrainDataFormat.CHAT.value):
            raise BadInput(f"regenesis fine-tunes on chat rows, not {train_data_format}")
        settings = dict(train_kwargs or {})
        out = Path(settings.pop("out", None) or _default_out(model, train_data, settings))
        out.mkdir(parents=True, exist_ok=True)
        rows = out / "train.jsonl"
        rows.write_text("".join(json.dumps({"messages": row["messages"]}) + "\n" for row in train_data))
        return str(finetune(rows, model, out, resume=True, **settings))


def _default_out(model: str, train_data: list[dict], settings: dict) -> Path:
    key = json.dumps([model, [row["messages"] for row in train_data], settings], sort_keys=True, default=str)
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(model).name)
    return cache_root() / "finetuned" / f"{name}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"
