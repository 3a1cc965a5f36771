"""GGUF models in process through llama-cpp-python: the embedded default and any local GGUF file."""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from typing import Any

from dspy.lm15 import Response

from regenesis.models.engine import InProcessEngine, ModelPool, chat_response
from regenesis.models.errors import ModelSpecError

# llama.cpp's OpenMP workers spin while idle; on a small machine that starves the calling thread
# (3-5x slower calls from the main thread). Passive waiting must be set before llama.cpp loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

MAX_LLAMA_COPIES = 4
DEFAULT_CONTEXT = 2048
# KV states of recent prompts kept per GGUF model for prefix reuse (SmolLM2: about 23 KB a token).
PREFIX_STATE_BYTES = 256 << 20
# A string bound above this many characters is dropped: with a budget that large, a string that never closes is
# no longer the likely failure. (The limit was llama.cpp's own grammar's on a repetition; xgrammar takes more.)
MAX_STRING_CHARS = 1000


class LlamaCppEngine(InProcessEngine):
    """Runs a GGUF model in process with llama-cpp-python.

    A ``response_format`` with a JSON schema (what DSPy's JSONAdapter sends) holds sampling to that
    schema through xgrammar's token masks (``regenesis.models.llama_constraint``), so even a 135M model
    returns output that parses, for 1-3 ms of sampling a token where llama.cpp's own grammar took 20-60.

    Concurrent requests (DSPy threads, ``--num-threads``) run on up to ``copies`` loaded copies of the
    model at once (the weights are memory-mapped, so copies share them), each with ``n_threads``
    threads. By default there is one copy per core, up to ``MAX_LLAMA_COPIES``, and the cores are
    shared out among them: a small model decodes no faster with more threads per copy, but
    several copies decode side by side. ``$REGENESIS_LLAMA_COPIES`` overrides the number of copies.

    With ``batch_size`` above 1 (or ``$REGENESIS_LLAMA_BATCH``), each copy decodes up to that many
    concurrent requests together, as the sequences of one llama.cpp batch
    (``regenesis.models.llama_batch``), for the same text as one request at a time; a request goes to
    the copy lent to the fewest. It is off by default: llama.cpp's CPU kernels for the embedded model's
    Q4_1 weights cost the same per token in a batch as alone, so batching gains only what a step costs
    beyond its tokens; Q8_0 weights have a batched kernel.
    """

    loader = "llama.cpp"
    max_string_chars = MAX_STRING_CHARS
    _prefix_stores: dict[tuple, Any] = {}  # PrefixStates by model
    _grammar_stores: dict[str, Any] = {}  # SchemaGrammars by model file
    _batched_copies: dict[tuple, BatchedCopies] = {}  # the batched copies by model

    def __init__(self, path: str, n_ctx: int = DEFAULT_CONTEXT, n_threads: int | None = None,
                 copies: int | None = None, batch_size: int | None = None):
        batch_size = batch_size_from_environment() if batch_size is None else batch_size
        # only a batched engine names its batch size, so the one-at-a-time engine's state stays as it was
        batching = {"batch_size": batch_size} if batch_size and batch_size > 1 else {}
        super().__init__(path, n_ctx=n_ctx, n_threads=n_threads, copies=copies, **batching)

    def batch_size(self) -> int:
        return self.options.get("batch_size", 1)

    def copy_count(self) -> int:
        if self.options["copies"]:
            return self.options["copies"]
        if os.environ.get("REGENESIS_LLAMA_COPIES"):
            return int(os.environ["REGENESIS_LLAMA_COPIES"])
        threads = self.options["n_threads"] or 1
        return max(1, min(MAX_LLAMA_COPIES, (os.cpu_count() or 1) // threads))

    def threads_per_copy(self) -> int:
        return self.options["n_threads"] or max(1, (os.cpu_count() or 1) // self.copy_count())

    def prefix_states(self):
        """The store of recent KV states that every copy of this model starts its prompts from."""
        from regenesis.models.llama_prefix import PrefixStates  # heavy: llama_cpp, loaded with the first copy

        with self._registry_lock:
            return self._prefix_stores.setdefault(self._key(), PrefixStates(PREFIX_STATE_BYTES))

    def schema_grammars(self, llm):
        """The compiled JSON grammars of this model's vocabulary, shared by its copies."""
        from regenesis.models.llama_constraint import SchemaGrammars, llama_vocabulary  # heavy: xgrammar, torch

        with self._registry_lock:  # by file: a batched and a one-at-a-time engine of one model share them
            if self.path not in self._grammar_stores:
                self._grammar_stores[self.path] = SchemaGrammars(llama_vocabulary(llm))
            return self._grammar_stores[self.path]

    def _load(self):
        # Prompt processing too: llama-cpp-python's default there is every core, for each copy.
        threads = self.threads_per_copy()
        return self._llama(model_path=self.path, n_ctx=self.options["n_ctx"], n_threads=threads,
                           n_threads_batch=threads, verbose=False, seed=0)

    def _llama(self, **settings):
        if self.batch_size() > 1:
            from regenesis.models.llama_batch import BatchedLlama  # heavy: llama_cpp, loaded with the first copy

            return BatchedLlama(batch_size=self.batch_size(), **settings)
        from regenesis.models.llama_prefix import PrefixCachingLlama  # heavy: llama_cpp, loaded with the first copy

        return PrefixCachingLlama(states=self.prefix_states(), **settings)

    @contextmanager
    def lend(self):
        """A copy for one request: lent alone (``borrow``), or shared with the requests it batches."""
        if self.batch_size() == 1:
            with self.borrow() as llm:
                yield llm
            return
        with self._registry_lock:
            if self._key() not in self._batched_copies:
                pool = self._pools.setdefault(self._key(), ModelPool(self._load_copy, self.copy_count()))
                self._batched_copies[self._key()] = BatchedCopies(pool, self.copy_count())
            copies = self._batched_copies[self._key()]
        with copies.lend() as llm:
            yield llm

    def _generate(self, model: str, kwargs: dict, spent_before: int = 0) -> Response:
        with self.lend() as llm:
            out = llm.create_chat_completion(**self._constrained(llm, kwargs))
        choice = out["choices"][0]
        usage = out.get("usage") or {}
        return chat_response(model, choice["message"]["content"] or "", choice.get("finish_reason") or "stop",
                             usage.get("prompt_tokens", 0), spent_before + usage.get("completion_tokens", 0))

    def _constrained(self, llm, kwargs: dict) -> dict:
        """The request with its ``response_format`` (a JSON schema, or any JSON object) as a logits processor."""
        kwargs = dict(kwargs)
        response_format = kwargs.pop("response_format", None)
        if response_format:
            kwargs["logits_processor"] = self.schema_grammars(llm).processors(response_format.get("schema"))
        return kwargs


def batch_size_from_environment() -> int | None:
    value = os.environ.get("REGENESIS_LLAMA_BATCH")
    if not value:
        return None
    if not value.isdigit() or int(value) < 1:
        raise ModelSpecError(f"$REGENESIS_LLAMA_BATCH={value!r}: give the number of requests a llama.cpp copy "
                             "decodes together, a whole number of at least 1")
    return int(value)


class BatchedCopies:
    """Up to ``size`` batched copies of one model (loaded by ``pool``, never given back to it): a request
    goes to the copy lent to the fewest requests, and another copy loads only while every loaded one is in use."""

    def __init__(self, pool: ModelPool, size: int):
        self._pool = pool
        self._size = max(1, size)
        self._copies: list = []
        self._lent: list[int] = []
        self._lock = threading.Lock()

    @contextmanager
    def lend(self):
        with self._lock:
            index = min(range(len(self._copies)), key=self._lent.__getitem__, default=None)
            if index is None or (self._lent[index] and len(self._copies) < self._size):
                self._copies.append(self._pool.take())
                self._lent.append(0)
                index = len(self._copies) - 1
            self._lent[index] += 1
        try:
            yield self._copies[index]
        finally:
            with self._lock:
                self._lent[index] -= 1
