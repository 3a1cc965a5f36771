"""Provenance: the installed versions, the caller's facts, and a Markdown block that carries them all."""

import json
import platform
import re
from importlib import metadata

from regenesis.provenance import NOT_INSTALLED, PACKAGES, provenance, provenance_markdown, versions


def test_versions_are_the_installed_distributions():
    found = versions()
    assert list(found) == list(PACKAGES)
    assert found["dspy"] == metadata.version("dspy")
    assert found["regenesis"] == metadata.version("regenesis")
    assert versions(("no-such-distribution-xyz",)) == {"no-such-distribution-xyz": NOT_INSTALLED}


def test_markdown_carries_every_fact_and_the_config_round_trips():
    config = {"model": None, "seed": 3, "synthesis": {"methods": ["regenesis", "star"], "limit": 5}}
    record = provenance("local/smollm2-135m@sha256:0123abcd", [3, 4], config,
                        "regenesis experiment examples/quickstart.toml --out runs/quickstart")
    assert record["python"].endswith(platform.python_version())
    text = provenance_markdown(record)
    assert "```bash\nregenesis experiment examples/quickstart.toml --out runs/quickstart\n```" in text
    assert "`local/smollm2-135m@sha256:0123abcd`" in text and "- seeds: 3, 4" in text
    for name, version in record["versions"].items():
        assert f"| {name} | {version} |" in text
    block = re.search(r"```json\n(.*?)\n```", text, re.DOTALL).group(1)
    assert json.loads(block) == config
