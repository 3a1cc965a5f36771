"""Where the final answer of a model's output is: its *final-answer spans*.

Models are asked to end with ``The answer is X.`` (``regenesis.prompting``). The spans of a text are
what follows each answer marker up to the end of its line (``answer is``, ``answer:``, ``final
answer:``, ``answer would be``, GSM8K's ``####``; when the rest of the marker's line is blank, the
next non-empty line) and the content of each ``\\boxed{}``. Each answer type reads them from the last
one backwards and takes the first that holds a valid answer; only when none does, it falls back to the
end of the text.

Bounds keep hostile outputs cheap: only the last ``MAX_TEXT_CHARS`` characters are read, a span is at
most ``MAX_SPAN_CHARS`` characters and only the last ``MAX_SPANS`` spans count. Every pattern matches
in time linear in the text it reads.

The synthesis filters read answers with the same rules: ``ANSWER_MARKER`` is the answer phrase,
``SENTENCE_END`` where a sentence ends, ``boxed_answers`` the reader of boxes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ANSWER_MARKER = re.compile(
    r"\b(?:final\s+)?answer\s*(?:is|was|(?:would|should|will|must)\s+be|:|=)\s*:?|####",
    re.IGNORECASE)
# A sentence ends at ".", "!" or "?" before a blank or the end of the text; "3.5" and "e.g.," go on.
SENTENCE_END = re.compile(r"[.!?](?=\s|$)")
MAX_TEXT_CHARS = 20_000  # only the end of a longer output is read: the final answer is there
MAX_SPAN_CHARS = 1_000
MAX_SPANS = 50


def readable(text) -> str:
    """The part of a model's output that is read: its last ``MAX_TEXT_CHARS`` characters."""
    return str(text or "")[-MAX_TEXT_CHARS:]


def final_answer_spans(text: str) -> list[str]:
    """The texts after each answer marker and inside each ``\\boxed{}``, the last one first.

    A marker's span is the rest of its line (at most ``MAX_SPAN_CHARS``); only the last
    ``MAX_SPANS`` spans count.
    """
    return [span for _, span in located_answer_spans(text)]


def located_answer_spans(text: str) -> list[tuple[int, str]]:
    """The final-answer spans of ``text`` with where each starts (its marker, or its box), the last one first."""
    text = readable(text)
    spans = [(match.start(), match.end()) for match in ANSWER_MARKER.finditer(text)]
    spans = [(start, _rest_of_line(text[end:end + MAX_SPAN_CHARS])) for start, end in spans[-MAX_SPANS:]]
    spans.extend(boxed_answers(text, MAX_SPAN_CHARS)[-MAX_SPANS:])
    spans.sort(key=lambda span: span[0], reverse=True)
    return [(start, unwrap(span)) for start, span in spans[:MAX_SPANS] if span.strip()]


def _rest_of_line(text: str) -> str:
    """The first line of ``text``, or the next non-empty one when it is blank ("answer:" then a newline)."""
    first, newline, rest = text.partition("\n")
    if first.strip(" \t*:") or not newline:
        return first
    return rest.lstrip("\n").partition("\n")[0]


_QUOTE_PAIRS = ('""', "''", "``", "“”", "‘’")


def unwrap(span: str) -> str:
    """Strip markdown emphasis, a pair of surrounding quotes, and blanks."""
    span = span.replace("**", "").replace("__", "").strip()
    while len(span) > 1 and span[0] + span[-1] in _QUOTE_PAIRS:
        span = span[1:-1].strip()
    return span


def first_sentence(span: str) -> str:
    """``span`` up to its first sentence end, the end's punctuation left out."""
    match = SENTENCE_END.search(span)
    return span if match is None else span[:match.start()]


def sentences(text: str) -> list[str]:
    """The non-empty sentences of ``text``, each with its closing punctuation, blanks trimmed."""
    pieces, start = [], 0
    for match in SENTENCE_END.finditer(text):
        pieces.append(text[start:match.end()])
        start = match.end()
    pieces.append(text[start:])
    return [piece.strip() for piece in pieces if piece.strip()]


def last_line(text: str) -> str:
    """The last non-empty line of ``text``, unwrapped."""
    lines = [line for line in text.splitlines() if line.strip()]
    return unwrap(lines[-1]) if lines else ""


# --- boxes --------------------------------------------------------------------------------------

_BOX = re.compile(r"\\(?:boxed|fbox)(?![a-zA-Z])")
_OPENING_BRACE = re.compile(r"\s*\{")
_BARE_WORD = re.compile(r"\s+([^\s$]+)")
_BRACE = re.compile(r"(?<!\\)[{}]")
_BOX_JOINER = re.compile(r"[\s$,]*(?:(?:\\text\s*\{\s*)?(?:and|or)\b\s*\}?[\s$,]*)?")


@dataclass(frozen=True)
class Box:
    """One ``\\boxed{}`` of a text: where it starts and ends, and its content."""

    start: int
    end: int
    content: str


def boxes(text: str, max_chars: int = MAX_SPAN_CHARS) -> list[Box]:
    """Every ``\\boxed{...}`` (or ``\\fbox{}``, or ``\\boxed 5``) in ``text``, in order.

    Braces nest to any depth; content longer than ``max_chars`` (or never closed) is not an answer and
    is left out.
    """
    closing = _closing_braces(text)
    found = []
    for match in _BOX.finditer(text):
        start = match.end()
        opening = _OPENING_BRACE.match(text, start)
        if opening:
            end = closing.get(opening.end() - 1)
            if end is not None and end - opening.end() <= max_chars:
                found.append(Box(match.start(), end + 1, text[opening.end():end]))
        else:
            word = _BARE_WORD.match(text, start)
            if word and len(word.group(1)) <= max_chars:
                found.append(Box(match.start(), word.end(), word.group(1)))
    return found


def boxed_answers(text: str, max_chars: int = MAX_SPAN_CHARS) -> list[tuple[int, str]]:
    """Every box of ``text`` (``boxes``) as (position, content)."""
    return [(box.start, box.content) for box in boxes(text, max_chars)]


def adjacent_boxes(text: str, found: list[Box], last: int) -> list[Box]:
    """The boxes of ``found`` that ``found[last]`` closes a run of: each next to the one after it with only
    ``$``, blanks, commas, "and" or "or" between (``$\\boxed{-2}$ and $\\boxed{1}$``), so several
    answers written as one, not a box nested in another or one given earlier and then corrected; at most
    ``MAX_SPANS`` boxes."""
    run = [found[last]]
    for box in reversed(found[max(0, last - MAX_SPANS + 1):last]):
        if box.end > run[0].start or not _BOX_JOINER.fullmatch(text, box.end, run[0].start):
            break
        run.insert(0, box)
    return run


def _closing_braces(text: str) -> dict[int, int]:
    """The index of the ``}`` that closes each ``{`` of ``text`` (braces escaped as ``\\{`` aside),
    found in one pass so that many unclosed groups cost no more than one."""
    pairs, open_at = {}, []
    for match in _BRACE.finditer(text):
        if match.group() == "{":
            open_at.append(match.start())
        elif open_at:
            pairs[open_at.pop()] = match.start()
    return pairs


def last_boxed(text: str) -> str | None:
    """The content of the last ``\\boxed{...}`` in ``text``, or None."""
    found = boxed_answers(text)
    return found[-1][1] if found else None
