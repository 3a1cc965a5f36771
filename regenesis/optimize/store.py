"""The on-disk contract of a synthesis run, written so that a killed run resumes exactly.

An output folder holds:

- ``train.jsonl``: the training rows, ``{"messages": [user, assistant], "meta": {...provenance...}}``.
  Load with ``datasets.load_dataset("json", data_files="DIR/train.jsonl")``.
- ``problems.jsonl``: one record per problem done (its counts: generations, tokens, kept, why
  candidates were dropped). ``status`` is ``finished``, or ``failed`` when a model call failed
  (``error_kind`` says how); a failed problem has no rows and is done again by the next run.
- ``run.json``: the settings of the run; a rerun with other settings into the same folder is refused.
- ``report.json``: the cost report, rebuilt from ``problems.jsonl`` at the end of each run.
- ``.lock``: held while a run writes here; a second run on the folder is refused.

A problem's rows are appended before its record. After a kill, rows without a finished record (and a
torn last line) are dropped on the next start, and the problem is done again; so the rows on disk are
always exactly those of the finished problems.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from regenesis.runfiles import append_jsonl, check_settings, read_jsonl, repair_jsonl, run_lock, write_json

ROWS_FILE = "train.jsonl"
PROBLEMS_FILE = "problems.jsonl"
REPORT_FILE = "report.json"
FINISHED, FAILED = "finished", "failed"  # a record's status


@contextmanager
def open_run(out_dir: str | Path, settings: dict) -> Iterator[RunStore]:
    """The store of an output folder, locked against other runs for as long as it is open."""
    with run_lock(out_dir) as folder:
        yield RunStore(folder, settings)


class RunStore:
    """Appends done problems to an output folder and knows which problems are finished.

    Open it with ``open_run``, which holds the folder's lock.
    """

    def __init__(self, out_dir: Path, settings: dict):
        self.dir = out_dir
        self._lock = threading.Lock()
        check_settings(self.dir, settings)
        self.problems = repair_jsonl(self.dir / PROBLEMS_FILE, keep=lambda p: p["status"] == FINISHED)
        self.finished = {p["problem_id"] for p in self.problems}
        repair_jsonl(self.rows_path, keep=lambda row: row["meta"]["problem_id"] in self.finished)

    @property
    def rows_path(self) -> Path:
        return self.dir / ROWS_FILE

    def add(self, rows: list[dict], problem: dict) -> None:
        """Append one done problem: its rows first, then its record (which marks it finished or failed)."""
        with self._lock:
            append_jsonl(self.rows_path, rows)
            append_jsonl(self.dir / PROBLEMS_FILE, [problem])
            self.problems.append(problem)
            if problem["status"] == FINISHED:
                self.finished.add(problem["problem_id"])

    def write_report(self, report: dict) -> Path:
        path = self.dir / REPORT_FILE
        write_json(path, report)
        return path


def rows_dataset(out_dir: str | Path):
    """The training rows of a run folder as a ``datasets.Dataset`` (``messages`` and ``meta``), to
    ``save_to_disk`` or ``push_to_hub`` (which needs a Hugging Face token)."""
    from datasets import Dataset  # heavy: the datasets library

    return Dataset.from_list(read_jsonl(Path(out_dir) / ROWS_FILE))
