"""Parse failures and generation speed of a typed DSPy signature, per engine, on the same questions.

Runs `question -> reasoning, answer: float` over GSM8K test questions, greedy, with the adapter
`adapter_for` picks for each model: the embedded GGUF through llama.cpp (JSON-schema grammar), the same
weights as a Hugging Face folder through transformers (xgrammar), and, with `--server URL`, a local
OpenAI-compatible server (`--server-model NAME`; `REGENESIS_STRUCTURED_OUTPUT=1` for one that takes a
JSON schema). `--chat-adapter` adds DSPy's default ChatAdapter (its JSON fallback included) on the GGUF.

    .venv/bin/python benchmarks/parse_rate.py [--n 30] [--max-tokens 384] [--engines gguf,hf]
        [--server http://127.0.0.1:8765/v1 --server-model smollm2] [--chat-adapter]
    # a server of the same GGUF: python -m llama_cpp.server --model GGUF --port 8765 --model_alias smollm2
    # (needs llama-cpp-python[server])
"""

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import dspy  # noqa: E402

from regenesis.finetune import dense_base  # noqa: E402
from regenesis.models import adapter_for, constrains_output, describe, resolve_lm  # noqa: E402

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


def engines(args) -> list[tuple[str, dspy.LM, dspy.Adapter]]:
    settings = {"cache": False, "max_tokens": args.max_tokens}
    chosen = []
    if "gguf" in args.engines:
        lm = resolve_lm(None, **settings)
        chosen.append(("llama.cpp GGUF", lm, adapter_for(lm)))
        if args.chat_adapter:
            chosen.append(("llama.cpp GGUF, ChatAdapter", lm, dspy.ChatAdapter()))
    if "hf" in args.engines:
        lm = resolve_lm(dense_base(None), **settings)
        chosen.append(("transformers HF folder", lm, adapter_for(lm)))
    if args.server:
        lm = resolve_lm(f"openai/{args.server_model}", api_base=args.server, **settings)
        chosen.append((f"server {args.server}", lm, adapter_for(lm)))
    return chosen


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=30)
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "datasets" / "gsm8k" / "test.jsonl"))
    parser.add_argument("--max-tokens", type=int, default=384)
    parser.add_argument("--engines", default="gguf,hf", help="comma-separated: gguf, hf")
    parser.add_argument("--server", default=None, metavar="URL", help="an OpenAI-compatible server's base URL")
    parser.add_argument("--server-model", default="smollm2")
    parser.add_argument("--chat-adapter", action="store_true")
    args = parser.parse_args()
    lines = Path(args.data).read_text().splitlines()[: args.n]
    questions = [json.loads(line)["question"] for line in lines]
    print(f"{len(questions)} GSM8K test questions, greedy, max_tokens {args.max_tokens}")
    print(f"{'engine':<40} {'adapter':<12} {'constrained':>11} {'parse failures':>15} {'rate':>6} "
          f"{'gen tok/s':>9} {'seconds':>8}")
    for label, lm, adapter in engines(args):
        failures, tokens, seconds = run(lm, adapter, questions)
        constrained = "yes" if constrains_output(lm) and isinstance(adapter, dspy.JSONAdapter) else "no"
        print(f"{label:<40} {type(adapter).__name__:<12} {constrained:>11} {failures:>15} "
              f"{failures / len(questions):>6.1%} {tokens / seconds:>9.1f} {seconds:>8.1f}  {describe(lm)}", flush=True)


if __name__ == "__main__":
    main()
