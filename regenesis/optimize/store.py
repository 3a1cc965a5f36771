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

from regenesis.errors import BadInput

ROWS_FILE = "train.jsonl"
PROBLEMS_FILE = "problems.jsonl"
RUN_FILE = "run.json"
REPORT_FILE = "report.json"


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
    temporary = path.with_suffix(path.suffix + ".tmp")
    with open(temporary, "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    temporary.replace(path)


def repair_jsonl(path: Path, keep=lambda record: True) -> list[dict]:
    """Read a JSONL file that a killed run may have left torn; rewrite it with only the complete
    records that ``keep`` accepts, so later appends start on a clean line."""
    if not path.exists():
        path.touch()
        return []
    text = path.read_text(encoding="utf-8")
    records = read_jsonl(path)
    kept = [record for record in records if keep(record)]
    if len(kept) != text.count("\n") or (text and not text.endswith("\n")):
        write_jsonl(path, kept)
    return kept


class RunStore:
    """Appends finished problems to an output folder and knows which problems are finished."""

    def __init__(self, out_dir: str | Path, settings: dict):
        self.dir = Path(out_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._check_settings(settings)
        self.problems = repair_jsonl(self.dir / PROBLEMS_FILE)
        self.finished = {p["problem_id"] for p in self.problems}
        self._drop_unfinished_rows()

    @property
    def rows_path(self) -> Path:
        return self.dir / ROWS_FILE

    def _check_settings(self, settings: dict) -> None:
        settings = json.loads(json.dumps(settings, default=str))
        path = self.dir / RUN_FILE
        if path.exists():
            previous = json.loads(path.read_text(encoding="utf-8"))
            changed = sorted(k for k in set(previous) | set(settings) if previous.get(k) != settings.get(k))
            if changed:
                raise BadInput(f"{self.dir} holds a run with other settings ({', '.join(changed)}); "
                               "use another --out folder to start a new run, or the same settings to resume")
        else:
            path.write_text(json.dumps(settings, indent=2, default=str), encoding="utf-8")

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
