"""The fine-tuning fixture rows (``tests/data/finetune-rows``): the shortest of them, and the same problems as
DSPy's BootstrapFinetune writes them."""

import json
from pathlib import Path

import dspy

ROWS = Path(__file__).parent / "data" / "finetune-rows"
TINY_FINETUNE_STEPS = 2  # of the session's shared fine-tune (the ``tiny_finetune`` fixture of conftest.py)


def shortest_lines(n: int) -> list[str]:
    """The ``n`` shortest rows of the fixture, as JSON lines: the cheapest to train on."""
    return sorted((ROWS / "train.jsonl").read_text().splitlines(), key=len)[:n]


def write_rows(folder: Path, lines: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.jsonl").write_text("".join(line + "\n" for line in lines))
    return folder


def dspy_rows(synthesized: list[list[dict]]) -> list[str]:
    """The same problems as DSPy's BootstrapFinetune writes them: ChatAdapter turns of ``question -> answer``."""
    signature = dspy.ChainOfThought("question -> answer").predict.signature
    rows = []
    for user, assistant in synthesized:
        question = user["content"].split("\n\n", 1)[1]
        reasoning, answer_line = assistant["content"].rsplit("\n", 1)
        answer = answer_line.removeprefix("The answer is ").rstrip(".")
        rows.append(json.dumps(dspy.ChatAdapter().format_finetune_data(
            signature=signature, demos=[], inputs={"question": question},
            outputs={"reasoning": reasoning, "answer": answer})))
    return rows
