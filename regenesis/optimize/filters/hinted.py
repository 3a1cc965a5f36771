"""Hinted paths: a path written from a prompt that showed the gold answer must not lean on it."""

from __future__ import annotations

import re
from collections.abc import Sequence

from regenesis.answers import answers_equal
from regenesis.optimize.filters.arithmetic import stated_computations
from regenesis.optimize.filters.number_support import NUMBER_IN_TEXT
from regenesis.optimize.filters.reading import final_answer
from regenesis.optimize.filters.verdict import MAX_PATH_CHARS
from regenesis.tasks.example import Example

# Phrases that only the scaffolding of a prompt puts in a path: the hinted prompts (STaR's
# rationalization, ReGenesis's hinted steps) know the gold answer, and ReGenesis's prompts carry
# reasoning guidelines. The training row pairs the path with the plain question, where neither exists.
DEFAULT_HINT_PHRASES = (
    "the given answer", "the answer given", "the provided answer", "the answer provided",
    "the expected answer", "the known answer", "the answer we were given", "we are told the answer",
    "we were told the answer", "as the hint", "the hint", "hinted", "correct_answer", "guideline",
)


def mentions_hint(path: str, phrases: Sequence[str] = DEFAULT_HINT_PHRASES) -> str | None:
    """The first of ``phrases`` that ``path`` contains as words (case-insensitive), or None."""
    return next((phrase for phrase in phrases
                 if re.search(rf"(?<!\w){re.escape(phrase)}(?!\w)", path, re.I)), None)


# Phrasings with which a hinted path refers to an answer it was given instead of one it found. Each
# family is one way of saying it; ``{gold}`` stands for the gold answer (as written, or as a number with
# an optional currency sign and trailing zeros).
_KNOWN = r"(?:correct|right|given|expected|known|provided|true|target|actual|official|intended)"
_ANSWER_WORD = r"(?:answer|result|solution|value|total)"
HINT_LEAK_FAMILIES = {
    "known answer named": rf"\b(?:the|an?|our)\s+{_KNOWN}\s+(?:final\s+)?{_ANSWER_WORD}\b",
    "answer said to be known": (r"\b(?:we|i|you)\s+(?:already\s+)?(?:know|knew|are\s+told|were\s+told|were\s+given|"
                                r"have\s+been\s+(?:told|given)|are\s+given)\s+(?:that\s+)?(?:the|our)\s+"
                                rf"(?:final\s+)?{_ANSWER_WORD}\b"),
    "answer said to be given": rf"\b{_ANSWER_WORD}\s+(?:is|was|has\s+been)\s+(?:given|known|provided|expected)\b",
    "reasoning from the answer": (r"\b(?:since|because|as|given\s+that)\s+the\s+(?:final\s+)?answer\s+"
                                  r"(?:is|must\s+be|should\s+be)\s+\$?{gold}"),
    "steering to the answer": (r"\b(?:to\s+(?:get|reach|arrive\s+at|match|obtain)|towards?|backwards?\s+from)\s+"
                               rf"(?:the\s+)?(?:answer|{_KNOWN}\s+{_ANSWER_WORD})(?:\s+of)?\s*\$?{{gold}}"),
}


def _gold_pattern(gold: str) -> str:
    """``gold`` as a pattern: a number also as 10, 10.0 or 10.00, never as the start of 100."""
    number = re.fullmatch(r"-?\d+(?:\.\d+)?", gold.strip())
    if number:
        whole, _, decimals = gold.strip().partition(".")
        decimals = decimals.rstrip("0")
        tail = rf"\.{decimals}0*" if decimals else r"(?:\.0+)?"
        return rf"(?<![\d.]){re.escape(whole)}{tail}(?!\d|\.\d)"
    return re.escape(gold.strip()) + r"(?!\w)"


def hint_leak(path: str, gold: str, phrases: Sequence[str] = DEFAULT_HINT_PHRASES) -> str | None:
    """Why ``path`` reads as written from a given answer, or None: the scaffolding ``phrases`` of the
    prompt, or a phrasing family of ``HINT_LEAK_FAMILIES`` (the classifier ``tests/test_filters.py``
    measures). The text read is bounded by ``MAX_PATH_CHARS``; every pattern runs in linear time."""
    text = path[:MAX_PATH_CHARS]
    phrase = mentions_hint(text, phrases)
    if phrase:
        return f"phrase {phrase!r}"
    value = _gold_pattern(gold) if gold.strip() else r"(?!)"
    for family, pattern in HINT_LEAK_FAMILIES.items():
        if re.search(pattern.replace("{gold}", value), text, re.I):
            return family
    return None


def derives_answer(path: str, example: Example) -> bool:
    """For number answers: the final answer is the result of a computation the path states. A hinted
    path must meet this: having seen the answer, it can otherwise simply state it as a fact."""
    if example.answer_type != "number":
        return True
    final = final_answer(path, example)
    if final is None:
        return False
    results = (statement.text.replace(",", "").rsplit("=", 1)[-1] for statement in stated_computations(path))
    return any(answers_equal(number, final, "number")
               for result in results for number in NUMBER_IN_TEXT.findall(result))
