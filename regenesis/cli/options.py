"""Options and output every command shares: the model options, the exit codes, the error line."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.markup import escape

from regenesis.errors import BadInput
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


def print_error(label: str, message: str) -> None:
    """One line on stderr: ``message`` (untrusted: provider errors, model text) redacted and shown literally."""
    console.print(f"[red]{label}:[/red] {escape(redact(message))}", highlight=False, soft_wrap=True)
