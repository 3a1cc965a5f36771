"""Evaluation throughput on the embedded model, next to the engine's raw speed on the same prompts.

    .venv/bin/python benchmarks/eval_speed.py [--problems 20] [--max-tokens 128] [--num-threads 1]

Both sides decode the same gsm8k-sample test problems greedily with the same limit, from a worker
thread: first llama.cpp directly (no DSPy, no cache), then ``evaluate`` through a cache-less
``dspy.LM``. The ratio is what the evaluation layer (requests, retries, answer matching, raw-file
writes) costs on top of generation.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from regenesis.evals.evaluate import evaluate, raw_file, read_records  # noqa: E402
from regenesis.tasks import load_task  # noqa: E402
from regenesis.models import resolve_lm  # noqa: E402
from regenesis.prompting import user_prompt  # noqa: E402

TASK = "gsm8k-sample"


def engine_outputs(lm, examples, max_tokens: int) -> tuple[float, int, dict[str, str]]:
    """(seconds, generated tokens, output per id) of llama.cpp answering each prompt itself."""
    tokens, outputs = 0, {}
    started = time.perf_counter()
    for example in examples:
        messages = [{"role": "user", "content": user_prompt(example.question)}]
        with lm.engine.borrow() as llm:
            out = llm.create_chat_completion(messages=messages, temperature=0.0, max_tokens=max_tokens)
        tokens += out["usage"]["completion_tokens"]
        outputs[example.id] = out["choices"][0]["message"]["content"] or ""
    return time.perf_counter() - started, tokens, outputs


def warm_up(lm) -> None:
    """Load the weights and run one short generation, so neither clock pays for first-call setup."""
    with lm.engine.borrow() as llm:
        llm.create_chat_completion(messages=[{"role": "user", "content": user_prompt("What is 1 + 1?")}],
                                   temperature=0.0, max_tokens=8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=20)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--num-threads", type=int, default=1)
    args = parser.parse_args()

    examples = load_task(TASK, split="test", limit=args.problems)
    lm = resolve_lm(None, max_tokens=args.max_tokens, cache=False)
    warm_up(lm)

    # In a worker thread, as evaluate() calls the engine: from the main thread llama.cpp runs several times
    # slower on a busy machine (libgomp's spinning team threads; OMP_WAIT_POLICY=passive removes the gap).
    with ThreadPoolExecutor(max_workers=1) as pool:
        raw_seconds, raw_tokens, raw_texts = pool.submit(engine_outputs, lm, examples, args.max_tokens).result()
    with tempfile.TemporaryDirectory() as raw_dir:
        result = evaluate(lm, examples, raw_dir=raw_dir, num_threads=args.num_threads, progress=False)
        eval_texts = {r["id"]: r["output"] for r in read_records(raw_file(raw_dir, TASK))}
    speed = result.throughput
    same = sum(raw_texts[id_] == text for id_, text in eval_texts.items())

    print(f"{len(examples)} {TASK} test problems, greedy, max_tokens={args.max_tokens}, "
          f"evaluate num_threads={args.num_threads}")
    print(f"{'':<22}{'seconds':>9}{'problems/s':>12}{'tokens':>8}{'tokens/s':>10}")
    print(f"{'llama.cpp directly':<22}{raw_seconds:>9.1f}{len(examples) / raw_seconds:>12.3f}{raw_tokens:>8}"
          f"{raw_tokens / raw_seconds:>10.1f}")
    print(f"{'evaluate()':<22}{speed.seconds:>9.1f}{speed.problems_per_s:>12.3f}{speed.output_tokens:>8}"
          f"{speed.tokens_per_s:>10.1f}")
    print(f"evaluate / engine tokens/s: {speed.tokens_per_s / (raw_tokens / raw_seconds):.3f}; "
          f"identical outputs: {same}/{len(examples)}; accuracy {result.scores[TASK].accuracy:.1%}")


if __name__ == "__main__":
    main()
