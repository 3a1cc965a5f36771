"""Same config, same seed, clean caches: do two experiment runs give the same rows, weights and table?

    .venv/bin/python benchmarks/reproducibility.py [--config examples/quickstart.toml]
                                                  [--against runs/quickstart] [--work DIR]

Runs ``regenesis experiment CONFIG`` twice, each with its own empty DSPy cache and regenesis cache (so
nothing is read back from the other run), or once when ``--against`` names a finished run of the same
config (``make demo`` writes ``runs/quickstart``). Then it compares, stage by stage: the kept rows of
every synthesis stage (in the canonical order training reads them), the tuned weights of every
checkpoint (sha256 of the safetensors files), every evaluated model's raw outputs per item, and the
report's tables. It prints one line per artefact and the first difference of any that diverged, and
exits 1 when anything diverged.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_experiment(config: Path, out: Path, work: Path) -> float:
    caches = Path(tempfile.mkdtemp(prefix="caches-", dir=work))
    env = {**os.environ, "DSPY_CACHEDIR": str(caches / "dspy"), "REGENESIS_CACHE": str(caches / "regenesis")}
    started = time.perf_counter()
    subprocess.run([str(ROOT / ".venv" / "bin" / "regenesis"), "experiment", str(config), "--out", str(out)],
                   check=True, env=env, cwd=ROOT)
    return time.perf_counter() - started


def canonical_rows(path: Path) -> list[str]:
    return sorted(json.dumps(json.loads(line), sort_keys=True) for line in path.read_text().splitlines()
                  if line.strip())


def weights_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.glob("*.safetensors")):
        digest.update(path.name.encode())
        with open(path, "rb") as handle:
            digest.update(hashlib.file_digest(handle, "sha256").digest())  # streamed: weights can be GBs
    return digest.hexdigest()[:16]


def raw_outputs(folder: Path) -> list[str]:
    records = {}
    for path in sorted((folder / "raw").rglob("*.jsonl")):
        for line in path.read_text().splitlines():
            if line.strip():
                record = json.loads(line)
                records[(path.name, record["id"])] = record["output"]
    return [f"{name} {item}: {text!r}" for (name, item), text in sorted(records.items(), key=str)]


RUN_FOLDER = re.compile(r"`[^`]*?/(round-\d+/)")
UNCOMPARED_SECTIONS = ("## Time per stage", "## Provenance")  # wall-clock times; paths and host


def report_tables(path: Path) -> list[str]:
    """The report's table rows, those of its timing and provenance sections aside."""
    rows, compared = [], True
    for line in path.read_text().splitlines():
        if line.startswith("## "):
            compared = not line.startswith(UNCOMPARED_SECTIONS)
        elif compared and line.startswith("|"):
            rows.append(line)
    return rows


def artefacts(run: Path) -> dict[str, object]:
    # a path into the run's own folder, as it was given to the run, is no difference
    tables = [RUN_FOLDER.sub(r"`<run>/\1", line) for line in report_tables(run / "report.md")]
    found: dict[str, object] = {"report tables": tables}
    for rows in sorted(run.glob("round-*/*/data/train.jsonl")):
        found[f"rows {rows.parent.parent.relative_to(run)}"] = canonical_rows(rows)
    for checkpoint in sorted(run.glob("round-*/*/checkpoint")):
        found[f"weights {checkpoint.parent.relative_to(run)}"] = weights_digest(checkpoint)
    for evaluation in sorted((run / "eval").iterdir()):
        found[f"outputs eval/{evaluation.name}"] = raw_outputs(evaluation)
    return found


def first_difference(a: object, b: object) -> str:
    if isinstance(a, list) and isinstance(b, list):
        for index, (left, right) in enumerate(zip(a, b)):
            if left != right:
                return f"item {index}:\n      {str(left)[:300]}\n    ≠ {str(right)[:300]}"
        return f"{len(a)} items against {len(b)}"
    return f"{a} ≠ {b}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "examples" / "quickstart.toml")
    parser.add_argument("--against", type=Path, help="a finished run of the same config to compare with")
    parser.add_argument("--work", type=Path, help="where the runs and their caches go (default: a temp folder)")
    args = parser.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="reproducibility-"))
    work.mkdir(parents=True, exist_ok=True)
    runs = [args.against.resolve()] if args.against else []
    while len(runs) < 2:
        out = work / f"run-{len(runs) + 1}"
        seconds = run_experiment(args.config.resolve(), out, work)
        print(f"{out}: {seconds / 60:.1f} min", flush=True)
        runs.append(out)
    first, second = (artefacts(run) for run in runs)
    diverged = 0
    for name in sorted(set(first) | set(second)):
        a, b = first.get(name), second.get(name)
        if a == b:
            size = f"{len(a)} items" if isinstance(a, list) else a
            print(f"same      {name} ({size})")
        else:
            diverged += 1
            print(f"DIVERGED  {name}: {first_difference(a, b)}")
    print(f"{diverged} of {len(set(first) | set(second))} artefacts diverged between {runs[0]} and {runs[1]}")
    return 1 if diverged else 0


if __name__ == "__main__":
    sys.exit(main())
