"""Decontamination: does any training text overlap an evaluation item?

Texts are normalised (lower case, punctuation removed, whitespace collapsed); each (training text,
evaluation item) pair that overlaps is reported once, with the strongest of:

- ``exact``: the normalised texts are equal (an evaluation question asked again in training);
- ``near_duplicate``: the training text holds at least half of the evaluation item's 13-grams;
- ``ngram``: they share at least one 13-gram of normalised tokens, the rule GPT-3 and lm-eval-harness
  decontaminate with. It over-flags templated data: two different wordmath problems share 13-grams
  whenever a long template sentence meets the same operand, so ``coverage`` (the share of the item's
  13-grams found) is kept for every pair.

A text of fewer than 13 tokens has no 13-gram and is compared only exactly.

Training texts are the synthesis inputs (the questions) and every message of the kept rows (the user turn
with its question, the reasoning path); evaluation texts are the questions as shown to the model. The work
is linear in the total length of the texts: the evaluation 13-grams are indexed once, then each training
text is scanned once.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field

NGRAM = 13
NEAR_DUPLICATE = 0.5
KINDS = ("exact", "near_duplicate", "ngram")
_PUNCTUATION = re.compile(rf"[{re.escape(string.punctuation)}\u2018\u2019\u201c\u201d\u2013\u2014\u2026]")

Text = tuple[str, str]  # (id, text)


def normalize(text: str) -> str:
    return " ".join(_PUNCTUATION.sub("", text.lower()).split())


def ngrams(tokens: list[str], n: int = NGRAM) -> set[tuple[str, ...]]:
    return {tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)}


@dataclass(frozen=True)
class Overlap:
    """A training text that overlaps an evaluation item, and the share of the item's 13-grams it holds."""

    train_id: str
    eval_id: str
    kind: str
    shared_ngrams: int = 0
    coverage: float = 0.0


@dataclass
class ContaminationReport:
    train_texts: int
    eval_items: int
    overlaps: list[Overlap] = field(default_factory=list)

    def contaminated_eval_items(self, kinds: tuple[str, ...] = KINDS) -> list[str]:
        """The evaluation items with an overlap of one of ``kinds``."""
        return sorted({overlap.eval_id for overlap in self.overlaps if overlap.kind in kinds})

    def counts(self) -> dict[str, int]:
        """Texts compared, then per kind the evaluation items whose strongest overlap is of that kind."""
        strongest: dict[str, int] = {}
        for overlap in self.overlaps:
            strongest[overlap.eval_id] = min(strongest.get(overlap.eval_id, len(KINDS)), KINDS.index(overlap.kind))
        by_kind = {kind: sum(rank == index for rank in strongest.values()) for index, kind in enumerate(KINDS)}
        return {"train_texts": self.train_texts, "eval_items": self.eval_items, **by_kind,
                "contaminated_eval_items": len(strongest)}

    def to_dict(self) -> dict:
        return {**self.counts(), "overlaps": [asdict(overlap) for overlap in self.overlaps]}


def find_overlaps(train: Iterable[Text], evaluation: Iterable[Text], n: int = NGRAM) -> ContaminationReport:
    """Every (training text, evaluation item) pair that matches exactly or shares an ``n``-gram."""
    by_text: dict[str, list[str]] = {}
    by_ngram: dict[tuple[str, ...], list[str]] = {}
    ngram_count: dict[str, int] = {}
    for eval_id, text in evaluation:
        normalized = normalize(text)
        by_text.setdefault(normalized, []).append(eval_id)
        grams = ngrams(normalized.split(), n)
        ngram_count[eval_id] = len(grams)
        for gram in grams:
            by_ngram.setdefault(gram, []).append(eval_id)
    report = ContaminationReport(train_texts=0, eval_items=len(ngram_count))
    for train_id, text in train:
        report.train_texts += 1
        normalized = normalize(text)
        shared: dict[str, int] = dict.fromkeys(by_text.get(normalized, ()), 0)
        for gram in ngrams(normalized.split(), n):
            for eval_id in by_ngram.get(gram, ()):
                shared[eval_id] = shared.get(eval_id, 0) + 1
        exact = set(by_text.get(normalized, ()))
        for eval_id, count in sorted(shared.items()):
            coverage = count / ngram_count[eval_id] if ngram_count[eval_id] else float(eval_id in exact)
            kind = "exact" if eval_id in exact else "near_duplicate" if coverage >= NEAR_DUPLICATE else "ngram"
            report.overlaps.append(Overlap(train_id, eval_id, kind, count, round(coverage, 4)))
    return report


def question_texts(examples: Iterable) -> list[Text]:
    """(id, question) of each ``Example``: synthesis inputs or evaluation items."""
    return [(example.id, example.question) for example in examples]


def row_texts(rows: Iterable[Mapping]) -> list[Text]:
    """(id, content) of every message of kept training rows (``train.jsonl``), the id naming the row's
    problem, sample and role."""
    texts = []
    for number, row in enumerate(rows):
        meta = row.get("meta") or {}
        row_id = f"{meta.get('problem_id', f'row {number}')}#{meta.get('sample_index', number)}"
        texts += [(f"{row_id}/{message.get('role')}", str(message.get("content") or ""))
                  for message in row.get("messages") or ()]
    return texts


def check_experiment(synthesis_inputs: Iterable, kept_rows: Iterable[Mapping], evaluation_items: Iterable,
                     n: int = NGRAM) -> ContaminationReport:
    """Synthesis questions and kept rows against every evaluation item of an experiment."""
    return find_overlaps(question_texts(synthesis_inputs) + row_texts(kept_rows), question_texts(evaluation_items), n)
