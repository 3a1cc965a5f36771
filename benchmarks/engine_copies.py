"""Throughput of the in-process llama.cpp engine with one model copy against one copy per core.

Eight sampled generations (150 tokens at most) asked from two threads, as the bootstrap loop and
``evaluate`` ask them with ``--num-threads 2``; each configuration runs twice, alternating.

    .venv/bin/python benchmarks/engine_copies.py [--requests 8] [--max-tokens 150]
"""

import argparse
import time
from concurrent.futures import ThreadPoolExecutor

from common import TimedLlamaCppEngine

import dspy
from regenesis.models import resolve_lm


def run(path: str, model: str, copies: int, threads: int, requests: int, max_tokens: int) -> tuple[float, int]:
    engine = TimedLlamaCppEngine(path, copies=copies, n_threads=threads)
    lm = dspy.LM(model, engine=engine, temperature=0.8, max_tokens=max_tokens, cache=False)

    def ask(i: int) -> None:
        lm(f"Write a short story about the number {i}.", rollout_id=i)

    ask(0)  # load a copy before the clock starts
    before = engine.completion_tokens
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(ask, range(requests)))
    return time.perf_counter() - started, engine.completion_tokens - before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=150)
    args = parser.parse_args()
    default = resolve_lm(None)
    path, copies = default.engine.path, default.engine.copy_count()
    print(f"{'copies':>6} {'threads/copy':>12} {'seconds':>8} {'tokens':>7} {'tok/s':>7}")
    rates = {}
    for _ in range(2):
        for n_copies in (1, copies):
            seconds, tokens = run(path, default.model, n_copies, 1, args.requests, args.max_tokens)
            rates.setdefault(n_copies, []).append(tokens / seconds)
            print(f"{n_copies:>6} {1:>12} {seconds:>8.1f} {tokens:>7} {tokens / seconds:>7.1f}")
    ratio = (sum(rates[copies]) / 2) / (sum(rates[1]) / 2)
    print(f"{copies} copies vs 1 copy: {ratio:.2f}x tokens/s")


if __name__ == "__main__":
    main()
