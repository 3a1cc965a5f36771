"""Training rows in the format a model is asked in, for JSON-constrained models too.

In-process models (and servers that take a JSON schema) are asked through DSPy's JSONAdapter
(``regenesis.models.adapter_for``), whose ``format_finetune_data`` raises NotImplementedError; so
``dspy.BootstrapFinetune`` failed after ``configure()``, and trained on ChatAdapter turns while
inference asked for JSON. ``FinetuneJSONAdapter`` writes the rows as the JSONAdapter prompts and
parses: give it to ``BootstrapFinetune(adapter=FinetuneJSONAdapter())``.
"""

from __future__ import annotations

from typing import Any

import dspy

from regenesis.models import adapter_for


class FinetuneJSONAdapter(dspy.JSONAdapter):
    """DSPy's JSONAdapter that also formats fine-tuning rows: its own prompt, then the outputs as the JSON
    object it parses back."""

    def format_finetune_data(self, signature: type[dspy.Signature], demos: list[dict[str, Any]],
                             inputs: dict[str, Any], outputs: dict[str, Any]) -> dict[str, list[Any]]:
        prompt = self.format(signature=signature, demos=demos, inputs=inputs)
        answer = self.format_assistant_message_content(signature=signature, outputs=outputs)
        return {"messages": [*prompt, {"role": "assistant", "content": answer}]}


def training_adapter(lm: dspy.BaseLM) -> dspy.Adapter:
    """The adapter that formats ``lm``'s training rows: the one ``lm`` is asked through."""
    adapter = adapter_for(lm)
    return FinetuneJSONAdapter() if isinstance(adapter, dspy.JSONAdapter) else adapter
