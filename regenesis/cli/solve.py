"""`regenesis solve`: answer one question with ReGenesis (or plain chain of thought) and show the work.

A model tuned by `regenesis finetune` is asked by default the way it was trained: the training rows'
instruction, then a reasoning path that ends in "The answer is ...".
"""

from pathlib import Path

import dspy
from rich.console import Console

from regenesis.answers import final_answer_spans
from regenesis.cli.options import add_model_options
from regenesis.errors import BadInput
from regenesis.evals.evaluate import eval_request
from regenesis.finetune.train import RUN_FILE
from regenesis.models import adapter_for, resolve_lm
from regenesis.programs import ChainOfThoughtSolver, ReGenesis

PROGRAMS = {
    "regenesis": "guidelines → adapted → structure → path (the default for an untuned model)",
    "cot": "chain of thought",
    "trained": "the training rows' prompt and answer line (the default for a `regenesis finetune` checkpoint)",
}


def register(commands) -> None:
    parser = commands.add_parser("solve", help="answer one question, showing guidelines, plan and reasoning",
                                 description=__doc__)
    parser.add_argument("question", help="the question to answer")
    add_model_options(parser)
    parser.add_argument("--program", choices=list(PROGRAMS), default=None,
                        help="; ".join(f"{name}: {what}" for name, what in PROGRAMS.items()))
    parser.add_argument("--max-tokens", type=int, default=512)
    parser.set_defaults(run=run)


def tuned_checkpoint(spec: str | None) -> Path | None:
    """The `regenesis finetune` checkpoint that ``spec`` is, or was exported from (``CKPT/gguf/*.gguf``)."""
    if not spec:
        return None
    path = Path(spec).expanduser()
    for folder in (path, path.parent, path.parent.parent) if path.is_file() else (path, path.parent):
        if (folder / RUN_FILE).is_file():
            return folder
    return None


def run(args) -> int:
    if not args.question.strip():
        raise BadInput("solve: the question is empty")
    program = args.program or ("trained" if tuned_checkpoint(args.model) else "regenesis")
    lm = resolve_lm(args.model, api_base=args.api_base, api_key=args.api_key, max_tokens=args.max_tokens)
    console = Console()
    if program == "trained":
        return solve_as_trained(console, lm, args.question)
    solver = ReGenesis() if program == "regenesis" else ChainOfThoughtSolver()
    with dspy.context(lm=lm, adapter=adapter_for(lm)):
        prediction = solver(question=args.question)
    if program == "regenesis":
        show(console, "Guidelines:", ", ".join(prediction.guidelines), inline=True)
        show(console, "Adapted to the problem", prediction.adapted_guidelines)
        show(console, "Reasoning structure", prediction.reasoning_structure)
    show(console, "Reasoning", prediction.reasoning)
    show(console, "Answer:", str(prediction.answer), inline=True)
    return 0


def solve_as_trained(console: Console, lm: dspy.LM, question: str) -> int:
    """The question as a training row's user turn; the answer read from the path's last answer line."""
    text = lm(eval_request(lm, question)).text or ""
    show(console, "Reasoning", text)
    answers = final_answer_spans(text)
    if not answers:
        console.print("[bold red]The model wrote no answer line.[/bold red]")
        return 1
    show(console, "Answer:", answers[0], inline=True)
    return 0


def show(console: Console, label: str, text: str, *, inline: bool = False) -> None:
    """A bold label, then model text printed literally: the text may hold rich markup such as ``[/]``."""
    console.print(f"[bold]{label}[/bold]", end=" " if inline else "\n", highlight=False)
    console.print(text, markup=False, highlight=False)
