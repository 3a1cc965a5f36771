"""Parse-failure rate and generation speed of a typed DSPy signature on the embedded model.

Runs `question -> reasoning, answer: float` over GSM8K test questions twice: with regenesis's
settings for in-process models (JSONAdapter + llama.cpp JSON-schema grammar) and with DSPy's default
ChatAdapter (its JSON fallback included), on the same model in the same run.

    .venv/bin/python benchmarks/parse_rate.py [--n 50] [--max-tokens 1024] [--data ../shared/datasets/gsm8k/test.jsonl]
"""

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import dspy  # noqa: E402

from regenesis.models import adapter_for, resolve_lm  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


class MathQA(dspy.Signature):
    """Solve the math word problem. Reason step by step, then give the numeric answer."""

    question: str = dspy.InputField()
    reasoning: str = dspy.OutputField()
    answer: float = dspy.OutputField()


def run(lm, adapter, questions):
    failures, tokens, started = 0, 0, time.monotonic()
    for question in questions:
        with dspy.context(lm=lm, adapter=adapter), dspy.track_usage() as usage:
            try:
                dspy.Predict(MathQA)(question=question)
            except Exception:
                failures += 1
        tokens += sum(e.get("completion_tokens") or 0 for entries in usage.usage_data.values() for e in entries)
    return failures, tokens, time.monotonic() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50)
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "datasets" / "gsm8k" / "test.jsonl"))
    parser.add_argument("--model", default=None)
    parser.add_argument("--max-tokens", type=int, default=1024)
    args = parser.parse_args()
    lines = Path(args.data).read_text().splitlines()[: args.n]
    questions = [json.loads(line)["question"] for line in lines]
    lm = resolve_lm(args.model, cache=False, max_tokens=args.max_tokens)
    print(f"model {lm.model}, {len(questions)} GSM8K test questions, greedy, max_tokens {lm.kwargs['max_tokens']}")
    print(f"{'adapter':<34} {'parse failures':>15} {'rate':>7} {'gen tok/s':>10} {'seconds':>8}")
    for label, adapter in [("regenesis (JSONAdapter + grammar)", adapter_for(lm)),
                           ("DSPy default (ChatAdapter)", dspy.ChatAdapter())]:
        failures, tokens, seconds = run(lm, adapter, questions)
        print(f"{label:<34} {failures:>15} {failures / len(questions):>7.1%} {tokens / seconds:>10.1f} {seconds:>8.1f}")


if __name__ == "__main__":
    main()
