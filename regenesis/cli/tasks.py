"""`regenesis tasks`: the registered tasks; `regenesis tasks show TASK`: its normalised examples."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from regenesis.errors import BadInput
from regenesis.tasks import TASKS, load_task
from regenesis.tasks.example import ANSWER_TYPES, Example

DEFAULT_SHOW_LIMIT = 5


def add_task_options(parser: argparse.ArgumentParser, task_positional: bool = False, training: bool = True) -> None:
    """The options every command that reads one task shares (``--task`` or a positional TASK).

    ``training``: the split defaults to the task's train split (synthesis must never read the problems it
    is evaluated on), else to its evaluation split.
    """
    task_help = ("a registered task (see `regenesis tasks`), bbh/<subtask>, a .jsonl/.json/.csv/.parquet "
                 "file or folder of split files, or hub:owner/name")
    if task_positional:
        parser.add_argument("task", metavar="TASK", help=task_help)
    else:
        parser.add_argument("--task", required=True, metavar="TASK", help=task_help)
    parser.add_argument("--data", default=None, metavar="PATH",
                        help="a local copy of a registered task in its original format (file or folder)")
    parser.add_argument("--data-root", default=None, metavar="DIR",
                        help="a folder of local copies laid out like ../shared/datasets "
                             "(default: $REGENESIS_DATA_ROOT; else the Hugging Face hub)")
    parser.add_argument("--split", default=None,
                        help="the split (default: the task's %s split)" % ("train" if training else "evaluation"))
    parser.add_argument("--limit", type=int, default=None, metavar="N",
                        help="only the first N examples (for bbh: per subtask)")
    parser.set_defaults(training_split=training)
    add_user_dataset_options(parser)


def add_user_dataset_options(parser: argparse.ArgumentParser) -> None:
    """How a user dataset's rows are read: the fields, the answer type and what to do with bad rows."""
    user = parser.add_argument_group("user datasets")
    user.add_argument("--question-field", default=None, metavar="NAME",
                      help="field(s) holding the question, comma-separated to join several (default: question)")
    user.add_argument("--answer-field", default=None, metavar="NAME", help="field holding the gold answer (default: answer)")
    user.add_argument("--answer-type", default=None, choices=ANSWER_TYPES, help="how answers are read and compared")
    user.add_argument("--choices-field", default=None, metavar="NAME",
                      help="field holding the options of a multiple-choice question (a list)")
    user.add_argument("--labels", default=None, metavar="A,B,C",
                      help="the closed label set of --answer-type label (default: the distinct gold answers)")
    parser.add_argument("--skip-bad-rows", action="store_true",
                        help="skip and count rows whose gold answer cannot be read, instead of stopping")


def user_dataset_fields(args: argparse.Namespace) -> dict:
    """The ``load_task`` keywords that ``add_user_dataset_options`` describes."""
    return {"question_field": args.question_field, "answer_field": args.answer_field,
            "answer_type": args.answer_type, "choices_field": args.choices_field, "labels": args.labels}


def train_split(task: str) -> str | None:
    """The split synthesis reads when --split is not given: train. None for a single user file, which is its
    own split. A user folder or hub dataset without a train split is refused by ``load_task``, naming its splits."""
    spec = TASKS.get(task)
    if spec is not None and "train" not in spec.splits:
        raise BadInput(f"--split: {task} has no train split (its splits: {', '.join(spec.splits)}); pass --split "
                       "to choose one, knowing that problems trained on must not be the ones evaluated on")
    return None if spec is None and Path(task).is_file() else "train"


def examples_from_args(args: argparse.Namespace, console: Console | None = None) -> list[Example]:
    """Load the examples that ``add_task_options`` describes; reports skipped rows on stderr."""
    split = args.split or (train_split(args.task) if args.training_split else None)
    examples = load_task(args.task, data=args.data, split=split, limit=args.limit, skip_bad_rows=args.skip_bad_rows,
                         data_root=args.data_root, **user_dataset_fields(args))
    report_skipped(examples, args.task, console)
    return examples


def report_skipped(examples, task: str, console: Console | None = None) -> None:
    if examples.skipped:
        (console or Console(stderr=True)).print(
            f"[yellow]skipped {examples.skipped} bad rows[/yellow] of {escape(task)}, first: "
            f"{escape(examples.skipped_rows[0])}", highlight=False)


def register(commands) -> None:
    parser = commands.add_parser("tasks", help="list the tasks, or show a task's examples", description=__doc__)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(run=run)
    actions = parser.add_subparsers(dest="tasks_action", metavar="ACTION")
    show = actions.add_parser("show", help="print a task's normalised examples",
                              description="Print the normalised examples of a task.")
    add_task_options(show, task_positional=True, training=False)
    show.add_argument("--json", action="store_true", help="print JSON instead of text")
    show.set_defaults(run=run_show, limit=DEFAULT_SHOW_LIMIT)


def run(args) -> int:
    rows = [{"task": spec.name, "domain": spec.domain, "answer_type": spec.answer_type,
             "splits": list(spec.splits), "default_split": spec.default_split, "hub_id": spec.hub_id,
             "bundled": spec.bundled, "local_folder": spec.folder, "license": spec.license,
             "description": spec.description}
            for spec in TASKS.values()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    console = Console(width=max(Console().width, 120))
    console.print(_task_table([row for row in rows if not row["task"].startswith("bbh/")]))
    console.print(_subtask_table([row for row in rows if row["task"].startswith("bbh/")]))
    console.print("Bold split: the default. Local copies: --data PATH, or --data-root DIR with the folders "
                  "above (as in ../shared/datasets); else the hub id. User data: --task FILE|hub:owner/name "
                  "--answer-type TYPE [--question-field F] [--answer-field F] [--choices-field F] [--labels A,B].",
                  highlight=False)
    return 0


def _task_table(rows: list[dict]) -> Table:
    table = Table(title="Tasks (in: the paper's training tasks; out: held-out evaluation)")
    for column in ("task", "domain", "answer type", "splits", "hub id", "local folder", "license"):
        table.add_column(column, no_wrap=column in ("task", "hub id"))
    for row in rows:
        table.add_row(row["task"], row["domain"], row["answer_type"], _splits_text(row),
                      "(bundled)" if row["bundled"] else row["hub_id"] or "-", row["local_folder"], row["license"])
    return table


def _subtask_table(rows: list[dict]) -> Table:
    table = Table(title="BBH subtasks: task bbh/<subtask>, split test, hub config <subtask>")
    table.add_column("answer type")
    table.add_column("subtasks")
    by_type: dict[str, list[str]] = {}
    for row in rows:
        by_type.setdefault(row["answer_type"], []).append(row["task"].removeprefix("bbh/"))
    for answer_type, names in by_type.items():
        table.add_row(answer_type, ", ".join(names))
    return table


def _splits_text(row: dict) -> str:
    """The splits, the default in bold; per-round ANLI splits folded into one note."""
    rounds = [split for split in row["splits"] if split[-3:-1] == "_r"]
    shown = [f"[bold]{split}[/bold]" if split == row["default_split"] else split
             for split in row["splits"] if split not in rounds]
    return ", ".join(shown) + (" (+ per round: *_r1, *_r2, *_r3)" if rounds else "")


def run_show(args) -> int:
    examples = examples_from_args(args)
    if args.json:
        print(json.dumps({"task": args.task, "split": examples.split, "source": examples.source,
                          "loaded": len(examples), "skipped": examples.skipped,
                          "examples": [asdict(example) for example in examples]}, indent=2, ensure_ascii=False))
        return 0
    console = Console()
    console.print(f"[bold]{escape(args.task)}[/bold] split {escape(examples.split)} from {escape(examples.source)}: "
                  f"{len(examples)} examples, {examples.skipped} skipped", highlight=False)
    for example in examples:
        console.rule(escape(example.id))
        console.print(example.question, highlight=False, markup=False)
        extra = f"  choices: {len(example.choices)}" if example.choices else ""
        extra += f"  labels: {', '.join(example.labels)}" if example.labels else ""
        console.print(f"[bold]gold[/bold] ({example.answer_type}): {escape(example.gold + extra)}", highlight=False)
    return 0
