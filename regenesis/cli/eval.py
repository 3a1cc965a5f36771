"""`regenesis eval`: zero-shot accuracy of a model on benchmark tasks, with 95% intervals.

Every problem is asked with the same instruction and answer line as the training rows, decoded greedily.
Raw outputs go to a folder next to --out (results.raw/ for results.json), one JSONL file per task, written
as each answer arrives: rerun the same command to resume an interrupted run. Verdicts are derived again
from the stored outputs on every run, so a corrected gold answer needs no new model call. A failed model
call is a model error, not a wrong answer: it is counted apart, beside the accuracy, and asked again by a rerun;
the command then exits 1 with the results written. A model that cannot be loaded stops it (exit 1, nothing scored).
"""

import json
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from regenesis.cli.options import add_model_options, model_options
from regenesis.cli.tasks import add_user_dataset_options, report_skipped, user_dataset_fields
from regenesis.errors import BadInput
from regenesis.evals.evaluate import evaluate
from regenesis.evals.report import errors_text, rich_table, write_results
from regenesis.models import DEFAULT_MAX_TOKENS, describe, resolve_lm
from regenesis.tasks import load_task
from regenesis.tasks.user import is_user_source


def register(commands) -> None:
    parser = commands.add_parser("eval", help="zero-shot accuracy per task with 95%% intervals (resumable)",
                                 description=__doc__)
    add_model_options(parser)
    parser.add_argument("--tasks", required=True, metavar="A,B,...",
                        help="comma-separated tasks: gsm8k,svamp,bbh/navigate; bbh means all its subtasks "
                             "(see `regenesis tasks`); a user dataset file or hub:owner/name needs --answer-type")
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
    add_user_dataset_options(parser)
    parser.set_defaults(run=run)


def task_list(text: str) -> list[str]:
    names = list(dict.fromkeys(name.strip() for name in text.split(",") if name.strip()))
    if not names:
        raise BadInput("--tasks: no task names given")
    return names


def raw_dir_for(out: Path) -> Path:
    return out.with_suffix(".raw")


def check_out(out: Path) -> None:
    """--out must name a results file this command may write: never a folder, nor a file that holds other data."""
    if out.suffix != ".json":
        raise BadInput(f"--out {out}: expected a .json file name")
    if out.is_dir():
        raise BadInput(f"--out {out}: is a folder; give the results file to write, e.g. {out / 'results.json'}")
    if out.exists() and not _is_results_file(out):
        raise BadInput(f"--out {out}: an existing file that is not a regenesis eval results file; "
                       "choose another name rather than overwrite it")
    existing = next(parent for parent in out.absolute().parents if parent.exists())
    if not existing.is_dir():
        raise BadInput(f"--out {out}: {existing} is a file, not a folder")
    raw = raw_dir_for(out)
    if raw.exists() and not raw.is_dir():
        raise BadInput(f"--out {out}: the raw output folder {raw} is a file")


def _is_results_file(path: Path) -> bool:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(data, dict) and {"model", "tasks", "raw_files"} <= data.keys()


def load_examples(args, names: list[str]) -> list:
    """Every task's examples; the user-dataset options apply to the user datasets among them."""
    fields = user_dataset_fields(args)
    user_tasks = [name for name in names if is_user_source(name)]
    given = [f"--{key.replace('_', '-')}" for key, value in fields.items() if value is not None]
    if given and not user_tasks:
        raise BadInput(f"{', '.join(given)}: only for a user dataset, and --tasks names none")
    examples = []
    for name in names:
        loaded = load_task(name, split=args.split, limit=args.limit, data_root=args.data_root,
                           skip_bad_rows=args.skip_bad_rows, **(fields if name in user_tasks else {}))
        report_skipped(loaded, name)
        examples.extend(loaded)
    return examples


def run(args) -> int:
    if args.num_threads < 1:
        raise BadInput(f"--num-threads must be at least 1, got {args.num_threads}")
    check_out(args.out)
    names = task_list(args.tasks)
    examples = load_examples(args, names)
    lm = resolve_lm(args.model, **model_options(args), max_tokens=args.max_tokens)
    console = Console(stderr=True)
    console.print(f"Evaluating {escape(describe(lm))} on {len(examples)} problems", highlight=False)
    settings = {"tasks": names, "split": args.split, "limit": args.limit,
                "data_root": str(args.data_root) if args.data_root else None,
                "user_dataset": {key: value for key, value in user_dataset_fields(args).items() if value is not None}}
    result = evaluate(lm, examples, raw_dir=raw_dir_for(args.out), num_threads=args.num_threads,
                      progress=not args.no_progress, settings=settings)
    json_path, markdown_path = write_results(result, args.out)
    Console().print(rich_table(result))
    console.print(f"Wrote {escape(str(json_path))}, {escape(str(markdown_path))} and the raw outputs in "
                  f"{escape(str(raw_dir_for(args.out)))}/", highlight=False)
    if result.errors:
        console.print(f"[red]{errors_text(result.errors, result.error_kinds())} problems ended in a model error[/red] "
                      "(left out of the accuracy); rerun the same command to ask them again", highlight=False)
        return 1
    return 0
