"""Training rows in the format a model is asked in, for JSON-constrained models too.

In-process models (and servers that take a JSON schema) are asked through DSPy's JSONAdapter, whose
``format_finetune_data`` raises NotImplementedError; so ``dspy.BootstrapFinetune`` failed after
``configure()``, and trained on ChatAdapter turns while inference asked for JSON.
``FinetuneJSONAdapter`` is that JSONAdapter (the same prompts, the same parsing) that also writes
fine-tuning rows; ``finetune_adapter`` turns the adapter a program runs under into one that can.
"""

from __future__ import annotations

from typing import Any

import dspy


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
