"""JSON held to a schema in llama.cpp by xgrammar's token masks, a logits processor in numpy.

llama.cpp's own grammar sampler matches every one of the vocabulary's tokens (49k for SmolLM2) against
the grammar's stacks at each step; with the string bounds of ``bounded_strings`` that cost 20-60 ms a
token, more than decoding it. xgrammar compiles the schema once per model into masks it mostly
precomputes, so a step costs a bitmask fill and one masked write of the logits.
"""

from __future__ import annotations

import ctypes
import json
import threading

import llama_cpp  # heavy: this module loads with the first JSON request to a llama.cpp copy
import numpy as np
import xgrammar  # heavy: loads torch and transformers
from llama_cpp import Llama, LogitsProcessorList

# xgrammar's JSON numbers take any number of digits, and a small model sampling at temperature 1 can write
# digits until its budget ends; these bounds are llama.cpp's own JSON grammar's (16 digits before the
# point, 1-16 after it and in the exponent).
BOUNDED_DIGITS = {"[1-9] [0-9]*": "[1-9] [0-9]{0,15}", "basic_number_digits{1, -1}": "basic_number_digits{1, 16}"}


def llama_vocabulary(llm: Llama) -> xgrammar.TokenizerInfo:
    """The model's tokens as the raw bytes each one writes (control tokens write none, which xgrammar never
    allows), its end-of-generation tokens as the stop tokens."""
    vocab = llm._model.vocab
    size = llama_cpp.llama_vocab_n_tokens(vocab)
    buffer = ctypes.create_string_buffer(64)
    pieces, stops = [], []
    for token in range(size):
        written = llama_cpp.llama_token_to_piece(vocab, token, buffer, len(buffer), 0, False)
        if written < 0:  # the piece is longer than the buffer: -written bytes
            wide = ctypes.create_string_buffer(-written)
            pieces.append(wide.raw[:llama_cpp.llama_token_to_piece(vocab, token, wide, -written, 0, False)])
        else:
            pieces.append(buffer.raw[:written])
        if llama_cpp.llama_vocab_is_eog(vocab, token):
            stops.append(token)
    return xgrammar.TokenizerInfo(pieces, xgrammar.VocabType.RAW, vocab_size=size, stop_token_ids=stops)


class SchemaGrammars:
    """One xgrammar compiler per model, its compiled grammars cached by schema (a synthesis run asks the
    same few schemas thousands of times). Thread-safe: the copies of a model share it."""

    def __init__(self, vocabulary: xgrammar.TokenizerInfo):
        self.vocab_size = vocabulary.vocab_size
        self._compiler = xgrammar.GrammarCompiler(vocabulary)
        self._compiled: dict[str, xgrammar.CompiledGrammar] = {}
        self._lock = threading.Lock()

    def compile(self, schema: dict | None) -> xgrammar.CompiledGrammar:
        """Compact JSON (no free whitespace, which a small model can repeat until its budget ends) for the
        schema, or any JSON object without one, its numbers' digits bounded."""
        schema = schema or {"type": "object"}
        key = json.dumps(schema)
        with self._lock:
            if key not in self._compiled:
                self._compiled[key] = self._compiler.compile_grammar(json_grammar(schema))
            return self._compiled[key]

    def processors(self, schema: dict | None) -> LogitsProcessorList:
        return LogitsProcessorList([SchemaConstraint(self.compile(schema), self.vocab_size)])


def json_grammar(schema: dict) -> str:
    """xgrammar's EBNF for compact JSON under ``schema``, with ``BOUNDED_DIGITS``."""
    grammar = str(xgrammar.Grammar.from_json_schema(json.dumps(schema), any_whitespace=False))
    for unbounded, bounded in BOUNDED_DIGITS.items():
        grammar = grammar.replace(unbounded, bounded)
    return grammar


class SchemaConstraint:
    """A logits processor for one generation: sets every token the grammar forbids next to ``-inf``.

    llama-cpp-python calls it before its penalties and sampler chain (greedy at temperature 0, the seeded
    distribution otherwise) with the tokens so far; the tokens after the first call's are the ones sampled,
    and the matcher accepts them before it fills the next mask.
    """

    def __init__(self, grammar: xgrammar.CompiledGrammar, vocab_size: int):
        self.matcher = xgrammar.GrammarMatcher(grammar)
        self.bitmask = np.empty(xgrammar.get_bitmask_shape(1, vocab_size), dtype=np.int32)
        self._seen: int | None = None

    def __call__(self, input_ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
        if self._seen is None:
            self._seen = len(input_ids)
        for token in input_ids[self._seen:]:
            self.matcher.accept_token(int(token))  # sampled under the last mask, so always accepted
        self._seen = len(input_ids)
        if self.matcher.fill_next_token_bitmask(self.bitmask):
            allowed = np.unpackbits(self.bitmask.view(np.uint8), bitorder="little")[: len(scores)]
            scores[allowed == 0] = -np.inf
        return scores
