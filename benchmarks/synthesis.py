"""The bootstrap loop on GSM8K train problems with the embedded model.

Prints, from one run: the loop's generated tokens/s next to the engine's own tokens/s while it was
generating, summed over the engine's copies (and the share of wall time those copies were busy),
generations per kept row for the default and the `paper` preset, and the solve rate without and
with hints.

    .venv/bin/python benchmarks/synthesis.py [--problems 20] [--paper-problems 2] [--out runs/bench-synthesis]

The paper preset makes about 170 generations per problem (plus as many for a hinted pass), so it
runs on fewer problems by default.
"""

import argparse
import shutil
import time

from common import ROOT, timed_embedded_lm

from regenesis.evals.tasks import load_task
from regenesis.optimize.bootstrap import preset, synthesize


def run(name, examples, out, num_threads):
    lm = timed_embedded_lm()
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    report = synthesize(lm, examples, out, preset(name, method="regenesis", num_threads=num_threads), progress=False)
    wall = time.perf_counter() - started
    engine = lm.engine
    # Busy seconds add up over the engine's copies, which generate side by side.
    return report, wall, engine.busy_seconds / engine.copy_count(), engine.completion_tokens


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=20)
    parser.add_argument("--paper-problems", type=int, default=2)
    parser.add_argument("--num-threads", type=int, default=2)
    parser.add_argument("--out", default=str(ROOT / "runs" / "bench-synthesis"))
    args = parser.parse_args()
    examples = load_task("gsm8k-sample", split="train")
    copies = timed_embedded_lm().engine.copy_count()
    print(f"regenesis bootstrap loop, embedded model, gsm8k-sample train, {args.num_threads} threads, "
          f"{copies} engine copies")
    print(f"{'preset':<8} {'problems':>8} {'gens':>6} {'kept':>5} {'gens/kept':>9} {'solved':>7} "
          f"{'+hint':>6} {'loop tok/s':>10} {'engine tok/s':>12} {'engine busy':>11}", flush=True)
    for name, count in (("default", args.problems), ("paper", args.paper_problems)):
        if not count:
            continue
        report, wall, busy, tokens = run(name, examples[:count], f"{args.out}/{name}", args.num_threads)
        per_kept = report["generations_per_kept_row"]
        print(f"{name:<8} {count:>8} {report['generations']:>6} {report['kept_rows']:>5} "
              f"{per_kept if per_kept is not None else '-':>9} {report['solve_rate']:>7.0%} "
              f"{report['solve_rate_with_hint']:>6.0%} {tokens / wall:>10.1f} {tokens / busy:>12.1f} {busy / wall:>11.0%}")
        dropped = ", ".join(f"{k} {v}" for k, v in sorted(report["dropped"].items())) or "none"
        print(f"  {report['candidates']} candidate paths; dropped: {dropped}; report: {args.out}/{name}/report.json",
              flush=True)


if __name__ == "__main__":
    main()
