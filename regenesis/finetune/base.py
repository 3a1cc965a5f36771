"""Base models for fine-tuning: a Hugging Face folder or hub id, any GGUF file, or the embedded default.

A GGUF base is dequantized once into a dense safetensors folder, cached under
``$REGENESIS_CACHE/dense`` (default ``~/.cache/regenesis/dense``), which transformers and TRL then
load like any other folder.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console

from regenesis.errors import BadInput
from regenesis.models import ModelSpecError, SourceKind, model_source

console = Console(stderr=True)


def cache_root() -> Path:
    return Path(os.environ.get("REGENESIS_CACHE") or Path.home() / ".cache" / "regenesis").expanduser()


def dense_base(spec: str | None) -> str:
    """Where transformers loads the base ``spec`` from: a local folder, or a hub id for ``from_pretrained``.

    The spec is read by ``model_source``, as for inference; a GGUF model (the embedded one too) is
    trained from its dense conversion.
    """
    try:
        source = model_source(spec)
    except ModelSpecError as exc:
        raise BadInput(f"base model: {exc}") from exc
    if source.kind is SourceKind.PROVIDER:
        raise BadInput(f"base model {source.spec!r}: a hosted model of the LiteLLM provider {source.provider!r} "
                       "cannot be fine-tuned; give an embedded model, a .gguf file, a Hugging Face folder or a hub id "
                       "(org/name; for a hub id whose org is a provider's name, download it and give its folder)")
    if source.kind is SourceKind.HUB:
        return source.spec
    if source.kind is SourceKind.HF_FOLDER:
        return str(source.path.resolve())
    return str(dense_from_gguf(source.path))


def load_tokenizer(source: str, spec: str):
    from transformers import AutoTokenizer  # heavy: transformers

    with _naming_missing_hub_model(source, spec):
        return AutoTokenizer.from_pretrained(source)


def load_model(source: str, spec: str):
    import torch  # heavy: torch
    from transformers import AutoModelForCausalLM  # heavy: transformers

    with _naming_missing_hub_model(source, spec):
        return AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32)


def dense_from_gguf(gguf: Path) -> Path:
    """The cached dense safetensors folder of a GGUF model, converted on first use. It is named after the
    file's content, so copies of one model (the embedded one in each checkout's environment) share it."""
    gguf = gguf.resolve()
    stat = gguf.stat()
    key = _content_key(str(gguf), stat.st_size, stat.st_mtime_ns)
    target = cache_root() / "dense" / key
    if (target / "config.json").is_file():
        return target
    console.print(f"Converting {gguf.name} to a dense safetensors folder (once): {target}", markup=False, highlight=False)
    staging = target.with_name(f"{key}.tmp-{os.getpid()}")
    _convert_gguf(gguf, staging)
    try:
        staging.rename(target)
    except OSError:  # another process (e.g. another rank) finished first
        shutil.rmtree(staging, ignore_errors=True)
    return target


@functools.lru_cache(maxsize=8)
def _content_key(path: str, size: int, mtime_ns: int) -> str:
    """sha256 of the file's bytes (0.2 s for the embedded model), once per file version."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def _convert_gguf(gguf: Path, folder: Path) -> None:
    import torch  # heavy: torch
    from transformers import AutoModelForCausalLM, AutoTokenizer  # heavy: transformers

    with _gguf_parsed_once():
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # The dequantized model still carries the GGUF quantizer, which refuses training and saving.
    if getattr(model, "hf_quantizer", None) is not None:
        model.hf_quantizer.remove_quantization_config(model)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    (folder / "regenesis-source.json").write_text(json.dumps({"gguf": str(gguf)}) + "\n")


@contextmanager
def _gguf_parsed_once():
    """transformers parses a GGUF file three times to load its tokenizer, config and weights, and builds
    gguf's tensor-name table once per module (397 times for the embedded model). Both are pure functions of
    their arguments, so during a conversion each is made once: the embedded model converts in 17 s, not 38."""
    import gguf  # heavy: gguf

    reader, name_map = gguf.GGUFReader, gguf.get_tensor_name_map
    gguf.GGUFReader = functools.lru_cache(maxsize=2)(reader)
    gguf.get_tensor_name_map = functools.lru_cache(maxsize=8)(name_map)
    try:
        yield
    finally:
        gguf.GGUFReader, gguf.get_tensor_name_map = reader, name_map


@contextmanager
def _naming_missing_hub_model(source: str, spec: str):
    """Turns from_pretrained's failure on a hub id (offline, unknown, gated) into a BadInput naming it."""
    try:
        yield
    except OSError as exc:
        if Path(source).exists():
            raise
        raise BadInput(f"base model {spec!r}: cannot load the Hugging Face hub model {source!r} "
                       f"(no network, unknown id or no access): {exc}") from exc
