"""`regenesis finetune` and `regenesis export-gguf`: distil the synthesized rows into a model, export it to GGUF."""

from dataclasses import asdict

from regenesis.finetune import export_gguf, finetune
from regenesis.finetune.train import PRECISIONS, REPORT_TO, FinetuneConfig

DEFAULTS = FinetuneConfig()


def register(commands) -> None:
    parser = commands.add_parser(
        "finetune", help="fine-tune a model on the rows written by `regenesis synthesize` (TRL, full or LoRA)",
        description="Fine-tune BASE on the chat rows in DATA with TRL's SFTTrainer, loss on the assistant turn "
                    "only. The checkpoint OUT is a model spec right away (--model OUT); run under "
                    "`accelerate launch` for several GPUs.")
    parser.add_argument("--data", required=True, metavar="DIR", help="folder holding train.jsonl, or a .jsonl file")
    parser.add_argument("--base", default=None, metavar="SPEC",
                        help="base model: local/smollm2-135m (default), a .gguf file, a Hugging Face folder or hub id")
    parser.add_argument("--out", required=True, metavar="CKPT", help="checkpoint folder to write")
    parser.add_argument("--lora", action="store_true", help="train LoRA adapters (merged into the checkpoint)")
    parser.add_argument("--epochs", type=float, default=DEFAULTS.epochs)
    parser.add_argument("--lr", type=float, default=None, help="learning rate (default: 2e-5 full, 2e-4 LoRA)")
    parser.add_argument("--max-length", type=int, default=DEFAULTS.max_length,
                        help="longest row in tokens; longer rows are refused, not cut")
    parser.add_argument("--batch-size", type=int, default=DEFAULTS.batch_size, help="rows per step and device")
    parser.add_argument("--grad-accum", type=int, default=DEFAULTS.grad_accum, help="gradient accumulation steps")
    parser.add_argument("--max-steps", type=int, default=DEFAULTS.max_steps,
                        help="stop after N steps (overrides --epochs)")
    parser.add_argument("--precision", choices=PRECISIONS, default=DEFAULTS.precision,
                        help="auto: bf16 on a GPU that has it, fp32 otherwise")
    parser.add_argument("--save-steps", type=int, default=DEFAULTS.save_steps,
                        help="keep a resumable checkpoint every N steps")
    parser.add_argument("--gradient-checkpointing", action="store_true", help="trade compute for GPU memory")
    parser.add_argument("--seed", type=int, default=DEFAULTS.seed)
    parser.add_argument("--report-to", choices=REPORT_TO, default=DEFAULTS.report_to,
                        help="TRL's report_to: none (default; the loss and its curve are written to CKPT either "
                             "way), tensorboard (event files in CKPT/runs), trackio or wandb (their own settings, "
                             "e.g. WANDB_MODE=offline)")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted run from its last checkpoint")
    parser.set_defaults(run=run)

    export = commands.add_parser(
        "export-gguf", help="export a fine-tuned checkpoint to GGUF for llama.cpp (faster local decoding)",
        description="Write CKPT/gguf/model-QUANT.gguf with llama.cpp's own converter (installed by `make install` "
                    "from the pinned, hash-checked llama-cpp-python source package; nothing is downloaded here) "
                    "and quantizer.")
    export.add_argument("ckpt", metavar="CKPT", help="a `regenesis finetune` checkpoint (or any HF model folder)")
    export.add_argument("--quant", default="q8_0",
                        help="q8_0 (default), f16, bf16, f32, or a llama.cpp quantization such as Q4_K_M")
    export.add_argument("--llama-cpp", default=None, metavar="DIR",
                        help="a llama.cpp source checkout to take the converter from instead")
    export.set_defaults(run=run_export)


def run(args) -> int:
    finetune(args.data, args.base, args.out, resume=args.resume, **asdict(FinetuneConfig.from_args(args)))
    return 0


def run_export(args) -> int:
    export_gguf(args.ckpt, args.quant, llama_cpp_source=args.llama_cpp)
    return 0
