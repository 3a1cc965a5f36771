"""Bootstrap-then-finetune experiments from one TOML file, stage by stage, resumable.

The run evaluates the base model, then for each round and each method synthesizes a training set,
fine-tunes a model on it and evaluates the tuned model; it ends with a report folder::

    OUT/report.md         the comparison table (base vs each method; intervals; change vs base)
    OUT/chart.png         the same as a chart
    OUT/summary.json      every figure of the report, with the paths of the files it comes from
    OUT/eval/<label>/     results.json, results.md and raw/ (the model's outputs) per evaluated model
    OUT/round-<r>/<method>/data/        the training set (train.jsonl, problems.jsonl, report.json)
    OUT/round-<r>/<method>/checkpoint/  the tuned model (and gguf/ when exported)

A stage writes ``stage.json`` in its folder when it finishes; a rerun skips finished stages, and an
unfinished one resumes inside (synthesis and evaluation skip finished problems; training resumes
from its last checkpoint).
"""

from __future__ import annotations

import json
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from regenesis.errors import BadInput

console = Console(stderr=True)

STAGE_FILE = "stage.json"
KNOWN_SECTIONS = {"name", "model", "api_base", "rounds", "restart_from_base", "train", "eval", "methods",
                  "finetune", "num_threads"}


@dataclass
class ExperimentConfig:
    """What ``CONFIG.toml`` holds (see ``examples/quickstart.toml``)."""

    name: str
    model: str | None
    api_base: str | None
    rounds: int
    restart_from_base: bool
    train: dict
    eval: dict
    methods: dict[str, dict]
    finetune: dict
    num_threads: int = 2
    source: Path = field(default=Path("."))

    @classmethod
    def load(cls, path: str | Path) -> "ExperimentConfig":
        path = Path(path)
        if not path.is_file():
            raise BadInput(f"{path}: no such config file")
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise BadInput(f"{path}: not valid TOML ({exc})") from None
        unknown = sorted(set(data) - KNOWN_SECTIONS)
        if unknown:
            raise BadInput(f"{path}: unknown keys {unknown}; known: {sorted(KNOWN_SECTIONS)}")
        for section in ("train", "eval", "methods"):
            if section not in data:
                raise BadInput(f"{path}: the [{section}] section is missing")
        if "task" not in data["train"] and not data["train"].get("tasks"):
            raise BadInput(f"{path}: [train] needs task = \"...\" or tasks = [\"...\"]")
        if not data["eval"].get("tasks"):
            raise BadInput(f"{path}: [eval] needs tasks = [\"...\"]")
        from regenesis.optimize.methods import METHOD_NAMES

        for label, method in data["methods"].items():
            name = method.get("method", label)
            if name not in METHOD_NAMES:
                raise BadInput(f"{path}: [methods.{label}] method {name!r} is not one of {', '.join(METHOD_NAMES)}")
        rounds = data.get("rounds", 1)
        if not isinstance(rounds, int) or rounds < 1:
            raise BadInput(f"{path}: rounds must be a whole number ≥ 1")
        return cls(name=data.get("name", path.stem), model=data.get("model"), api_base=data.get("api_base"),
                   rounds=rounds, restart_from_base=data.get("restart_from_base", True), train=data["train"],
                   eval=data["eval"], methods=data["methods"], finetune=data.get("finetune", {}),
                   num_threads=data.get("num_threads", 2), source=path)


USER_DATASET_KEYS = ("question_field", "answer_field", "answer_type", "choices_field", "labels")


def load_examples(task: str, section: dict, **options):
    """A task of a [train] or [eval] section; the section's field options apply to user datasets."""
    from regenesis.evals.tasks import TASKS, load_task

    fields = {} if task in TASKS else {k: section[k] for k in USER_DATASET_KEYS if k in section}
    return load_task(task, limit=section.get("limit"), data_root=section.get("data_root"), **options, **fields)


def stage_done(folder: Path) -> dict | None:
    marker = folder / STAGE_FILE
    return json.loads(marker.read_text(encoding="utf-8")) if marker.is_file() else None


def mark_done(folder: Path, started: float, **facts: Any) -> None:
    """Mark a stage finished, with its wall time (``started`` is its ``time.perf_counter()``)."""
    folder.mkdir(parents=True, exist_ok=True)
    facts = {"finished": time.strftime("%Y-%m-%dT%H:%M:%S"), "seconds": round(time.perf_counter() - started, 1), **facts}
    (folder / STAGE_FILE).write_text(json.dumps(facts, indent=2, default=str), encoding="utf-8")


class Experiment:
    def __init__(self, config: ExperimentConfig, out: str | Path, progress: bool = True):
        self.config = config
        self.out = Path(out)
        self.progress = progress
        self.skipped: list[str] = []
        self.ran: list[str] = []
        self.not_tuned: list[str] = []
        self.eval_domains: dict[str, str] = {}

    # -- data -----------------------------------------------------------------------------------
    def train_examples(self):
        train = self.config.train
        tasks = train.get("tasks") or [train["task"]]
        examples = []
        for task in tasks:
            examples.extend(load_examples(task, train, data=train.get("data") if len(tasks) == 1 else None,
                                          split=train.get("split", "train")))
        return examples

    def eval_examples(self):
        """The evaluation examples; also fills ``eval_domains`` (the task names examples carry → in/out)."""
        spec = self.config.eval
        examples = []
        for task in spec["tasks"]:
            loaded = load_examples(task, spec, split=spec.get("splits", {}).get(task))
            domain = ("in" if task in spec.get("in_domain", []) else
                      "out" if task in spec.get("out_of_domain", []) else None)
            if domain:  # a user file's examples carry the file's stem as their task name
                self.eval_domains.update({example.task: domain for example in loaded})
            examples.extend(loaded)
        return examples

    def domains(self) -> dict[str, str]:
        from regenesis.evals.evaluate import registry_domains

        return {**registry_domains(self.config.eval["tasks"]), **self.eval_domains}

    # -- models ---------------------------------------------------------------------------------
    def lm(self, spec: str | None, **kwargs):
        from regenesis.models import resolve_lm

        return resolve_lm(spec, api_base=self.config.api_base if spec == self.config.model else None, **kwargs)

    def served_model(self, checkpoint: Path) -> str:
        """The spec a tuned checkpoint is used through: its GGUF export when there is one (fast llama.cpp)."""
        ggufs = sorted((checkpoint / "gguf").glob("*.gguf"))
        return str(ggufs[0]) if ggufs else str(checkpoint)

    # -- stages ---------------------------------------------------------------------------------
    def evaluate(self, label: str, spec: str | None, examples) -> dict:
        from regenesis.evals.evaluate import evaluate
        from regenesis.evals.report import write_results

        folder = self.out / "eval" / label
        if (done := stage_done(folder)) is not None:
            self.skipped.append(f"eval {label}")
            return done
        console.print(f"[bold]eval[/bold] {label} ({spec or 'default model'})", highlight=False)
        started = time.perf_counter()
        lm = self.lm(spec, max_tokens=self.config.eval.get("max_tokens", 512))
        result = evaluate(lm, examples, raw_dir=folder / "raw", num_threads=self.config.num_threads,
                          progress=self.progress, domains=self.domains(), settings={"label": label})
        json_path, _ = write_results(result, folder / "results.json")
        mark_done(folder, started, results=str(json_path), model=spec)
        self.ran.append(f"eval {label}")
        return stage_done(folder)

    def synthesize(self, folder: Path, method_label: str, generator: str | None, examples) -> dict:
        from regenesis.optimize.bootstrap import preset, synthesize
        from regenesis.optimize.filters import FilterOptions
        from regenesis.optimize.methods import ReGenesisBudget

        if (done := stage_done(folder)) is not None:
            self.skipped.append(f"synthesize {method_label}")
            return done
        settings = dict(self.config.methods[method_label])
        method = settings.pop("method", method_label)
        filters = FilterOptions(**settings.pop("filters", {}))
        budget = {k: settings.pop(k) for k in ("selections", "singles", "paths_per_set") if k in settings}
        config = preset(settings.pop("preset", "default"), method=method, filters=filters,
                        num_threads=self.config.num_threads,
                        regenesis=ReGenesisBudget(**budget) if budget else None, **settings)
        console.print(f"[bold]synthesize[/bold] {method_label} with {generator or 'the default model'}",
                      highlight=False)
        started = time.perf_counter()
        report = synthesize(self.lm(generator, max_tokens=self.config.train.get("max_tokens", 512)), examples,
                            folder, config, progress=self.progress)
        mark_done(folder, started, report=report)
        self.ran.append(f"synthesize {method_label}")
        return stage_done(folder)

    def finetune(self, folder: Path, data: Path, base: str | None, label: str) -> Path:
        from regenesis.finetune import export_gguf, finetune

        if stage_done(folder) is not None:
            self.skipped.append(f"finetune {label}")
            return folder
        settings = dict(self.config.finetune)
        settings.pop("base", None)
        quant = settings.pop("export_gguf", "q8_0")
        console.print(f"[bold]finetune[/bold] {label} from {base or 'the default model'}", highlight=False)
        started = time.perf_counter()
        finetune(data, base, folder, resume=True, **settings)
        if quant:
            export_gguf(folder, quant)
        mark_done(folder, started, base=base, data=str(data))
        self.ran.append(f"finetune {label}")
        return folder

    def run(self) -> Path:
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "config.toml").write_text(self.config.source.read_text(encoding="utf-8"), encoding="utf-8")
        train, evaluation = self.train_examples(), self.eval_examples()
        base = self.config.model
        trained = self.config.finetune.get("base", base)  # the model fine-tuned (a hosted generator cannot be)
        evaluations = {"base": self.evaluate("base", self.config.eval.get("base_model", base), evaluation)}
        syntheses: dict[str, dict] = {}
        for method_label in self.config.methods:
            generator, tuned_from = base, trained
            for round_number in range(1, self.config.rounds + 1):
                round_dir = self.out / f"round-{round_number}" / method_label
                label = method_label if self.config.rounds == 1 else f"{method_label}-r{round_number}"
                synthesis = self.synthesize(round_dir / "data", method_label, generator, train)
                syntheses[label] = synthesis["report"]
                if synthesis["report"]["kept_rows"] == 0:
                    console.print(f"[yellow]{label}: no rows kept, nothing to fine-tune; stopping this method[/yellow]")
                    self.not_tuned.append(label)
                    break
                checkpoint = self.finetune(round_dir / "checkpoint", round_dir / "data", tuned_from, label)
                generator = self.served_model(checkpoint)
                tuned_from = trained if self.config.restart_from_base else str(checkpoint)
                evaluations[label] = self.evaluate(label, generator, evaluation)
        return self.write_report(evaluations, syntheses)

    # -- report ---------------------------------------------------------------------------------
    def write_report(self, evaluations: dict[str, dict], syntheses: dict[str, dict]) -> Path:
        from regenesis.evals.report import comparison_chart, comparison_table, load_results

        results = {label: load_results(done["results"]) for label, done in evaluations.items()}
        table = comparison_table(results, baseline="base")
        chart = comparison_chart(results, self.out / "chart.png")
        lines = [f"# {self.config.name}", "", table, "", f"![accuracy per task]({chart.name})", "",
                 "Δ is the change against the base model in points.", ""]
        if self.not_tuned:
            lines += [f"Not fine-tuned, because synthesis kept no training row: {', '.join(self.not_tuned)} "
                      "(see Training sets below).", ""]
        lines += self._evaluation_notes(evaluations, results)
        lines += self._synthesis_table(syntheses)
        lines += self._time_table()
        report = self.out / "report.md"
        report.write_text("\n".join(lines) + "\n", encoding="utf-8")
        summary = {"config": str(self.config.source), "evaluations": {k: v["results"] for k, v in evaluations.items()},
                   "synthesis": syntheses}
        (self.out / "summary.json").write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
        return report

    def _evaluation_notes(self, evaluations, results) -> list[str]:
        lines = ["## Models and raw outputs", "", "| label | model | results | raw outputs |", "|---|---|---|---|"]
        for label, done in evaluations.items():
            raw = Path(done["results"]).parent / "raw"
            lines.append(f"| {label} | `{done.get('model') or 'local/smollm2-135m'}` | "
                         f"`{Path(done['results']).relative_to(self.out)}` | `{raw.relative_to(self.out)}/` |")
        return lines + [""]

    def _synthesis_table(self, syntheses: dict[str, dict]) -> list[str]:
        if not syntheses:
            return []
        lines = ["## Training sets", "",
                 "| method | problems | solved | solved with hint | kept rows | generations (cached) | generations per kept row | dropped |",
                 "|---|---|---|---|---|---|---|---|"]
        for label, report in syntheses.items():
            dropped = ", ".join(f"{k} {v}" for k, v in sorted(report["dropped"].items())) or "none"
            lines.append(f"| {label} | {report['problems']} | {report['solved_without_hint']} | "
                         f"{report['solved_with_hint']} | {_kept_rows(report)} | {report['generations']} ({report['cached_generations']}) | "
                         f"{report['generations_per_kept_row']} | {dropped} |")
        return lines + ["", "Training rows: `round-<r>/<method>/data/train.jsonl`; checkpoints: "
                            "`round-<r>/<method>/checkpoint/`."]

    def _time_table(self) -> list[str]:
        stages = sorted(self.out.glob(f"**/{STAGE_FILE}"), key=lambda marker: marker.stat().st_mtime)
        rows = [(marker.parent.relative_to(self.out), json.loads(marker.read_text(encoding="utf-8")).get("seconds"))
                for marker in stages]
        lines = ["", "## Time per stage", "", "| stage | seconds |", "|---|---|"]
        lines += [f"| `{stage}` | {seconds if seconds is not None else '-'} |" for stage, seconds in rows]
        return lines + [""]


def _kept_rows(report: dict) -> str:
    """The kept rows, with each task's share when the training set mixes tasks."""
    by_task = report.get("by_task", {})
    if len(by_task) < 2:
        return str(report["kept_rows"])
    shares = ", ".join(f"{task} {totals['kept_rows']}" for task, totals in by_task.items())
    return f"{report['kept_rows']} ({shares})"


def run_experiment(config_path: str | Path, out: str | Path, progress: bool = True) -> Experiment:
    experiment = Experiment(ExperimentConfig.load(config_path), out, progress)
    experiment.report = experiment.run()
    return experiment
