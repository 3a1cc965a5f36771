"""The judge check: a model decides whether the reasoning supports the answer."""

from __future__ import annotations

import dspy

from regenesis.models import adapter_for
from regenesis.optimize.filters.verdict import Verdict, too_long_to_check
from regenesis.signatures.judge import JudgeOwnAnswer, JudgeReasoning
from regenesis.tasks.example import Example


class JudgeFilter:
    """A model reads the question, the path and the gold answer, and decides whether the reasoning
    supports that answer; ``label_free``, it is shown no gold answer and judges the path's own answer.
    Its verdict and rationale are the detail of the verdict (the row's provenance)."""

    name = "judge"

    def __init__(self, lm: dspy.LM, adapter: dspy.Adapter | None = None, label_free: bool = False):
        self.lm = lm
        self.adapter = adapter or adapter_for(lm)
        self.label_free = label_free
        self.judge = dspy.Predict(JudgeOwnAnswer if label_free else JudgeReasoning)

    def check(self, path: str, example: Example) -> Verdict:
        unread = too_long_to_check(path)
        if unread:
            return Verdict(self.name, False, unread)
        gold = {} if self.label_free else {"gold_answer": example.gold}
        try:
            with dspy.context(lm=self.lm, adapter=self.adapter):
                judged = self.judge(question=example.question, reasoning=path, **gold)
        except Exception as error:  # an unreadable verdict keeps no path: the judge is the last word
            return Verdict(self.name, False, f"judge failed: {type(error).__name__}: {error}",
                           {"model": self.lm.model, "error": str(error)})
        supports = judged.supports_answer is True
        rationale = str(judged.rationale or "").strip()
        detail = {"model": self.lm.model, "supports_answer": supports, "rationale": rationale}
        return Verdict(self.name, supports, "" if supports else f"judge: {rationale}", detail)
