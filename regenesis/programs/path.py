"""The predictor of a step that writes a reasoning path: the text a training row will hold."""

from __future__ import annotations

import dspy
from dspy.signatures.signature import ensure_signature

from regenesis.models.adapters import path_adapter

REASONING = dspy.OutputField(desc="the complete step-by-step reasoning, every step worked out, ending in the final answer")


def reasoning_first(signature: str | type[dspy.Signature]) -> type[dspy.Signature]:
    """``signature`` with the reasoning as its first output, as ``dspy.ChainOfThought`` extends it."""
    return ensure_signature(signature).prepend("reasoning", REASONING, type_=str)


class PathPredict(dspy.Predict):
    """``dspy.Predict`` for a signature whose first output is ``reasoning``, asked under ``path_adapter``:
    in plain text where the program's adapter would hold a free-text answer to a JSON schema, so that the
    reasoning is as long as the model's own chain of thought."""

    def forward(self, **kwargs):
        with dspy.context(adapter=path_adapter(dspy.settings.adapter, self.signature)):
            return super().forward(**kwargs)

    async def aforward(self, **kwargs):
        with dspy.context(adapter=path_adapter(dspy.settings.adapter, self.signature)):
            return await super().aforward(**kwargs)
