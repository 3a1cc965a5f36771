"""Throughput of the in-process llama.cpp engine: one model copy, one copy per core, and one copy per core
decoding several requests together as one batch (``batch_size``).

Sampled generations (150 tokens at most) asked from two threads, as the bootstrap loop and ``evaluate``
ask them with ``--num-threads 2``, and, for the batched engine, from as many threads as its copies have
batch slots; each configuration runs twice, alternating.

    .venv/bin/python benchmarks/engine_copies.py [--requests 8] [--max-tokens 150] [--batch-size 4]
        [--model PATH.gguf]

Whether a batch pays depends on llama.cpp's CPU kernels for the weights' type: Q4_1 (the embedded model)
costs the same per token however many tokens a step holds, Q8_0 (``regenesis export-gguf --quant q8_0``)
has a matrix-matrix kernel that reads each weight block once for the whole batch.
"""

import argparse
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from common import TimedLlamaCppEngine

import dspy
from regenesis.models import LlamaCppEngine, resolve_lm


def run(engine: TimedLlamaCppEngine, model: str, threads: int, requests: int, max_tokens: int) -> tuple[float, int]:
    lm = dspy.LM(model, engine=engine, temperature=0.8, max_tokens=max_tokens, cache=False)

    def ask(i: int) -> None:
        lm(f"Write a short story about the number {i}.", rollout_id=i, seed=i)

    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(ask, range(-threads, 0)))  # load every copy before the clock starts
    before = engine.completion_tokens
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(ask, range(requests)))
    return time.perf_counter() - started, engine.completion_tokens - before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=150)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--model", help="a GGUF file (default: the embedded model)")
    args = parser.parse_args()
    default = resolve_lm(args.model)
    if not isinstance(default.engine, LlamaCppEngine):
        print(f"--model: {args.model} is not a GGUF file that llama.cpp runs", file=sys.stderr)
        raise SystemExit(2)
    path, copies = default.engine.path, default.engine.copy_count()
    configurations = {  # name: (engine, threads asking)
        "1 copy": (TimedLlamaCppEngine(path, copies=1, n_threads=1), 2),
        f"{copies} copies": (TimedLlamaCppEngine(path, copies=copies, n_threads=1), 2),
        f"{copies} copies, batch {args.batch_size}": (
            TimedLlamaCppEngine(path, copies=copies, n_threads=1, batch_size=args.batch_size),
            copies * args.batch_size),
    }
    print(f"{'engine':<20} {'threads':>7} {'seconds':>8} {'tokens':>7} {'tok/s':>7}")
    rates: dict[str, list[float]] = {}
    for _ in range(2):
        for name, (engine, threads) in configurations.items():
            seconds, tokens = run(engine, default.model, threads, args.requests, args.max_tokens)
            rates.setdefault(name, []).append(tokens / seconds)
            print(f"{name:<20} {threads:>7} {seconds:>8.1f} {tokens:>7} {tokens / seconds:>7.1f}", flush=True)
    mean = {name: sum(r) / len(r) for name, r in rates.items()}
    one, many, batched = mean.values()
    print(f"{copies} copies vs 1 copy: {many / one:.2f}x tokens/s; batched vs {copies} copies one at a time: "
          f"{batched / many:.2f}x tokens/s")


if __name__ == "__main__":
    main()
