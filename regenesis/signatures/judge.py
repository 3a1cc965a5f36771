"""The judge of the quality filters: does a reasoning path actually lead to the correct answer?"""

import dspy


class JudgeReasoning(dspy.Signature):
    """You are checking a worked solution to a question, and you are told the correct final answer.
    Decide whether the reasoning itself earns that answer: every calculation it states is right, the
    facts and quantities it uses come from the question or are true, each step follows from the ones
    before, and the final answer is the result of those steps. A solution that arrives at the correct
    answer by luck, through a wrong step, by contradicting itself, or by naming the answer without
    reasons does not support it."""

    question: str = dspy.InputField()
    reasoning: str = dspy.InputField(desc="the worked solution to check, ending with its final answer")
    gold_answer: str = dspy.InputField(desc="the correct final answer")
    rationale: str = dspy.OutputField(desc="one or two sentences naming the decisive step or defect")
    supports_answer: bool = dspy.OutputField(desc="true only if the reasoning validly derives the correct answer")


class JudgeOwnAnswer(dspy.Signature):
    """You are checking a worked solution to a question; no correct answer is known. Decide whether the
    reasoning itself earns the final answer it states: every calculation it states is right, the facts
    and quantities it uses come from the question or are true, each step follows from the ones before,
    and the final answer is the result of those steps. A solution that contradicts itself, rests on a
    wrong step, or names its answer without reasons does not support it."""

    question: str = dspy.InputField()
    reasoning: str = dspy.InputField(desc="the worked solution to check, ending with its final answer")
    rationale: str = dspy.OutputField(desc="one or two sentences naming the decisive step or defect")
    supports_answer: bool = dspy.OutputField(desc="true only if the reasoning validly derives its final answer")
