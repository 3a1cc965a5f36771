"""Synthesis on a Ray cluster: the bootstrap loop of ``regenesis.optimize.bootstrap``, sharded.

The problems not yet finished in the output folder become a Ray Dataset of problem indices, one block
per shard. Each shard is a Ray task that resolves the model on its worker (its own in-process engine, or
the shared server at ``api_base``) and runs ``synthesize`` on its problems into a shard folder of its
own under ``OUT/shards/`` (named by the problems it holds, so a retried task finds the same folder). A
task whose worker died is retried by Ray and resumes its shard folder like any interrupted run. The
driver merges each finished shard into ``OUT`` through the same ``RunStore``, skipping problems already
finished there, so ``OUT`` holds every problem once in the single-process format and a rerun (on Ray
or not) resumes it. The cost report is computed over all the problems, whichever worker did them.

Shard folders sit under ``OUT``, so a cluster of several machines needs ``OUT`` on storage they share;
without it a retried shard starts over (DSPy's cache on that worker still holds its finished calls).

Ray Data's LLM processors (``ray.data.llm``) batch one prompt into one completion per row; a ReGenesis
problem is a chain of dependent calls followed by filters, so each shard runs the DSPy program instead.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from regenesis.errors import BadInput
from regenesis.tasks.example import Example
from regenesis.guidelines import Guideline
from regenesis.models import VLLMEngine, adapter_for, resolve_lm
from regenesis.optimize.config import SynthesisConfig
from regenesis.optimize.bootstrap import cost_report, progress_status, run_settings, synthesize
from regenesis.optimize.methods import build_method
from regenesis.optimize.store import FINISHED, PROBLEMS_FILE, ROWS_FILE, open_run
from regenesis.parallel import progress_display
from regenesis.runfiles import read_jsonl

SHARDS_FOLDER = "shards"
SHARDS_PER_CPU = 4  # small shards balance the load and lose little when a worker dies
# What a worker needs from the driver's environment to behave like the driver.
WORKER_ENV = ("LITELLM_LOCAL_MODEL_COST_MAP", "DSPY_CACHEDIR", "REGENESIS_ENGINE", "REGENESIS_LLAMA_COPIES",
              "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")


@dataclass(frozen=True)
class ModelSource:
    """How a worker builds its own copy of the model: ``resolve_lm(spec, **options)``."""

    spec: str | None = None
    options: dict = field(default_factory=dict)

    def resolve(self):
        return resolve_lm(self.spec, **self.options)


@dataclass(frozen=True)
class ShardJob:
    """Everything a shard task needs; Ray ships it to every worker with the task."""

    model: ModelSource
    examples: tuple[Example, ...]
    config: SynthesisConfig
    guidelines: tuple[Guideline, ...] | None
    shard_root: str

    def __call__(self, batch: dict) -> dict:
        examples = [self.examples[int(i)] for i in batch["id"]]
        folder = Path(self.shard_root) / shard_name(examples)
        synthesize(self.model.resolve(), examples, folder, self.config, guidelines=self.guidelines, progress=False)
        return {"shard": [folder.name],
                "records": [json.dumps(read_jsonl(folder / PROBLEMS_FILE))],
                "rows": [json.dumps(read_jsonl(folder / ROWS_FILE))]}


def shard_name(examples: Sequence[Example]) -> str:
    return "shard-" + hashlib.sha256("\n".join(e.id for e in examples).encode()).hexdigest()[:16]


def connect(address: str) -> None:
    """Join the Ray cluster at ``address`` (``auto``: the running one; ``local``: a new one here) unless
    this process is connected already."""
    import ray  # heavy: Ray, only with --ray

    if ray.is_initialized():
        return
    env = {key: os.environ[key] for key in WORKER_ENV if key in os.environ}
    try:
        ray.init(address=address, runtime_env={"env_vars": env}, log_to_driver=False)
    except ConnectionError as exc:
        raise BadInput(f"--ray {address}: no Ray cluster there ({str(exc).splitlines()[0]})") from None


def synthesize_on_ray(model: ModelSource, examples: Sequence[Example], out_dir: str | Path,
                      config: SynthesisConfig | None = None, *, address: str = "auto",
                      guidelines: Sequence[Guideline] | None = None, shards: int | None = None,
                      gpus_per_shard: float | None = None, max_retries: int = 3, progress: bool = True) -> dict:
    """``synthesize`` on a Ray cluster, into the same folder format; returns the cost report of all problems.

    ``shards`` defaults to four per CPU of the cluster; ``gpus_per_shard`` reserves GPUs for a shard's
    in-process engine (default ``gpus_for(lm)``); ``max_retries`` is how often a shard whose worker died
    is run again.
    """
    try:
        import ray  # heavy: Ray, only with --ray
    except ImportError:
        raise BadInput("--ray needs Ray: pip install 'regenesis[ray]'") from None

    config = config or SynthesisConfig()
    if config.method == "self-discover":
        raise BadInput("--ray: self-discover writes one plan per task from the whole problem list; run it "
                       "in one process")
    lm = model.resolve()  # a bad spec fails here, before Ray starts
    method = build_method(config.method, config.generations, guidelines=guidelines, label_free=config.label_free,
                          regenesis_budget=config.regenesis)
    settings = run_settings(lm, examples, method, config, adapter_for(lm))
    connect(address)
    ray.data.DataContext.get_current().enable_progress_bars = False  # the run's own bar counts the problems
    with open_run(out_dir, settings) as store:
        todo = tuple(e for e in examples if e.id not in store.finished)
        started, new_tokens = time.monotonic(), 0
        count = max(1, min(len(todo), shards or SHARDS_PER_CPU * int(ray.cluster_resources().get("CPU", 1))))
        job = ShardJob(model, todo, config, tuple(guidelines) if guidelines else None,
                       str(store.dir / SHARDS_FOLDER))
        with progress_display(progress) as display:
            bar = display.add_task("synthesize on ray", total=len(examples), completed=len(examples) - len(todo),
                                   status=progress_status(store.problems, 0, 1))
            if todo:
                gpus = gpus_for(lm) if gpus_per_shard is None else gpus_per_shard
                dataset = ray.data.range(len(todo), override_num_blocks=count).map_batches(
                    job, batch_size=None, num_gpus=gpus or None, max_retries=max_retries)
                for shard in dataset.iter_rows():
                    added = merge_shard(store, json.loads(shard["records"]), json.loads(shard["rows"]))
                    new_tokens += sum(record["completion_tokens"] for record in added)
                    display.update(bar, advance=sum(r["status"] == FINISHED for r in added),
                                   status=progress_status(store.problems, new_tokens, time.monotonic() - started))
        report = cost_report(store.problems, method, config, time.monotonic() - started, new_tokens)
        report["ray"] = {"address": address, "shards": count, "cluster_cpus": ray.cluster_resources().get("CPU")}
        report["rows_file"] = str(store.rows_path)
        store.write_report(report)
    return report


def gpus_for(lm) -> float:
    """The GPUs a shard reserves for its engine: one for vLLM (its engine takes the GPU's memory), none
    for a server or a CPU engine."""
    return 1.0 if isinstance(getattr(lm, "engine", None), VLLMEngine) else 0.0


def merge_shard(store, records: list[dict], rows: list[dict]) -> list[dict]:
    """Add a shard's problems to the run's store, each problem's rows with its record; a problem the
    store has finished already (a shard that ran twice) is left out. Returns the records added."""
    rows_of = defaultdict(list)
    for row in rows:
        rows_of[row["meta"]["problem_id"]].append(row)
    added = [record for record in records if record["problem_id"] not in store.finished]
    for record in added:
        store.add(rows_of[record["problem_id"]] if record["status"] == FINISHED else [], record)
    return added
