"""Provenance: what produced a run's numbers, and the one command that reproduces them."""

from __future__ import annotations

import json
import platform
from collections.abc import Mapping, Sequence
from importlib import metadata

# The distributions whose versions change a run's numbers, as they are named on PyPI.
PACKAGES = ("regenesis", "dspy", "litellm", "transformers", "trl", "torch", "llama-cpp-python")
NOT_INSTALLED = "not installed"


def versions(packages: Sequence[str] = PACKAGES) -> dict[str, str]:
    found = {}
    for name in packages:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = NOT_INSTALLED
    return found


def provenance(model_fingerprint: str, seeds: Sequence[int], config: Mapping, command: str) -> dict:
    """Versions, interpreter and platform, with what the caller knows: the model's fingerprint, the
    seeds, the resolved config and the command that reproduces the run."""
    return {"versions": versions(), "python": f"{platform.python_implementation()} {platform.python_version()}",
            "platform": platform.platform(), "model_fingerprint": model_fingerprint,
            "seeds": list(seeds), "config": dict(config), "command": command}


def provenance_markdown(record: Mapping) -> str:
    """The ``provenance`` record as a Markdown section."""
    version_rows = "\n".join(f"| {name} | {version} |" for name, version in record["versions"].items())
    config = json.dumps(record["config"], indent=2, sort_keys=True, default=str, ensure_ascii=False)
    return (f"## Provenance\n\n"
            f"Reproduce with:\n\n```bash\n{record['command']}\n```\n\n"
            f"- model: `{record['model_fingerprint']}`\n"
            f"- seeds: {', '.join(map(str, record['seeds'])) or 'none beyond the rollout ids: each sample is seeded by its own'}\n"
            f"- python: {record['python']} on {record['platform']}\n\n"
            f"| package | version |\n|---|---|\n{version_rows}\n\n"
            f"Resolved configuration:\n\n```json\n{config}\n```\n")
