"""The stages of an experiment, each a function from its settings and the fingerprints of the stages it
builds on to an output folder, and the bookkeeping that makes a rerun skip, resume or recompute them.

Every stage is keyed by a fingerprint: the sha256 of everything that determines its output (model
identity, settings, the problems, the fingerprints of the stages it builds on), kept with those inputs
in the stage's ``stage.json``. A rerun skips a finished stage whose fingerprint is unchanged, resumes an
unfinished one inside (synthesis and evaluation skip finished problems; training resumes from its last
checkpoint), and recomputes a stage whose fingerprint changed, and so every stage after it, after
moving the old output aside to ``<folder>.stale-<time>``. A stage some of whose model calls failed stays
unfinished and stops the run (``StageFailed``); the rerun retries only what failed.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from regenesis.evals.evaluate import evaluate, registry_domains
from regenesis.evals.report import load_results, write_results
from regenesis.experiment.config import ExperimentConfig
from regenesis.finetune import dense_base, export_gguf, exported_path, finetune
from regenesis.guidelines import load_guidelines
from regenesis.models import EMBEDDED_MODELS, SourceKind, model_source, resolve_lm
from regenesis.optimize.bootstrap import synthesize
from regenesis.optimize.config import SynthesisConfig
from regenesis.optimize.distributed import ModelSource, synthesize_on_ray
from regenesis.runfiles import atomic_write_text, write_json

console = Console(stderr=True)

STAGE_FILE = "stage.json"
STALE_MARK = ".stale-"
RECORD_PATHS = ("folder", "results", "data")  # the paths a stage record holds


class StageFailed(RuntimeError):
    """A stage some of whose model calls failed: it stays unfinished, and a rerun retries what failed."""


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


class StageRunner:
    """Runs the stages of one experiment in ``out``: each stage is skipped when finished with the same
    inputs, resumed when interrupted, recomputed when its inputs changed; the lists say which."""

    def __init__(self, config: ExperimentConfig, out: str | Path, progress: bool = True):
        self.config = config
        self.config_text = config.file_text()
        self.out = Path(out)
        self.progress = progress
        self.skipped: list[str] = []
        self.ran: list[str] = []
        self.recomputed: list[str] = []  # one line per stage recomputed because its inputs changed
        self.stages: list[dict] = []  # the stage records of this run's result, in order
        self.eval_domains: dict[str, str] = {}  # the task names examples carry → in/out

    def domains(self) -> dict[str, str]:
        return {**registry_domains(self.config.eval.tasks), **self.eval_domains}

    # -- models ---------------------------------------------------------------------------------
    def lm_source(self, spec: str | None, **kwargs) -> ModelSource:
        return ModelSource(spec, {"api_base": self.config.api_base if spec == self.config.model else None, **kwargs})

    def lm(self, spec: str | None, **kwargs):
        return self.lm_source(spec, **kwargs).resolve()

    def served_model(self, checkpoint: Path) -> str:
        """The spec a tuned checkpoint is used through: its GGUF export when there is one (fast llama.cpp)."""
        ggufs = sorted((checkpoint / "gguf").glob("*.gguf"))
        return str(ggufs[0]) if ggufs else str(checkpoint)

    def served_base(self, spec: str | None) -> str | None:
        """The base model as its tuned models are served: a GGUF base (the embedded one too) exported from
        the dense folder it is fine-tuned from, in the tuned models' GGUF type, once; a zero-step
        fine-tune. Otherwise the base row would differ from the tuned rows in more than the training: the
        embedded model's Q4_1 and its q8_0 export wrote other text for 29 of the main job's 36 evaluation
        questions."""
        quant = self.config.finetune.export_gguf
        if not quant or model_source(spec).kind not in (SourceKind.EMBEDDED, SourceKind.GGUF):
            return spec
        dense = dense_base(spec)
        target = exported_path(dense, quant)
        return str(target if target.is_file() else export_gguf(dense, quant))

    # -- stage bookkeeping ------------------------------------------------------------------------
    def begin(self, stage: Stage) -> dict | None:
        """The finished record of ``stage`` when its inputs are unchanged (the stage is skipped); else None,
        after moving aside an output made from other inputs and recording the inputs of this attempt."""
        record = self.read(stage)
        if record is not None and record.get("fingerprint") == stage.fingerprint:
            if record.get("finished"):
                self.skipped.append(stage.name)
                self.stages.append(record)
                return record
            return None  # an interrupted attempt with these inputs: resume it inside
        if record is not None or stage.folder.exists():
            self.retire(stage, record)
        stage.folder.mkdir(parents=True, exist_ok=True)
        self.write(stage, {"stage": stage.name, "folder": str(stage.folder), "fingerprint": stage.fingerprint,
                           "config": self.config_copy, "inputs": stage.inputs, "finished": None})
        return None

    def read(self, stage: Stage) -> dict | None:
        """``stage``'s record, its paths under this run's folder wherever the folder was made."""
        record = read_stage(stage.folder)
        if record is None:
            return None
        located = {key: str(self.out / value) for key, value in record.items()
                   if key in RECORD_PATHS and not Path(value).is_absolute()}
        return {**record, **located, "folder": str(stage.folder)}

    def write(self, stage: Stage, record: dict) -> None:
        """Paths are stored relative to the run folder, so a run folder moved or copied whole resumes from its
        own files, never from the folder it was copied from."""
        stored = {key: str(Path(value).relative_to(self.out)) for key, value in record.items()
                  if key in RECORD_PATHS and Path(value).is_relative_to(self.out)}
        write_json(stage.folder / STAGE_FILE, {**record, **stored})

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
        record = {**self.read(stage), "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
                  "seconds": round(time.perf_counter() - started, 1), **facts}
        self.write(stage, record)
        self.ran.append(stage.name)
        self.stages.append(record)
        return record

    @property
    def config_copy(self) -> str:
        return f"configs/{fingerprint(self.config_text)[:16]}.toml"

    def record_config(self) -> None:
        """``config.toml`` is the config of this run; ``configs/`` keeps every config a stage was made with."""
        (self.out / "configs").mkdir(exist_ok=True)
        if not (self.out / self.config_copy).exists():
            atomic_write_text(self.out / self.config_copy, self.config_text)
        atomic_write_text(self.out / "config.toml", self.config_text)

    # -- stages ---------------------------------------------------------------------------------
    def evaluate(self, label: str, spec: str | None, examples, after: dict[str, str]) -> dict:
        """``eval/<label>``: the model ``spec`` scored on ``examples``."""
        lm = self.lm(spec, max_tokens=self.config.eval.max_tokens)
        settings = {k: v for k, v in asdict(self.config.eval).items() if k != "base_model"}
        stage = Stage(f"eval {label}", self.out / "eval" / label,
                      {**lm_identity(lm), "eval": settings, "examples": examples_fingerprint(examples), "after": after})
        done = self.begin(stage)
        if done is None:
            console.print(f"[bold]eval[/bold] {escape(label)} ({escape(spec or 'default model')})", highlight=False)
        started = time.perf_counter()
        # A finished evaluation asks nothing again, but its scores and averages are derived anew from the
        # stored outputs, so a corrected matcher, gold answer or interval reaches the report.
        result = evaluate(lm, examples, raw_dir=stage.folder / "raw", num_threads=self.config.num_threads,
                          progress=self.progress and done is None, domains=self.domains(), settings={"label": label})
        stored = load_results(done["results"]) if done is not None else None
        if stored is None or (result.scores, result.averages) != (stored.scores, stored.averages):
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
        """``folder``: the training rows ``generator`` writes for ``examples`` with the method ``config``."""
        lm = self.lm(generator, max_tokens=self.config.train.max_tokens)
        guidelines = load_guidelines(self.config.train.guidelines)
        # The thread count changes how fast, not what: every sample has its own rollout id.
        config = replace(config, num_threads=self.config.num_threads)
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
        """``folder``: the checkpoint of ``base`` fine-tuned on the rows in ``data``."""
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

