"""The adapter a model is asked with, and the fine-tuning rows written in that same format.

Models whose output is held to a JSON schema are asked through DSPy's JSONAdapter, whose
``format_finetune_data`` raises NotImplementedError: ``dspy.BootstrapFinetune`` failed after
``configure()``, and would have trained on ChatAdapter turns while inference asked for JSON.
``FinetuneJSONAdapter`` is that JSONAdapter (the same prompts, the same parsing) that also writes
fine-tuning rows; ``adapter_for`` returns it, and ``finetune_adapter`` turns any adapter a program
runs under into one that can write its own rows.
"""

from __future__ import annotations

from typing import Any

import dspy

from regenesis.models.engine import is_in_process
from regenesis.models.remote import RemoteLM


class FinetuneJSONAdapter(dspy.JSONAdapter):
    """DSPy's JSONAdapter that also formats fine-tuning rows: its own prompt, then the outputs as the JSON
    object it parses back."""

    def format_finetune_data(self, signature: type[dspy.Signature], demos: list[dict[str, Any]],
                             inputs: dict[str, Any], outputs: dict[str, Any]) -> dict[str, list[Any]]:
        prompt = self.format(signature=signature, demos=demos, inputs=inputs)
        answer = self.format_assistant_message_content(signature=signature, outputs=outputs)
        return {"messages": [*prompt, {"role": "assistant", "content": answer}]}


def finetune_adapter(adapter: dspy.Adapter) -> dspy.Adapter:
    """``adapter``, able to format fine-tuning rows: a JSONAdapter becomes a ``FinetuneJSONAdapter``, so the
    rows are the prompts the tuned model will be sent; any other adapter formats its own rows."""
    if isinstance(adapter, dspy.JSONAdapter) and not isinstance(adapter, FinetuneJSONAdapter):
        return FinetuneJSONAdapter()
    return adapter


def adapter_for(lm: dspy.LM) -> dspy.Adapter:
    """The adapter that makes ``lm`` parse reliably.

    DSPy's JSONAdapter (as ``FinetuneJSONAdapter``, so the same adapter also writes the model's
    fine-tuning rows) where the model's output is held to the JSON schema it sends: in-process models
    (xgrammar token masks for GGUF and transformers models, vLLM's structured output) and servers that take a
    JSON-schema ``response_format``; DSPy's default ChatAdapter elsewhere.
    """
    if constrains_output(lm):
        return FinetuneJSONAdapter()
    return dspy.ChatAdapter()


def constrains_output(lm: dspy.BaseLM) -> bool:
    """Whether a structured-output request holds ``lm``'s output to the JSON schema."""
    return is_in_process(lm) or (isinstance(lm, RemoteLM) and lm.supports_response_schema)
