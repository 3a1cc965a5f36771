"""The structure of a path: logical lines, answer statements, the final answer.

Answers are read with the rules of ``regenesis.answers`` (its answer marker, sentence ends, boxes and
``extract_answer``), so that what a filter takes for a path's answer is what evaluation scores."""

from __future__ import annotations

import re

from regenesis.answers import ANSWER_MARKER, boxed_answers, extract_answer, sentences
from regenesis.tasks.example import Example

CODE_BLOCK = re.compile(r"```.*?(?:```|\Z)", re.S)
_LIST_MARKER = re.compile(r"^\s*(?:[-*•>]+\s*|\d+[.)]\s+|step\s*\d+\s*[:.)]\s*|\*\*)+", re.I)
_BARE_YES_NO = re.compile(r"\s*+(yes|no)\s*+[.!]?\s*+", re.I)  # possessive: linear on long blanks


def logical_lines(text: str) -> list[str]:
    """The non-empty lines of ``text``; a display-math block (``\\[ ... \\]``) joins the line before it
    and a fenced code block becomes one line, so "the answer is:" and its boxed value are one line."""
    text = CODE_BLOCK.sub(lambda m: "\n" + " ".join(m.group(0).split()) + "\n", text)
    lines: list[str] = []
    in_math = False
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        opens_math = line.startswith(("\\[", "$$")) and not in_math
        if (in_math or opens_math) and lines:
            lines[-1] = f"{lines[-1]} {line}"
        else:
            lines.append(line)
        if opens_math:
            in_math = not (line.endswith(("\\]", "$$")) and len(line) > 2)
        elif in_math and line.endswith(("\\]", "$$")):
            in_math = False
    return lines


def strip_marker(line: str) -> str:
    """``line`` without a leading list marker, bullet or "Step 3:"."""
    return _LIST_MARKER.sub("", line).strip()


def states_answer(line: str) -> bool:
    """Whether ``line`` gives an answer: "answer is ...", "answer: ...", "#### ..." or a boxed value."""
    return bool(ANSWER_MARKER.search(line) or boxed_answers(line))


def stated_value(line: str) -> str:
    """What ``line`` gives as the answer: the last boxed value, else the text after the last answer marker."""
    boxed = boxed_answers(line)
    if boxed:
        return boxed[-1][1].strip()
    markers = list(ANSWER_MARKER.finditer(line))
    return line[markers[-1].end():].strip() if markers else ""


def is_answer_line(line: str) -> bool:
    """A line that does nothing but state the answer ("The answer is 18.", "#### 18", "Yes.")."""
    pieces = sentences(strip_marker(line))
    return bool(pieces) and all(states_answer(s) or _BARE_YES_NO.fullmatch(s) for s in pieces)


def option_letters(example: Example) -> str:
    return "ABCDEFGHIJ"[: len(example.choices)] if example.choices else "ABCDE"


def answer_of(text: str, example: Example) -> str | None:
    """The answer of ``example``'s type that ``text`` gives (``regenesis.answers`` rules)."""
    return extract_answer(text, example.answer_type, example.choices, example.labels)


def final_answer(path: str, example: Example) -> str | None:
    """The answer stated on the last line of ``path``: None when the last line states none, or one the
    metric does not read from the whole path, so that a kept path's answer is the one evaluation scores."""
    lines = logical_lines(path)
    if not lines or not states_answer(lines[-1]):
        return None
    stated = answer_of(lines[-1], example)
    return stated if stated == answer_of(path, example) else None
