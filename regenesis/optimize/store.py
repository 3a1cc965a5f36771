"""The on-disk contract of a synthesis run, written so that a killed run resumes exactly.

An output folder holds:

- ``train.jsonl``: the training rows, ``{"messages": [user, assistant], "meta": {...provenance...}}``.
  Load with ``datasets.load_dataset("json", data_files="DIR/train.jsonl")``.
- ``problems.jsonl``: one record per finished problem (its counts: generations, tokens, kept, why
  candidates were dropped). A problem is finished once its record is here.
- ``run.json``: the settings of the run; a rerun with other settings into the same folder is refused.
- ``report.json``: the cost report, rebuilt from ``problems.jsonl`` at the end of each run.

A problem's rows are appended before its record. After a kill, rows without a record (and a torn last
line) are dropped on the next start, and the problem is done again; so the rows on disk are always
exactly those of the finished problems.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

from regenesis.runfiles import check_settings, repair_jsonl

ROWS_FILE = "train.jsonl"
PROBLEMS_FILE = "problems.jsonl"
REPORT_FILE = "report.json"


class RunStore:
    """Appends finished problems to an output folder and knows which problems are finished."""

    def __init__(self, out_dir: str | Path, settings: dict):
        self.dir = Path(out_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        check_settings(self.dir, settings)
        self.problems = repair_jsonl(self.dir / PROBLEMS_FILE)
        self.finished = {p["problem_id"] for p in self.problems}
        self._drop_unfinished_rows()

    @property
    def rows_path(self) -> Path:
        return self.dir / ROWS_FILE

    def _drop_unfinished_rows(self) -> None:
        repair_jsonl(self.rows_path, keep=lambda row: row["meta"]["problem_id"] in self.finished)

    def add(self, rows: list[dict], problem: dict) -> None:
        """Append one finished problem: its rows first, then its record (which marks it finished)."""
        with self._lock:
            with open(self.rows_path, "a", encoding="utf-8") as handle:
                for row in rows:
                    handle.write(json.dumps(row, ensure_ascii=False) + "\n")
            with open(self.dir / PROBLEMS_FILE, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(problem, ensure_ascii=False) + "\n")
            self.problems.append(problem)
            self.finished.add(problem["problem_id"])

    def write_report(self, report: dict) -> Path:
        path = self.dir / REPORT_FILE
        path.write_text(json.dumps(report, indent=2), encoding="utf-8")
        return path
