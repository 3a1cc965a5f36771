"""The form check: the path has the shape of a training row."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from regenesis.optimize.filters.hinted import DEFAULT_HINT_PHRASES, mentions_hint
from regenesis.optimize.filters.hostile import hostile_shape
from regenesis.optimize.filters.reading import (CODE_BLOCK, answer_of, final_answer, is_answer_line, logical_lines,
                                                strip_marker)
from regenesis.optimize.filters.verdict import Verdict, too_long_to_check
from regenesis.tasks.example import Example


_LOOP_REPEATS = 8  # a sentence recurring more often than this, numbers aside ("Step 7: add 3"), is a loop


def _sentences(text: str) -> list[str]:
    """The sentences and lines of ``text`` outside code, as lower-case words and numbers."""
    pieces = re.split(r"(?<=[.!?])\s+|\n+|:\s+", CODE_BLOCK.sub("\n", text))
    return [" ".join(re.findall(r"[a-z]+|\d+(?:\.\d+)?", strip_marker(piece).lower())) for piece in pieces]


def _most_common(keys: list[str], min_words: int) -> tuple[str, int]:
    counts = Counter(key for key in keys if len(re.findall(r"[a-z]+", key)) >= min_words)
    return counts.most_common(1)[0] if counts else ("", 0)


def degenerate_repetition(text: str, example: Example) -> str:
    """Why ``text`` loops, or "" when it does not.

    An option-by-option analysis may say the same sentence once about each wrong option, so a
    sentence may recur that often (three times at least); a sentence that differs only in its numbers
    may recur up to ``_LOOP_REPEATS`` times, as the rows of a table do.
    """
    sentences = _sentences(text)
    sentence, count = _most_common(sentences, 3)
    if count > max(3, len(example.choices) - 1):
        return f"degenerate repetition: {sentence!r} {count} times"
    shapes = [re.sub(r"\d+(?:\.\d+)?", "N", s) for s in sentences]
    shape, count = _most_common(shapes, 2)
    if count > _LOOP_REPEATS:
        return f"degenerate repetition: {shape!r} {count} times"
    return ""


# A reasoning path whose last line ends in a word, a comma or a semicolon was cut off (by the token budget, say),
# not finished: sound paths end in a full stop, a number, a formula or a closing bracket.
_UNFINISHED = re.compile(r"[A-Za-z,;]\s*$")
MIN_REASONING_TERMS = 3  # words or numbers; "]\n{" or "So:" before the answer is no reasoning
# The scaffolding of a structured-output prompt (DSPy's adapters), which a small model echoes instead
# of reasoning; none belongs in a worked solution.
PROMPT_FORMAT_TRACES = ("[[ ##", "json object", "output fields", "input fields")
_WORD = re.compile(r"[A-Za-z]{3,}")
_CALCULATION = re.compile(r"\d\s*[-+*/x×÷=^%]\s*\(?\d")


def format_debris(reasoning: Sequence[str]) -> str:
    """Why the reasoning lines are prompt scaffolding or stray symbols rather than reasoning, or ''."""
    text = "\n".join(reasoning).lower()
    for trace in PROMPT_FORMAT_TRACES:
        if trace in text:
            return f"echoes the prompt's format: {trace!r}"
    debris = [line for line in reasoning if not _WORD.search(line) and not _CALCULATION.search(line)]
    if reasoning and len(debris) * 2 >= len(reasoning):
        return f"mostly stray symbols: {len(debris)} of {len(reasoning)} reasoning lines have no word or calculation"
    return ""


class FormFilter:
    """The path has the shape of a training row: reasoning before the answer (words and calculations,
    not the prompt's scaffolding or stray symbols), within the length limit, no hostile shape
    (``hostile_shape``), no trace of the prompt's hint, no degenerate repetition, and exactly one
    final answer, stated on the last line."""

    name = "form"

    def __init__(self, max_chars: int = 4000, hint_phrases: Sequence[str] = DEFAULT_HINT_PHRASES):
        self.max_chars = max_chars
        self.hint_phrases = tuple(hint_phrases)

    def check(self, path: str, example: Example) -> Verdict:
        reason = _form_defect(path, example, self.max_chars, self.hint_phrases)
        return Verdict(self.name, passed=not reason, reason=reason)


def _form_defect(path: str, example: Example, max_chars: int, hint_phrases: Sequence[str]) -> str:
    """Why ``path`` does not have the shape of a training row, or "" (cheapest and most telling first)."""
    if len(path) > max_chars:
        return f"too long: {len(path)} characters (limit {max_chars})"
    hostile = too_long_to_check(path) or hostile_shape(path)
    if hostile:
        return hostile
    phrase = mentions_hint(path, hint_phrases)
    if phrase:
        return f"trace of the prompt: {phrase!r}"
    repetition = degenerate_repetition(path, example)
    if repetition:
        return repetition
    final = final_answer(path, example)
    if final is None:
        return "no final answer on the last line"
    reasoning = [line for line in logical_lines(path)[:-1] if not is_answer_line(line)]
    reasoning_terms = re.findall(r"[A-Za-z]{2,}|\d+(?:\.\d+)?", "\n".join(reasoning))
    if len(reasoning_terms) < MIN_REASONING_TERMS:
        return f"no reasoning before the answer ({len(reasoning_terms)} words or numbers)"
    debris = format_debris(reasoning)
    if debris:
        return debris
    if _UNFINISHED.search(reasoning[-1]):
        return f"the reasoning stops mid-sentence: {reasoning[-1][-40:]!r}"
    earlier = [answer_of(line, example) for line in logical_lines(path)[:-1] if is_answer_line(line)]
    earlier = [answer for answer in earlier if answer is not None]
    contrary = [answer for answer in earlier if answer != final]
    if contrary:
        return f"answers {final} on the last line but {contrary[0]} before it"
    if len(earlier) > 1:
        return f"states the final answer {len(earlier) + 1} times"
    return ""
