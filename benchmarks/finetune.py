"""Cost of the distillation stage next to a plain TRL script, and the speed of the tuned model served each way.

Trains the embedded model (SmolLM2-135M) for the same steps on the same rows four times, each in a
fresh process so that peak memory is its own: `regenesis finetune` and a plain TRL script, full and
LoRA. Prints seconds per step, training tokens per second, peak memory and the whole call's wall time
(loading, checks and saving included). Then serves the tuned full checkpoint through transformers
and through llama.cpp (q8_0 and Q4_K_M GGUF exports) and prints generated tokens per second.

    .venv/bin/python benchmarks/finetune.py [--steps 6] [--batch-size 4] [--questions 3] [--gen-tokens 64] [--threads 1]
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

ROOT = Path(__file__).resolve().parents[1]
ROWS = ROOT / "tests" / "data" / "finetune-rows"
QUESTIONS = ROOT.parent / "shared" / "datasets" / "gsm8k" / "test.jsonl"


def stage_run(args, out: Path) -> dict:
    from regenesis.finetune import finetune

    finetune(ROWS, None, out, lora=args.lora, max_steps=args.steps, batch_size=args.batch_size,
             max_length=args.max_length, lr=args.lr, save_steps=10_000)
    return json.loads((out / "finetune.json").read_text())["result"]


def plain_trl_run(args, out: Path) -> dict:
    """What a user would write with TRL alone (the dense base folder and the chat template prepared beforehand)."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from regenesis.finetune import dense_base

    base = dense_base(None)  # the cached folder: a path lookup
    tokenizer = AutoTokenizer.from_pretrained(base)
    tokenizer.chat_template = Path(args.template).read_text()
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    rows = [json.loads(line)["messages"] for line in (ROWS / "train.jsonl").read_text().splitlines()]
    config = SFTConfig(output_dir=str(out / "checkpoints"), max_steps=args.steps, learning_rate=args.lr,
                       per_device_train_batch_size=args.batch_size, max_length=args.max_length,
                       assistant_only_loss=True, bf16=device_precision() == "bf16",
                       use_cpu=not torch.cuda.is_available(),
                       gradient_checkpointing=False, logging_steps=1, save_strategy="no",
                       include_num_input_tokens_seen="non_padding", report_to="none")
    lora = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules="all-linear", task_type="CAUSAL_LM")
    trainer = SFTTrainer(model=model, args=config, train_dataset=Dataset.from_list([{"messages": m} for m in rows]),
                         processing_class=tokenizer, peft_config=lora if args.lora else None)
    metrics = trainer.train().metrics
    model = trainer.model.merge_and_unload() if args.lora else trainer.model
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    steps, tokens = trainer.state.global_step, trainer.state.num_input_tokens_seen
    return {"steps": steps, "seconds_per_step": metrics["train_runtime"] / steps,
            "tokens_per_second": tokens / metrics["train_runtime"]}


def device_precision() -> str:
    """What the stage picks by default: bf16 on a GPU that has it, fp32 otherwise."""
    import torch

    return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "fp32"


def write_training_template(path: Path) -> None:
    """The chat template with generation markers, written once so the plain run only has to read it."""
    from regenesis.finetune import dense_base
    from regenesis.finetune.base import load_tokenizer
    from regenesis.finetune.chat_template import training_template

    path.write_text(training_template(load_tokenizer(dense_base(None), "local/smollm2-135m"), "local/smollm2-135m"))


def child(args) -> None:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.keep) if args.keep else Path(tmp) / "ckpt"
        result = (stage_run if args.child == "stage" else plain_trl_run)(args, out)
    result["wall_seconds"] = time.perf_counter() - started
    result["peak_memory_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def train_variant(args, kind: str, lora: bool, keep: Path | None = None) -> dict:
    command = [sys.executable, __file__, "--child", kind, "--steps", str(args.steps), "--batch-size",
               str(args.batch_size), "--max-length", str(args.max_length), "--lr", str(args.lr)]
    command += ["--lora"] if lora else []
    command += ["--keep", str(keep)] if keep else []
    command += ["--template", str(args.template)]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "TQDM_DISABLE": "1"})
    if done.returncode != 0:
        raise RuntimeError(f"{kind} run failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def serving_speed(spec: str, questions: list[str], max_tokens: int) -> float:
    from dspy.lm15 import Config, Message, Request

    from regenesis.models import resolve_lm
    from regenesis.prompting import user_prompt

    lm = resolve_lm(spec, max_tokens=max_tokens, cache=False)
    lm.engine.complete(Request(model=lm.model, messages=(Message.user("Hi"),),
                               config=Config(temperature=0.0, max_tokens=4)))  # load the model first
    tokens, seconds = 0, 0.0
    for question in questions:
        request = Request(model=lm.model, messages=(Message.user(user_prompt(question)),),
                          config=Config(temperature=0.0, max_tokens=max_tokens))
        started = time.perf_counter()
        response = lm.engine.complete(request)
        seconds += time.perf_counter() - started
        tokens += response.usage.output_tokens
    return tokens / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--questions", type=int, default=3)
    parser.add_argument("--gen-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (on a small machine shared with other jobs, 1 is often fastest)")
    parser.add_argument("--child", choices=("stage", "trl"), help=argparse.SUPPRESS)
    parser.add_argument("--lora", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--keep", help=argparse.SUPPRESS)
    parser.add_argument("--template", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        os.environ["OMP_NUM_THREADS"] = str(args.threads)  # read by torch in the training processes
    if args.child:
        return child(args)

    from rich.console import Console
    from rich.table import Table

    from regenesis.finetune import export_gguf

    console = Console()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="regenesis-bench-"))
    args.template = work / "training_template.jinja"
    write_training_template(args.template)
    threads = args.threads or "default"
    training = Table(title=f"Training: SmolLM2-135M, {args.steps} steps of {args.batch_size} rows, "
                           f"{device_precision()}, torch threads: {threads}")
    for column in ("mode", "run", "s/step", "train tok/s", "peak MB", "wall s"):
        training.add_column(column)
    for lora in (False, True):
        mode = "LoRA" if lora else "full"
        for kind in ("trl", "stage"):
            keep = work / "full" if kind == "stage" and not lora else None
            figures = train_variant(args, kind, lora, keep)
            training.add_row(mode, "regenesis finetune" if kind == "stage" else "plain TRL",
                             f"{figures['seconds_per_step']:.2f}", f"{figures['tokens_per_second']:.0f}",
                             f"{figures['peak_memory_mb']:.0f}", f"{figures['wall_seconds']:.1f}")
    console.print(training)

    questions = [json.loads(line)["question"] for line in QUESTIONS.read_text().splitlines()[:args.questions]]
    serving = Table(title=f"Serving the tuned model: {args.questions} GSM8K questions, "
                          f"{args.gen_tokens} new tokens max")
    serving.add_column("route")
    serving.add_column("generated tok/s")
    routes = [("transformers (checkpoint folder)", str(work / "full"))]
    routes += [(f"llama.cpp ({quant} GGUF)", str(export_gguf(work / "full", quant))) for quant in ("q8_0", "Q4_K_M")]
    for route, spec in routes:
        serving.add_row(route, f"{serving_speed(spec, questions, args.gen_tokens):.1f}")
    console.print(serving)
    console.print(f"checkpoint and exports kept in {work}")


if __name__ == "__main__":
    main()
