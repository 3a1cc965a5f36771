"""`regenesis solve`: answer one question with ReGenesis (or plain chain of thought) and show the work."""

import dspy
from rich.console import Console

from regenesis.cli import add_model_options, model_options
from regenesis.errors import BadInput
from regenesis.models import adapter_for, resolve_lm


def register(commands) -> None:
    parser = commands.add_parser("solve", help="answer one question, showing guidelines, plan and reasoning",
                                 description=__doc__)
    parser.add_argument("question", help="the question to answer")
    add_model_options(parser)
    parser.add_argument("--program", choices=["regenesis", "cot"], default="regenesis",
                        help="regenesis: guidelines → adapted → structure → path (default); cot: chain of thought")
    parser.add_argument("--max-tokens", type=int, default=512)
    parser.set_defaults(run=run)


def run(args) -> int:
    from regenesis.programs import ChainOfThoughtSolver, ReGenesis

    if not args.question.strip():
        raise BadInput("solve: the question is empty")
    lm = resolve_lm(args.model, **model_options(args), max_tokens=args.max_tokens)
    program = ReGenesis() if args.program == "regenesis" else ChainOfThoughtSolver()
    with dspy.context(lm=lm, adapter=adapter_for(lm)):
        prediction = program(question=args.question)
    console = Console()
    if args.program == "regenesis":
        show(console, "Guidelines:", ", ".join(prediction.guidelines), inline=True)
        show(console, "Adapted to the problem", prediction.adapted_guidelines)
        show(console, "Reasoning structure", prediction.reasoning_structure)
    show(console, "Reasoning", prediction.reasoning)
    show(console, "Answer:", str(prediction.answer), inline=True)
    return 0


def show(console: Console, label: str, text: str, *, inline: bool = False) -> None:
    """A bold label, then model text printed literally: the text may hold rich markup such as ``[/]``."""
    console.print(f"[bold]{label}[/bold]", end=" " if inline else "\n", highlight=False)
    console.print(text, markup=False, highlight=False)
