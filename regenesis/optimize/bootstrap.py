"""The bootstrap loop: propose paths, keep the right ones, write them as training rows.

Per problem: the method proposes candidates (distinct rollout ids) → answer matching against the
gold answer (or, label-free, the majority answer) → quality filters → dedupe → cap. A problem with no
kept path gets a hinted pass when the method has one. Each finished problem is appended to disk at
once (``regenesis.optimize.store``), so a killed run resumes where it stopped.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import dspy
from dspy.utils.callback import BaseCallback
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from regenesis.evals.example import Example
from regenesis.evals.matching import extract_answer, is_correct
from regenesis.guidelines import Guideline
from regenesis.models import adapter_for
from regenesis.optimize.filters import FilterOptions, build_filters, check_path, derives_answer, mentions_hint
from regenesis.optimize.methods import Candidate, Method, ReGenesisBudget, Sampler, build_method
from regenesis.optimize.store import RunStore
from regenesis.prompting import answer_line, training_messages


@dataclass
class SynthesisConfig:
    """The knobs of a synthesis run. ``generations`` is the budget of generations per problem that
    all methods share; ``regenesis`` sets ReGenesis's sets explicitly instead."""

    method: str = "regenesis"
    generations: int | None = None
    regenesis: ReGenesisBudget | None = None
    max_kept: int = 5
    hint_pass: bool = True
    label_free: bool = False
    temperature: float = 0.8
    top_p: float | None = 0.95
    num_threads: int = 2
    filters: FilterOptions = field(default_factory=FilterOptions)


PRESETS = {
    # Cheap enough for a laptop: 4 guideline sets per problem (14 generations), hint pass on.
    "default": SynthesisConfig(),
    # The reference budget: 20 sampled selections plus every seed guideline alone (singles are capped
    # at the size of the library), sampled at 1.2 / 0.9.
    "paper": SynthesisConfig(regenesis=ReGenesisBudget(selections=20, singles=10_000, paths_per_set=1),
                             temperature=1.2, top_p=0.9, max_kept=5),
}


def preset(name: str, **overrides) -> SynthesisConfig:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return replace(PRESETS[name], **{k: v for k, v in overrides.items() if v is not None})


def with_clean_answer(candidate: Candidate, example: Example) -> Candidate:
    """The candidate whose final line states only the answer read from its answer field.

    A small model often runs on inside the answer field ("990. For 24 +"); the training text should
    end in the answer alone, in the task's normal form.
    """
    answer = extract_answer(answer_line(candidate.answer), example.answer_type, example.choices, example.labels)
    if answer is None:
        return candidate
    reasoning = candidate.path.rsplit("\n", 1)[0] if "\n" in candidate.path else ""
    return replace(candidate, path=f"{reasoning}\n{answer_line(answer)}".strip(), answer=answer)


def majority_answer(answers: Sequence[str | None]) -> str | None:
    """The answer most candidates reach, or None on a tie or with fewer than two votes for it."""
    counts = Counter(a for a in answers if a is not None).most_common()
    if not counts or counts[0][1] < 2 or (len(counts) > 1 and counts[1][1] == counts[0][1]):
        return None
    return counts[0][0]


@dataclass
class Selection:
    kept: list[tuple[Candidate, dict]] = field(default_factory=list)
    dropped: Counter = field(default_factory=Counter)
    reference: str | None = None


class Bootstrap:
    """Runs one method over a list of problems into an output folder (see ``synthesize``)."""

    def __init__(self, lm: dspy.LM, method: Method, config: SynthesisConfig):
        self.lm = lm
        self.method = method
        self.config = config
        self.sampler = Sampler(lm, config.temperature, config.top_p)
        self.filters = build_filters(config.filters)
        self.adapter = adapter_for(lm)

    def select(self, candidates: list[Candidate], example: Example) -> Selection:
        """Answer matching, quality filters, dedupe and the cap, counting why each candidate went."""
        selection = Selection()
        candidates = [with_clean_answer(c, example) for c in candidates]
        if self.method.uses_gold:
            matched = [c for c in candidates if is_correct(c.path, example)]
        else:
            answers = [extract_answer(c.path, example.answer_type, example.choices, example.labels)
                       for c in candidates]
            selection.reference = majority_answer(answers)
            matched = [c for c, a in zip(candidates, answers) if a is not None and a == selection.reference]
        selection.dropped["answer"] += len(candidates) - len(matched)

        seen = set()
        for candidate in matched:
            if candidate.hinted and mentions_hint(candidate.path, self.config.filters.hint_phrases):
                selection.dropped["hint_leak"] += 1
                continue
            if candidate.hinted and self.config.filters.hinted_derivation and not derives_answer(candidate.path, example):
                selection.dropped["hint_not_derived"] += 1
                continue
            verdicts = check_path(self.filters, candidate.path, example)
            failed = next((v for v in verdicts if not v.passed), None)
            if failed is not None:
                selection.dropped[failed.filter] += 1
                continue
            key = " ".join(candidate.path.lower().split())
            if key in seen:
                selection.dropped["duplicate"] += 1
                continue
            seen.add(key)
            if len(selection.kept) >= self.config.max_kept:
                selection.dropped["over_cap"] += 1
                continue
            selection.kept.append((candidate, {v.filter: v.detail for v in verdicts if v.detail}))
        return selection

    def solve(self, example: Example) -> tuple[list[dict], dict]:
        """One problem, start to finish: its training rows and its record."""
        started = time.monotonic()
        errors: list[str] = []
        dropped: Counter = Counter()
        calls = CallCounter()
        with dspy.context(lm=self.lm, adapter=self.adapter, callbacks=[calls]), dspy.track_usage() as usage:
            candidates, failed = self.method.propose(example, self.sampler)
            errors += failed
            selection = self.select(candidates, example)
            dropped += selection.dropped
            solved = bool(selection.kept)
            hinted_candidates = 0
            if not solved and self.config.hint_pass and self.method.supports_hint:
                hinted, failed = self.method.propose(example, self.sampler, hint=example.gold)
                errors += failed
                hinted_candidates = len(hinted)
                selection = self.select(hinted, example)
                dropped += selection.dropped
        new_generations, prompt_tokens, completion_tokens = usage_totals(usage)
        rows = [self.row(example, candidate, extra, selection.reference) for candidate, extra in selection.kept]
        record = {
            "problem_id": example.id,
            "task": example.task,
            "candidates": len(candidates) + hinted_candidates,
            "kept": len(rows),
            "solved": solved,
            "solved_with_hint": bool(rows) and not solved,
            "reference_answer": selection.reference,
            "dropped": dict(dropped),
            "errors": len(errors),
            "error_examples": errors[:3],
            "generations": calls.count,
            "cached_generations": calls.count - new_generations,
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "seconds": round(time.monotonic() - started, 3),
        }
        return rows, record

    def row(self, example: Example, candidate: Candidate, checks: dict, reference: str | None) -> dict:
        meta = {
            "problem_id": example.id,
            "task": example.task,
            "method": self.method.name + ("-label-free" if self.config.label_free else ""),
            "model": self.lm.model,
            "sample_index": candidate.sample_index,
            "hinted": candidate.hinted,
            "answer": candidate.answer,
            "gold": example.gold if self.method.uses_gold else None,
            "majority_answer": reference,
            "guidelines": candidate.provenance.get("guidelines", []),
            "adapted_guidelines": candidate.provenance.get("adapted_guidelines", ""),
            "reasoning_structure": candidate.provenance.get("reasoning_structure", ""),
            "checks": checks,
        }
        return {"messages": training_messages(example.question, candidate.path), "meta": meta}


class CallCounter(BaseCallback):
    """Counts the LM calls of one problem, cached or not: the generations the method asked for."""

    def __init__(self):
        self.count = 0
        self._lock = threading.Lock()

    def on_lm_start(self, call_id, instance, inputs):
        with self._lock:
            self.count += 1


def usage_totals(usage) -> tuple[int, int, int]:
    """Calls that reached the model, prompt tokens and completion tokens recorded by a
    ``dspy.track_usage`` tracker (cache hits are not recorded: their tokens were spent earlier)."""
    entries = [entry for per_model in usage.usage_data.values() for entry in per_model]
    prompt = sum(e.get("prompt_tokens") or 0 for e in entries)
    completion = sum(e.get("completion_tokens") or 0 for e in entries)
    return len(entries), prompt, completion


def cost_report(problems: list[dict], method: Method, config: SynthesisConfig, seconds: float,
                new_completion_tokens: int) -> dict:
    """Totals over the finished problems: the per-run report of issue 4 (generations, tokens, solve rates)."""
    n = len(problems)
    kept = sum(p["kept"] for p in problems)
    generations = sum(p["generations"] for p in problems)
    dropped: Counter = Counter()
    for p in problems:
        dropped.update(p["dropped"])
    return {
        "method": method.name + ("-label-free" if config.label_free else ""),
        "problems": n,
        "solved_without_hint": sum(p["solved"] for p in problems),
        "solved_with_hint": sum(p["solved_with_hint"] for p in problems),
        "solve_rate": round(sum(p["solved"] for p in problems) / n, 4) if n else 0.0,
        "solve_rate_with_hint": round(sum(p["kept"] > 0 for p in problems) / n, 4) if n else 0.0,
        "kept_rows": kept,
        "candidates": sum(p["candidates"] for p in problems),
        "generations": generations,
        "cached_generations": sum(p.get("cached_generations", 0) for p in problems),
        "planned_generations_per_problem": method.planned_generations(),
        "prompt_tokens": sum(p["prompt_tokens"] for p in problems),
        "completion_tokens": sum(p["completion_tokens"] for p in problems),
        "generations_per_kept_row": round(generations / kept, 2) if kept else None,
        "completion_tokens_per_kept_row": round(sum(p["completion_tokens"] for p in problems) / kept, 1) if kept else None,
        "dropped": dict(dropped),
        "by_task": _totals_by_task(problems),
        "errors": sum(p["errors"] for p in problems),
        "this_run_seconds": round(seconds, 2),
        "this_run_completion_tokens_per_second": round(new_completion_tokens / seconds, 2) if seconds else None,
    }


def _totals_by_task(problems: list[dict]) -> dict[str, dict]:
    """Problems, solves and kept rows of each task, for training sets that mix tasks."""
    totals: dict[str, Counter] = {}
    for p in problems:
        counts = totals.setdefault(p["task"], Counter())
        counts.update(problems=1, solved_without_hint=int(p["solved"]), solved_with_hint=int(p["solved_with_hint"]),
                      kept_rows=p["kept"])
    return {task: dict(counts) for task, counts in sorted(totals.items())}


def synthesize(lm: dspy.LM, examples: Sequence[Example], out_dir: str | Path,
               config: SynthesisConfig | None = None, *, guidelines: Sequence[Guideline] | None = None,
               progress: bool = True) -> dict:
    """Run the bootstrap loop over ``examples`` into ``out_dir`` and return the cost report.

    Finished problems are skipped, so the same call after an interruption resumes the run.
    """
    config = config or SynthesisConfig()
    method = build_method(config.method, config.generations, guidelines=guidelines, label_free=config.label_free,
                          regenesis_budget=config.regenesis)
    settings = {"model": lm.model, **asdict(config)}
    store = RunStore(out_dir, settings)
    bootstrap = Bootstrap(lm, method, config)
    todo = [e for e in examples if e.id not in store.finished]

    started, new_tokens = time.monotonic(), 0
    with dspy.context(lm=lm, adapter=bootstrap.adapter):
        plan = method.prepare(examples, bootstrap.sampler)
    with _progress(progress) as bar:
        task = bar.add_task("synthesize", total=len(examples), completed=len(examples) - len(todo),
                            status=_status(store.problems, 0, 1))
        with ThreadPoolExecutor(max_workers=max(1, config.num_threads)) as pool:
            futures = [pool.submit(bootstrap.solve, example) for example in todo]
            for future in as_completed(futures):
                rows, record = future.result()
                store.add(rows, record)
                new_tokens += record["completion_tokens"]
                bar.update(task, advance=1,
                           status=_status(store.problems, new_tokens, time.monotonic() - started))
    report = cost_report(store.problems, method, config, time.monotonic() - started, new_tokens)
    if plan:
        report["task_plans"] = plan
    report["rows_file"] = str(store.rows_path)
    store.write_report(report)
    return report


def _status(problems: list[dict], tokens: int, seconds: float) -> str:
    kept = sum(p["kept"] for p in problems)
    solved = sum(p["kept"] > 0 for p in problems)
    rate = solved / len(problems) if problems else 0.0
    return f"kept {kept} · solved {rate:.0%} · {tokens / max(seconds, 1e-9):.0f} tok/s"


def _progress(enabled: bool) -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[status]}"), TimeElapsedColumn(), disable=not enabled)
