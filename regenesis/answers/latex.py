"""Math answers (LaTeX expressions, MATH): reading them out of text, normalising, and equivalence.

The first final-answer span (the last one written) that is a box or holds math wins, over a phrase
span of words ("so our answer is correct." after ``\\boxed{-5}``) or one that checks an answer ("We
may check our answer: $17\\cdot 44 = 748$"); where every span is such a phrase, the first span. A
``\\boxed{}`` closing a run of boxes joined only by "and", "or" or commas (``$\\boxed{-2}$ and
$\\boxed{1}$``) reads with them as one answer set (``answer_of_boxes``). In a marker span the first
``$...$`` group, else the first sentence. Fallback: the last ``$...$`` of the last line, else the
last number that stands alone (not the ``5`` of ``17^5``: ``numbers.standalone_numbers``).

Equivalence (``latex_equal``): equal normalised strings (``\\dfrac``→``\\frac``, ``\\frac12``,
``\\left``, spaces, ``^\\circ``, ``\\%``, ``\\text{ units}``, ``x=``, ``.5``, mixed numbers); else, for
tuples and intervals, the same brackets and element-wise equal; for a bare list (``-2, 3``), equal as multisets;
for matrices, element-wise; else both parse to sympy and are equal (``latex_sympy``: exactly when
both are rational numbers, else at fixed points). ``0.333`` is not ``\\frac{1}{3}``. An answer
longer than ``MAX_ANSWER_CHARS`` is compared as a normalised string only.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from fractions import Fraction

from regenesis.answers.numbers import format_number, parse_plain_number, standalone_numbers
from regenesis.answers.spans import Box, adjacent_boxes, boxes, last_line, located_answer_spans

MAX_ANSWER_CHARS = 1_000
MAX_ITEMS = 50  # elements of a tuple, list or matrix compared one by one

_INLINE_MATH = re.compile(r"(?<!\\)\$((?:\\.|[^$\\])+)\$")
_PROSE = re.compile(r"[^\W\d_]{2,}[^\d\\$=^_+*/<>{}\[\]|]*")  # words, no math: "correct", "positive, because ..."
_CHECKING = re.compile(r"\b(?:check|checking|verify|verifying|confirm)\b(?:\W+\w+){0,3}\W*\Z", re.IGNORECASE)
# Said right after a run of boxes, this makes them alternatives, one of which is the answer, not a set.
_EITHER_ACCEPTED = re.compile(r"\beither\b[^.]{0,60}\b(?:acceptable|correct|valid)\b", re.IGNORECASE)


def extract_math(text: str) -> str | None:
    """The math answer of ``text`` as written (trimmed), or None."""
    answers = _span_answers(text)
    first = next(answers, None)
    if first is not None:
        if first[1]:
            return first[0]
        return next((answer for answer, preferred in answers if preferred), first[0])
    inline = _INLINE_MATH.findall(last_line(text))
    if inline:
        return inline[-1].strip()
    values = standalone_numbers(text)
    return format_number(values[-1]) if values else None


def _span_answers(text: str) -> Iterator[tuple[str, bool]]:
    """The math answer of each final-answer span that holds one, the last span first, and whether it
    is preferred: a box, or a phrase that holds math and does not check an answer given before. A box
    is read with the boxes it closes a run of."""
    found = boxes(text)
    box_at = {box.start: index for index, box in enumerate(found)}
    for start, span in located_answer_spans(text):
        run = adjacent_boxes(text, found, box_at[start]) if start in box_at else []
        answer = _math_in_span(answer_of_boxes(text, run) if len(run) > 1 else span)
        if answer:
            checking = not run and _CHECKING.search(text, max(0, start - 40), start)
            yield answer, bool(run) or not (checking or _PROSE.fullmatch(answer))


def answer_of_boxes(text: str, run: list[Box]) -> str:
    """The one answer a run of adjacent boxes of ``text`` gives (``spans.adjacent_boxes``).

    Several values are an answer set, ``", "``-joined and so compared as a multiset (``-2, 1``). Two
    boxes of one value (two forms of it: ``\\boxed{x+11}`` or ``\\boxed{11+x}``), and alternatives the
    text says either of is accepted ("Either point is an acceptable answer."), are one answer: the last
    box. A gold answer is one string, so of such alternatives only the last is accepted.
    """
    contents = [box.content.strip() for box in run]
    if len(contents) == 1 or _EITHER_ACCEPTED.search(text, run[-1].end, run[-1].end + 120):
        return contents[-1]
    if len(contents) == 2 and math_equal(contents[1], contents[0]):
        return contents[-1]
    return ", ".join(contents)


def _math_in_span(span: str) -> str | None:
    inline = _INLINE_MATH.search(span)
    if inline:
        return inline.group(1).strip()
    sentence = re.split(r"\.(?=\s|$)", span)[0].strip()
    return sentence.strip("$ ") or None


def math_equal(predicted: str, gold: str) -> bool:
    """Whether two math answers are equal as LaTeX, or as plain numbers."""
    if latex_equal(predicted, gold):
        return True
    predicted_number, gold_number = parse_plain_number(predicted), parse_plain_number(gold)
    return predicted_number is not None and predicted_number == gold_number


# --- normalisation ------------------------------------------------------------------------------

_REMOVED = (
    "\\left", "\\right", "\\!", "\\,", "\\;", "\\:", "\\quad", "\\qquad", "\\displaystyle",
    "\\$", "\\%", "%", "$", "^{\\circ}", "^\\circ", "°", "\\circ",
)
_TEXT_COMMANDS = re.compile(r"\\(?:text|textbf|textit|mathrm|mathbf|mbox|operatorname)\s*\{([^{}]*)\}")
_UNIT_AFTER_NUMBER = re.compile(r"^([-+]?[\d.,/]+)\s*\\(?:text|mbox|mathrm)\{\s*[a-zA-Z][a-zA-Z .]*\}(\^\d)?$")
_MIXED_NUMBER = re.compile(
    r"(?P<sign>-?)(?P<whole>\d{1,30})\\frac\{(?P<numerator>\d{1,30})\}\{(?P<denominator>\d{1,30})\}")
_THOUSANDS = re.compile(r"^[-+]?\d{1,3}(,\d{3})+(\.\d+)?$")


def normalize_latex(answer: str) -> str:
    """A canonical string form of a LaTeX answer; the rules are in order:

    collapse blanks; drop surrounding ``$``/``\\(``/``\\[`` and a trailing period; drop a trailing
    unit in ``\\text{}`` after a number (``5\\text{ cm}``); unwrap ``\\text{}``/``\\mathrm{}``; drop
    ``\\left``/``\\right``, spacing commands, ``\\$``, ``%``, degree signs; ``\\dfrac``/``\\tfrac`` →
    ``\\frac``; ``\\frac12`` → ``\\frac{1}{2}``, ``\\sqrt2`` → ``\\sqrt{2}``; remove spaces;
    ``.5`` → ``0.5``; ``x=5`` → ``5`` for a single-letter left side; a mixed number as one fraction
    (``15\\frac{39}{40}`` → ``\\frac{639}{40}``: MATH writes them so, a product would be
    ``15\\cdot``); thousands commas in a lone number.
    """
    text = re.sub(r"\s+", " ", answer).strip()
    text = re.sub(r"^\\\(|\\\)$|^\\\[|\\\]$", "", text).strip()
    text = text.rstrip(".").strip()
    unit = _UNIT_AFTER_NUMBER.match(text)
    if unit:
        text = unit.group(1)
    text = _TEXT_COMMANDS.sub(r"\1", text)
    for token in _REMOVED:
        text = text.replace(token, "")
    text = text.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    text = re.sub(r"\\frac\s*(\d)\s*(\d)", r"\\frac{\1}{\2}", text)
    text = re.sub(r"\\frac\s*\{([^{}]*)\}\s*(\d)", r"\\frac{\1}{\2}", text)
    text = re.sub(r"\\frac\s*(\d)\s*\{", r"\\frac{\1}{", text)
    text = re.sub(r"\\sqrt\s*(\d+|[a-zA-Z])", r"\\sqrt{\1}", text)
    text = re.sub(r"\s+", "", text)
    text = re.sub(r"(?<![\d}])\.(\d)", r"0.\1", text)
    if text.count("=") == 1 and re.match(r"^[a-zA-Z]=", text):
        text = text[2:]
    mixed = _MIXED_NUMBER.fullmatch(text)
    if mixed and int(mixed["numerator"]) < int(mixed["denominator"]):
        value = int(mixed["whole"]) + Fraction(int(mixed["numerator"]), int(mixed["denominator"]))
        text = f"{mixed['sign']}\\frac{{{value.numerator}}}{{{value.denominator}}}"
    if _THOUSANDS.match(text):
        text = text.replace(",", "")
    return text.rstrip(".")


# --- equivalence --------------------------------------------------------------------------------

def latex_equal(predicted: str, gold: str) -> bool:
    """Whether two LaTeX answers denote the same value (the rules are in the module docstring)."""
    left, right = normalize_latex(predicted), normalize_latex(gold)
    if not left or not right:
        return False
    if left == right:
        return True
    if max(len(left), len(right)) > MAX_ANSWER_CHARS:
        return False
    if re.fullmatch(r"[A-Za-z ]+", left) and re.fullmatch(r"[A-Za-z ]+", right):
        return left.lower() == right.lower()
    return _structures_equal(left, right)


def _structures_equal(left: str, right: str) -> bool:
    left_matrix, right_matrix = _matrix_rows(left), _matrix_rows(right)
    if left_matrix is not None or right_matrix is not None:
        return (left_matrix is not None and right_matrix is not None
                and len(left_matrix) == len(right_matrix)
                and sum(map(len, left_matrix)) <= MAX_ITEMS
                and all(_sequences_equal(a, b) for a, b in zip(left_matrix, right_matrix)))
    left_open, left_items, left_close = _split_sequence(left)
    right_open, right_items, right_close = _split_sequence(right)
    if len(left_items) > 1 or len(right_items) > 1:
        if (left_open, left_close) != (right_open, right_close) or len(left_items) != len(right_items):
            return False
        if len(left_items) > MAX_ITEMS:
            return False
        if left_open:  # a tuple or an interval: ordered
            return _sequences_equal(left_items, right_items)
        return _unordered_equal(left_items, right_items)
    return _values_equal(left, right)


def _sequences_equal(left: list[str], right: list[str]) -> bool:
    return len(left) == len(right) and all(
        a == b or _values_equal(a, b) for a, b in zip(left, right))


def _unordered_equal(left: list[str], right: list[str]) -> bool:
    remaining = list(right)
    for item in left:
        match = next((other for other in remaining if item == other or _values_equal(item, other)), None)
        if match is None:
            return False
        remaining.remove(match)
    return True


def _matrix_rows(text: str) -> list[list[str]] | None:
    match = re.fullmatch(r"\\begin\{[pbv]?matrix\}(.*)\\end\{[pbv]?matrix\}", text)
    if not match:
        return None
    return [row.split("&") for row in match.group(1).split("\\\\") if row]


def _split_sequence(text: str) -> tuple[str, list[str], str]:
    """``(1,2]`` → ``("(", ["1", "2"], "]")``; ``1,2`` → ``("", ["1", "2"], "")``."""
    opening, closing = "", ""
    if len(text) > 1 and text[0] in "([" and text[-1] in ")]" and _wraps(text) and _top_level_commas(text[1:-1]):
        opening, closing, text = text[0], text[-1], text[1:-1]
    elif text.startswith("\\{") and text.endswith("\\}"):
        opening, closing, text = "{", "}", text[2:-2]
    items = _split_top_level(text)
    return opening, items, closing


def _wraps(text: str) -> bool:
    """Whether the bracket opening ``text`` is the one closing it (not ``(1,2)\\cup(3,4)``)."""
    depth = 0
    for index, char in enumerate(text):
        depth += char in "([{"
        depth -= char in ")]}"
        if depth == 0:
            return index == len(text) - 1
    return False


def _top_level_commas(text: str) -> bool:
    return len(_split_top_level(text)) > 1


def _split_top_level(text: str) -> list[str]:
    items, depth, current = [], 0, []
    for char in text:
        if char in "({[":
            depth += 1
        elif char in ")}]":
            depth -= 1
        if char == "," and depth == 0:
            items.append("".join(current))
            current = []
        else:
            current.append(char)
    items.append("".join(current))
    return items


def _values_equal(left: str, right: str) -> bool:
    from regenesis.answers.latex_sympy import values_equal  # heavy: sympy, loaded only when strings differ

    return values_equal(left, right)
