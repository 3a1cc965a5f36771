"""Distinct samples of one prompt: copies of an LM that differ only in their rollout id (and seed)."""

from __future__ import annotations

from typing import Any

import dspy

from regenesis.models.engine import is_in_process
from regenesis.models.remote import rollout_base


def sampling_lm(lm: dspy.LM, rollout_id: int, temperature: float = 1.0, top_p: float | None = None) -> dspy.LM:
    """A copy of ``lm`` that draws the sample number ``rollout_id`` of any prompt.

    The ``rollout_id`` is part of DSPy's cache key (never sent to a provider), so two ids never share a
    cached completion; it counts from ``rollout_base(lm)``, so two endpoints never share one either.
    In-process engines also get it as the sampling seed: llama.cpp would otherwise
    reuse one seed and return the same text for the same prompt.
    """
    if temperature <= 0:
        raise ValueError("distinct samples need temperature > 0")
    extra: dict[str, Any] = {"top_p": top_p} if top_p is not None else {}
    if is_in_process(lm):
        extra["seed"] = rollout_id
    return lm.copy(rollout_id=rollout_base(lm) + rollout_id, temperature=temperature, **extra)


def sample_lms(lm: dspy.LM, n: int, temperature: float = 1.0, top_p: float | None = None, start: int = 0,
               ) -> list[dspy.LM]:
    """N copies of ``lm`` that draw N distinct samples of the same prompt (rollout ids start..start+n-1).

    Use them as ``with dspy.context(lm=copy): program(...)``; ``start`` offsets the ids so a later batch
    does not repeat an earlier one.
    """
    return [sampling_lm(lm, start + i, temperature, top_p) for i in range(n)]
