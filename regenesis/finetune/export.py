"""Export a checkpoint to GGUF for llama.cpp (about 6x faster decoding than transformers on a CPU).

The converter is llama.cpp's own ``convert_hf_to_gguf.py``: it knows every architecture llama.cpp
runs. It ships only in llama.cpp's sources, so ``make converter`` (part of ``make install``) downloads
the source package of the pinned llama-cpp-python (the same llama.cpp revision as the runtime that will
load the file), has pip check it against the sha256 in ``requirements/llama-cpp-python-source.txt``, and
keeps just the converter inside the environment (``converter_dir()``). Nothing is fetched at run time;
``llama_cpp_source`` (a llama.cpp checkout) takes the converter from elsewhere. f32/f16/bf16/q8_0 come
from the converter directly; the k-quants (Q4_K_M, Q5_K_M, Q6_K …) from an f16 file through
``llama_model_quantize``.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path

from rich.console import Console

from regenesis.errors import BadInput
from regenesis.finetune.chat_template import without_generation_markers

console = Console(stderr=True)

CONVERTER_TYPES = ("f32", "f16", "bf16", "q8_0")
CONVERTER_FILES = ("convert_hf_to_gguf.py", "conversion/", "gguf-py/")


def export_gguf(ckpt: str | Path, quant: str = "q8_0", *, llama_cpp_source: str | Path | None = None) -> Path:
    """Write ``CKPT/gguf/model-<quant>.gguf`` and return its path (a model spec for ``--model``)."""
    ckpt = Path(ckpt).expanduser()
    if not (ckpt / "config.json").is_file():
        raise BadInput(f"{ckpt}: not a model folder (no config.json); pass a `regenesis finetune` checkpoint")
    quant = _quant_name(quant)
    converter = _converter(llama_cpp_source)
    target = exported_path(ckpt, quant)
    target.parent.mkdir(exist_ok=True)
    with _staged(ckpt) as folder, tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        written = Path(scratch) / target.name
        if quant in CONVERTER_TYPES:
            _convert(converter, folder, written, quant, ckpt.resolve().name)
        else:
            f16 = Path(scratch) / "model-f16.gguf"
            _convert(converter, folder, f16, "f16", ckpt.resolve().name)
            quantize_gguf(f16, written, quant)
        os.replace(written, target)  # whole or not at all: a killed export leaves no partial file to load
    console.print(f"Wrote {target} (use it as --model {target})", markup=False, highlight=False)
    return target


def exported_path(ckpt: str | Path, quant: str) -> Path:
    """Where ``export_gguf(ckpt, quant)`` writes its file."""
    return Path(ckpt).expanduser() / "gguf" / f"model-{_quant_name(quant)}.gguf"


def _quant_name(quant: str) -> str:
    import llama_cpp  # heavy: llama-cpp-python

    if quant.lower() in CONVERTER_TYPES:
        return quant.lower()
    if hasattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{quant.upper()}"):
        return quant.upper()
    raise BadInput(f"unknown GGUF type {quant!r}: use one of {', '.join(CONVERTER_TYPES)} or a llama.cpp "
                   "quantization such as Q4_K_M, Q5_K_M or Q6_K")


@contextmanager
def _staged(ckpt: Path):
    """The checkpoint seen through links, its chat template without generation markers (llama.cpp's Jinja
    does not know those tags)."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for item in ckpt.iterdir():
            if item.is_file() and item.name not in ("chat_template.jinja", "tokenizer_config.json"):
                (folder / item.name).symlink_to(item.resolve())
        template_file = ckpt / "chat_template.jinja"
        if template_file.is_file():
            (folder / template_file.name).write_text(without_generation_markers(template_file.read_text()))
        config_file = ckpt / "tokenizer_config.json"
        if config_file.is_file():
            config = json.loads(config_file.read_text())
            if isinstance(config.get("chat_template"), str):
                config["chat_template"] = without_generation_markers(config["chat_template"])
            (folder / config_file.name).write_text(json.dumps(config))
        yield folder


def _convert(converter: Path, folder: Path, target: Path, outtype: str, model_name: str) -> None:
    console.print(f"Converting to GGUF ({outtype}) with {converter}", markup=False, highlight=False)
    done = subprocess.run([sys.executable, str(converter), str(folder), "--outfile", str(target),
                           "--outtype", outtype, "--model-name", model_name], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"convert_hf_to_gguf.py failed:\n{done.stderr[-3000:]}")


def quantize_gguf(source: Path, target: Path, quant: str) -> None:
    """``source`` (a GGUF file) written to ``target`` with its weights as ``quant`` (a llama.cpp type, e.g.
    ``Q4_K_M``, ``Q8_0``); already quantized weights are re-quantized."""
    import llama_cpp  # heavy: llama-cpp-python

    console.print(f"Quantizing to {quant}", highlight=False)
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{quant}")
    params.allow_requantize = True
    params.nthread = os.cpu_count() or 1
    log = target.with_suffix(".log")
    with _native_stderr_to(log):  # llama.cpp writes a line per tensor straight to the C stderr
        failed = llama_cpp.llama_model_quantize(str(source).encode(), str(target).encode(), ctypes.byref(params))
    if failed:
        raise RuntimeError(f"llama_model_quantize failed to write {target}:\n{log.read_text()[-3000:]}")
    log.unlink()


@contextmanager
def _native_stderr_to(path: Path):
    sys.stderr.flush()
    saved = os.dup(2)
    with open(path, "w") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def converter_dir() -> Path:
    """Where ``make converter`` puts the converter of the installed llama-cpp-python: inside the environment."""
    return Path(sys.prefix) / "share" / "regenesis" / f"llama.cpp-{metadata.version('llama-cpp-python')}"


def _converter(llama_cpp_source: str | Path | None) -> Path:
    if llama_cpp_source is not None:
        script = Path(llama_cpp_source).expanduser() / "convert_hf_to_gguf.py"
        if not script.is_file():
            raise BadInput(f"{llama_cpp_source}: not a llama.cpp source folder (no convert_hf_to_gguf.py)")
        return script
    script = converter_dir() / "convert_hf_to_gguf.py"
    if not script.is_file():
        raise BadInput(f"llama.cpp's GGUF converter is not installed ({script} is missing): run `make converter`, "
                       "or pass a llama.cpp checkout with --llama-cpp DIR")
    return script


def install_converter(archive: Path) -> Path:
    """Extract the converter from a llama-cpp-python source archive into ``converter_dir()``.

    The archive must be of the installed version: the converter writes files that runtime reads.
    """
    version = metadata.version("llama-cpp-python")
    if archive.name != f"llama_cpp_python-{version}.tar.gz":
        raise BadInput(f"{archive}: not the source of the installed llama-cpp-python {version}; pin the same "
                       "version in requirements/constraints.txt and requirements/llama-cpp-python-source.txt")
    root = converter_dir()
    staging = root.with_name(f"{root.name}.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    with tarfile.open(archive) as source:
        for member in source.getmembers():
            _, _, inside = member.name.partition("/vendor/llama.cpp/")
            if inside.startswith(CONVERTER_FILES) and member.isfile():
                member.name = inside
                source.extract(member, staging, filter="data")
    if not (staging / "convert_hf_to_gguf.py").is_file():
        raise BadInput(f"{archive}: holds no vendor/llama.cpp/convert_hf_to_gguf.py")
    shutil.rmtree(root, ignore_errors=True)
    staging.rename(root)
    return root
