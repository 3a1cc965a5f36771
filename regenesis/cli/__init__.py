"""The ``regenesis`` command line: thin wrappers that parse options, call the library and print.

Exit codes (``EXIT_CODES``, shown by every ``--help``): 0 success, 1 a failure during the run, 2 bad usage
or bad input, 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys

from rich.console import Console
from rich.markup import escape

from regenesis.errors import BadInput
from regenesis.models import ModelSpecError
from regenesis.redact import redact

console = Console(stderr=True)

EXIT_CODES = ("Exit codes: 0 success, 1 a failure during the run (model errors, failed problems), "
              "2 bad usage or bad input, 130 interrupted.")


def add_model_options(parser: argparse.ArgumentParser, flag: str = "--model") -> None:
    """The model options every command that calls a model shares."""
    parser.add_argument(flag, default=None, metavar="SPEC",
                        help="model spec (default: local/smollm2-135m; see `regenesis models`)")
    parser.add_argument("--api-base", default=None, help="base URL of an OpenAI-compatible or other server")
    parser.add_argument("--api-key", default=None, help="API key (default: the provider's environment variable)")
    parser.add_argument("--timeout", type=positive_number, default=None, metavar="SECONDS",
                        help="a remote model's time limit per call (default: the client's)")
    parser.add_argument("--retries", type=int, default=None, metavar="N",
                        help="a remote model's retries of a transient failure, with backoff (default: 3)")


def positive_number(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def model_options(args: argparse.Namespace) -> dict:
    """The keyword arguments of ``resolve_lm`` that ``add_model_options`` set."""
    options = {"api_base": args.api_base, "api_key": args.api_key}
    if args.timeout is not None:
        options["timeout"] = args.timeout
    if args.retries is not None:
        if args.retries < 0:
            raise BadInput(f"--retries must be at least 0, got {args.retries}")
        options["num_retries"] = args.retries
    return options


def build_parser() -> argparse.ArgumentParser:
    from regenesis.cli import experiment, finetune, models, solve, synthesize, tasks
    from regenesis.cli import eval as eval_command

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


def print_error(label: str, message: str) -> None:
    """One line on stderr: ``message`` (untrusted: provider errors, model text) redacted and shown literally."""
    console.print(f"[red]{label}:[/red] {escape(redact(message))}", highlight=False, soft_wrap=True)


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
