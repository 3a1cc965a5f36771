"""The bootstrap loop on GSM8K train problems with the embedded model: how close it runs to the engine's
raw decoding speed, and where its seconds go.

Prints, from one run, side by side (the machine is shared and noisy, so only ratios within one run
mean much):

- raw decode tokens/s of the engine's copies (unconstrained samples from as many threads as copies,
  measured before and after the loop runs);
- for each loop of ``--loops``: generated tokens/s, its ratio to the raw decode speed (P1), prompt tokens
  processed per generated token, and the profile split of the copies' time: prompt processing, decoding,
  sampling (with the JSON constraint), the rest of the engine (chat template, tokenizing, storing and
  loading prefix states), and the copies' idle time (DSPy, parsing, waiting). The loops:
  ``prefix-match`` (llama-cpp-python's own prefix match with the previous call on a copy),
  ``llama-grammar`` (stored prefix states, ``regenesis.models.llama_prefix``, with llama.cpp's own grammar
  sampler as the JSON constraint, as the engine had it before xgrammar's masks), ``prefix-states``
  (the engine as it is by default: stored prefix states and xgrammar's masks) and ``batched`` (each copy
  decodes up to ``--batch-size`` concurrent requests as one batch, ``regenesis.models.llama_batch``, with
  as many threads as the copies have batch slots, so give ``--problems`` at least that many).

With a ``batched`` loop it also prints the batched engine's raw decode tokens/s (unconstrained samples
from as many threads as its copies have slots). The batched profile counts the batch worker's time:
a prompt is decoded in a step of its own, so "prompt" and "decode" are its two kinds of step.

``--requantize q8_0`` (or ``q4_0``, ``f16``) runs the same loops on the embedded model's weights stored as
that llama.cpp type (written once under ``--out``): the CPU kernels for the type set how fast a prompt
token is processed against a decoded one, and so the P1 a loop's prompts allow. ``--model`` runs them on
another GGUF file.

    .venv/bin/python benchmarks/synthesis.py [--problems 1] [--generations 8] [--preset default]
        [--num-threads 2] [--hint] [--loops prefix-match,prefix-states] [--batch-size 4]
        [--model PATH.gguf | --requantize q8_0] [--out runs/bench-synthesis]
"""

import argparse
import dataclasses
import shutil
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from common import ROOT, TimedLlamaCppEngine

import dspy
import llama_cpp
from regenesis.tasks import load_task
from regenesis.finetune.export import quantize_gguf
from regenesis.models.llama_batch import BatchedLlama, SequenceBatch
from regenesis.models.llama_prefix import PrefixCachingLlama
from regenesis.models import resolve_lm
from regenesis.optimize.bootstrap import synthesize
from regenesis.optimize.config import preset


class SampleTimer:
    """Seconds a copy spends sampling (the grammar runs inside llama.cpp's sampler chain)."""

    sample_seconds = 0.0

    def sample(self, *args, **kwargs):
        started = time.perf_counter()
        try:
            return super().sample(*args, **kwargs)
        finally:
            self.sample_seconds += time.perf_counter() - started


class TimedLlama(SampleTimer, llama_cpp.Llama):
    pass


class TimedPrefixLlama(SampleTimer, PrefixCachingLlama):
    pass


class ProfiledEngine(TimedLlamaCppEngine):
    """The engine with stored prefix states, adding up llama.cpp's own timings over its calls."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.profile = Counter()
        self._profile_lock = threading.Lock()

    def _llama(self, **settings):
        return TimedPrefixLlama(states=self.prefix_states(), **settings)

    @contextmanager
    def borrow(self):
        with super().borrow() as llm:
            before, sampled = llama_cpp.llama_perf_context(llm.ctx), llm.sample_seconds
            try:
                yield llm
            finally:
                after = llama_cpp.llama_perf_context(llm.ctx)
                with self._profile_lock:
                    self.profile.update(prompt_tokens=after.n_p_eval - before.n_p_eval,
                                        prompt_s=(after.t_p_eval_ms - before.t_p_eval_ms) / 1000,
                                        decoded_tokens=after.n_eval - before.n_eval,
                                        decode_s=(after.t_eval_ms - before.t_eval_ms) / 1000,
                                        sample_s=llm.sample_seconds - sampled)


class PrefixMatchOnlyEngine(ProfiledEngine):
    """The engine without stored prefix states: llama-cpp-python's prefix match with the previous call on the
    same copy."""

    def _llama(self, **settings):
        return TimedLlama(**settings)


class LlamaGrammarEngine(ProfiledEngine):
    """The engine with llama.cpp's own grammar as the JSON constraint: llama-cpp-python turns the
    ``response_format`` into a grammar that its sampler matches against every token of the vocabulary."""

    def _constrained(self, llm, kwargs: dict) -> dict:
        return kwargs


class TimedSequenceBatch(SequenceBatch):
    """A copy's batch adding its steps to its engine's profile: prompt steps (one sequence's prompt) and
    decode steps (a token of every live sequence) apart, and the sampling."""

    engine: "BatchedProfiledEngine"

    def _step(self, live):
        started = time.perf_counter()
        try:
            super()._step(live)
        finally:
            self.engine.add(busy_s=time.perf_counter() - started)

    def _decode(self, batch):
        started, tokens = time.perf_counter(), batch.n_tokens
        prompt = tokens > sum(batch.logits[i] for i in range(tokens))
        super()._decode(batch)
        seconds = time.perf_counter() - started
        if prompt:
            self.engine.add(prompt_tokens=tokens, prompt_s=seconds)
        else:
            self.engine.add(decoded_tokens=tokens, decode_s=seconds, decode_steps=1)

    def _sample(self, slot, index):
        started = time.perf_counter()
        try:
            return super()._sample(slot, index)
        finally:
            self.engine.add(sample_s=time.perf_counter() - started)


class TimedBatchedLlama(BatchedLlama):
    sequence_batch = TimedSequenceBatch


class BatchedProfiledEngine(ProfiledEngine):
    """The engine with batched copies; its busy seconds are its batch workers' steps."""

    def _llama(self, **settings):
        llm = TimedBatchedLlama(batch_size=self.batch_size(), **settings)
        llm.batch.engine = self
        return llm

    def add(self, busy_s: float = 0.0, **profile) -> None:
        with self._profile_lock:
            self.busy_seconds += busy_s
            self.profile.update(profile)


class BatchedRawEngine(BatchedProfiledEngine):
    """Batched copies of its own (a pool per engine class), so that the loop's profile counts only the loop."""


LOOPS = {"prefix-match": ("prefix match only", PrefixMatchOnlyEngine),
         "llama-grammar": ("llama.cpp grammar", LlamaGrammarEngine),
         "prefix-states": ("prefix states", ProfiledEngine),
         "batched": ("batched", BatchedProfiledEngine)}


REQUANTIZE = ("q8_0", "q4_0", "f16")


def requantized(source: str, kind: str, folder: Path) -> str:
    """``source`` (a GGUF file) with its weights stored as ``kind``, written once into ``folder``."""
    out = folder / f"{Path(source).stem}.{kind}.gguf"
    if not out.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        quantize_gguf(Path(source), out, kind.upper())
    return str(out)


def profiled_lm(engine_class, model_path: str, max_tokens: int = 384, **engine_options) -> dspy.LM:
    plain = resolve_lm(None)  # its provider name and chat settings; the weights are those of model_path
    return dspy.LM(plain.model, engine=engine_class(model_path, **engine_options), temperature=0.0,
                   max_tokens=max_tokens, cache=False)


def request_threads(engine) -> int:
    """As many threads as the engine serves at once: its copies, times its batch slots."""
    return engine.copy_count() * engine.batch_size()


def raw_decode_rate(lm: dspy.LM, requests: int, max_tokens: int = 128) -> float:
    """Tokens/s of unconstrained samples asked from as many threads as the engine serves at once."""
    engine, sampled = lm.engine, lm.copy(temperature=0.8, max_tokens=max_tokens)
    before, started = engine.completion_tokens, time.perf_counter()
    with ThreadPoolExecutor(max_workers=request_threads(engine)) as pool:
        list(pool.map(lambda i: sampled(f"Write a short story about the number {i}.", rollout_id=i, seed=i),
                      range(requests)))
    return (engine.completion_tokens - before) / (time.perf_counter() - started)


def run_loop(lm: dspy.LM, examples, out: str, config) -> tuple[dict, float]:
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    report = synthesize(lm, examples, out, config, progress=False)
    return report, time.perf_counter() - started


def profile_split(engine: ProfiledEngine, wall: float) -> str:
    p = engine.profile
    copies_s = wall * engine.copy_count()
    parts = {"prompt": p["prompt_s"], "decode": p["decode_s"], "sampling+grammar": p["sample_s"],
             "engine other": engine.busy_seconds - p["prompt_s"] - p["decode_s"] - p["sample_s"],
             "copies idle": copies_s - engine.busy_seconds}
    return " · ".join(f"{name} {seconds / copies_s:.0%}" for name, seconds in parts.items())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=1)
    parser.add_argument("--generations", type=int, default=8, help="per problem; 0 for the preset's own budget")
    parser.add_argument("--preset", default="default")
    parser.add_argument("--num-threads", type=int, default=2)
    parser.add_argument("--hint", action="store_true", help="also run the hinted pass")
    parser.add_argument("--loops", default="prefix-match,prefix-states",
                        help=f"comma-separated, run in this order: {', '.join(LOOPS)}")
    parser.add_argument("--batch-size", type=int, default=4, help="requests a copy decodes together (batched loop)")
    parser.add_argument("--model", help="a GGUF file (default: the embedded model)")
    parser.add_argument("--requantize", choices=REQUANTIZE,
                        help="the model's weights stored as this llama.cpp type")
    parser.add_argument("--out", default=str(ROOT / "runs" / "bench-synthesis"))
    args = parser.parse_args()
    model_path = args.model or resolve_lm(None).engine.path
    if not Path(model_path).is_file() or not model_path.endswith(".gguf"):
        print(f"--model: {model_path} is not a GGUF file", file=sys.stderr)
        raise SystemExit(2)
    if args.requantize:
        model_path = requantized(model_path, args.requantize, Path(args.out) / "models")
    unknown = [name for name in args.loops.split(",") if name not in LOOPS]
    if unknown:
        print(f"--loops: unknown loop {unknown[0]!r} (known: {', '.join(LOOPS)})", file=sys.stderr)
        raise SystemExit(2)
    if args.batch_size < 2:
        print(f"--batch-size: {args.batch_size} batches nothing; give 2 or more", file=sys.stderr)
        raise SystemExit(2)
    examples = load_task("gsm8k-sample", split="train")[: args.problems]
    config = preset(args.preset, method="regenesis", num_threads=args.num_threads,
                    generations=args.generations or None, hint_pass=args.hint)
    batching = {"batch_size": args.batch_size}
    loops = {LOOPS[name][0]: profiled_lm(LOOPS[name][1], model_path, **(batching if name == "batched" else {}))
             for name in args.loops.split(",")}
    # own counters, the first loop's loaded copies
    raw_lms = {"raw decode": profiled_lm(PrefixMatchOnlyEngine, model_path)}
    if "batched" in args.loops.split(","):
        raw_lms["batched decode"] = profiled_lm(BatchedRawEngine, model_path, **batching)
    copies = raw_lms["raw decode"].engine.copy_count()
    print(f"regenesis bootstrap loop, {Path(model_path).name}, gsm8k-sample train, {args.problems} problems, preset "
          f"{args.preset}, {args.generations or 'preset'} generations, {args.num_threads} threads "
          f"({copies * args.batch_size} for the batched loop), {copies} engine copies", flush=True)
    raw = {name: [raw_decode_rate(lm, 2 * request_threads(lm.engine))] for name, lm in raw_lms.items()}
    print("before the loops: " + "; ".join(f"{name} {rates[0]:.1f} tok/s" for name, rates in raw.items()), flush=True)
    results = {}
    for i, (name, lm) in enumerate(loops.items()):
        threads = request_threads(lm.engine) if lm.engine.batch_size() > 1 else args.num_threads
        results[name] = run_loop(lm, examples, f"{args.out}/{i}", dataclasses.replace(config, num_threads=threads))
    for name, lm in raw_lms.items():
        raw[name].append(raw_decode_rate(lm, 2 * request_threads(lm.engine)))
    print("after the loops:  " + "; ".join(f"{name} {rates[1]:.1f} tok/s" for name, rates in raw.items()))
    raw_rate = sum(raw["raw decode"]) / 2
    line = f"raw decode (one request at a time per copy), mean: {raw_rate:.1f} tok/s"
    if "batched decode" in raw:
        batched_rate = sum(raw["batched decode"]) / 2
        line += f"; batched decode, mean: {batched_rate:.1f} tok/s ({batched_rate / raw_rate:.2f}x)"
    print(line)
    print(f"{'engine':<18} {'gens':>5} {'kept':>5} {'wall s':>7} {'gen tok':>8} {'tok/s':>6} {'P1':>5} "
          f"{'prompt tok':>10} {'prompt/gen':>10} {'parse drops':>11}")
    for name, lm in loops.items():
        report, wall = results[name]
        engine = lm.engine
        generated = engine.completion_tokens
        print(f"{name:<18} {report['generations']:>5} {report['kept_rows']:>5} {wall:>7.1f} {generated:>8} "
              f"{generated / wall:>6.1f} {generated / wall / raw_rate:>5.2f} {engine.profile['prompt_tokens']:>10} "
              f"{engine.profile['prompt_tokens'] / max(1, generated):>10.2f} {report['dropped'].get('parse', 0):>11}")
        width = (f"; {engine.profile['decoded_tokens'] / engine.profile['decode_steps']:.1f} sequences a decode step"
                 if engine.profile["decode_steps"] else "")
        print(f"  profile: {profile_split(engine, wall)}; prompt processing "
              f"{engine.profile['prompt_tokens'] / max(1e-9, engine.profile['prompt_s']):.0f} tok/s, decoding "
              f"{engine.profile['decoded_tokens'] / max(1e-9, engine.profile['decode_s']):.0f} tok/s per copy; "
              f"sampling {sampling_ms(engine):.1f} ms a token{width}", flush=True)
        print(f"  {p1_ceiling(engine, raw_rate / copies)}", flush=True)
    print(f"sampling without a grammar (raw decode): {sampling_ms(raw_lms['raw decode'].engine):.1f} ms a token")


def p1_ceiling(engine: ProfiledEngine, raw_per_copy: float, goal: float = 0.9) -> str:
    """The P1 this loop's prompts allow: a copy that spent no time sampling, in engine overhead or idle
    would still process ``prompt/gen`` prompt tokens at its measured prompt rate for each token it decodes
    at its measured decode rate. Also the prompt tokens per generated token at which ``goal`` is reachable."""
    profile = engine.profile
    prompt_rate = profile["prompt_tokens"] / max(1e-9, profile["prompt_s"])
    decode_rate = profile["decoded_tokens"] / max(1e-9, profile["decode_s"])
    per_token = profile["prompt_tokens"] / max(1, engine.completion_tokens) / prompt_rate + 1 / decode_rate
    room = 1 / (goal * raw_per_copy) - 1 / decode_rate
    needed = f"at most {prompt_rate * room:.2f}" if room > 0 else "none (decoding alone is too slow)"
    return (f"P1 ceiling with these prompts: {1 / per_token / raw_per_copy:.2f}; P1 {goal} needs prompt/gen "
            f"{needed}")


def sampling_ms(engine: ProfiledEngine) -> float:
    return 1000 * engine.profile["sample_s"] / max(1, engine.completion_tokens)


if __name__ == "__main__":
    main()
