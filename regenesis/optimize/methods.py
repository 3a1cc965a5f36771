"""The methods that propose candidate reasoning paths for one problem.

Every method goes through the same bootstrap loop, filters, writer and cost report; only the
proposing differs. A method turns one problem into candidates, each drawn with its own ``rollout_id``
so that no two samples share a cached completion.
"""

from __future__ import annotations

import copy
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import dspy

from regenesis.tasks.example import Example
from regenesis.guidelines import Guideline, load_guidelines
from regenesis.models import error_kind, sampling_lm
from regenesis.programs import ChainOfThoughtSolver, ReGenesis, SelfDiscover, STaR
from regenesis.prompting import answer_line

HINTED_ROLLOUT_OFFSET = 1_000_000


@dataclass
class Candidate:
    """One proposed reasoning path: ``path`` is the training text (reasoning + final-answer line)."""

    path: str
    answer: str
    sample_index: int
    hinted: bool = False
    provenance: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Failure:
    """A sample that gave no candidate: how its model call failed (``regenesis.models.error_kind``) and
    the error. A ``parse`` failure is the model's output, unreadable after DSPy's retries; any other kind
    means the call itself failed, so the problem's outcome is unknown."""

    kind: str
    message: str

    @property
    def is_model_error(self) -> bool:
        return self.kind != "parse"


def failure_of(exc: Exception) -> Failure:
    """The failure a sample's exception stands for. A model file that cannot be loaded fails every
    sample alike: it is raised again, to stop the run."""
    kind = error_kind(exc)
    if kind == "model_load":
        raise exc
    return Failure(kind, f"{type(exc).__name__}: {str(exc)[:300]}")


@dataclass
class Sampler:
    """Hands out sampling copies of one LM, one rollout id per sample."""

    lm: dspy.LM
    temperature: float = 0.8
    top_p: float | None = 0.95

    def __call__(self, rollout_id: int) -> dspy.LM:
        return sampling_lm(self.lm, rollout_id, self.temperature, self.top_p)


class Method:
    """Base of the proposing methods. Subclasses set ``name`` and implement ``sample``."""

    name = ""
    uses_gold = True
    supports_hint = False
    guidelines: Sequence[Guideline] = ()  # the guideline library the method reads, if it reads one

    def prepare(self, examples: Sequence[Example], sampler: Sampler) -> dict:
        """Work done once per run before any problem (Self-Discover's task plan); returns provenance."""
        return {}

    def __init__(self, samples: int = 8):
        self.samples = samples

    def num_samples(self) -> int:
        return self.samples

    def planned_generations(self) -> int:
        return self.samples

    def sample(self, example: Example, index: int, lm: dspy.LM, hint: str | None) -> Candidate:
        raise NotImplementedError

    def with_generations(self, generations: int) -> "Method":
        """This method with a budget of ``generations`` per problem (the hinted pass's own budget)."""
        method = copy.copy(self)
        method.samples = generations
        return method

    def propose(self, example: Example, sampler: Sampler, hint: str | None = None,
                ) -> tuple[list[Candidate], list[Failure]]:
        """The candidates of one problem, and the failures of the samples that gave none. The first
        model error ends the proposing: the problem is failed, and done again by the next run."""
        candidates, failures = [], []
        offset = HINTED_ROLLOUT_OFFSET if hint is not None else 0
        for index in range(self.num_samples()):
            try:
                candidates.append(self.sample(example, index, sampler(offset + index), hint))
            except Exception as exc:
                failures.append(failure_of(exc))
                if failures[-1].is_model_error:
                    break
        return candidates, failures


class ChainOfThoughtMethod(Method):
    """``cot``: zero-shot ``dspy.ChainOfThought`` samples, no hint (what BootstrapFinetune collects)."""

    name = "cot"

    def __init__(self, samples: int = 8):
        super().__init__(samples)
        self.program = ChainOfThoughtSolver()

    def sample(self, example, index, lm, hint):
        with dspy.context(lm=lm):
            prediction = self.program(question=example.question)
        return Candidate(prediction.path, str(prediction.answer), index)


class LMSIMethod(ChainOfThoughtMethod):
    """``lmsi``: chain-of-thought samples filtered by their own majority answer; gold answers unused."""

    name = "lmsi"
    uses_gold = False


class STaRMethod(Method):
    """``star``: few-shot rationales; rationalization with the gold answer for the failures."""

    name = "star"
    supports_hint = True

    def __init__(self, samples: int = 8):
        super().__init__(samples)
        self.program = STaR()

    def sample(self, example, index, lm, hint):
        with dspy.context(lm=lm):
            prediction = self.program(question=example.question, correct_answer=hint)
        return Candidate(prediction.path, str(prediction.answer), index, hinted=hint is not None)


class SelfDiscoverMethod(Method):
    """``self-discover``: one plan per task (from a few of its problems), every problem solved with it."""

    name = "self-discover"
    plan_examples = 3

    def __init__(self, samples: int = 8, guidelines: Sequence[Guideline] | None = None):
        super().__init__(samples)
        self.program = SelfDiscover(guidelines)
        self.guidelines = self.program.guidelines
        self.plans: dict[str, dspy.Prediction] = {}

    def prepare(self, examples, sampler):
        by_task: dict[str, list[Example]] = {}
        for example in examples:
            by_task.setdefault(example.task, []).append(example)
        for task, task_examples in by_task.items():
            with dspy.context(lm=sampler.lm):  # the plan is written once, greedily
                self.plans[task] = self.program.discover([e.question for e in task_examples[: self.plan_examples]])
        return {task: dict(plan) for task, plan in self.plans.items()}

    def sample(self, example, index, lm, hint):
        plan = self.plans[example.task]
        with dspy.context(lm=lm):
            prediction = self.program(question=example.question, plan=plan.reasoning_plan)
        return Candidate(prediction.path, str(prediction.answer), index,
                         provenance={"guidelines": plan.guidelines, "reasoning_structure": plan.reasoning_plan})


@dataclass(frozen=True)
class ReGenesisBudget:
    """How many guideline sets a problem gets: ``selections`` chosen by the model (one select call
    each) plus ``singles`` sets of one seed guideline, with ``paths_per_set`` solve samples each."""

    selections: int = 2
    singles: int = 2
    paths_per_set: int = 1

    @property
    def generations(self) -> int:
        per_set = 2 + self.paths_per_set  # adapt, structure, then the solves
        return self.selections * (1 + per_set) + self.singles * per_set

    @classmethod
    def for_generations(cls, generations: int, paths_per_set: int = 1) -> "ReGenesisBudget":
        """Split a budget of generations per problem between selected and single-guideline sets, half each."""
        per_set = 2 + paths_per_set
        selections = max(1, generations // (2 * (1 + per_set)))
        singles = max(0, (generations - selections * (1 + per_set)) // per_set)
        return cls(selections, singles, paths_per_set)


class ReGenesisMethod(Method):
    """``regenesis``: guideline sets → adapt → structure → solve; a hinted pass for the unsolved."""

    name = "regenesis"
    supports_hint = True

    def __init__(self, budget: ReGenesisBudget = ReGenesisBudget(), guidelines: Sequence[Guideline] | None = None,
                 label_free: bool = False):
        self.guidelines = list(guidelines) if guidelines is not None else load_guidelines()
        self.budget = replace(budget, singles=min(budget.singles, len(self.guidelines)))
        self.program = ReGenesis(guidelines=self.guidelines)
        self.uses_gold = not label_free
        self.supports_hint = not label_free

    def num_samples(self) -> int:
        return (self.budget.selections + self.budget.singles) * self.budget.paths_per_set

    def planned_generations(self) -> int:
        return self.budget.generations

    def with_generations(self, generations: int) -> "ReGenesisMethod":
        method = copy.copy(self)
        budget = ReGenesisBudget.for_generations(generations, self.budget.paths_per_set)
        method.budget = replace(budget, singles=min(budget.singles, len(self.guidelines)))
        return method

    def guideline_sets(self, example: Example, sampler: Sampler, offset: int,
                       ) -> tuple[list[list[int]], list[Failure]]:
        """The candidate sets of one problem: the model's selections, then single seed guidelines."""
        sets, failures = [], []
        for i in range(self.budget.selections):
            try:
                with dspy.context(lm=sampler(offset + i)):
                    sets.append(self.program.select_guidelines(example.question))
            except Exception as exc:
                failures.append(failure_of(exc))
                if failures[-1].is_model_error:
                    return sets, failures
        order = list(range(len(self.guidelines)))
        random.Random(example.id).shuffle(order)  # a different, reproducible choice of singles per problem
        sets.extend([i] for i in order[: self.budget.singles])
        return sets, failures

    def propose(self, example, sampler, hint=None):
        offset = HINTED_ROLLOUT_OFFSET if hint is not None else 0
        sets, failures = self.guideline_sets(example, sampler, offset)
        candidates = []
        if any(f.is_model_error for f in failures):
            return candidates, failures
        for set_index, guideline_set in enumerate(sets):
            for path_index in range(self.budget.paths_per_set):
                index = set_index * self.budget.paths_per_set + path_index
                try:
                    with dspy.context(lm=sampler(offset + index)):
                        prediction = self.program(question=example.question, guideline_set=guideline_set,
                                                  correct_answer=hint)
                except Exception as exc:
                    failures.append(failure_of(exc))
                    if failures[-1].is_model_error:
                        return candidates, failures
                    continue
                candidates.append(Candidate(
                    prediction.path, str(prediction.answer), index, hinted=hint is not None,
                    provenance={"guidelines": prediction.guidelines,
                                "adapted_guidelines": prediction.adapted_guidelines,
                                "reasoning_structure": prediction.reasoning_structure},
                ))
        return candidates, failures


class GoldSFTMethod(Method):
    """``gold-sft``: the dataset's own worked solution as the one path (GSM8K's solutions, AQuA's
    rationales, MATH's solutions: ``meta["solution"]`` or ``meta["rationale"]``), no model call. The
    baseline of self-training: supervised fine-tuning on gold rationales. A problem without one keeps
    no row."""

    name = "gold-sft"
    rationale_keys = ("solution", "rationale")

    def __init__(self):
        super().__init__(samples=1)

    def planned_generations(self) -> int:
        return 0

    def propose(self, example, sampler, hint=None):
        rationale = next((str(example.meta[key]).strip() for key in self.rationale_keys if example.meta.get(key)), "")
        if not rationale:
            return [], []
        rationale = _CALCULATOR_NOTE.sub("", rationale)  # GSM8K's "<<6/3=2>>" annotations for its calculator
        # GSM8K's last lines often have no full stop, which the form filter reads as a cut-off sentence
        rationale = _UNPUNCTUATED_END.sub(".", rationale.strip())
        return [Candidate(f"{rationale}\n{answer_line(example.gold)}", example.gold, 0,
                          provenance={"source": "gold rationale"})], []


_CALCULATOR_NOTE = re.compile(r"<<[^<>]{0,200}>>")
_UNPUNCTUATED_END = re.compile(r"(?<=[\w)%$])\Z")

METHOD_NAMES = ("regenesis", "star", "lmsi", "cot", "self-discover", "gold-sft")


def build_method(name: str, generations: int | None = None, *, guidelines: Sequence[Guideline] | None = None,
                 label_free: bool = False, regenesis_budget: ReGenesisBudget | None = None) -> Method:
    """The method called ``name``; ``generations`` is the shared budget of generations per problem."""
    if label_free and name != "regenesis":
        raise ValueError("--label-free applies to --method regenesis (lmsi is label-free already)")
    if name == "regenesis":
        budget = regenesis_budget or (ReGenesisBudget.for_generations(generations) if generations else ReGenesisBudget())
        return ReGenesisMethod(budget, guidelines, label_free=label_free)
    if name == "gold-sft":
        return GoldSFTMethod()
    samples = generations or 8
    if name == "star":
        return STaRMethod(samples)
    if name == "lmsi":
        return LMSIMethod(samples)
    if name == "cot":
        return ChainOfThoughtMethod(samples)
    if name == "self-discover":
        return SelfDiscoverMethod(samples, guidelines)
    raise ValueError(f"unknown method {name!r}; choose one of {', '.join(METHOD_NAMES)}")
