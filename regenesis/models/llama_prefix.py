"""Prompt-prefix reuse across the calls of a synthesis run, for the in-process llama.cpp engine.

Most of a synthesis call is prompt processing: a step's prompt (the signature's instructions, the
guideline library) is several times longer than what the model writes back, and it is the same for
every sample of the step and every problem. llama-cpp-python already skips the prefix a prompt shares
with the previous call on the same model copy, but the calls of a problem alternate between steps (and
the copies between problems), so that previous call rarely shares much.

``PrefixCachingLlama`` keeps the KV state of recent calls in a ``PrefixStates`` store shared by all
copies of one model: before a prompt is processed, the copy loads the stored state that shares the
longest token prefix with it when that beats what the copy already holds, and llama.cpp then processes
only the rest. Only sequence 0's KV cells are stored (llama-cpp-python's own ``save_state`` also copies a
logits buffer of 66 MB for SmolLM2, which made a load cost more than the tokens it saved).
"""

from __future__ import annotations

import ctypes
import threading
from collections import OrderedDict

import llama_cpp  # heavy: this module loads only with the first llama.cpp copy (LlamaCppEngine._llama)
from llama_cpp import Llama

SEQUENCE = 0
# The prompt's last tokens are always processed as one batch. llama-cpp-python re-decodes only the last
# token when the whole prompt is cached, and those logits differ slightly from the batch's: a sampled
# completion for the same seed then changes (measured on SmolLM2 at temperature 1; 2-16 tokens reproduce).
LAST_BATCH = 4


def common_prefix(a, b) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


class PrefixStates:
    """The KV states of recent calls, keyed by their tokens, least recently used dropped first once
    their bytes pass ``capacity_bytes``. Thread-safe: copies on several threads share one store."""

    def __init__(self, capacity_bytes: int):
        self.capacity_bytes = capacity_bytes
        self._states: OrderedDict[tuple[int, ...], bytes] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def longest(self, tokens: list[int]) -> tuple[tuple[int, ...], bytes, int] | None:
        """The stored (tokens, state, shared prefix length) that shares the most tokens with ``tokens``."""
        with self._lock:
            best = max(((key, common_prefix(key, tokens)) for key in self._states), key=lambda kv: kv[1],
                       default=None)
            if best is None or best[1] == 0:
                return None
            self._states.move_to_end(best[0])
            return best[0], self._states[best[0]], best[1]

    def put(self, tokens: tuple[int, ...], state: bytes) -> None:
        with self._lock:
            # A state whose tokens are a prefix of the new one's holds nothing the new one lacks.
            for key in [k for k in self._states if common_prefix(k, tokens) == len(k)]:
                self._bytes -= len(self._states.pop(key))
            self._states[tokens] = state
            self._bytes += len(state)
            while self._bytes > self.capacity_bytes and len(self._states) > 1:
                self._bytes -= len(self._states.popitem(last=False)[1])

    def __len__(self) -> int:
        return len(self._states)


class PrefixCachingLlama(Llama):
    """A ``Llama`` that starts each generation from the stored state sharing the longest prompt prefix
    and stores its own state when the generation ends."""

    def __init__(self, *args, states: PrefixStates, **kwargs):
        super().__init__(*args, **kwargs)
        self.states = states

    def generate(self, tokens, *args, **kwargs):
        tokens = list(tokens)
        self._restore_longest_prefix(tokens)
        self._leave_last_batch(tokens)
        try:
            yield from super().generate(tokens, *args, **kwargs)
        finally:
            if self.n_tokens:
                self.states.put(tuple(self._input_ids.tolist()), self._sequence_state())

    def _restore_longest_prefix(self, tokens: list[int]) -> None:
        found = self.states.longest(tokens)
        held = common_prefix(self._input_ids.tolist(), tokens) if self.n_tokens else 0
        # A load takes 3-10 ms for SmolLM2's 340-token prompts, less than processing one token.
        if found is None or found[2] <= held:
            return
        key, state, _ = found
        buffer = (ctypes.c_uint8 * len(state)).from_buffer_copy(state)
        if llama_cpp.llama_state_seq_set_data(self._ctx.ctx, buffer, len(state), SEQUENCE) != len(state):
            self.reset()  # a state that does not load leaves the copy empty (eval clears its cells), never half-loaded
            return
        self.input_ids[: len(key)] = key
        self.n_tokens = len(key)
        self._requires_eval = True  # the restored state has no logits: generate() replays a token

    def _leave_last_batch(self, tokens: list[int]) -> None:
        keep = max(0, len(tokens) - LAST_BATCH)
        if self.n_tokens and common_prefix(self._input_ids.tolist(), tokens) > keep:
            self.n_tokens = keep  # generate() then drops the cells from `keep` on and processes the rest
            self._requires_eval = True

    def _sequence_state(self) -> bytes:
        size = llama_cpp.llama_state_seq_get_size(self._ctx.ctx, SEQUENCE)
        buffer = (ctypes.c_uint8 * size)()
        written = llama_cpp.llama_state_seq_get_data(self._ctx.ctx, buffer, size, SEQUENCE)
        return ctypes.string_at(buffer, written)
