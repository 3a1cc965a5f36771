"""What every check returns, and the bound on what any check reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from regenesis.tasks.example import Example


@dataclass(frozen=True)
class Verdict:
    """One filter's decision on one path; ``reason`` says why it failed, ``detail`` is provenance."""

    filter: str
    passed: bool
    reason: str = ""
    detail: dict = field(default_factory=dict)


class PathFilter(Protocol):
    name: str

    def check(self, path: str, example: Example) -> Verdict: ...


MAX_PATH_CHARS = 20_000  # no checker reads a longer path: it fails as too long to check


def too_long_to_check(path: str) -> str:
    """Why no checker reads ``path`` (it is longer than ``MAX_PATH_CHARS``), or ""."""
    return f"too long to check: {len(path)} characters (limit {MAX_PATH_CHARS})" if len(path) > MAX_PATH_CHARS else ""
