"""The files of a resumable run: JSONL appended one record at a time, JSON replaced in one step, the
settings a resume must match, and the lock that keeps two runs out of one folder.

A run killed mid-write (even ``kill -9``) leaves at most a torn last line; readers skip it and
``repair_jsonl`` cuts it, so the next append starts on a clean line. Whole files (``run.json``,
``report.json``) are written to a temporary file and renamed over the old one, so a reader sees the old
file or the new one, never half of one. Everything written passes through ``regenesis.redact``.
Synthesis (``optimize/store.py``) and evaluation (``evals/evaluate.py``) both keep their outputs this way.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from regenesis.errors import BadInput
from regenesis.redact import redact

SETTINGS_FILE = "run.json"
LOCK_FILE = ".lock"


def output_folder(path: str | Path) -> Path:
    """``path`` as a run's output folder, created if missing; an existing file there is bad input."""
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise BadInput(f"--out {folder}: is a file, not a folder; choose a folder for the run's output")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@contextmanager
def run_lock(folder: str | Path) -> Iterator[Path]:
    """Hold an exclusive lock on an output folder for the length of a run.

    A second run on the same folder (another process, or another open in this one) is refused at
    once. The lock is the kernel's (``flock``), so a killed run releases it with its process.
    """
    folder = output_folder(folder)
    with open(folder / LOCK_FILE, "a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise BadInput(f"{folder} is in use by another regenesis run (pid {holder}); wait for it or "
                           "choose another --out") from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield folder
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one step: a kill leaves the old file or the new one, whole."""
    path = Path(path)
    handle = tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=path.parent, prefix=f".{path.name}.",
                                         suffix=".tmp", delete=False)
    try:
        with handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(handle.name, path)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise


def write_json(path: str | Path, data: Any) -> None:
    """Write ``data`` as indented JSON, redacted, in one step."""
    atomic_write_text(path, redact(json.dumps(data, indent=2, ensure_ascii=False, default=str)) + "\n")


def jsonl_lines(records: list[dict]) -> str:
    """``records`` as redacted JSONL text, one record a line."""
    return "".join(redact(json.dumps(record, ensure_ascii=False)) + "\n" for record in records)


def append_jsonl(path: str | Path, records: list[dict]) -> None:
    """Append ``records`` to a JSONL file in one write; a kill can tear only the last line."""
    if records:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(jsonl_lines(records))


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
    atomic_write_text(path, jsonl_lines(records))


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
    settings = json.loads(redact(json.dumps(settings, default=str)))
    path = folder / SETTINGS_FILE
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        write_json(path, settings)
        return
    previous = json.loads(path.read_text(encoding="utf-8"))
    changed = [f"{key}: {previous.get(key)!r} there, {settings.get(key)!r} now"
               for key in sorted(set(previous) | set(settings)) if previous.get(key) != settings.get(key)]
    if changed:
        raise BadInput(f"{folder} holds a run with other settings ({'; '.join(changed)}). Resume it with the "
                       "same settings, or write to another output folder to start a new run.")
