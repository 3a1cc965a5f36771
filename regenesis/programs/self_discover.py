"""Self-Discover (Zhou et al., 2024): one plan per task, then every problem solved with that plan."""

from __future__ import annotations

from collections.abc import Sequence

import dspy

from regenesis.guidelines import Guideline, as_text, load_guidelines, numbered
from regenesis.programs.chain_of_thought import with_path
from regenesis.programs.path import PathPredict
from regenesis.signatures.regenesis import AdaptGuidelines, SolveWithStructure, select_from
from regenesis.signatures.self_discover import ImplementReasoningPlan


class SelfDiscover(dspy.Module):
    """``discover(task_questions)`` selects, adapts and implements guidelines once for the whole task;
    ``forward(question, plan)`` solves one problem by filling in that plan."""

    def __init__(self, guidelines: Sequence[Guideline] | None = None):
        super().__init__()
        self.guidelines = list(guidelines) if guidelines is not None else load_guidelines()
        self.select = dspy.Predict(select_from(len(self.guidelines)))
        self.adapt = dspy.Predict(AdaptGuidelines)
        self.implement = dspy.Predict(ImplementReasoningPlan)
        self.solve = PathPredict(SolveWithStructure)

    def discover(self, task_questions: Sequence[str]) -> dspy.Prediction:
        examples = "\n\n".join(f"Problem {i}: {q}" for i, q in enumerate(task_questions, start=1))
        chosen_numbers = self.select(problem=examples, guidelines=numbered(self.guidelines)).selected
        chosen = [self.guidelines[i - 1] for i in dict.fromkeys(chosen_numbers) if 1 <= i <= len(self.guidelines)]
        chosen = chosen[:3] or self.guidelines[:1]
        adapted = self.adapt(problem=examples, guidelines=as_text(chosen)).adapted_guidelines
        plan = self.implement(task_examples=examples, adapted_guidelines=adapted).reasoning_plan
        return dspy.Prediction(guidelines=[g.name for g in chosen], adapted_guidelines=adapted, reasoning_plan=plan)

    def forward(self, question: str, plan: str):
        prediction = with_path(self.solve(problem=question, reasoning_structure=plan))
        prediction.reasoning_plan = plan
        return prediction
