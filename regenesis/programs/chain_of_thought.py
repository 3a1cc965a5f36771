"""Plain chain of thought on the shared task signature."""

import dspy

from regenesis.prompting import answer_line
from regenesis.signatures.answer import AnswerQuestion


class ChainOfThoughtSolver(dspy.Module):
    """``dspy.ChainOfThought`` on ``AnswerQuestion``, with the training text on the prediction as ``path``."""

    def __init__(self, signature: type[dspy.Signature] = AnswerQuestion):
        super().__init__()
        self.solve = dspy.ChainOfThought(signature)

    def forward(self, **inputs):
        prediction = self.solve(**inputs)
        return with_path(prediction)


def with_path(prediction: dspy.Prediction) -> dspy.Prediction:
    """Add ``path``: the reasoning followed by the final-answer line, the text a training row holds."""
    prediction.path = f"{str(prediction.reasoning).strip()}\n{answer_line(prediction.answer)}"
    return prediction
