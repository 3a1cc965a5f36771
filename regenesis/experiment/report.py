"""An experiment's ``report.md`` and ``summary.json``, each section computed from the files the stages left.

The comparison table and chart (``evals.report``) come first; then the paired comparisons that say
which differences are more than noise, the contamination check, where each method's generations
went (the synthesis funnel), the training curves, the models and raw outputs, the training sets, the
time and fingerprint of each stage, and the provenance block that names the versions and the command
that reproduce the run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from regenesis.evals.contamination import ContaminationReport
from regenesis.evals.evaluate import EvalResult
from regenesis.evals.funnel import funnel_chart, funnel_table
from regenesis.evals.paired import PairedResult, compare_runs, paired_table, raw_outcomes
from regenesis.evals.report import comparison_chart, comparison_table, load_results
from regenesis.finetune.curves import curves_chart, read_training_log
from regenesis.models import model_identity
from regenesis.provenance import provenance, provenance_markdown
from regenesis.redact import redact
from regenesis.runfiles import atomic_write_text, write_json

if TYPE_CHECKING:  # the runner imports this module
    from regenesis.experiment import Experiment

AVERAGE_NAMES = {"in": "in-domain average", "out": "out-of-domain average"}
CONTRAST = "star"  # the paper's main contrast: every other method is also compared with it


def paired_comparisons(results: Mapping[str, EvalResult], raw_dirs: Mapping[str, Path],
                       evaluation: Sequence) -> list[PairedResult]:
    """Each tuned model against the base model, and against STaR when the experiment has it; outcomes
    are read again from each evaluation's raw outputs (verdicts derived from the stored text)."""
    by_task: dict[str, list] = {}
    for example in evaluation:
        by_task.setdefault(example.task, []).append(example)
    outcomes = {label: {task: raw_outcomes(raw_dirs[label], task, examples) for task, examples in by_task.items()}
                for label in results}
    domains = {name: score.domain for name, score in results["base"].scores.items()}
    baselines = ["base"] + ([CONTRAST] if CONTRAST in results else [])
    return [compare_runs(outcomes[baseline], outcomes[label], domains, labels=(baseline, label))
            for baseline in baselines for label in results if label not in ("base", baseline)]


def paired_section(comparisons: Sequence[PairedResult]) -> list[str]:
    if not comparisons:
        return []
    return ["## Paired comparisons", "", paired_table(comparisons, AVERAGE_NAMES), ""]


def contamination_section(checks: Mapping[str, ContaminationReport]) -> list[str]:
    """Overlap of each training set (its synthesis questions, and its kept rows) with the evaluation items."""
    lines = ["## Contamination check", "",
             "Synthesis questions and kept training rows against every evaluation question: exact match after "
             "normalisation, near duplicates (at least half of an item's 13-grams) and any shared 13-gram.", "",
             "| training set | exact | near duplicate | shared 13-gram | evaluation items touched |", "|---|---|---|---|---|"]
    for label, check in checks.items():
        counts = check.counts()
        lines.append(f"| {label} | {counts.get('exact', 0)} | {counts.get('near_duplicate', 0)} | "
                     f"{counts.get('ngram', 0)} | {len(check.contaminated_eval_items())} |")
    return lines + [""]


def funnel_section(out: Path, syntheses: Mapping[str, dict]) -> list[str]:
    lines = ["## Where the generations went", ""] if syntheses else []
    for label, report in syntheses.items():
        chart = funnel_chart(report, out / f"funnel-{label}.png", title=label)
        lines += [f"### {label}", "", funnel_table(report), "", f"![synthesis funnel, {label}]({chart.name})", ""]
    return lines


def curves_section(out: Path, checkpoints: Mapping[str, Path]) -> list[str]:
    runs = {label: read_training_log(folder) for label, folder in checkpoints.items()}
    runs = {label: steps for label, steps in runs.items() if steps}
    if not runs:
        return []
    chart = curves_chart(runs, out / "training_curves.png")
    return ["## Training curves", "", "Loss and learning rate per logged step of each method's fine-tuning run "
            "(`training_log.jsonl` in each checkpoint).", "", f"![training loss and learning rate]({chart.name})", ""]


def models_section(out: Path, evaluations: Mapping[str, dict]) -> list[str]:
    lines = ["## Models and raw outputs", "", "| label | model | results | raw outputs |", "|---|---|---|---|"]
    for label, done in evaluations.items():
        raw = Path(done["results"]).parent / "raw"
        lines.append(f"| {label} | `{done.get('model') or 'local/smollm2-135m'}` | "
                     f"`{Path(done['results']).relative_to(out)}` | `{raw.relative_to(out)}/` |")
    return lines + [""]


def training_sets_section(syntheses: Mapping[str, dict]) -> list[str]:
    if not syntheses:
        return []
    lines = ["## Training sets", "",
             "| method | problems | solved | solved with hint | kept rows | generations (cached) | generations per kept row | dropped |",
             "|---|---|---|---|---|---|---|---|"]
    for label, report in syntheses.items():
        dropped = ", ".join(f"{k} {v}" for k, v in sorted(report["dropped"].items())) or "none"
        lines.append(f"| {label} | {report['problems']} | {report['solved_without_hint']} | "
                     f"{report['solved_with_hint']} | {kept_rows(report)} | {report['generations']} "
                     f"({report['cached_generations']}) | {report['generations_per_kept_row']} | {dropped} |")
    return lines + ["", "Training rows: `round-<r>/<method>/data/train.jsonl`; checkpoints: "
                        "`round-<r>/<method>/checkpoint/`.", ""]


def rounds_section(rounds: Mapping[str, list[tuple[int, str]]], syntheses: Mapping[str, dict],
                   results: Mapping[str, EvalResult]) -> list[str]:
    """Kept rows and domain accuracies of each method round by round (``rounds``: method → (round, label))."""
    if not any(len(labels) > 1 for labels in rounds.values()):
        return []
    domains = sorted({domain for result in results.values() for domain in result.averages})
    lines = ["## Rounds", "", "| method | round | kept rows | " + " | ".join(AVERAGE_NAMES.get(d, d) for d in domains)
             + " |", "|---|---|---|" + "---|" * len(domains)]
    for method, labels in rounds.items():
        for number, label in labels:
            result = results.get(label)
            accuracies = [f"{100 * result.averages[d].accuracy:.1f}" if result and d in result.averages else "—"
                          for d in domains]
            kept = syntheses[label]["kept_rows"] if label in syntheses else "—"
            lines.append(f"| {method} | {number} | {kept} | " + " | ".join(accuracies) + " |")
    return lines + [""]


def kept_rows(report: dict) -> str:
    """The kept rows, with each task's share when the training set mixes tasks."""
    by_task = report.get("by_task", {})
    if len(by_task) < 2:
        return str(report["kept_rows"])
    shares = ", ".join(f"{task} {totals['kept_rows']}" for task, totals in by_task.items())
    return f"{report['kept_rows']} ({shares})"


def time_section(out: Path, stages: Sequence[dict]) -> list[str]:
    lines = ["## Time per stage", "",
             "Each stage's `stage.json` holds its fingerprint and the inputs it was computed from.", "",
             "| stage | seconds | fingerprint |", "|---|---|---|"]
    for record in stages:
        folder = Path(record["folder"]).relative_to(out)
        lines.append(f"| `{folder}` | {record.get('seconds', '-')} | `{record['fingerprint'][:12]}` |")
    return lines + [""]


def write_report(experiment: Experiment, evaluations: dict[str, dict], syntheses: dict[str, dict], evaluation) -> Path:
    """``report.md``, ``chart.png`` and ``summary.json`` from the stages' records and files."""
    results = {label: load_results(done["results"]) for label, done in evaluations.items()}
    raw_dirs = {label: Path(done["results"]).parent / "raw" for label, done in evaluations.items()}
    comparisons = paired_comparisons(results, raw_dirs, evaluation)
    chart = comparison_chart(results, experiment.out / "chart.png")
    lines = [f"# {experiment.config.name}", ""]
    if experiment.train_on_eval:
        lines += ["**Warning: the training problems include evaluation problems**, so the tuned scores on "
                  "those tasks are not held-out scores:", "", *[f"- {w}" for w in experiment.train_on_eval], ""]
    lines += [comparison_table(results, baseline="base"), "", f"![accuracy per task]({chart.name})", "",
              "Δ is the change against the base model in points.", ""]
    if experiment.not_tuned:
        lines += [f"Not fine-tuned, because synthesis kept no training row: {', '.join(experiment.not_tuned)} "
                  "(see Training sets below).", ""]
    lines += rounds_section(experiment.rounds, syntheses, results)
    lines += paired_section(comparisons)
    lines += contamination_section(experiment.contamination)
    lines += funnel_section(experiment.out, syntheses)
    lines += curves_section(experiment.out, experiment.checkpoints)
    lines += models_section(experiment.out, evaluations)
    lines += training_sets_section(syntheses)
    lines += time_section(experiment.out, experiment.stages)
    record = provenance_record(experiment)
    lines += [provenance_markdown(record)]
    report = experiment.out / "report.md"
    atomic_write_text(report, redact("\n".join(lines) + "\n"))
    summary = {"config": str(config_file(experiment)), "config_copy": experiment.config_copy,
               "evaluations": {k: v["results"] for k, v in evaluations.items()}, "synthesis": syntheses,
               "paired": [comparison.to_dict() for comparison in comparisons],
               "contamination": {label: check.to_dict() for label, check in experiment.contamination.items()},
               "train_on_eval": experiment.train_on_eval,
               "stages": {record["stage"]: record["fingerprint"] for record in experiment.stages},
               "provenance": record}
    write_json(experiment.out / "summary.json", summary)
    return report


def provenance_record(experiment: Experiment) -> dict:
    """Versions, the base model's fingerprint, the resolved config and the command that reproduces the run."""
    config = {k: v for k, v in asdict(experiment.config).items() if k not in ("source", "text")}
    # No seed of its own: each sample's rollout id (0, 1, ... per problem) is its sampling seed.
    return provenance(model_identity(experiment.lm(experiment.config.model)), [], config,
                      f"regenesis experiment {config_file(experiment)} --out {experiment.out}")



def config_file(experiment: Experiment) -> Path:
    """The file that reproduces the run: the config it was read from, else the copy the run keeps."""
    return experiment.config.source or experiment.out / "config.toml"
