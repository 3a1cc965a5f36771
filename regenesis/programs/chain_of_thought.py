"""Plain chain of thought on the shared task signature."""

import dspy

from regenesis.programs.path import PathPredict, reasoning_first
from regenesis.prompting import answer_field, path_text
from regenesis.signatures.answer import AnswerQuestion


class ChainOfThoughtSolver(dspy.Module):
    """Chain of thought on ``AnswerQuestion`` (a reasoning path, then the answer), with the training text on
    the prediction as ``path``."""

    def __init__(self, signature: type[dspy.Signature] = AnswerQuestion):
        super().__init__()
        self.solve = PathPredict(reasoning_first(signature))

    def forward(self, **inputs):
        prediction = self.solve(**inputs)
        return with_path(prediction)


def with_path(prediction: dspy.Prediction) -> dspy.Prediction:
    """Set ``path`` on a predictor's prediction: the reasoning followed by the other outputs, the
    final-answer line last, the text a training row holds."""
    outputs = {name: value for name, value in prediction.items() if name not in ("reasoning", "path")}
    prediction.path = path_text(prediction.reasoning, outputs, answer_field(outputs))
    return prediction
