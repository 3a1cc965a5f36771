"""The ``regenesis`` command line: thin wrappers that parse options, call the library and print.

Exit codes: 0 success, 2 bad usage or bad input, 1 a failure during the run.
"""

from __future__ import annotations

import argparse
import os
import sys

from rich.console import Console

from regenesis.errors import BadInput
from regenesis.models import ModelSpecError

console = Console(stderr=True)


def add_model_options(parser: argparse.ArgumentParser, flag: str = "--model") -> None:
    """The model options every command that calls a model shares."""
    parser.add_argument(flag, default=None, metavar="SPEC",
                        help="model spec (default: local/smollm2-135m; see `regenesis models`)")
    parser.add_argument("--api-base", default=None, help="base URL of an OpenAI-compatible or other server")
    parser.add_argument("--api-key", default=None, help="API key (default: the provider's environment variable)")


def build_parser() -> argparse.ArgumentParser:
    from regenesis.cli import experiment, finetune, models, solve, synthesize, tasks
    from regenesis.cli import eval as eval_command

    parser = argparse.ArgumentParser(
        prog="regenesis",
        description="Grow reasoning training data with ReGenesis (guidelines → structure → path) and distill it with TRL.",
        epilog="Exit codes: 0 success, 2 bad usage or bad input, 1 a failure during the run.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in (models, tasks, solve, synthesize, finetune, eval_command, experiment):
        module.register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args) or 0
    except (BadInput, ModelSpecError) as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        return 2
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/yellow]: what was finished is on disk; rerun the same command to resume")
        return 130
    except Exception as exc:  # a failure during the run
        if os.environ.get("REGENESIS_DEBUG"):
            raise
        console.print(f"[red]failed:[/red] {type(exc).__name__}: {exc}", highlight=False)
        return 1


if __name__ == "__main__":
    sys.exit(main())
