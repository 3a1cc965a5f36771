"""The files of a resumable run: JSONL appended one record at a time, and the settings a resume must match.

A run killed mid-write (even ``kill -9``) leaves at most a torn last line; readers skip it and
``repair_jsonl`` cuts it, so the next append starts on a clean line. Synthesis (``optimize/store.py``)
and evaluation (``evals/evaluate.py``) both keep their outputs this way.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from regenesis.errors import BadInput

SETTINGS_FILE = "run.json"


def read_jsonl(path: Path) -> list[dict]:
    """The complete records of a JSONL file; a torn last line (from a killed writer) is left out."""
    if not path.exists():
        return []
    records = []
    lines = path.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            if number == len(lines):
                break
            raise BadInput(f"{path}, line {number}: not valid JSON") from None
    return records


def write_jsonl(path: Path, records: list[dict]) -> None:
    """Replace ``path`` with ``records`` in one step (a kill leaves the old file or the new one)."""
    temporary = path.with_suffix(path.suffix + ".tmp")
    with open(temporary, "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    temporary.replace(path)


def repair_jsonl(path: Path, keep: Callable[[dict], bool] = lambda record: True) -> list[dict]:
    """Read a JSONL file that a killed run may have left torn; rewrite it with only the complete
    records that ``keep`` accepts, so later appends start on a clean line."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
        return []
    text = path.read_text(encoding="utf-8")
    records = read_jsonl(path)
    kept = [record for record in records if keep(record)]
    if len(kept) != text.count("\n") or (text and not text.endswith("\n")):
        write_jsonl(path, kept)
    return kept


def check_settings(folder: Path, settings: Mapping[str, Any]) -> None:
    """Record ``settings`` in a new run folder, or refuse to resume a run made with other settings."""
    settings = json.loads(json.dumps(settings, default=str))
    path = folder / SETTINGS_FILE
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
        return
    previous = json.loads(path.read_text(encoding="utf-8"))
    changed = [f"{key}: {previous.get(key)!r} there, {settings.get(key)!r} now"
               for key in sorted(set(previous) | set(settings)) if previous.get(key) != settings.get(key)]
    if changed:
        raise BadInput(f"{folder} holds a run with other settings ({'; '.join(changed)}). Resume it with the "
                       "same settings, or write to another output folder to start a new run.")
