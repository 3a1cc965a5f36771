"""GGUF models in process through llama-cpp-python: the embedded default and any local GGUF file."""

from __future__ import annotations

import os
from typing import Any

from dspy.lm15 import Response

from regenesis.models.engine import InProcessEngine, chat_response

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
    """

    loader = "llama.cpp"
    max_string_chars = MAX_STRING_CHARS
    _prefix_stores: dict[tuple, Any] = {}  # PrefixStates by model
    _grammar_stores: dict[tuple, Any] = {}  # SchemaGrammars by model

    def __init__(self, path: str, n_ctx: int = DEFAULT_CONTEXT, n_threads: int | None = None,
                 copies: int | None = None):
        super().__init__(path, n_ctx=n_ctx, n_threads=n_threads, copies=copies)

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

        with self._registry_lock:
            if self._key() not in self._grammar_stores:
                self._grammar_stores[self._key()] = SchemaGrammars(llama_vocabulary(llm))
            return self._grammar_stores[self._key()]

    def _load(self):
        # Prompt processing too: llama-cpp-python's default there is every core, for each copy.
        threads = self.threads_per_copy()
        return self._llama(model_path=self.path, n_ctx=self.options["n_ctx"], n_threads=threads,
                           n_threads_batch=threads, verbose=False, seed=0)

    def _llama(self, **settings):
        from regenesis.models.llama_prefix import PrefixCachingLlama  # heavy: llama_cpp, loaded with the first copy

        return PrefixCachingLlama(states=self.prefix_states(), **settings)

    def _generate(self, model: str, kwargs: dict, spent_before: int = 0) -> Response:
        with self.borrow() as llm:
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
