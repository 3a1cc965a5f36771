"""The abstract-to-concrete steps of ReGenesis, one typed signature each.

General guideline → guideline adapted to this problem → reasoning structure (a plan) → reasoning
path with a final answer. The hinted variants see the gold answer, for problems that no unhinted
path solved; the text they write must still reason its way to the answer on its own.
"""

from typing import Literal

import dspy


class SelectGuidelines(dspy.Signature):
    """Read the problem and the numbered list of general reasoning guidelines. Choose the two or three
    guidelines that would help most to solve this particular problem. Do not solve the problem."""

    problem: str = dspy.InputField()
    guidelines: str = dspy.InputField(desc="numbered list of general reasoning guidelines")
    selected: list[int] = dspy.OutputField(desc="the numbers of the two or three most useful guidelines")


def select_from(library_size: int) -> type[dspy.Signature]:
    """``SelectGuidelines`` whose ``selected`` can hold only numbers of the library (1..library_size):
    a constrained decoder cannot write another, and any other reply fails to parse."""
    numbers = Literal[tuple(range(1, library_size + 1))]
    return SelectGuidelines.with_updated_fields("selected", type_=list[numbers])


class AdaptGuidelines(dspy.Signature):
    """Make the general reasoning guidelines specific to this problem: for each one, say what it means
    here, naming the facts, quantities or options of the problem it applies to. Do not solve the
    problem and do not state an answer."""

    problem: str = dspy.InputField()
    guidelines: str = dspy.InputField(desc="the general guidelines chosen for this problem")
    adapted_guidelines: str = dspy.OutputField(desc="the guidelines rewritten for this problem")


class BuildReasoningStructure(dspy.Signature):
    """Turn the problem-specific guidelines into a reasoning structure: a numbered plan whose steps
    say what to work out or check, in order, to reach the answer. Describe the steps; do not carry them
    out and do not give the answer."""

    problem: str = dspy.InputField()
    adapted_guidelines: str = dspy.InputField()
    reasoning_structure: str = dspy.OutputField(desc="a numbered plan of steps, without results")


class SolveWithStructure(dspy.Signature):
    """Solve the problem by working through the reasoning structure in order. Write out every step in full:
    the facts of the problem it uses, the calculation or deduction, and its result. Leave no step out,
    and finish with the final answer the steps reach."""

    problem: str = dspy.InputField()
    reasoning_structure: str = dspy.InputField()
    reasoning: str = dspy.OutputField(
        desc="the complete step-by-step reasoning, every step worked out with its result, ending in the final answer")
    answer: str = dspy.OutputField(desc="the final answer only: a number, an option letter, yes/no, or a short phrase")


_HINT_DESC = ("the correct final answer, known in advance; use it only to steer the reasoning and never "
              "mention that it was given")


class AdaptGuidelinesWithHint(AdaptGuidelines):
    """Make the general reasoning guidelines specific to this problem: for each one, say what it means
    here, naming the facts, quantities or options of the problem it applies to. The correct answer is
    known: adapt the guidelines so that they lead towards it, but do not state it and do not solve the
    problem."""

    correct_answer: str = dspy.InputField(desc=_HINT_DESC)


class BuildReasoningStructureWithHint(BuildReasoningStructure):
    """Turn the problem-specific guidelines into a reasoning structure: a numbered plan whose steps
    say what to work out or check, in order, to reach the answer. The correct answer is known: plan
    steps that would arrive at it, but do not carry them out and do not give the answer."""

    correct_answer: str = dspy.InputField(desc=_HINT_DESC)


class SolveWithStructureAndHint(SolveWithStructure):
    """Solve the problem by working through the reasoning structure in order. Write out every step in full:
    the facts of the problem it uses, the calculation or deduction, and its result. Leave no step out,
    and finish with the final answer the steps reach. The correct answer is known: reason so that each step follows from the problem's facts and leads to it,
    and write as if you had found it yourself — never refer to a given, expected or known answer."""

    correct_answer: str = dspy.InputField(desc=_HINT_DESC)
