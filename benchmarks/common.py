"""Shared pieces of the benchmark scripts: an engine that times itself, and a diversity measure."""

import os
import threading
import time
from contextlib import contextmanager
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import dspy  # noqa: E402

from regenesis.models import LlamaCppEngine, resolve_lm  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


class TimedLlamaCppEngine(LlamaCppEngine):
    """The llama.cpp engine, counting the seconds its model copies spend generating (summed over
    copies; waiting for a free copy does not count) and the tokens it generates."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.busy_seconds = 0.0
        self.completion_tokens = 0
        self._meter = threading.Lock()

    @contextmanager
    def borrow(self):
        with super().borrow() as model:
            started = time.perf_counter()
            try:
                yield model
            finally:
                with self._meter:
                    self.busy_seconds += time.perf_counter() - started

    def complete(self, request):
        response = super().complete(request)
        with self._meter:
            self.completion_tokens += response.usage.output_tokens or 0
        return response


def timed_embedded_lm(max_tokens: int = 384) -> dspy.LM:
    """The embedded model with no cache (every call is a real generation) and a timed engine."""
    plain = resolve_lm(None)
    engine = TimedLlamaCppEngine(plain.engine.path)
    return dspy.LM(plain.model, engine=engine, temperature=0.0, max_tokens=max_tokens, cache=False)


def ngrams(text: str, n: int = 3) -> set[tuple[str, ...]]:
    words = text.lower().split()
    return {tuple(words[i:i + n]) for i in range(max(0, len(words) - n + 1))}


def distinct_paths(paths: list[str], threshold: float = 0.5) -> int:
    """How many of ``paths`` are distinct: a path counts unless its word-trigram Jaccard similarity
    to an earlier counted path is at least ``threshold``."""
    kept: list[set] = []
    for path in paths:
        grams = ngrams(path)
        if all(len(grams & other) / max(1, len(grams | other)) < threshold for other in kept):
            kept.append(grams)
    return len(kept)
