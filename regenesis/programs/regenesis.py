"""ReGenesis as a DSPy module: from general guidelines to a reasoning path, in four steps."""

from __future__ import annotations

import random
from collections.abc import Sequence

import dspy
from dspy.signatures.signature import ensure_signature

from regenesis.guidelines import Guideline, as_text, load_guidelines, numbered
from regenesis.programs.path import PathPredict
from regenesis.prompting import answer_field, path_text
from regenesis.signatures.answer import AnswerQuestion
from regenesis.signatures.regenesis import (
    AdaptGuidelines,
    AdaptGuidelinesWithHint,
    BuildReasoningStructure,
    BuildReasoningStructureWithHint,
    SolveWithStructure,
    SolveWithStructureAndHint,
    select_from,
)


def solve_signature(task: type[dspy.Signature], step: type[dspy.Signature]) -> type[dspy.Signature]:
    """The task's own signature, extended the way ``step`` extends a problem: a reasoning structure
    (and, for the hinted step, the correct answer) in, the worked reasoning out before the outputs."""
    signature = task.with_instructions(f"{step.instructions}\n\n{task.instructions}")
    for name, field in step.input_fields.items():
        if name != "problem":
            signature = signature.append(name, field, type_=step.fields[name].annotation)
    return signature.prepend("reasoning", step.output_fields["reasoning"], type_=str)


class ReGenesis(dspy.Module):
    """Answers through guidelines → adapted guidelines → reasoning structure → reasoning path.

    Stands in for ``dspy.ChainOfThought``: ``ReGenesis("question -> answer")`` returns the task's
    outputs plus ``reasoning``, and shows its work on the prediction: ``guidelines`` (the names of the
    set used), ``adapted_guidelines``, ``reasoning_structure`` and ``path`` (reasoning ending in the
    final-answer line).

    Pass ``guideline_set`` (guideline indices) to skip the select step, and ``correct_answer`` to run
    the hinted variants of adapt, structure and solve.
    """

    def __init__(self, signature: str | type[dspy.Signature] = AnswerQuestion,
                 guidelines: Sequence[Guideline] | None = None):
        super().__init__()
        self.signature = ensure_signature(signature)
        if "reasoning" in self.signature.output_fields:  # a ChainOfThought signature: the path is its reasoning
            self.signature = self.signature.delete("reasoning")
        self.guidelines = list(guidelines) if guidelines is not None else load_guidelines()
        self.select = dspy.Predict(select_from(len(self.guidelines)))
        self.adapt = dspy.Predict(AdaptGuidelines)
        self.structure = dspy.Predict(BuildReasoningStructure)
        self.solve = PathPredict(solve_signature(self.signature, SolveWithStructure))
        self.adapt_with_hint = dspy.Predict(AdaptGuidelinesWithHint)
        self.structure_with_hint = dspy.Predict(BuildReasoningStructureWithHint)
        self.solve_with_hint = PathPredict(solve_signature(self.signature, SolveWithStructureAndHint))

    def problem_text(self, inputs: dict) -> str:
        names = list(self.signature.input_fields)
        if len(names) == 1:
            return str(inputs[names[0]])
        return "\n".join(f"{name}: {inputs[name]}" for name in names)

    def select_guidelines(self, problem: str, max_size: int = 3) -> list[int]:
        """The select step: 0-based indices of the guidelines the model finds relevant (at most ``max_size``)."""
        chosen = self.select(problem=problem, guidelines=numbered(self.guidelines)).selected
        return self.valid_selection(chosen, problem, max_size)

    def valid_selection(self, chosen: Sequence[int], problem: str, max_size: int = 3) -> list[int]:
        valid = [i - 1 for i in dict.fromkeys(chosen) if 1 <= i <= len(self.guidelines)]
        return valid[:max_size] or [self.fallback_guideline(problem)]

    def fallback_guideline(self, problem: str) -> int:
        """A guideline for an empty selection, drawn anew for each sample (the LM's rollout id) so that
        the sets of one problem stay varied."""
        lm = dspy.settings.lm
        rollout_id = lm.kwargs.get("rollout_id") if lm is not None else None
        return random.Random(f"{problem}\n{rollout_id}").randrange(len(self.guidelines))

    def steps(self, correct_answer: str | None) -> tuple[dict, tuple[dspy.Predict, dspy.Predict, dspy.Predict]]:
        """The hint to pass on, and the adapt, structure and solve predictors that take it."""
        if correct_answer is None:
            return {}, (self.adapt, self.structure, self.solve)
        return ({"correct_answer": str(correct_answer)},
                (self.adapt_with_hint, self.structure_with_hint, self.solve_with_hint))

    def forward(self, guideline_set: Sequence[int] | None = None, correct_answer: str | None = None, **inputs):
        problem = self.problem_text(inputs)
        if guideline_set is None:
            guideline_set = self.select_guidelines(problem)
        hint, (adapt, structure, solve) = self.steps(correct_answer)
        chosen = [self.guidelines[i] for i in guideline_set]
        adapted = adapt(problem=problem, guidelines=as_text(chosen), **hint).adapted_guidelines
        plan = structure(problem=problem, adapted_guidelines=adapted, **hint).reasoning_structure
        solved = solve(reasoning_structure=plan, **inputs, **hint)
        return self.prediction(solved, chosen, guideline_set, adapted, plan, hint)

    async def aforward(self, guideline_set: Sequence[int] | None = None, correct_answer: str | None = None,
                       **inputs):
        problem = self.problem_text(inputs)
        if guideline_set is None:
            selected = await self.select.acall(problem=problem, guidelines=numbered(self.guidelines))
            guideline_set = self.valid_selection(selected.selected, problem)
        hint, (adapt, structure, solve) = self.steps(correct_answer)
        chosen = [self.guidelines[i] for i in guideline_set]
        adapted = (await adapt.acall(problem=problem, guidelines=as_text(chosen), **hint)).adapted_guidelines
        plan = (await structure.acall(problem=problem, adapted_guidelines=adapted, **hint)).reasoning_structure
        solved = await solve.acall(reasoning_structure=plan, **inputs, **hint)
        return self.prediction(solved, chosen, guideline_set, adapted, plan, hint)

    def prediction(self, solved, chosen, guideline_set, adapted, plan, hint) -> dspy.Prediction:
        outputs = {name: solved[name] for name in self.signature.output_fields}
        return dspy.Prediction(
            reasoning=solved.reasoning,
            **outputs,
            guidelines=[g.name for g in chosen],
            guideline_set=list(guideline_set),
            adapted_guidelines=adapted,
            reasoning_structure=plan,
            path=self.path(solved.reasoning, outputs),
            hinted=bool(hint),
        )

    def path(self, reasoning: str, outputs: dict) -> str:
        """The training text: the reasoning, then every output field, the answer field last as the
        final-answer line (``name: value`` lines for the others)."""
        return path_text(reasoning, outputs, answer_field(self.signature.output_fields))
