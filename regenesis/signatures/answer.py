"""The task every method answers: a question in, a short final answer out."""

import dspy


class AnswerQuestion(dspy.Signature):
    """Answer the question. Work it out step by step before giving the final answer."""

    question: str = dspy.InputField()
    answer: str = dspy.OutputField(desc="the final answer only: a number, an option letter, yes/no, or a short phrase")
