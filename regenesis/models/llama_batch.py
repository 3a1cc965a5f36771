"""Concurrent requests to one llama.cpp copy decoded together, as the sequences of one batch.

A decoding step reads the weights once however many sequences it advances, so a batch pays where the
weights' kernels batch: on this project's 2-core CPU a Q8_0 export of the embedded model decoded 1.50×
as fast batched, its Q4_1 file 0.94× (``benchmarks/engine_copies.py --batch-size 4``), which is why
batching is opt-in (``LlamaCppEngine(batch_size=N)``, ``$REGENESIS_LLAMA_BATCH``). ``BatchedLlama`` is a model copy that many
threads call at once: its ``generate`` hands the prompt to the copy's ``SequenceBatch``, a worker thread
that decodes the next token of every live sequence in one ``llama_decode`` a step (a new sequence's prompt
in a step of its own), then samples each sequence with its own seeded sampler chain and its own logits
processors (the JSON constraint's matcher). The rest of a request (chat template, tokenizing, stop strings,
detokenizing) runs in the caller's thread through llama-cpp-python's own ``create_chat_completion``, so a
request's text is handled as on a one-at-a-time copy, and for the same seed it is the same text.

Each sequence has a slot (a llama.cpp sequence id with its own stream of KV cells) that keeps its cells
after the request ends. A new prompt starts from the longest token prefix that any slot holds: its own
slot's cells are kept, another slot's are copied (``llama_memory_seq_cp``), so the samples of one step and
the steps of one problem process their shared instructions once.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections import deque
from dataclasses import dataclass, field

import llama_cpp  # heavy: this module loads only with the first batched llama.cpp copy
import numpy as np
from llama_cpp import Llama
from llama_cpp import _internals as internals

from regenesis.models.llama_prefix import LAST_BATCH, common_prefix


@dataclass
class Sequence:
    """One request: its prompt, its sampler chain and logits processors, the tokens the batch still has
    to decode for it (``pending``) and the queue its sampled tokens go out on."""

    prompt: list[int]
    sampler: internals.LlamaSampler
    processors: list
    pending: list[int] = field(default_factory=list)
    closed: bool = False
    sampled: queue.SimpleQueue = field(default_factory=queue.SimpleQueue)


@dataclass
class Slot:
    """A llama.cpp sequence id, the tokens whose KV cells it holds, and the request it serves (if any)."""

    seq_id: int
    tokens: list[int] = field(default_factory=list)
    sequence: Sequence | None = None


class SequenceBatch:
    """The sequences of one multi-sequence llama.cpp context, stepped together by one worker thread.

    A step waits until every live sequence's caller has taken its last token and asked for the next (a
    caller's stop-string check takes far less time than a step), so the sequences move in lockstep and
    a step never runs with only some of them.
    """

    def __init__(self, ctx: internals.LlamaContext, size: int, n_batch: int, n_vocab: int):
        self.ctx = ctx
        self.n_batch = n_batch
        self.n_vocab = n_vocab
        self.slots = [Slot(seq_id) for seq_id in range(size)]
        self.llama_batch = llama_cpp.llama_batch_init(n_batch, 0, 1)
        self._waiting: deque[Sequence] = deque()
        self._changed = threading.Condition()
        self._worker: threading.Thread | None = None

    def run(self, sequence: Sequence):
        """The tokens sampled for ``sequence``, one at a time; closing the generator ends the sequence."""
        with self._changed:
            self._waiting.append(sequence)
            if self._worker is None:
                self._worker = threading.Thread(target=self._work, name="llama-batch", daemon=True)
                self._worker.start()
            self._changed.notify_all()
        try:
            while True:
                token = sequence.sampled.get()
                if isinstance(token, BaseException):
                    raise token
                yield token
                with self._changed:
                    sequence.pending = [token]
                    self._changed.notify_all()
        finally:
            with self._changed:
                sequence.closed = True
                self._changed.notify_all()

    def _work(self) -> None:
        while True:
            live = self._next_step()
            try:
                self._step(live)
            except Exception as exc:  # the batch's sequences fail together; their slots start empty
                for slot in live:
                    slot.sequence.sampled.put(exc)
                    self._clear(slot)

    def _next_step(self) -> list[Slot]:
        """The slots to step, once every live sequence has tokens to decode."""
        with self._changed:
            while True:
                for slot in self.slots:
                    if slot.sequence is not None and slot.sequence.closed:
                        slot.sequence = None
                while self._waiting and (slot := self._free_slot(self._waiting[0].prompt)) is not None:
                    sequence = self._waiting.popleft()
                    if not sequence.closed:
                        self._start(slot, sequence)
                live = [slot for slot in self.slots if slot.sequence is not None]
                if live and all(slot.sequence.pending for slot in live):
                    return live
                self._changed.wait()

    def _free_slot(self, prompt: list[int]) -> Slot | None:
        free = [slot for slot in self.slots if slot.sequence is None]
        return max(free, key=lambda slot: common_prefix(slot.tokens, prompt), default=None)

    def _start(self, slot: Slot, sequence: Sequence) -> None:
        """Gives ``slot`` the longest prefix of the prompt that any slot holds, always leaving the prompt's
        last ``LAST_BATCH`` tokens to process as one batch, as a one-at-a-time copy does."""
        prompt, most = sequence.prompt, max(0, len(sequence.prompt) - LAST_BATCH)
        kept = min(most, common_prefix(slot.tokens, prompt))
        donor = max(self.slots, key=lambda other: common_prefix(other.tokens, prompt))
        shared = min(most, common_prefix(donor.tokens, prompt))
        memory = self.ctx.memory
        if shared > kept:  # slots are separate streams of cells: a copy takes a whole one
            llama_cpp.llama_memory_seq_rm(memory, slot.seq_id, -1, -1)
            llama_cpp.llama_memory_seq_cp(memory, donor.seq_id, slot.seq_id, -1, -1)
            kept = shared
        llama_cpp.llama_memory_seq_rm(memory, slot.seq_id, kept, -1)
        slot.tokens = prompt[:kept]
        sequence.pending = prompt[kept:]
        slot.sequence = sequence

    def _clear(self, slot: Slot) -> None:
        with self._changed:
            llama_cpp.llama_memory_seq_rm(self.ctx.memory, slot.seq_id, 0, -1)
            slot.tokens, slot.sequence = [], None

    def _step(self, live: list[Slot]) -> None:
        """One ``llama_decode``: the prompt of one new sequence (up to ``n_batch`` tokens of it), or else the
        next token of every live sequence; then a token sampled for each sequence whose pending tokens all
        went in. A prompt never shares a batch with other sequences' tokens: llama.cpp's logits for a batch
        that holds several sequences' multi-token runs differ from the same runs decoded alone."""
        prompt = next((slot for slot in live if len(slot.sequence.pending) > 1), None)
        stepped = [prompt] if prompt else live
        batch, n, outputs = self.llama_batch, 0, []
        for slot in stepped:
            pending = slot.sequence.pending
            take = pending[: self.n_batch]
            for offset, token in enumerate(take):
                batch.token[n], batch.pos[n] = token, len(slot.tokens) + offset
                batch.n_seq_id[n], batch.seq_id[n][0] = 1, slot.seq_id
                batch.logits[n] = len(take) == len(pending) and offset == len(take) - 1
                n += 1
            if len(take) == len(pending):
                outputs.append((slot, n - 1))
        batch.n_tokens = n
        self._decode(batch)
        for slot in stepped:
            take = slot.sequence.pending[: self.n_batch]
            slot.tokens += take
            slot.sequence.pending = slot.sequence.pending[len(take):]
        for slot, index in outputs:
            slot.sequence.sampled.put(self._sample(slot, index))

    def _decode(self, batch) -> None:
        status = llama_cpp.llama_decode(self.ctx.ctx, batch)
        if status != 0:
            raise RuntimeError(f"llama_decode failed on a batch of {batch.n_tokens} tokens (status {status})")

    def _sample(self, slot: Slot, index: int) -> int:
        """The next token of ``slot``'s sequence: its logits processors first, in place on the context's
        logits (as llama-cpp-python runs them first in the sampler chain), then its sampler chain."""
        sequence = slot.sequence
        if sequence.processors:
            logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(self.ctx.ctx, index), shape=(self.n_vocab,))
            tokens = np.array(slot.tokens, dtype=np.intc)
            for processor in sequence.processors:
                logits[:] = processor(tokens, logits)
        return sequence.sampler.sample(self.ctx, index)


class BatchedLlama(Llama):
    """A ``Llama`` whose ``create_chat_completion`` many threads may call at once: their generations run as
    the sequences of one ``SequenceBatch`` of ``batch_size`` slots, each slot with ``n_ctx`` cells."""

    sequence_batch = SequenceBatch

    def __init__(self, *args, batch_size: int, **kwargs):
        self._request = threading.local()  # before Llama.__init__ sets the seed
        super().__init__(*args, **kwargs)
        params = llama_cpp.llama_context_params.from_buffer_copy(self.context_params)
        # One stream of cells per sequence: with one buffer for all (kv_unified), llama.cpp's logits for
        # sequences decoded together differed from the same sequences decoded alone (by up to 0.9 for
        # SmolLM2); with a stream each they are the same to the bit.
        params.n_ctx, params.n_seq_max, params.kv_unified = self._n_ctx * batch_size, batch_size, False
        self._ctx.close()  # the single-sequence context Llama made: its cells would only sit unused
        self._ctx = self._stack.enter_context(contextlib.closing(
            internals.LlamaContext(model=self._model, params=params, verbose=self.verbose)))
        self.batch = self.sequence_batch(self._ctx, batch_size, self.n_batch, self._n_vocab)
        self._stack.callback(llama_cpp.llama_batch_free, self.batch.llama_batch)

    # Llama keeps a request's seed and decoded tokens on the object between ``create_completion`` and
    # ``generate``; with requests on several threads at once, each thread keeps its own.
    @property
    def _seed(self) -> int:
        return getattr(self._request, "seed", llama_cpp.LLAMA_DEFAULT_SEED)

    @_seed.setter
    def _seed(self, seed: int) -> None:
        self._request.seed = seed

    @property
    def _input_ids(self) -> np.ndarray:
        return np.array(getattr(self._request, "decoded", []), dtype=np.intc)

    @property
    def _scores(self) -> np.ndarray:
        return self.scores[: len(self._input_ids)]  # no logits kept, as in Llama without logits_all

    def generate(self, tokens, *, logits_processor=None, stopping_criteria=None, reset=True, **sampling):
        """The sampled tokens, from this copy's batch; ``stopping_criteria`` see the decoded tokens, which
        leave out the token just sampled, as in ``Llama.generate``."""
        decoded = self._request.decoded = list(tokens)
        sequence = Sequence(list(tokens), self._init_sampler(**sampling), list(logits_processor or []))
        last = None
        with contextlib.closing(self.batch.run(sequence)) as sampled:
            for token in sampled:
                if last is not None:
                    decoded.append(last)
                if stopping_criteria is not None and stopping_criteria(self._input_ids, self._scores[-1, :]):
                    return
                last = token
                yield token
