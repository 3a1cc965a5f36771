"""Bootstrap-then-finetune experiments, from one TOML file or from Python, stage by stage, resumable.

The run evaluates the base model, then for each round and each method synthesizes a training set,
fine-tunes a model on it and evaluates the tuned model; it ends with a report folder::

    OUT/report.md         the comparison table (base vs each method; intervals; change vs base)
    OUT/chart.png         the same as a chart
    OUT/summary.json      every figure of the report, with the paths of the files it comes from
    OUT/config.toml       the config of the latest run; configs/<sha256>.toml keeps every config a run used
    OUT/eval/<label>/     results.json, results.md and raw/ (the model's outputs) per evaluated model
    OUT/round-<r>/<method>/data/        the training set (train.jsonl, problems.jsonl, report.json)
    OUT/round-<r>/<method>/checkpoint/  the tuned model (and gguf/ when exported)

Each stage (``stages``) is keyed by the fingerprint of its inputs, so a rerun skips, resumes or
recomputes it. One run at a time holds ``OUT`` (``runfiles.run_lock``); a config's keys and value types
are checked (``config``), and its tasks and models resolved, before anything is written or any model is
called. From Python, with the config objects the command line reads its flags into::

    from regenesis.experiment import EvalSection, ExperimentConfig, TrainSection, run_experiment
    from regenesis.optimize.config import SynthesisConfig

    config = ExperimentConfig(train=TrainSection(task="gsm8k-sample", limit=5),
                              eval=EvalSection(tasks=["gsm8k-sample"], limit=10),
                              methods={"star": SynthesisConfig(method="star", generations=7)})
    run_experiment(config, "runs/star")  # runs/star/config.toml is the file that reproduces it
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.markup import escape

from regenesis.errors import BadInput
from regenesis.evals.contamination import check_experiment, find_overlaps, question_texts
from regenesis.experiment.config import EvalSection, ExperimentConfig, FinetuneSection, TrainSection
from regenesis.experiment.report import write_report
from regenesis.experiment.stages import StageRunner, console
from regenesis.models import ModelSpecError
from regenesis.runfiles import read_jsonl, run_lock
from regenesis.tasks import load_task

__all__ = ["EvalSection", "Experiment", "ExperimentConfig", "FinetuneSection", "TrainSection", "run_experiment"]


class Experiment(StageRunner):
    """The runner: the base evaluation, then per method and round a synthesis, a fine-tuning and an
    evaluation, then the report. ``run()`` returns the report's path."""

    def __init__(self, config: ExperimentConfig, out: str | Path, progress: bool = True):
        super().__init__(config, out, progress)
        self.not_tuned: list[str] = []
        self.train_on_eval: list[str] = []  # train task+splits that are also evaluated on
        self.checkpoints: dict[str, Path] = {}  # label → tuned checkpoint
        self.rounds: dict[str, list[tuple[int, str]]] = {}  # method → (round, label) of each round it ran
        self.contamination: dict = {}  # training set → its overlap with the evaluation items
        self.report: Path | None = None

    # -- data -----------------------------------------------------------------------------------
    def load(self, key: str, task: str, section, **options):
        """A task of a [train] or [eval] section; a task that cannot be loaded names the TOML key."""
        try:
            return load_task(task, limit=section.limit, data_root=section.data_root, **options,
                             **section.options(task))
        except BadInput as exc:
            raise BadInput(f"{self.config.origin}: {key}: {exc}") from None

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
    def check_models(self) -> None:
        """Resolve every model the config names, so a bad spec stops the run before anything is written."""
        specs = {"model": self.config.model, "eval.base_model": self.config.eval.base_model or self.config.model}
        specs.update({f"methods.{label}.filters.judge_model": method.filters.judge_model
                      for label, method in self.config.methods.items() if method.filters.judge_model})
        for key, spec in specs.items():
            try:
                self.lm(spec)
            except ModelSpecError as exc:
                raise BadInput(f"{self.config.origin}: {key}: {str(exc).splitlines()[0]}") from None

    # -- the run --------------------------------------------------------------------------------
    def run(self) -> Path:
        """Check the config's tasks and models, then run every stage under the folder's lock."""
        train_groups, eval_groups = self.train_groups(), self.eval_groups()
        self.check_models()
        self.train_on_eval = self.shared_problems(train_groups, eval_groups)
        if self.train_on_eval and not self.config.allow_train_on_eval:
            raise BadInput(f"{self.config.origin}: {self.train_on_eval[0]}; train on another split, or set "
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
        # The base row, unless the config names its own, is the fine-tuned base served as the tuned rows are.
        base_row = self.config.eval.base_model or (self.served_base(base) if trained == base else base)
        evaluations = {"base": self.evaluate("base", base_row, evaluation, after={})}
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
        return write_report(self, evaluations, syntheses, evaluation)


def run_experiment(config: ExperimentConfig | str | Path, out: str | Path, progress: bool = True) -> Experiment:
    """Run the experiment ``config`` (a config object, or the path of its TOML file) in ``out``."""
    experiment = Experiment(config if isinstance(config, ExperimentConfig) else ExperimentConfig.load(config),
                            out, progress)
    experiment.report = experiment.run()
    return experiment
