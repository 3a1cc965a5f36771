"""STaR (Zelikman et al., 2022): few-shot chain of thought, with rationalization for the failures."""

from __future__ import annotations

import json
from importlib import resources

import dspy

from regenesis.programs.chain_of_thought import with_path
from regenesis.programs.path import PathPredict, reasoning_first
from regenesis.signatures.answer import AnswerQuestion
from regenesis.signatures.star import RationalizeAnswer


def load_exemplars() -> list[dspy.Example]:
    """The worked exemplars STaR prompts with (``regenesis/data/star_exemplars.json``)."""
    text = (resources.files("regenesis") / "data" / "star_exemplars.json").read_text(encoding="utf-8")
    return [dspy.Example(**row).with_inputs("question") for row in json.loads(text)]


class STaR(dspy.Module):
    """Generate a rationale from a few-shot prompt; with ``correct_answer``, rationalize instead."""

    def __init__(self, exemplars: list[dspy.Example] | None = None):
        super().__init__()
        exemplars = exemplars if exemplars is not None else load_exemplars()
        self.generate = PathPredict(reasoning_first(AnswerQuestion))
        self.generate.demos = list(exemplars)
        self.rationalize = PathPredict(reasoning_first(RationalizeAnswer))
        self.rationalize.demos = [e.copy(correct_answer=e.answer) for e in exemplars]

    def forward(self, question: str, correct_answer: str | None = None):
        step = self.generate if correct_answer is None else self.rationalize
        hint = {} if correct_answer is None else {"correct_answer": str(correct_answer)}
        prediction = with_path(step(question=question, **hint))
        prediction.hinted = correct_answer is not None
        return prediction
