"""The bootstrap loop: propose paths, keep the right ones, write them as training rows.

Per problem: the method proposes candidates (distinct rollout ids) → answer matching against the
gold answer (or, label-free, the majority answer) → quality filters → dedupe → cap. A problem with no
kept path gets a hinted pass when the method has one. Each finished problem is appended to disk at
once (``regenesis.optimize.store``), so a killed run resumes where it stopped.

A problem whose model calls failed (server error, timeout, refused connection... after DSPy's retries
with backoff) is recorded as failed with the error kind, keeps no rows, and is done again by the next
run; the successful calls before the failure are in DSPy's cache, so the retry costs only what failed.
Model output that cannot be parsed, even after DSPy's retries, is not a failed call: that candidate is
dropped and counted as ``parse``.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import dspy
from dspy.utils.callback import BaseCallback

from regenesis.tasks.example import Example
from regenesis.answers import extract_answer, is_correct
from regenesis.guidelines import Guideline
from regenesis.models import adapter_for, is_in_process, model_identity
from regenesis.optimize.examples import task_examples
from regenesis.optimize.config import SynthesisConfig
from regenesis.optimize.filters import build_filters, check_path, derives_answer, hint_leak
from regenesis.optimize.methods import Candidate, Failure, Method, ReGenesisBudget, Sampler, build_method
from regenesis.optimize.store import FAILED, FINISHED, open_run
from regenesis.parallel import progress_display, run_parallel
from regenesis.prompting import answer_line, training_messages


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


def capped(kept: list, cap: int, problem_id: str) -> list:
    """At most ``cap`` of ``kept``: a random choice seeded by the problem, so a rerun keeps the same
    rows, in their original order."""
    if len(kept) <= cap:
        return kept
    chosen = sorted(random.Random(problem_id).sample(range(len(kept)), cap))
    return [kept[i] for i in chosen]


def drop_order(filter_names: Sequence[str]) -> tuple[str, ...]:
    """Why a candidate is dropped, in the order ``Bootstrap.sift`` asks: its answer, the two checks of a
    hinted path, each quality filter in the order of ``filter_names``, then dedupe and the cap."""
    return ("answer", "hint_leak", "hint_not_derived", *filter_names, "duplicate", "over_cap")


@dataclass
class Sifted:
    """The candidates ``Bootstrap.sift`` kept (with their filters' details), the count dropped for each
    reason, and the majority answer a label-free run matched against."""

    kept: list[tuple[Candidate, dict]] = field(default_factory=list)
    dropped: Counter = field(default_factory=Counter)
    reference: str | None = None


class Bootstrap:
    """Runs one method over a list of problems into an output folder (see ``synthesize``).

    Its steps are named apart from the method's words: ``harvest`` turns one problem into training rows
    (the CLI's ``solve`` only answers a question), and ``sift`` keeps the right candidates (the paper's
    SELECT step picks reasoning guidelines, which is the method's business).
    """

    def __init__(self, lm: dspy.LM, method: Method, config: SynthesisConfig):
        self.lm = lm
        self.method = method
        self.config = config
        self.sampler = Sampler(lm, config.temperature, config.top_p)
        self.hint_method = hint_pass_method(method, config)
        self.hint_sampler = Sampler(lm, config.hint_temperature or config.temperature, config.top_p)
        self.filters = build_filters(config.filters, label_free=not method.uses_gold)
        self.adapter = adapter_for(lm)

    def sift(self, candidates: list[Candidate], example: Example) -> Sifted:
        """Answer matching, quality filters, dedupe and the cap (in ``drop_order``), counting why each
        candidate went."""
        sifted = Sifted()
        candidates = [with_clean_answer(c, example) for c in candidates]
        if self.method.uses_gold:
            matched = [c for c in candidates if is_correct(c.path, example)]
        else:
            answers = [extract_answer(c.path, example.answer_type, example.choices, example.labels)
                       for c in candidates]
            sifted.reference = majority_answer(answers)
            matched = [c for c, a in zip(candidates, answers) if a is not None and a == sifted.reference]
        sifted.dropped["answer"] += len(candidates) - len(matched)

        seen = set()
        for candidate in matched:
            if candidate.hinted and hint_leak(candidate.path, example.gold, self.config.filters.hint_phrases):
                sifted.dropped["hint_leak"] += 1
                continue
            if candidate.hinted and self.config.filters.hinted_derivation and not derives_answer(candidate.path, example):
                sifted.dropped["hint_not_derived"] += 1
                continue
            verdicts = check_path(self.filters, candidate.path, example)
            failed = next((v for v in verdicts if not v.passed), None)
            if failed is not None:
                sifted.dropped[failed.filter] += 1
                continue
            key = " ".join(candidate.path.lower().split())
            if key in seen:
                sifted.dropped["duplicate"] += 1
                continue
            seen.add(key)
            sifted.kept.append((candidate, {v.filter: v.detail for v in verdicts if v.detail}))
        sifted.kept = capped(sifted.kept, self.config.max_kept, example.id)
        sifted.dropped["over_cap"] += len(seen) - len(sifted.kept)
        return sifted

    def harvest(self, example: Example) -> tuple[list[dict], dict]:
        """One problem, start to finish: its training rows (none for a failed problem) and its record."""
        started = time.monotonic()
        if not self.method.uses_gold:  # label-free: the gold answer reaches no prompt, filter or row
            example = replace(example, gold="", meta={})
        failures: list[Failure] = []
        dropped: Counter = Counter()
        calls = CallCounter()
        hinted_candidates = 0
        with dspy.context(lm=self.lm, adapter=self.adapter, callbacks=[calls]), dspy.track_usage() as usage:
            candidates, failed = self.method.propose(example, self.sampler)
            failures += failed
            sifted = self.sift(candidates, example)
            dropped += sifted.dropped
            solved = bool(sifted.kept) and not _model_errors(failures)
            if not solved and not _model_errors(failures) and self.config.hint_pass and self.method.supports_hint:
                hinted, failed = self.hint_method.propose(example, self.hint_sampler, hint=example.gold)
                failures += failed
                hinted_candidates = len(hinted)
                sifted = self.sift(hinted, example)
                dropped += sifted.dropped
        model_errors = _model_errors(failures)
        rows = [] if model_errors else [self.row(example, candidate, extra, sifted.reference)
                                        for candidate, extra in sifted.kept]
        dropped["parse"] += len(failures) - len(model_errors)
        new_generations, prompt_tokens, completion_tokens = usage_totals(usage)
        record = {
            "problem_id": example.id,
            "task": example.task,
            "status": FAILED if model_errors else FINISHED,
            "error_kind": model_errors[0].kind if model_errors else None,
            "candidates": len(candidates) + hinted_candidates,
            "kept": len(rows),
            "solved": solved,
            "solved_with_hint": bool(rows) and not solved,
            "reference_answer": sifted.reference,
            "dropped": {reason: count for reason, count in dropped.items() if count},
            "model_errors": len(model_errors),
            "error_examples": [f"{f.kind}: {f.message}" for f in failures[:3]],
            "generations": calls.succeeded,
            "failed_calls": calls.failed,
            "cached_generations": max(0, calls.succeeded - new_generations),
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


def hint_pass_method(method: Method, config: SynthesisConfig) -> Method:
    """The method as the hinted pass runs it: with its own budget when the config gives one."""
    return method.with_generations(config.hint_generations) if config.hint_generations else method


def planned_hint_generations(method: Method, config: SynthesisConfig) -> int:
    """Generations the hinted pass of one unsolved problem is planned to spend (0 without one)."""
    if not (config.hint_pass and method.supports_hint):
        return 0
    return hint_pass_method(method, config).planned_generations()


def _model_errors(failures: list[Failure]) -> list[Failure]:
    return [f for f in failures if f.is_model_error]


class CallCounter(BaseCallback):
    """Counts the LM calls of one problem: those that returned a generation (cached or not), and those
    that failed after DSPy's retries."""

    def __init__(self):
        self.succeeded = 0
        self.failed = 0
        self._lock = threading.Lock()

    def on_lm_end(self, call_id, outputs, exception=None):
        with self._lock:
            if exception is None:
                self.succeeded += 1
            else:
                self.failed += 1


def usage_totals(usage) -> tuple[int, int, int]:
    """Calls that reached the model, prompt tokens and completion tokens recorded by a
    ``dspy.track_usage`` tracker (cache hits are not recorded: their tokens were spent earlier)."""
    entries = [entry for per_model in usage.usage_data.values() for entry in per_model]
    prompt = sum(e.get("prompt_tokens") or 0 for e in entries)
    completion = sum(e.get("completion_tokens") or 0 for e in entries)
    return len(entries), prompt, completion


def cost_report(problems: list[dict], method: Method, config: SynthesisConfig, seconds: float,
                new_completion_tokens: int) -> dict:
    """Totals over the problems done: what they cost (all of them, failed ones too) and what the finished
    ones gave (solves, kept rows, why candidates were dropped)."""
    finished = [p for p in problems if p["status"] == FINISHED]
    failed = [p for p in problems if p["status"] == FAILED]
    n = len(finished)
    kept = sum(p["kept"] for p in finished)
    generations = sum(p["generations"] for p in problems)
    dropped: Counter = Counter()
    for p in finished:
        dropped.update(p["dropped"])
    planned = method.planned_generations()
    return {
        "method": method.name + ("-label-free" if config.label_free else ""),
        "problems": len(problems),
        "finished": n,
        "failed": len(failed),
        "failed_by_kind": dict(Counter(p["error_kind"] for p in failed)),
        "solved_without_hint": sum(p["solved"] for p in finished),
        "solved_with_hint": sum(p["solved_with_hint"] for p in finished),
        "solve_rate": round(sum(p["solved"] for p in finished) / n, 4) if n else 0.0,
        "solve_rate_with_hint": round(sum(p["kept"] > 0 for p in finished) / n, 4) if n else 0.0,
        "kept_rows": kept,
        "candidates": sum(p["candidates"] for p in finished),
        "generations": generations,
        "cached_generations": sum(p["cached_generations"] for p in problems),
        "failed_calls": sum(p["failed_calls"] for p in problems),
        "planned_generations_per_problem": planned,
        "planned_hint_generations_per_problem": planned_hint_generations(method, config),
        "planned_generations_with_hint_pass": planned + planned_hint_generations(method, config),
        "prompt_tokens": sum(p["prompt_tokens"] for p in problems),
        "completion_tokens": sum(p["completion_tokens"] for p in problems),
        "generations_per_kept_row": round(generations / kept, 2) if kept else None,
        "completion_tokens_per_kept_row": round(sum(p["completion_tokens"] for p in problems) / kept, 1) if kept else None,
        "dropped": dict(dropped),
        "by_task": _totals_by_task(finished),
        "model_errors": sum(p["model_errors"] for p in problems),
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


def run_settings(lm: dspy.LM, examples: Sequence[Example], method: Method, config: SynthesisConfig,
                 adapter: dspy.Adapter) -> dict:
    """Everything that determines a run's output, for ``run.json``: a resume must match it.

    The problems are recorded by what they hold (a hash of ids, questions and gold answers, with their
    tasks, split, source and count), so a changed data file, split or ``--limit`` is caught however it
    was made; the guidelines by a hash of their texts; the model by ``model_identity`` (the fingerprinted
    name of a local model, the endpoint of a remote one), its file and its token budget.
    """
    problems = hashlib.sha256()
    for e in examples:
        problems.update(json.dumps([e.id, e.question, e.gold, e.answer_type, e.choices, e.labels]).encode())
    guidelines = (hashlib.sha256("\n".join(f"{g.name}: {g.text}" for g in method.guidelines).encode()).hexdigest()
                  if method.guidelines else None)
    return {
        "model": model_identity(lm),
        "model_file": lm.engine.path if is_in_process(lm) else None,
        "max_tokens": lm.kwargs.get("max_tokens"),
        "adapter": type(adapter).__name__,
        "tasks": sorted({e.task for e in examples}),
        "split": getattr(examples, "split", None),
        "source": getattr(examples, "source", None),
        "problems": len(examples),
        "problems_sha256": problems.hexdigest(),
        "guidelines_sha256": guidelines,
        # threads change how fast, not what: every sample has its own rollout id
        **{key: value for key, value in asdict(config).items() if key != "num_threads"},
    }


def synthesize(lm: dspy.LM, examples: Sequence[Example | dspy.Example], out_dir: str | Path,
               config: SynthesisConfig | None = None, *, guidelines: Sequence[Guideline] | None = None,
               progress: bool = True) -> dict:
    """Run the bootstrap loop over ``examples`` (project ``Example``s, or ``dspy.Example``s with a
    ``question`` and an ``answer``) into ``out_dir`` and return the cost report.

    Finished problems are skipped and failed ones done again, so the same call after an interruption
    or a failure resumes the run. The folder is locked for the length of the call.
    """
    config = config or SynthesisConfig()
    examples = task_examples(examples)
    method = build_method(config.method, config.generations, guidelines=guidelines, label_free=config.label_free,
                          regenesis_budget=config.regenesis)
    bootstrap = Bootstrap(lm, method, config)  # first: a judge that cannot be resolved stops before run.json
    settings = run_settings(lm, examples, method, config, bootstrap.adapter)
    with open_run(out_dir, settings) as store:
        todo = [e for e in examples if e.id not in store.finished]
        started, new_tokens = time.monotonic(), 0
        with dspy.context(lm=lm, adapter=bootstrap.adapter):
            plan = method.prepare(examples, bootstrap.sampler)
        with progress_display(progress) as display:
            bar = display.add_task("synthesize", total=len(examples), completed=len(examples) - len(todo),
                                   status=progress_status(store.problems, 0, 1))

            def keep(example: Example, outcome: tuple[list[dict], dict]) -> None:
                nonlocal new_tokens
                rows, record = outcome
                store.add(rows, record)
                new_tokens += record["completion_tokens"]
                display.update(bar, advance=1,
                               status=progress_status(store.problems, new_tokens, time.monotonic() - started))

            run_parallel(bootstrap.harvest, todo, keep, config.num_threads)
        report = cost_report(store.problems, method, config, time.monotonic() - started, new_tokens)
        if plan:
            report["task_plans"] = plan
        report["rows_file"] = str(store.rows_path)
        store.write_report(report)
    return report


def progress_status(problems: list[dict], tokens: int, seconds: float) -> str:
    """The progress line: each figure names what it counts, over the problems done so far."""
    finished = [p for p in problems if p["status"] == FINISHED]
    solved = sum(p["solved"] for p in finished)
    with_hint = sum(p["solved_with_hint"] for p in finished)
    kept = sum(p["kept"] for p in finished)
    failed = len(problems) - len(finished)
    return (f"solved {solved}/{len(finished)} · with hint {with_hint}/{len(finished)} · kept {kept} · "
            f"failed {failed} · {tokens / max(seconds, 1e-9):.0f} tok/s")
