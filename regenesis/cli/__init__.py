"""The ``regenesis`` command line: thin wrappers that parse options, call the library and print.

Exit codes (``EXIT_CODES``, shown by every ``--help``): 0 success, 1 a failure during the run, 2 bad usage
or bad input, 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys

from regenesis.cli import eval as eval_command
from regenesis.cli import experiment, finetune, models, solve, synthesize, tasks
from regenesis.cli.options import EXIT_CODES, add_model_options, console, model_options, print_error
from regenesis.errors import BadInput
from regenesis.models import ModelSpecError

__all__ = ["EXIT_CODES", "add_model_options", "build_parser", "main", "model_options"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="regenesis",
        description="Grow reasoning training data with ReGenesis (guidelines → structure → path) and distill it with TRL.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in (models, tasks, solve, synthesize, finetune, eval_command, experiment):
        module.register(commands)
    _list_exit_codes(parser)
    return parser


def _list_exit_codes(parser: argparse.ArgumentParser) -> None:
    """``EXIT_CODES`` at the end of the help of ``parser`` and of every (sub)command below it."""
    parser.epilog = EXIT_CODES
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for command in action.choices.values():
                _list_exit_codes(command)


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args) or 0
    except (BadInput, ModelSpecError) as exc:
        print_error("error", str(exc))
        return 2
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/yellow]: what was finished is on disk; rerun the same command to resume")
        return 130
    except Exception as exc:  # a failure during the run
        if os.environ.get("REGENESIS_DEBUG"):
            raise
        print_error("failed", f"{type(exc).__name__}: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
