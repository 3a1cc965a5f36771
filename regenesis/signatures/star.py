"""STaR's rationalization step: answer with the correct answer in view, reasoning as if unaided."""

import dspy

from regenesis.signatures.answer import AnswerQuestion


class RationalizeAnswer(AnswerQuestion):
    """Answer the question. The correct answer is known: work it out step by step so that every step
    follows from the facts of the question and arrives at that answer. Write as if you had found it
    yourself, and never refer to a given, expected or known answer."""

    correct_answer: str = dspy.InputField(desc="the correct final answer, to steer the reasoning only")
