"""Every synthesis method on the same GSM8K train problems at the same budget, side by side.

Prints kept rows, problems covered, generations and completion tokens per kept row, and distinct
reasoning paths per covered problem (kept paths whose word-trigram Jaccard similarity to every other
kept path of the problem is below 0.5).

    .venv/bin/python benchmarks/methods.py [--problems 20] [--generations 4] [--out runs/bench-methods]
"""

import argparse
import json
import shutil
from collections import defaultdict
from pathlib import Path

from common import ROOT, distinct_paths, timed_embedded_lm

from regenesis.tasks import load_task
from regenesis.optimize.bootstrap import synthesize
from regenesis.optimize.config import SynthesisConfig

METHODS = [("regenesis", {}), ("regenesis", {"label_free": True}), ("star", {}), ("lmsi", {}), ("cot", {}),
           ("self-discover", {})]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=20)
    parser.add_argument("--generations", type=int, default=4, help="generations per problem, every method")
    parser.add_argument("--num-threads", type=int, default=2)
    parser.add_argument("--out", default=str(ROOT / "runs" / "bench-methods"))
    args = parser.parse_args()
    examples = load_task("gsm8k-sample", split="train", limit=args.problems)

    print(f"{len(examples)} gsm8k-sample train problems, {args.generations} generations per problem "
          f"(plus a hinted pass where the method has one), embedded model")
    print(f"{'method':<22} {'kept':>5} {'covered':>8} {'gens':>6} {'gens/kept':>9} {'tok/kept':>9} "
          f"{'distinct/problem':>16}  dropped (answer mismatch, then each quality filter)")
    for name, extra in METHODS:
        label = name + ("-label-free" if extra.get("label_free") else "")
        out = Path(args.out) / label
        shutil.rmtree(out, ignore_errors=True)
        config = SynthesisConfig(method=name, generations=args.generations, num_threads=args.num_threads, **extra)
        report = synthesize(timed_embedded_lm(), examples, out, config, progress=False)
        by_problem = defaultdict(list)
        for line in (out / "train.jsonl").read_text().splitlines():
            row = json.loads(line)
            by_problem[row["meta"]["problem_id"]].append(row["messages"][1]["content"])
        distinct = [distinct_paths(paths) for paths in by_problem.values()]
        kept = report["kept_rows"]
        per_kept = f"{report['generations'] / kept:.1f}" if kept else "-"
        tokens = f"{report['completion_tokens'] / kept:.0f}" if kept else "-"
        mean_distinct = f"{sum(distinct) / len(distinct):.2f}" if distinct else "-"
        dropped = ", ".join(f"{k} {v}" for k, v in sorted(report["dropped"].items())) or "-"
        print(f"{label:<22} {kept:>5} {len(by_problem):>8} {report['generations']:>6} {per_kept:>9} {tokens:>9} "
              f"{mean_distinct:>16}  {dropped}")


if __name__ == "__main__":
    main()
