"""`regenesis solve`: answer one question with a reasoning program."""

import dspy
from rich.console import Console

from regenesis.cli import add_model_options
from regenesis.errors import BadInput
from regenesis.models import resolve_lm


def register(commands) -> None:
    parser = commands.add_parser("solve", help="answer one question with step-by-step reasoning",
                                 description=__doc__)
    parser.add_argument("question", help="the question to answer")
    add_model_options(parser)
    parser.add_argument("--max-tokens", type=int, default=512)
    parser.set_defaults(run=run)


def run(args) -> int:
    from regenesis.programs import ChainOfThoughtSolver

    if not args.question.strip():
        raise BadInput("solve: the question is empty")
    lm = resolve_lm(args.model, api_base=args.api_base, api_key=args.api_key, max_tokens=args.max_tokens)
    with dspy.context(lm=lm):
        prediction = ChainOfThoughtSolver()(question=args.question)
    console = Console()
    console.print("[bold]Reasoning[/bold]")
    console.print(prediction.reasoning, highlight=False)
    console.print(f"[bold]Answer:[/bold] {prediction.answer}", highlight=False)
    return 0
