"""In-process ``dspy.LM`` objects for local models: GGUF files through llama.cpp, Hugging Face folders
through vLLM or transformers."""

from __future__ import annotations

import hashlib
import importlib.util
import os
from pathlib import Path

import dspy

from regenesis.models.embedded import EMBEDDED_MODELS
from regenesis.models.engine import InProcessEngine
from regenesis.models.errors import ModelSpecError
from regenesis.models.llama import LlamaCppEngine
from regenesis.models.source import ModelSource, SourceKind
from regenesis.models.transformers_engine import TransformersEngine
from regenesis.models.vllm_engine import VLLMEngine

HF_ENGINES = {"transformers": TransformersEngine, "vllm": VLLMEngine}


def in_process_lm(source: ModelSource, temperature: float, max_tokens: int, **kwargs) -> dspy.LM:
    """The ``dspy.LM`` of an embedded model, a GGUF file or a Hugging Face folder, its engine in process."""
    if source.kind is SourceKind.EMBEDDED:
        name, engine = EMBEDDED_MODELS[source.spec].fingerprinted_name(), LlamaCppEngine(str(source.path))
    elif source.kind is SourceKind.GGUF:
        name, engine = local_name(source.path), LlamaCppEngine(str(source.path.resolve()))
    else:  # a Hugging Face folder
        name, engine = local_name(source.path), hf_engine(str(source.path.resolve()))
    if "timeout" in kwargs:
        raise ModelSpecError(f"local/{name}: a time limit (--timeout) applies to a remote model; an in-process "
                             "model has no connection to time out")
    return dspy.LM(f"local/{name}", engine=engine, temperature=temperature, max_tokens=max_tokens, **kwargs)


def local_name(path: Path) -> str:
    """A model name for a local file or folder that no other model shares.

    The name is part of DSPy's cache key: two checkpoints both exported as ``model-q8_0.gguf`` (or a
    checkpoint trained again in the same folder) must never read each other's cached answers.
    """
    weights = [path] if path.is_file() else sorted(p for p in path.iterdir() if p.suffix in {".safetensors", ".bin", ".gguf"})
    fingerprint = hashlib.sha1(str(path.absolute()).encode())
    for file in weights:
        stat = file.stat()
        fingerprint.update(f"{file.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return f"{path.stem if path.is_file() else path.name}-{fingerprint.hexdigest()[:10]}"


def hf_engine(path: str) -> InProcessEngine:
    """The engine of a Hugging Face model folder: ``$REGENESIS_ENGINE`` (transformers or vllm) when set,
    else vLLM where it is installed and a GPU is present, else transformers."""
    chosen = os.environ.get("REGENESIS_ENGINE")
    if chosen and chosen not in HF_ENGINES:
        raise ModelSpecError(f"$REGENESIS_ENGINE={chosen!r}: choose one of {', '.join(HF_ENGINES)}")
    if chosen == "vllm" and importlib.util.find_spec("vllm") is None:
        raise ModelSpecError(f"{path}: $REGENESIS_ENGINE=vllm needs vLLM: pip install 'regenesis[vllm]'")
    return HF_ENGINES[chosen or ("vllm" if _vllm_usable() else "transformers")](path)


def _vllm_usable() -> bool:
    if importlib.util.find_spec("vllm") is None:
        return False
    import torch  # heavy: torch, only where vLLM is installed

    return torch.cuda.is_available()
