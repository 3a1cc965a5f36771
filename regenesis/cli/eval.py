"""`regenesis eval`: zero-shot accuracy of a model on benchmark tasks, with 95% intervals.

Every problem is asked with the same instruction and answer line as the training rows, decoded greedily.
Raw outputs go to a folder next to --out (results.raw/ for results.json), one JSONL file per task, written
as each answer arrives: rerun the same command to resume an interrupted run.
"""

from pathlib import Path

from rich.console import Console

from regenesis.cli import add_model_options
from regenesis.errors import BadInput
from regenesis.models import DEFAULT_MAX_TOKENS, describe, resolve_lm


def register(commands) -> None:
    parser = commands.add_parser("eval", help="zero-shot accuracy per task with 95%% intervals (resumable)",
                                 description=__doc__)
    add_model_options(parser)
    parser.add_argument("--tasks", required=True, metavar="A,B,...",
                        help="comma-separated tasks: gsm8k,svamp,bbh/navigate; bbh means all its subtasks "
                             "(see `regenesis tasks`)")
    parser.add_argument("--data-root", default=None, metavar="DIR",
                        help="folder with one subfolder per benchmark in its original format "
                             "(default: $REGENESIS_DATA_ROOT, else the Hugging Face hub)")
    parser.add_argument("--split", default=None, help="split to evaluate (default: each task's test split)")
    parser.add_argument("--limit", type=int, default=None, metavar="N",
                        help="only the first N problems of each task (of each bbh subtask)")
    parser.add_argument("--num-threads", type=int, default=1, metavar="K",
                        help="model calls in parallel (for servers; an in-process model answers one at a time)")
    parser.add_argument("--max-tokens", type=int, default=DEFAULT_MAX_TOKENS, help="generation limit per answer")
    parser.add_argument("--out", required=True, type=Path, metavar="results.json",
                        help="results JSON; a Markdown table (.md) and the raw outputs (.raw/) go next to it")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(run=run)


def task_list(text: str) -> list[str]:
    names = list(dict.fromkeys(name.strip() for name in text.split(",") if name.strip()))
    if not names:
        raise BadInput("--tasks: no task names given")
    return names


def raw_dir_for(out: Path) -> Path:
    return out.with_suffix(".raw")


def run(args) -> int:
    from regenesis.evals.evaluate import evaluate
    from regenesis.evals.report import rich_table, write_results
    from regenesis.evals.tasks import load_task

    if args.num_threads < 1:
        raise BadInput(f"--num-threads must be at least 1, got {args.num_threads}")
    if args.out.suffix != ".json":
        raise BadInput(f"--out {args.out}: expected a .json file name")
    names = task_list(args.tasks)
    examples = [example for name in names
                for example in load_task(name, split=args.split, limit=args.limit, data_root=args.data_root)]
    lm = resolve_lm(args.model, api_base=args.api_base, api_key=args.api_key, max_tokens=args.max_tokens)
    console = Console(stderr=True)
    console.print(f"Evaluating {describe(lm)} on {len(examples)} problems", highlight=False)
    settings = {"tasks": names, "split": args.split, "limit": args.limit,
                "data_root": str(args.data_root) if args.data_root else None}
    result = evaluate(lm, examples, raw_dir=raw_dir_for(args.out), num_threads=args.num_threads,
                      progress=not args.no_progress, settings=settings)
    json_path, markdown_path = write_results(result, args.out)
    Console().print(rich_table(result))
    console.print(f"Wrote {json_path}, {markdown_path} and the raw outputs in {raw_dir_for(args.out)}/",
                  highlight=False)
    return 0
