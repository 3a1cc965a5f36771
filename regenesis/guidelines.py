"""The seed library of general reasoning guidelines, as data users can replace or extend."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from regenesis.errors import BadInput


@dataclass(frozen=True)
class Guideline:
    name: str
    text: str


def load_guidelines(path: str | Path | None = None) -> list[Guideline]:
    """Read guidelines from a text file with one ``name: text`` per line (``#`` starts a comment).

    With no path, the seed library shipped with regenesis (``regenesis/data/guidelines.txt``).
    """
    if path is None:
        source = resources.files("regenesis") / "data" / "guidelines.txt"
        label = "regenesis/data/guidelines.txt"
    else:
        source, label = Path(path), str(path)
        if not source.is_file():
            raise BadInput(f"--guidelines {label}: no such file")
    guidelines = []
    for number, line in enumerate(source.read_text(encoding="utf-8").splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, text = line.partition(":")
        if not sep or not name.strip() or not text.strip():
            raise BadInput(f"{label}, line {number}: expected 'name: guideline text', got {line[:60]!r}")
        guidelines.append(Guideline(name.strip(), text.strip()))
    if not guidelines:
        raise BadInput(f"{label}: holds no guidelines")
    names = [g.name for g in guidelines]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise BadInput(f"{label}: duplicate guideline names {duplicates}")
    return guidelines


def numbered(guidelines: list[Guideline]) -> str:
    return "\n".join(f"{i}. {g.text}" for i, g in enumerate(guidelines, start=1))


def as_text(guidelines: list[Guideline]) -> str:
    return "\n".join(f"- {g.text}" for g in guidelines)
