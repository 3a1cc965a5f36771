"""Bootstrap-then-finetune experiments from one TOML file, stage by stage, resumable.

The run evaluates the base model, then for each round and each method synthesizes a training set,
fine-tunes a model on it and evaluates the tuned model; it ends with a report folder::

    OUT/report.md         the comparison table (base vs each method; intervals; change vs base)
    OUT/chart.png         the same as a chart
    OUT/summary.json      every figure of the report, with the paths of the files it comes from
    OUT/config.toml       the config of the latest run; configs/<sha256>.toml keeps every config a run used
    OUT/eval/<label>/     results.json, results.md and raw/ (the model's outputs) per evaluated model
    OUT/round-<r>/<method>/data/        the training set (train.jsonl, problems.jsonl, report.json)
    OUT/round-<r>/<method>/checkpoint/  the tuned model (and gguf/ when exported)

Every stage is keyed by a fingerprint: the sha256 of everything that determines its output (model
identity, settings, the problems, the fingerprints of the stages it builds on), kept with those inputs
in the stage's ``stage.json``. A rerun skips a finished stage whose fingerprint is unchanged, resumes an
unfinished one inside (synthesis and evaluation skip finished problems; training resumes from its last
checkpoint), and recomputes a stage whose fingerprint changed, and so every stage after it, after
moving the old output aside to ``<folder>.stale-<time>``. A stage some of whose model calls failed stays
unfinished and stops the run (``StageFailed``); the rerun retries only what failed. One run at a time
holds ``OUT`` (``runfiles.run_lock``); a config's keys and value types are checked, and its tasks and
models resolved, before anything is written or any model is called.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import time
import tomllib
import types
import typing
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from regenesis import experiment_report as sections
from regenesis.errors import BadInput
from regenesis.evals.contamination import check_experiment, find_overlaps, question_texts
from regenesis.evals.evaluate import evaluate, registry_domains
from regenesis.evals.report import comparison_chart, comparison_table, load_results, write_results
from regenesis.tasks import TASKS, load_task
from regenesis.finetune import FinetuneConfig, export_gguf, finetune
from regenesis.guidelines import load_guidelines
from regenesis.models import EMBEDDED_MODELS, ModelSpecError, model_identity, resolve_lm
from regenesis.optimize.bootstrap import synthesize
from regenesis.optimize.config import SynthesisConfig, preset
from regenesis.optimize.distributed import ModelSource, synthesize_on_ray
from regenesis.optimize.filters import FilterOptions
from regenesis.optimize.methods import METHOD_NAMES, ReGenesisBudget
from regenesis.provenance import provenance, provenance_markdown
from regenesis.redact import redact
from regenesis.runfiles import atomic_write_text, read_jsonl, run_lock, write_json

console = Console(stderr=True)

STAGE_FILE = "stage.json"
STALE_MARK = ".stale-"
COUNT = {"minimum": 1}  # field metadata: a whole number ≥ 1
# The synthesis keys a [methods.<label>] table does not take: the budget's fields sit in the table itself,
# the filters in its own [methods.<label>.filters] table, and the thread count is the experiment's.
NOT_METHOD_KEYS = ("regenesis", "filters", "num_threads")


class StageFailed(RuntimeError):
    """A stage some of whose model calls failed: it stays unfinished, and a rerun retries what failed."""


# -- the TOML schema ---------------------------------------------------------------------------------
# Each table's keys and their types are read off a dataclass: the experiment's own sections below, and
# SynthesisConfig, ReGenesisBudget, FilterOptions and FinetuneConfig for the settings they hold.

@dataclass
class UserDataset:
    """How to read a user dataset named as a task (a registered task takes none of these)."""

    question_field: str | None = None
    answer_field: str | None = None
    answer_type: str | None = None
    choices_field: str | None = None
    labels: list[str] | None = None

    def options(self, task: str) -> dict:
        return {} if task in TASKS else {f.name: getattr(self, f.name) for f in fields(UserDataset)}


@dataclass
class TrainSection(UserDataset):
    """[train]: the problems synthesis learns from."""

    task: str | None = None
    tasks: list[str] = field(default_factory=list)
    split: str = "train"
    limit: int | None = field(default=None, metadata=COUNT)  # per task
    data: str | None = None  # a local copy of the one registered task
    data_root: str | None = None
    max_tokens: int = field(default=512, metadata=COUNT)
    guidelines: str | None = None  # a guidelines file (default: the seed library)

    @property
    def task_names(self) -> list[str]:
        return self.tasks or [self.task]


@dataclass
class EvalSection(UserDataset):
    """[eval]: the problems every model is scored on."""

    tasks: list[str] = field(default_factory=list)
    in_domain: list[str] = field(default_factory=list)
    out_of_domain: list[str] = field(default_factory=list)
    splits: dict[str, str] = field(default_factory=dict)
    limit: int | None = field(default=None, metadata=COUNT)  # per task
    data_root: str | None = None
    max_tokens: int = field(default=512, metadata=COUNT)
    base_model: str | None = None  # the model of the row "base" (default: `model`)


@dataclass
class FinetuneSection:
    """[finetune]: these keys, and FinetuneConfig's fields as ``settings``."""

    base: str | None = None  # the model fine-tuned (default: `model`; a hosted generator cannot be)
    export_gguf: str = "q8_0"  # "" for none
    settings: FinetuneConfig = field(default_factory=FinetuneConfig)


@dataclass
class ExperimentConfig:
    """What ``CONFIG.toml`` holds (see ``examples/quickstart.toml``)."""

    train: TrainSection
    eval: EvalSection
    methods: dict[str, SynthesisConfig]
    name: str = ""
    model: str | None = None
    api_base: str | None = None
    ray: str | None = None  # synthesize on this Ray cluster ("auto": the running one); the rows are the same
    rounds: int = field(default=1, metadata=COUNT)
    restart_from_base: bool = True
    num_threads: int = field(default=2, metadata=COUNT)
    allow_train_on_eval: bool = False  # train on problems the experiment also evaluates on (refused otherwise)
    finetune: FinetuneSection = field(default_factory=FinetuneSection)
    source: Path = field(default=Path("."), metadata={"toml": False})
    text: str = field(default="", metadata={"toml": False})

    @classmethod
    def load(cls, path: str | Path) -> ExperimentConfig:
        path = Path(path)
        if not path.is_file():
            raise BadInput(f"{path}: no such config file")
        try:
            text = path.read_text(encoding="utf-8")
            data = tomllib.loads(text)
        except UnicodeDecodeError:
            raise BadInput(f"{path}: not UTF-8 text") from None
        except tomllib.TOMLDecodeError as exc:
            raise BadInput(f"{path}: not valid TOML ({exc})") from None
        return TableReader(path).experiment(data, text)


class TableReader:
    """Turns the tables of one TOML file into the config objects, or raises BadInput naming the key."""

    def __init__(self, source: Path):
        self.source = source

    def fail(self, key: str, problem: str) -> BadInput:
        return BadInput(f"{self.source}: {key}: {problem}")

    def experiment(self, data: dict, text: str) -> ExperimentConfig:
        self.check(data, "", schema(ExperimentConfig))
        for section in ("train", "eval", "methods"):
            if section not in data:
                raise BadInput(f"{self.source}: the [{section}] section is missing")
        scalars = {key: value for key, value in data.items() if key not in ("train", "eval", "methods", "finetune")}
        config = ExperimentConfig(train=self.train(data["train"]), eval=self.eval(data["eval"]), methods={},
                                  finetune=self.finetune(data.get("finetune", {})),
                                  **{"name": self.source.stem, **scalars}, source=self.source, text=text)
        config.methods = {label: self.method(label, table, config.num_threads)
                          for label, table in data["methods"].items()}
        return config

    def train(self, table: dict) -> TrainSection:
        train = TrainSection(**self.check(table, "train", schema(TrainSection)))
        if not train.task and not train.tasks:
            raise self.fail("train", 'needs task = "..." or tasks = ["..."]')
        return train

    def eval(self, table: dict) -> EvalSection:
        evaluation = EvalSection(**self.check(table, "eval", schema(EvalSection)))
        if not evaluation.tasks:
            raise self.fail("eval", 'needs tasks = ["..."]')
        return evaluation

    def method(self, label: str, table: dict, num_threads: int) -> SynthesisConfig:
        key = f"methods.{label}"
        hints = {**schema(SynthesisConfig, without=NOT_METHOD_KEYS, minimum=0),
                 **schema(ReGenesisBudget, minimum=0), "preset": (str, None), "filters": (dict, None)}
        settings = self.check(table, key, hints)
        settings.setdefault("method", label)
        if settings["method"] not in METHOD_NAMES:
            raise self.fail(f"{key}.method", f"{settings['method']!r} is not one of {', '.join(METHOD_NAMES)}")
        filters = FilterOptions(**self.check(settings.pop("filters", {}), f"{key}.filters",
                                             schema(FilterOptions, minimum=0)))
        budget = {name: settings.pop(name) for name in schema(ReGenesisBudget) if name in settings}
        try:
            return preset(settings.pop("preset", "default"), filters=filters, num_threads=num_threads,
                          regenesis=ReGenesisBudget(**budget) if budget else None, **settings)
        except ValueError as exc:  # an unknown preset
            raise self.fail(f"{key}.preset", str(exc)) from None

    def finetune(self, table: dict) -> FinetuneSection:
        hints = {**schema(FinetuneSection, without=("settings",)), **schema(FinetuneConfig)}
        settings = self.check(table, "finetune", hints)
        own = {name: settings.pop(name) for name in ("base", "export_gguf") if name in settings}
        try:
            return FinetuneSection(**own, settings=FinetuneConfig.of(**settings))
        except BadInput as exc:  # FinetuneConfig's own checks ("finetune: lr must be positive")
            raise BadInput(f"{self.source}: {exc}") from None

    def check(self, table: Any, where: str, hints: dict[str, tuple[Any, float | None]]) -> dict:
        """``table`` with every key known and every value of its key's type; tuple-typed values as tuples."""
        if not isinstance(table, dict):
            raise self.fail(where, f"expected a table, got {table!r}")
        prefix = f"{where}." if where else ""
        for key, value in table.items():
            if key not in hints:
                close = difflib.get_close_matches(key, hints, n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                raise self.fail(f"{prefix}{key}", f"unknown key{hint}; known: {', '.join(sorted(hints))}")
            kind, minimum = hints[key]
            if not conforms(value, kind):
                raise self.fail(f"{prefix}{key}", f"expected {type_name(kind)}, got {value!r}")
            if minimum is not None and conforms(value, float) and value < minimum:
                raise self.fail(f"{prefix}{key}", f"must be at least {minimum}, got {value!r}")
        return {key: tuple(value) if typing.get_origin(hints[key][0]) is tuple else value
                for key, value in table.items()}


def schema(cls, without: tuple[str, ...] = (), minimum: float | None = None) -> dict[str, tuple[Any, float | None]]:
    """The TOML keys of a dataclass: each field's type and least value (its metadata's, else ``minimum``)."""
    hints = typing.get_type_hints(cls)
    return {f.name: (hints[f.name], f.metadata.get("minimum", minimum)) for f in fields(cls)
            if f.name not in without and f.metadata.get("toml", True)}


def conforms(value: Any, kind: Any) -> bool:
    """Whether a TOML value has the type ``kind`` (a dataclass type stands for a table)."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        return any(conforms(value, arg) for arg in args)
    if kind is type(None):
        return value is None
    if kind is Any:
        return True
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if origin in (list, tuple):
        return isinstance(value, list) and all(conforms(item, args[0]) for item in value)
    if origin is dict:
        return isinstance(value, dict) and all(conforms(item, args[1]) for item in value.values())
    if is_dataclass(kind):
        return isinstance(value, dict)
    return isinstance(value, kind)


TYPE_NAMES = {bool: ("true or false", "true or false values"), int: ("a whole number", "whole numbers"),
              float: ("a number", "numbers"), str: ("a string", "strings")}


def type_name(kind: Any, plural: bool = False) -> str:
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(type_name(arg, plural) for arg in args if arg is not type(None))
    if origin in (list, tuple):
        return "lists" if plural else f"a list of {type_name(args[0], plural=True)}"
    if origin is dict or is_dataclass(kind) or kind is dict:
        return "tables" if plural else "a table"
    return TYPE_NAMES.get(kind, (str(kind), str(kind)))[plural]


# -- fingerprints --------------------------------------------------------------------------------------

def fingerprint(value: Any) -> str:
    """The sha256 of ``value`` as canonical JSON."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def examples_fingerprint(examples) -> str:
    return fingerprint([[example.id, example.question, example.gold] for example in examples])


def file_fingerprint(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def lm_identity(lm) -> dict:
    """What names a model's answers: its model name (fingerprinted for local files) and its endpoint."""
    return {"model": lm.model, "api_base": lm.kwargs.get("api_base")}


def base_identity(spec: str | None) -> str:
    """A fine-tuning base: a local model's fingerprinted name, else the spec (embedded model or hub id)."""
    local = spec is None or spec in EMBEDDED_MODELS or Path(spec).expanduser().exists()
    return resolve_lm(spec).model if local else spec


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and value:
        return {key: leaf for name, item in value.items() for key, leaf in flatten(item, f"{prefix}{name}.").items()}
    return {prefix.rstrip("."): value}


def short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 40 else f"{text[:37]}..."


def what_changed(old: dict, new: dict) -> str:
    """``temperature 0.8 → 0.9, synthesize star was recomputed``: the inputs that differ."""
    before, after = flatten(old), flatten(new)
    changes = []
    for key in sorted(set(before) | set(after)):
        if before.get(key) == after.get(key):
            continue
        if key.startswith("after."):
            changes.append(f"{key.removeprefix('after.')} was recomputed")
        else:
            changes.append(f"{key} {short(before.get(key))} → {short(after.get(key))}")
    return ", ".join(changes)


@dataclass
class Stage:
    """One stage of the run: its name, its folder, and everything that determines its output."""

    name: str
    folder: Path
    inputs: dict

    def __post_init__(self):
        self.inputs = json.loads(json.dumps(self.inputs, default=str))  # as stage.json holds them: tuples as lists

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.inputs)


def read_stage(folder: Path) -> dict | None:
    marker = folder / STAGE_FILE
    return json.loads(marker.read_text(encoding="utf-8")) if marker.is_file() else None


# -- the run -------------------------------------------------------------------------------------------

class Experiment:
    def __init__(self, config: ExperimentConfig, out: str | Path, progress: bool = True):
        self.config = config
        self.out = Path(out)
        self.progress = progress
        self.skipped: list[str] = []
        self.ran: list[str] = []
        self.recomputed: list[str] = []  # one line per stage recomputed because its inputs changed
        self.not_tuned: list[str] = []
        self.train_on_eval: list[str] = []  # train task+splits that are also evaluated on
        self.eval_domains: dict[str, str] = {}
        self.stages: list[dict] = []  # the stage records of this run's result, in order
        self.checkpoints: dict[str, Path] = {}  # label → tuned checkpoint
        self.rounds: dict[str, list[tuple[int, str]]] = {}  # method → (round, label) of each round it ran
        self.contamination: dict = {}  # training set → its overlap with the evaluation items

    # -- data -----------------------------------------------------------------------------------
    def load(self, key: str, task: str, section, **options):
        """A task of a [train] or [eval] section; a task that cannot be loaded names the TOML key."""
        try:
            return load_task(task, limit=section.limit, data_root=section.data_root, **options,
                             **section.options(task))
        except BadInput as exc:
            raise BadInput(f"{self.config.source}: {key}: {exc}") from None

    def train_groups(self) -> dict[str, Any]:
        train = self.config.train
        key = "train.tasks" if train.tasks else "train.task"
        data = train.data if len(train.task_names) == 1 else None
        return {task: self.load(key, task, train, data=data, split=train.split) for task in train.task_names}

    def eval_groups(self) -> dict[str, Any]:
        """The evaluation examples per task; also fills ``eval_domains`` (the task names examples carry → in/out)."""
        spec = self.config.eval
        groups = {}
        for task in spec.tasks:
            groups[task] = loaded = self.load("eval.tasks", task, spec, split=spec.splits.get(task))
            domain = "in" if task in spec.in_domain else "out" if task in spec.out_of_domain else None
            if domain:  # a user file's examples carry the file's stem as their task name
                self.eval_domains.update({example.task: domain for example in loaded})
        return groups

    def train_examples(self):
        return [example for group in self.train_groups().values() for example in group]

    def eval_examples(self):
        return [example for group in self.eval_groups().values() for example in group]

    def domains(self) -> dict[str, str]:
        return {**registry_domains(self.config.eval.tasks), **self.eval_domains}

    @staticmethod
    def shared_problems(train: dict, evaluation: dict) -> list[str]:
        """The train task+splits whose questions the experiment also evaluates on (the same question after
        normalisation: the contamination check's ``exact`` overlap)."""
        eval_task = {example.id: task for task, examples in evaluation.items() for example in examples}
        everything = [example for examples in evaluation.values() for example in examples]
        shared_lines = []
        for task, examples in train.items():
            check = find_overlaps(question_texts(examples), question_texts(everything))
            shared: dict[str, set] = {}
            for overlap in check.overlaps:
                if overlap.kind == "exact":
                    shared.setdefault(eval_task[overlap.eval_id], set()).add(overlap.train_id)
            shared_lines += [f"train task {task} (split {examples.split}) is evaluated on: {len(ids)} of its "
                             f"{len(examples)} questions are in eval task {name} (split {evaluation[name].split})"
                             for name, ids in shared.items()]
        return shared_lines

    # -- models ---------------------------------------------------------------------------------
    def lm_source(self, spec: str | None, **kwargs) -> ModelSource:
        return ModelSource(spec, {"api_base": self.config.api_base if spec == self.config.model else None, **kwargs})

    def lm(self, spec: str | None, **kwargs):
        return self.lm_source(spec, **kwargs).resolve()

    def check_models(self) -> None:
        """Resolve every model the config names, so a bad spec stops the run before anything is written."""
        specs = {"model": self.config.model, "eval.base_model": self.config.eval.base_model or self.config.model}
        specs.update({f"methods.{label}.filters.judge_model": method.filters.judge_model
                      for label, method in self.config.methods.items() if method.filters.judge_model})
        for key, spec in specs.items():
            try:
                self.lm(spec)
            except ModelSpecError as exc:
                raise BadInput(f"{self.config.source}: {key}: {str(exc).splitlines()[0]}") from None

    def served_model(self, checkpoint: Path) -> str:
        """The spec a tuned checkpoint is used through: its GGUF export when there is one (fast llama.cpp)."""
        ggufs = sorted((checkpoint / "gguf").glob("*.gguf"))
        return str(ggufs[0]) if ggufs else str(checkpoint)

    # -- stage bookkeeping ------------------------------------------------------------------------
    def begin(self, stage: Stage) -> dict | None:
        """The finished record of ``stage`` when its inputs are unchanged (the stage is skipped); else None,
        after moving aside an output made from other inputs and recording the inputs of this attempt."""
        record = read_stage(stage.folder)
        if record is not None and record.get("fingerprint") == stage.fingerprint:
            if record.get("finished"):
                self.skipped.append(stage.name)
                self.stages.append(record)
                return record
            return None  # an interrupted attempt with these inputs: resume it inside
        if record is not None or stage.folder.exists():
            self.retire(stage, record)
        stage.folder.mkdir(parents=True, exist_ok=True)
        write_json(stage.folder / STAGE_FILE, {"stage": stage.name, "folder": str(stage.folder),
                                               "fingerprint": stage.fingerprint, "config": self.config_copy,
                                               "inputs": stage.inputs, "finished": None})
        return None

    def retire(self, stage: Stage, record: dict | None) -> None:
        """Move an output made from other inputs aside: it is the record of an earlier config, never reused."""
        stale = stage.folder.with_name(f"{stage.folder.name}{STALE_MARK}{time.strftime('%Y%m%dT%H%M%S')}")
        while stale.exists():
            stale = stale.with_name(stale.name + "-1")
        stage.folder.rename(stale)
        if record is None:
            why = "holds output without a stage.json"
        elif "inputs" not in record:
            why = "was made by an older regenesis that recorded no fingerprint"
        else:
            why = f"changed {what_changed(record['inputs'], stage.inputs)}"
        line = f"{stage.name}: {why}; recomputing it and what follows (old output: {stale})"
        self.recomputed.append(line)
        console.print(f"[yellow]{escape(line)}[/yellow]", highlight=False)

    def finish(self, stage: Stage, started: float, **facts: Any) -> dict:
        """Mark ``stage`` finished, with its wall time (``started`` is its ``time.perf_counter()``)."""
        record = {**read_stage(stage.folder), "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
                  "seconds": round(time.perf_counter() - started, 1), **facts}
        write_json(stage.folder / STAGE_FILE, record)
        self.ran.append(stage.name)
        self.stages.append(record)
        return record

    @property
    def config_copy(self) -> str:
        return f"configs/{fingerprint(self.config.text)[:16]}.toml"

    def record_config(self) -> None:
        """``config.toml`` is the config of this run; ``configs/`` keeps every config a stage was made with."""
        (self.out / "configs").mkdir(exist_ok=True)
        if not (self.out / self.config_copy).exists():
            atomic_write_text(self.out / self.config_copy, self.config.text)
        atomic_write_text(self.out / "config.toml", self.config.text)

    # -- stages ---------------------------------------------------------------------------------
    def evaluate(self, label: str, spec: str | None, examples, after: dict[str, str]) -> dict:
        lm = self.lm(spec, max_tokens=self.config.eval.max_tokens)
        settings = {k: v for k, v in asdict(self.config.eval).items() if k != "base_model"}
        stage = Stage(f"eval {label}", self.out / "eval" / label,
                      {**lm_identity(lm), "eval": settings, "examples": examples_fingerprint(examples), "after": after})
        done = self.begin(stage)
        if done is None:
            console.print(f"[bold]eval[/bold] {escape(label)} ({escape(spec or 'default model')})", highlight=False)
        started = time.perf_counter()
        # A finished evaluation asks nothing again, but its scores are derived anew from the stored outputs,
        # so a corrected matcher or gold answer reaches the report.
        result = evaluate(lm, examples, raw_dir=stage.folder / "raw", num_threads=self.config.num_threads,
                          progress=self.progress and done is None, domains=self.domains(), settings={"label": label})
        if done is None or result.scores != load_results(done["results"]).scores:
            write_results(result, stage.folder / "results.json")
        if done is not None:
            return done
        json_path = stage.folder / "results.json"
        if result.errors:
            raise StageFailed(f"{stage.name}: {result.errors} problems ended in a model error "
                              f"({json.dumps(result.error_kinds())}); rerun the same command to ask them again")
        return self.finish(stage, started, results=str(json_path), model=spec)

    def synthesize(self, folder: Path, label: str, config: SynthesisConfig, generator: str | None, examples,
                   after: dict[str, str]) -> dict:
        lm = self.lm(generator, max_tokens=self.config.train.max_tokens)
        guidelines = load_guidelines(self.config.train.guidelines)
        # The thread count changes how fast, not what: every sample has its own rollout id.
        settings = {k: v for k, v in asdict(config).items() if k != "num_threads"}
        stage = Stage(f"synthesize {label}", folder,
                      {**settings, "generator": lm_identity(lm), "max_tokens": self.config.train.max_tokens,
                       "guidelines": fingerprint([asdict(g) for g in guidelines]),
                       "examples": examples_fingerprint(examples), "after": after})
        if (done := self.begin(stage)) is not None:
            return done
        console.print(f"[bold]synthesize[/bold] {escape(label)} with {escape(generator or 'the default model')}",
                      highlight=False)
        started = time.perf_counter()
        if self.config.ray:
            report = synthesize_on_ray(self.lm_source(generator, max_tokens=self.config.train.max_tokens), examples,
                                       folder, config, address=self.config.ray, guidelines=guidelines,
                                       progress=self.progress)
        else:
            report = synthesize(lm, examples, folder, config, guidelines=guidelines, progress=self.progress)
        if report["failed"]:
            raise StageFailed(f"{stage.name}: {report['failed']} problems failed ({json.dumps(report['failed_by_kind'])}); "
                              "rerun the same command to retry them")
        return self.finish(stage, started, report=report)

    def finetune(self, folder: Path, data: Path, base: str | None, label: str, after: dict[str, str]) -> dict:
        section = self.config.finetune
        stage = Stage(f"finetune {label}", folder,
                      {**section.settings.model_settings(), "export_gguf": section.export_gguf,
                       "base": base_identity(base),
                       "rows": file_fingerprint(data / "train.jsonl"), "after": after})
        if (done := self.begin(stage)) is not None:
            return done
        console.print(f"[bold]finetune[/bold] {escape(label)} from {escape(base or 'the default model')}",
                      highlight=False)
        started = time.perf_counter()
        finetune(data, base, folder, resume=True, **asdict(section.settings))
        if section.export_gguf:
            export_gguf(folder, section.export_gguf)
        return self.finish(stage, started, base=base, data=str(data))

    def run(self) -> Path:
        """Check the config's tasks and models, then run every stage under the folder's lock."""
        train_groups, eval_groups = self.train_groups(), self.eval_groups()
        self.check_models()
        self.train_on_eval = self.shared_problems(train_groups, eval_groups)
        if self.train_on_eval and not self.config.allow_train_on_eval:
            raise BadInput(f"{self.config.source}: {self.train_on_eval[0]}; train on another split, or set "
                           "allow_train_on_eval = true to report the scores as not held out")
        with run_lock(self.out):
            self.record_config()
            for warning in self.train_on_eval:
                console.print(f"[yellow]warning: {escape(warning)}[/yellow]", highlight=False)
            train = [example for group in train_groups.values() for example in group]
            evaluation = [example for group in eval_groups.values() for example in group]
            return self.run_stages(train, evaluation)

    def run_stages(self, train, evaluation) -> Path:
        base = self.config.model
        trained = self.config.finetune.base or base  # the model fine-tuned (a hosted generator cannot be)
        evaluations = {"base": self.evaluate("base", self.config.eval.base_model or base, evaluation, after={})}
        syntheses: dict[str, dict] = {}
        for method_label, method in self.config.methods.items():
            generator, tuned_from, upstream = base, trained, {}
            for round_number in range(1, self.config.rounds + 1):
                round_dir = self.out / f"round-{round_number}" / method_label
                label = method_label if self.config.rounds == 1 else f"{method_label}-r{round_number}"
                self.rounds.setdefault(method_label, []).append((round_number, label))
                synthesis = self.synthesize(round_dir / "data", label, method, generator, train, after=upstream)
                syntheses[label] = synthesis["report"]
                self.contamination[label] = check_experiment(train, read_jsonl(round_dir / "data" / "train.jsonl"),
                                                             evaluation)
                if synthesis["report"]["kept_rows"] == 0:
                    console.print(f"[yellow]{escape(label)}: no rows kept, nothing to fine-tune; "
                                  "stopping this method[/yellow]", highlight=False)
                    self.not_tuned.append(label)
                    break
                tuned = self.finetune(round_dir / "checkpoint", round_dir / "data", tuned_from, label,
                                      after={f"synthesize {label}": synthesis["fingerprint"]})
                checkpoint = self.checkpoints[label] = Path(tuned["folder"])
                generator = self.served_model(checkpoint)
                tuned_from = trained if self.config.restart_from_base else str(checkpoint)
                upstream = {f"finetune {label}": tuned["fingerprint"]}
                evaluations[label] = self.evaluate(label, generator, evaluation, after=upstream)
        return self.write_report(evaluations, syntheses, evaluation)

    # -- report ---------------------------------------------------------------------------------
    def write_report(self, evaluations: dict[str, dict], syntheses: dict[str, dict], evaluation) -> Path:
        results = {label: load_results(done["results"]) for label, done in evaluations.items()}
        raw_dirs = {label: Path(done["results"]).parent / "raw" for label, done in evaluations.items()}
        comparisons = sections.paired_comparisons(results, raw_dirs, evaluation)
        chart = comparison_chart(results, self.out / "chart.png")
        lines = [f"# {self.config.name}", ""]
        if self.train_on_eval:
            lines += ["**Warning: the training problems include evaluation problems**, so the tuned scores on "
                      "those tasks are not held-out scores:", "", *[f"- {w}" for w in self.train_on_eval], ""]
        lines += [comparison_table(results, baseline="base"), "", f"![accuracy per task]({chart.name})", "",
                  "Δ is the change against the base model in points.", ""]
        if self.not_tuned:
            lines += [f"Not fine-tuned, because synthesis kept no training row: {', '.join(self.not_tuned)} "
                      "(see Training sets below).", ""]
        lines += sections.rounds_section(self.rounds, syntheses, results)
        lines += sections.paired_section(comparisons)
        lines += sections.contamination_section(self.contamination)
        lines += sections.funnel_section(self.out, syntheses)
        lines += sections.curves_section(self.out, self.checkpoints)
        lines += sections.models_section(self.out, evaluations)
        lines += sections.training_sets_section(syntheses)
        lines += sections.time_section(self.out, self.stages)
        record = self.provenance()
        lines += [provenance_markdown(record)]
        report = self.out / "report.md"
        atomic_write_text(report, redact("\n".join(lines) + "\n"))
        summary = {"config": str(self.config.source), "config_copy": self.config_copy,
                   "evaluations": {k: v["results"] for k, v in evaluations.items()}, "synthesis": syntheses,
                   "paired": [comparison.to_dict() for comparison in comparisons],
                   "contamination": {label: check.to_dict() for label, check in self.contamination.items()},
                   "train_on_eval": self.train_on_eval,
                   "stages": {record["stage"]: record["fingerprint"] for record in self.stages},
                   "provenance": record}
        write_json(self.out / "summary.json", summary)
        return report

    def provenance(self) -> dict:
        """Versions, the base model's fingerprint, the resolved config and the command that reproduces the run."""
        config = {k: v for k, v in asdict(self.config).items() if k not in ("source", "text")}
        # No seed of its own: each sample's rollout id (0, 1, ... per problem) is its sampling seed.
        return provenance(model_identity(self.lm(self.config.model)), [], config,
                          f"regenesis experiment {self.config.source} --out {self.out}")


def run_experiment(config_path: str | Path, out: str | Path, progress: bool = True) -> Experiment:
    experiment = Experiment(ExperimentConfig.load(config_path), out, progress)
    experiment.report = experiment.run()
    return experiment
