"""How the wording of the shared instruction changes what the embedded model answers.

    .venv/bin/python benchmarks/instruction.py [--limit 10] [--out runs/bench-instruction]

Each wording evaluates the untuned model on the main job's four evaluation tasks, greedy, with the
same token limit, side by side in one run. It prints, per wording, the correct answers, the answers
that could not be read, and the answers that copy the instruction's placeholder or sample answer
("The answer is X.", "The answer is 42."). ``regenesis.prompting.INSTRUCTION`` is the wording chosen.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import regenesis.prompting as prompting  # noqa: E402
from regenesis.cli import main  # noqa: E402

TASKS = "gsm8k-sample,strategyqa-sample,svamp-sample,bbh-sample/boolean_expressions"
WORDINGS = {
    "placeholder": "Solve the following problem. Think step by step, and end with a last line of the form "
                   "'The answer is X.'",
    "sample answer": "Solve the following problem. Think step by step, and finish with a last line such as "
                     "'The answer is 42.' or 'The answer is yes.'",
    "current": prompting.INSTRUCTION,
}
COPIES = ("The answer is X.", "The answer is 42.")


def measure(name: str, wording: str, limit: int, out: Path) -> dict:
    prompting.INSTRUCTION = wording
    results = out / f"{name.replace(' ', '-')}.json"
    main(["eval", "--tasks", TASKS, "--limit", str(limit), "--max-tokens", "256", "--num-threads", "2",
          "--no-progress", "--out", str(results)])
    records = [json.loads(line) for raw in results.with_suffix(".raw").rglob("*.jsonl")
               for line in raw.read_text(encoding="utf-8").splitlines()]
    return {"answers": len(records), "correct": sum(r["correct"] for r in records),
            "unread": sum(r["answer"] is None for r in records),
            "copied": sum(any(copy in (r["output"] or "") for copy in COPIES) for r in records)}


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=10, help="problems per task")
    parser.add_argument("--out", default="runs/bench-instruction")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"{'wording':<15} {'answers':>7} {'correct':>7} {'unread':>7} {'copied':>7}")
    for name, wording in WORDINGS.items():
        figures = measure(name, wording, args.limit, out)
        print(f"{name:<15} {figures['answers']:>7} {figures['correct']:>7} {figures['unread']:>7} {figures['copied']:>7}",
              flush=True)


if __name__ == "__main__":
    run()
