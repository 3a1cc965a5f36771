"""The distillation stage: fine-tune a model on the synthesized rows, export it, reuse it from DSPy.

- ``finetune(data, base, out, lora=..., epochs=..., ...)``: TRL's SFTTrainer, loss on the assistant turn;
  the checkpoint ``out`` is a model spec (``resolve_lm(out)``, ``--model out``);
- ``export_gguf(out, quant="q8_0")``: ``out/gguf/model-q8_0.gguf`` for llama.cpp (``exported_path``);
- ``finetunable_lm(spec)`` and ``RegenesisProvider``: ``lm.finetune`` and ``dspy.BootstrapFinetune`` run this stage;
- ``dense_base(spec)``: where a base model loads from (a GGUF is converted once to safetensors).
"""

from regenesis.finetune.base import dense_base
from regenesis.finetune.export import export_gguf, exported_path
from regenesis.finetune.provider import RegenesisProvider, finetunable_lm
from regenesis.finetune.train import FinetuneConfig, finetune

__all__ = ["FinetuneConfig", "RegenesisProvider", "dense_base", "export_gguf", "exported_path", "finetunable_lm", "finetune"]
