"""Closed answers: yes/no (also true/false) and labels of a closed set.

yes_no
    ``true`` ≡ ``yes``, ``false`` ≡ ``no``. In a final-answer span: the first of the words
    yes/no/true/false (``not true`` is no, ``not false`` yes; ``no`` inside ``not``/``nobody`` is not
    a word). Fallback: the text's first word ("Yes, because ..."), else the last such word of its
    last line.

label (e.g. ``entailment``/``neutral``/``contradiction``)
    A label matches as a whole word, case-insensitively, also through its synonyms (``entails``,
    ``contradicts``, ``neither``, ``cannot be determined``, ``not valid`` → ``invalid``; for NLI sets
    ``true`` → entailment and ``false`` → contradiction); ``_``/``-`` in a label match spaces. A
    mention preceded by a negation (``not``, ``no``, ``n't``) is skipped unless the synonym itself is
    negative. In a span the first mention wins; fallback: the last mention in the last line with one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from regenesis.answers.negation import negated_label
from regenesis.answers.spans import final_answer_spans, last_line, unwrap

# --- yes / no -----------------------------------------------------------------------------------

_YES_NO = re.compile(r"\b(not\s+)?(yes|no|true|false)\b", re.IGNORECASE)
_YES_NO_VALUE = {"yes": "yes", "true": "yes", "no": "no", "false": "no"}


def extract_yes_no(text: str) -> str | None:
    """``"yes"`` or ``"no"``, as ``text`` answers, or None."""
    for span in final_answer_spans(text):
        match = _YES_NO.search(span)
        if match:
            return _yes_no_from(match)
    opening = re.match(r"\W*(yes|no|true|false)\b", text, re.IGNORECASE)
    if opening:
        return _YES_NO_VALUE[opening.group(1).lower()]
    matches = list(_YES_NO.finditer(last_line(text)))
    return _yes_no_from(matches[-1]) if matches else None


def _yes_no_from(match: re.Match) -> str:
    value = _YES_NO_VALUE[match.group(2).lower()]
    if match.group(1) and match.group(2).lower() in ("true", "false"):
        value = "no" if value == "yes" else "yes"
    return value


def yes_no_value(text: str) -> str | None:
    """``"yes"``/``"no"`` when ``text`` is one of yes/no/true/false and nothing more, else None."""
    match = re.fullmatch(r"\W*(yes|no|true|false)\W*", str(text), re.IGNORECASE)
    return _YES_NO_VALUE[match.group(1).lower()] if match else None


def yes_no_equal(predicted: str, gold: str) -> bool:
    value = yes_no_value(predicted)
    return value is not None and value == yes_no_value(gold)


# --- labels -------------------------------------------------------------------------------------

LABEL_SYNONYMS = {
    "entailment": ("entailment", "entails", "entailed", "entail", "entailing", "implied", "implies"),
    "contradiction": ("contradiction", "contradicts", "contradicted", "contradictory", "contradict"),
    "neutral": ("neutral", "neither", "undetermined", "cannot be determined", "can't be determined",
                "not enough information", "inconclusive", "unknown"),
    "invalid": ("invalid", "not valid"),
    "valid": ("valid",),
}
_NLI_TRUTH = {"true": "entailment", "false": "contradiction"}


def extract_label(text: str, labels: Sequence[str]) -> str | None:
    """The label of ``labels`` that ``text`` answers, spelled as in ``labels``, or None."""
    if not labels:
        return None
    for span in final_answer_spans(text):
        mentions = _label_mentions(span, labels)
        if mentions:
            return mentions[0]
    for line in reversed([line for line in text.splitlines() if line.strip()]):
        mentions = _label_mentions(line, labels)
        if mentions:
            return mentions[-1]
    return None


def label_key(text: str) -> str:
    """The label ``text`` names, through its synonyms, in lower case."""
    text = re.sub(r"[_\-\s]+", " ", unwrap(str(text)).lower()).rstrip(".")
    for label, synonyms in LABEL_SYNONYMS.items():
        if text in synonyms:
            return label
    return text


def labels_equal(predicted: str, gold: str) -> bool:
    return bool(label_key(predicted)) and label_key(predicted) == label_key(gold)


def _label_phrases(labels: Sequence[str]) -> list[tuple[str, str]]:
    """(phrase, label) pairs, longest phrase first."""
    pairs = []
    canonical = {label.lower(): label for label in labels}
    for label in labels:
        spaced = re.sub(r"[_-]+", " ", label.lower())
        for phrase in {label.lower(), spaced, *LABEL_SYNONYMS.get(label.lower(), ())}:
            pairs.append((phrase, label))
    if "entailment" in canonical and "contradiction" in canonical:
        pairs.extend((word, canonical[label]) for word, label in _NLI_TRUTH.items())
    return sorted(set(pairs), key=lambda pair: -len(pair[0]))


def _label_mentions(text: str, labels: Sequence[str]) -> list[str]:
    """The labels mentioned in ``text``, in order, skipping negated mentions."""
    phrases = _label_phrases(labels)
    pattern = re.compile(r"(?<!\w)(" + "|".join(re.escape(phrase) for phrase, _ in phrases) + r")(?!\w)",
                         re.IGNORECASE)
    by_phrase = {}
    for phrase, label in phrases:
        by_phrase.setdefault(phrase, label)
    mentions = []
    for match in pattern.finditer(text.replace("_", " ")):
        phrase = match.group(1).lower()
        if negated_label(text, match.start()) and not phrase.startswith("not "):
            continue
        mentions.append(by_phrase[phrase])
    return mentions
