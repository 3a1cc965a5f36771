"""ReGenesis as a DSPy optimizer: any program, any signature, a list of ``dspy.Example``, any metric.

    optimizer = ReGenesisOptimizer(metric=my_metric, train_kwargs={"max_steps": 20})
    tuned = optimizer.compile(program, trainset=examples)

``compile`` runs the student with every predictor standing in for itself through ReGenesis
(guidelines → adapted guidelines → reasoning structure → path), once per sample: the model's own
guideline selections, then single seed guidelines, each sample with its own rollout id. The metric
scores each sample's final prediction; the samples it accepts (a random few per example, seeded by
the example) become training rows of every predictor they passed through, formatted by the adapter the
program runs under (``dspy.settings.adapter``, or where none is set the one ``adapter_for`` picks for the
predictor's LM, which the teacher's own calls use too) with the predictor's demos, so the tuned model
is asked in the format it learned. An example that no
sample solves gets a hinted pass (the gold outputs shown to the steps, never in the rows), unless
``label_free``: then nothing sees a gold output, and a sample is scored against the majority of the
example's samples instead.

With ``finetune=True`` each distinct LM of the student is fine-tuned on its predictors' rows with the
project's TRL stage (``regenesis.finetune``) and the returned student is bound to the tuned LMs; with
``finetune=False`` the student gets the kept rows as demos. Every finished example is appended to
``run_dir`` at once (``regenesis.optimize.store``): the same ``compile`` after an interruption resumes,
and one after a finished run makes no model call before training (whose own resume reuses a finished
checkpoint).
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import random
import tempfile
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import dspy
from dspy.teleprompt.teleprompt import Teleprompter

from regenesis.answers import is_correct
from regenesis.finetune.provider import RegenesisProvider, finetunable_lm
from regenesis.guidelines import Guideline, load_guidelines
from regenesis.models import adapter_for, is_in_process, model_identity, sampling_lm
from regenesis.optimize.bootstrap import capped, majority_answer
from regenesis.optimize.config import SynthesisConfig, preset
from regenesis.optimize.examples import answer_field_of, example_key, gold_text, task_example
from regenesis.optimize.filters import FilterOptions, build_filters, check_path, hint_leak
from regenesis.optimize.methods import HINTED_ROLLOUT_OFFSET, ReGenesisBudget, failure_of
from regenesis.optimize.store import FAILED, FINISHED, open_run, rows_dataset
from regenesis.models import finetune_adapter
from regenesis.programs import ReGenesis
from regenesis.prompting import answer_line
from regenesis.runfiles import read_jsonl

Metric = Callable[..., Any]


# ---------------------------------------------------------------------------------------------
# The default metric


def path_of(prediction: dspy.Prediction, answer: str) -> str:
    """The reasoning of a prediction followed by its answer line: the text answer matching reads."""
    return f"{str(prediction.get('reasoning') or '').strip()}\n{answer_line(gold_text(prediction.get(answer)))}"


class AnswerMatch:
    """The default metric: the project's answer matching on the answer field, then the quality filters
    on the path. ``signature`` is the one of the program's last step (its outputs are the program's)."""

    def __init__(self, signature: type[dspy.Signature], filters: FilterOptions | None = None):
        self.signature = signature
        self.filters = build_filters(filters or FilterOptions())

    def __call__(self, example, prediction, trace=None) -> bool:
        target = task_example(example, self.signature)
        path = path_of(prediction, answer_field_of(self.signature))
        if not is_correct(path, target):
            return False
        return all(verdict.passed for verdict in check_path(self.filters, path, target))


# ---------------------------------------------------------------------------------------------
# One sample: the student run with every predictor standing in for itself through ReGenesis


@dataclass
class Step:
    predictor: int  # the index of the student's predictor
    inputs: dict
    outputs: dict
    provenance: dict


@dataclass
class Sample:
    rollout_id: int
    temperature: float
    guideline_set: list[int] | None
    hints: dict[int, str] = field(default_factory=dict)  # predictor index → the gold outputs it is shown
    steps: list[Step] = field(default_factory=list)


_SAMPLE: contextvars.ContextVar[Sample] = contextvars.ContextVar("regenesis_sample")


class StandIn:
    """The ``forward`` of a teacher predictor: ReGenesis on that predictor's signature, sampled with the
    current sample's rollout id and guideline set, recorded as a step of the sample."""

    def __init__(self, index: int, predictor: dspy.Predict, lm: dspy.LM, adapter: dspy.Adapter,
                 guidelines: Sequence[Guideline], top_p: float | None):
        self.index = index
        self.signature = predictor.signature
        self.program = ReGenesis(self.signature, guidelines)
        self.lm, self.adapter, self.top_p = lm, adapter, top_p

    def __call__(self, **kwargs) -> dspy.Prediction:
        sample = _SAMPLE.get()
        inputs = {name: kwargs[name] for name in self.signature.input_fields if name in kwargs}
        lm = sampling_lm(self.lm, sample.rollout_id, sample.temperature, self.top_p)
        with dspy.context(lm=lm, adapter=self.adapter, trace=None):
            solved = self.program(guideline_set=sample.guideline_set, correct_answer=sample.hints.get(self.index),
                                  **inputs)
        outputs = {name: solved[name] for name in self.signature.output_fields}
        sample.steps.append(Step(self.index, inputs, outputs, {
            "guidelines": solved.guidelines, "reasoning_structure": solved.reasoning_structure}))
        return dspy.Prediction(**{"reasoning": solved.reasoning, **outputs})  # the path, for the metric


# ---------------------------------------------------------------------------------------------
# The teacher: the student whose predictors stand in through ReGenesis, and what it keeps


class Teacher:
    """Samples, scores and keeps paths for one example at a time (thread-safe: the per-sample state
    lives in a context variable)."""

    def __init__(self, student: dspy.Module, lms: list[dspy.LM], metric: Metric | None, config: SynthesisConfig,
                 guidelines: Sequence[Guideline]):
        self.program = student.deepcopy()
        self.predictors = self.program.predictors()
        self.lms, self.config, self.guidelines = lms, config, list(guidelines)
        self.adapters = [finetune_adapter(dspy.settings.adapter or adapter_for(lm)) for lm in lms]
        for index, (predictor, lm, adapter) in enumerate(zip(self.predictors, lms, self.adapters)):
            predictor.forward = StandIn(index, predictor, lm, adapter, self.guidelines, config.top_p)
        self.metric = metric or AnswerMatch(self.predictors[-1].signature, config.filters)

    def budget(self, hinted: bool) -> ReGenesisBudget:
        generations = (self.config.hint_generations if hinted else None) or self.config.generations
        budget = (ReGenesisBudget.for_generations(generations) if generations
                  else self.config.regenesis or ReGenesisBudget())
        return ReGenesisBudget(budget.selections, min(budget.singles, len(self.guidelines)), budget.paths_per_set)

    def samples(self, example: dspy.Example, hints: dict[int, str] | None) -> list[Sample]:
        """The samples of one example: the model's own selections, then single seed guidelines."""
        budget = self.budget(hinted=hints is not None)
        order = list(range(len(self.guidelines)))
        random.Random(example_key(example)).shuffle(order)
        sets = [None] * budget.selections + [[i] for i in order[: budget.singles]]
        offset, temperature = ((HINTED_ROLLOUT_OFFSET, self.config.hint_temperature or self.config.temperature)
                               if hints is not None else (0, self.config.temperature))
        return [Sample(offset + n * budget.paths_per_set + k, temperature, guideline_set, dict(hints or {}))
                for n, guideline_set in enumerate(sets) for k in range(budget.paths_per_set)]

    def solve(self, example: dspy.Example) -> tuple[list[dict], dict]:
        """One example: its rows and its record (a failed model call fails the example, without rows)."""
        key = example_key(example)
        dropped: Counter = Counter()
        try:
            kept = self.accepted(example, self.samples(example, None), dropped)
            hints = {} if self.config.label_free else self.hints(example)
            if not kept and hints and self.config.hint_pass:
                kept = self.accepted(example, self.samples(example, hints), dropped)
        except _ModelError as error:
            return [], {"problem_id": key, "status": FAILED, "error_kind": error.kind, "kept": 0,
                        "dropped": dict(dropped), "error": error.message}
        kept = capped(kept, self.config.max_kept, key)
        rows = [self.row(key, sample, step) for sample in kept for step in sample.steps]
        return rows, {"problem_id": key, "status": FINISHED, "error_kind": None, "kept": len(kept),
                      "solved_with_hint": any(sample.hints for sample in kept), "dropped": dict(dropped)}

    def hints(self, example: dspy.Example) -> dict[int, str]:
        """The gold outputs each predictor is shown in the hinted pass: those the example holds."""
        hints = {}
        for index, predictor in enumerate(self.predictors):
            labelled = [name for name in predictor.signature.output_fields if name in example.labels()]
            if len(labelled) == 1:
                hints[index] = gold_text(example[labelled[0]])
            elif labelled:
                hints[index] = "\n".join(f"{name}: {gold_text(example[name])}" for name in labelled)
        return hints

    def accepted(self, example: dspy.Example, samples: list[Sample], dropped: Counter) -> list[Sample]:
        """The samples the metric accepts, without duplicates or hint leaks, counting why others went."""
        runs = []
        for sample in samples:
            token = _SAMPLE.set(sample)
            try:
                runs.append((sample, self.program(**example.inputs())))
            except Exception as exc:  # a model error fails the example; an unreadable output drops the sample
                failure = failure_of(exc)
                if failure.is_model_error:
                    raise _ModelError(failure.kind, failure.message) from exc
                dropped["parse"] += 1
            finally:
                _SAMPLE.reset(token)
        reference = self.reference(example, [prediction for _, prediction in runs])
        kept, seen = [], set()
        for sample, prediction in runs:
            if self.leaks_hint(sample):
                dropped["hint_leak"] += 1
            elif reference is None or not self.metric(reference, prediction, self.trace(sample)):
                dropped["metric"] += 1
            elif (text := json.dumps([s.outputs for s in sample.steps], sort_keys=True, default=str)) in seen:
                dropped["duplicate"] += 1
            else:
                seen.add(text)
                kept.append(sample)
        return kept

    def reference(self, example: dspy.Example, predictions: list[dspy.Prediction]) -> dspy.Example | None:
        """What a prediction is scored against: the example, or label-free, its inputs with the majority
        answer of the samples (None without a majority)."""
        if not self.config.label_free:
            return example
        name = answer_field_of(self.predictors[-1].signature)
        majority = majority_answer([gold_text(p.get(name)).strip() or None for p in predictions])
        if majority is None:
            return None
        return dspy.Example(**example.inputs(), **{name: majority}).with_inputs(*example.inputs())

    def trace(self, sample: Sample) -> list[tuple]:
        return [(self.predictors[s.predictor], s.inputs, dspy.Prediction(**s.outputs)) for s in sample.steps]

    def leaks_hint(self, sample: Sample) -> bool:
        return any(hint_leak(str(step.outputs.get("reasoning", "")), sample.hints[step.predictor],
                             self.config.filters.hint_phrases)
                   for step in sample.steps if step.predictor in sample.hints)

    def row(self, key: str, sample: Sample, step: Step) -> dict:
        """A training row as the predictor's prompt is sent: its adapter (JSON for models that decode
        under a schema, DSPy's chat fields otherwise) and its demos (BootstrapFinetune's rule)."""
        predictor = self.predictors[step.predictor]
        row = self.adapters[step.predictor].format_finetune_data(
            signature=predictor.signature, demos=predictor.demos, inputs=step.inputs, outputs=step.outputs)
        meta = {"problem_id": key, "predictor": step.predictor, "rollout_id": sample.rollout_id,
                "hinted": bool(sample.hints), "inputs": _plain(step.inputs), "outputs": _plain(step.outputs),
                **step.provenance}
        return {"messages": row["messages"], "meta": meta}


# ---------------------------------------------------------------------------------------------
# The optimizer


class ReGenesisOptimizer(Teleprompter):
    """Bootstraps reasoning paths abstract-to-concrete for every predictor of a program, keeps those the
    metric accepts, and fine-tunes the program's LMs on them (or, ``finetune=False``, uses them as demos).

    ``preset`` and ``overrides`` are those of ``regenesis synthesize`` (``SynthesisConfig`` fields:
    ``generations``, ``regenesis``, ``max_kept``, ``hint_pass``, ``temperature``...); ``train_kwargs``
    are ``FinetuneConfig`` fields; ``metric`` defaults to ``AnswerMatch``.
    """

    def __init__(self, metric: Metric | None = None, preset: str = "default", finetune: bool = True,
                 label_free: bool = False, run_dir: str | Path | None = None,
                 train_kwargs: dict[str, Any] | None = None, guidelines: Sequence[Guideline] | None = None,
                 num_threads: int = 2, max_demos: int = 4, **overrides: Any):
        self.metric = metric
        self.config = _preset(preset, label_free=label_free, num_threads=num_threads, **overrides)
        self.finetune = finetune
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.train_kwargs = dict(train_kwargs or {})
        self.guidelines = list(guidelines) if guidelines is not None else load_guidelines()
        self.max_demos = max_demos
        self.report: dict = {}

    def compile(self, student: dspy.Module, *, trainset: Sequence[dspy.Example],
                valset: Sequence[dspy.Example] | None = None) -> dspy.Module:
        """``student`` bound to its tuned LMs (or with demos). ``valset`` is accepted for the
        Teleprompter interface and unused: paths are selected by the metric on ``trainset``."""
        for number, example in enumerate(trainset):
            if not example._input_keys:
                raise ValueError(f"trainset[{number}]: mark its inputs with .with_inputs(...)")
        student = student.deepcopy()
        predictors = student.predictors()
        lms = [predictor.lm or dspy.settings.lm for predictor in predictors]
        missing = [name for (name, _), lm in zip(student.named_predictors(), lms) if lm is None]
        if missing:
            raise ValueError(f"predictor {missing[0]} has no LM: set one (student.set_lm(lm)) or configure DSPy")
        run_dir = self.run_dir or Path(tempfile.mkdtemp(prefix="regenesis-optimizer-"))
        rows = self.synthesize(Teacher(student, lms, self.metric, self.config, self.guidelines), list(trainset),
                               run_dir)
        if self.finetune:
            tuned = self.finetune_lms(rows, lms, run_dir)
            for predictor, lm in zip(predictors, lms):
                predictor.lm = tuned[id(lm)]
        else:
            for index, predictor in enumerate(predictors):
                demos = [row["meta"] for row in rows if row["meta"]["predictor"] == index][: self.max_demos]
                predictor.demos = [dspy.Example(**demo["inputs"], **demo["outputs"]) for demo in demos]
        student._compiled = True
        return student

    def synthesize(self, teacher: Teacher, trainset: list[dspy.Example], run_dir: Path) -> list[dict]:
        """The kept rows of every example, synthesized into ``run_dir`` (or read back from it)."""
        with open_run(run_dir, self.settings(teacher, trainset)) as store:
            todo = [e for e in trainset if example_key(e) not in store.finished]
            with ThreadPoolExecutor(max_workers=max(1, self.config.num_threads)) as pool:
                for rows, record in pool.map(teacher.solve, todo):
                    store.add(rows, record)
            rows = read_jsonl(store.rows_path)
            self.report = totals(store.problems)
            store.write_report(self.report)
        if self.report["failed"]:
            raise RuntimeError(f"{self.report['failed']} example(s) failed on a model call "
                               f"({self.report['failed_by_kind']}); compile again to retry them (run_dir {run_dir})")
        return rows

    def settings(self, teacher: Teacher, trainset: list[dspy.Example]) -> dict:
        """What determines the rows, for ``run.json``: a resume must match it."""
        examples = json.dumps([dict(e.items()) for e in trainset], sort_keys=True, default=str)
        demos = json.dumps([[dict(d.items()) for d in p.demos] for p in teacher.predictors], sort_keys=True, default=str)
        guidelines = "\n".join(f"{g.name}: {g.text}" for g in self.guidelines)
        return {
            "optimizer": "regenesis",
            "predictors": [f"{name}: {predictor.signature.signature}"
                           for name, predictor in teacher.program.named_predictors()],
            "models": [model_identity(lm) for lm in teacher.lms],
            "adapters": [type(adapter).__name__ for adapter in teacher.adapters],
            "metric": getattr(teacher.metric, "__qualname__", type(teacher.metric).__name__),
            "examples": len(trainset),
            "examples_sha256": hashlib.sha256(examples.encode()).hexdigest(),
            "demos_sha256": hashlib.sha256(demos.encode()).hexdigest(),  # the rows' prompts hold them
            "guidelines_sha256": hashlib.sha256(guidelines.encode()).hexdigest(),
            **{k: v for k, v in asdict(self.config).items() if k != "num_threads"},
        }

    def finetune_lms(self, rows: list[dict], lms: list[dspy.LM], run_dir: Path) -> dict[int, dspy.LM]:
        """One fine-tuning job per distinct LM, on the rows of every predictor it serves (DSPy's
        ``multitask``); a finished checkpoint in ``run_dir`` is reused."""
        tuned = {}
        for number, lm in enumerate(dict.fromkeys(lms)):
            served = {index for index, other in enumerate(lms) if other is lm}
            data = [{"messages": row["messages"]} for row in rows if row["meta"]["predictor"] in served]
            if not data:
                raise RuntimeError(f"no kept rows to fine-tune {lm.model} on: the metric accepted no sample")
            # A resolved in-process model trains from its own weights (the engine's GGUF or folder).
            base = getattr(lm, "finetuning_model", None) or (lm.engine.path if is_in_process(lm) else lm.model)
            out = run_dir / "finetuned" / f"lm-{number}"
            checkpoint = RegenesisProvider.finetune(None, base, data, "chat", {**self.train_kwargs, "out": out})
            tuned[id(lm)] = finetunable_lm(checkpoint, max_tokens=lm.kwargs.get("max_tokens"))
        return tuned

    def dataset(self):
        """The kept rows of ``run_dir`` as a ``datasets.Dataset`` (see ``store.rows_dataset``)."""
        if self.run_dir is None:
            raise ValueError("dataset() reads run_dir: give the optimizer one")
        return rows_dataset(self.run_dir)


def totals(problems: list[dict]) -> dict:
    """The report of a compile's synthesis: examples done, solved, kept samples, why others went."""
    finished = [p for p in problems if p["status"] == FINISHED]
    failed = [p for p in problems if p["status"] == FAILED]
    dropped: Counter = Counter()
    for p in finished:
        dropped.update(p["dropped"])
    return {"examples": len(problems), "finished": len(finished), "failed": len(failed),
            "failed_by_kind": dict(Counter(p["error_kind"] for p in failed)),
            "solved": sum(p["kept"] > 0 for p in finished),
            "solved_with_hint": sum(p["solved_with_hint"] for p in finished),
            "kept_samples": sum(p["kept"] for p in finished), "dropped": dict(dropped)}


class _ModelError(Exception):
    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind, self.message = kind, message


def _preset(name: str, **overrides: Any) -> SynthesisConfig:
    try:
        return preset(name, **overrides)
    except TypeError as exc:  # an unknown keyword: name it the way a bad option is named
        raise ValueError(f"ReGenesisOptimizer: {exc}") from None


def _plain(values: dict) -> dict:
    """``values`` as JSON holds them (typed outputs as their JSON form, anything else as text)."""
    return json.loads(json.dumps(values, default=str))
