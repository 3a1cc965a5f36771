"""Short free-text answers.

The answer is the last final-answer span, unwrapped from quotes and markdown, without a trailing
period; fallback: the last non-empty line. Compared case-insensitively after collapsing spaces and
dropping a leading article; also equal when the word/symbol sequences agree ignoring spaces and
``,.;:!?"'`` (``] ) }`` = ``])}``), or when both are lists (``,``/``;``/``and``) of the same items in
any order, or when a first sentence of the prediction (ending in its first ``MAX_SPAN_CHARS``
characters) equals the gold.
"""

from __future__ import annotations

import re
import unicodedata
from itertools import takewhile

from regenesis.answers.spans import MAX_SPAN_CHARS, SENTENCE_END, final_answer_spans, last_line, unwrap

_ARTICLE = re.compile(r"^(?:the|a|an)\s+", re.IGNORECASE)
_LIST_SEPARATOR = re.compile(r"\s*(?:[,;]|\band\b|&)\s*", re.IGNORECASE)


def extract_text(text: str) -> str | None:
    """The free-text answer of ``text``, trimmed, or None when it is empty."""
    spans = final_answer_spans(text)
    answer = spans[0] if spans else last_line(text)
    answer = unwrap(answer).rstrip(".").strip()
    return answer or None


def texts_equal(predicted: str, gold: str) -> bool:
    key, tokens, items = _text_key(gold), _text_tokens(gold), _text_items(gold)
    if not key:
        return False
    sentence_ends = takewhile(lambda match: match.start() < MAX_SPAN_CHARS, SENTENCE_END.finditer(predicted))
    candidates = [predicted] + [predicted[:match.start()] for match in sentence_ends]
    for candidate in candidates:
        if _text_key(candidate) == key or _text_tokens(candidate) == tokens:
            return True
        if len(items) > 1 and _text_items(candidate) == items:
            return True
    return False


def _text_key(text: str) -> str:
    text = unicodedata.normalize("NFKC", unwrap(str(text))).lower().rstrip(".").strip()
    return _ARTICLE.sub("", re.sub(r"\s+", " ", text))


def _text_tokens(text: str) -> list[str]:
    return re.findall(r"[^\W_]+(?:'[^\W_]+)?|[^\w\s,.;:!?\"']", _text_key(text))


def _text_items(text: str) -> list[str]:
    return sorted(_ARTICLE.sub("", item) for item in _LIST_SEPARATOR.split(_text_key(text)) if item)
