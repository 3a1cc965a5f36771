"""Math answers (LaTeX expressions, MATH): reading them out of text, normalising, and equivalence.

The last ``\\boxed{}`` wins (it is a final-answer span); in a marker span the first ``$...$`` group,
else the first sentence. Fallback: the last ``$...$`` of the last line, else the last number.

Equivalence (``latex_equal``): equal normalised strings (``\\dfrac``→``\\frac``, ``\\frac12``,
``\\left``, spaces, ``^\\circ``, ``\\%``, ``\\text{ units}``, ``x=``, ``.5``); else, for tuples and
intervals, the same brackets and element-wise equal; for a bare list (``-2, 3``), equal as multisets;
for matrices, element-wise; else both parse to sympy and are equal (``latex_sympy``: exactly when
both are rational numbers, else at fixed points). ``0.333`` is not ``\\frac{1}{3}``. An answer
longer than ``MAX_ANSWER_CHARS`` is compared as a normalised string only.
"""

from __future__ import annotations

import re

from regenesis.answers.numbers import format_number, numbers_in, parse_plain_number
from regenesis.answers.spans import final_answer_spans, last_line

MAX_ANSWER_CHARS = 1_000
MAX_ITEMS = 50  # elements of a tuple, list or matrix compared one by one

_INLINE_MATH = re.compile(r"(?<!\\)\$((?:\\.|[^$\\])+)\$")


def extract_math(text: str) -> str | None:
    """The math answer of ``text`` as written (trimmed), or None."""
    for span in final_answer_spans(text):
        answer = _math_in_span(span)
        if answer:
            return answer
    inline = _INLINE_MATH.findall(last_line(text))
    if inline:
        return inline[-1].strip()
    values = numbers_in(text)
    return format_number(values[-1]) if values else None


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
_THOUSANDS = re.compile(r"^[-+]?\d{1,3}(,\d{3})+(\.\d+)?$")


def normalize_latex(answer: str) -> str:
    """A canonical string form of a LaTeX answer; the rules are in order:

    drop surrounding ``$``/``\\(``/``\\[`` and a trailing period; drop a trailing unit in
    ``\\text{}`` after a number (``5\\text{ cm}``); unwrap ``\\text{}``/``\\mathrm{}``; drop
    ``\\left``/``\\right``, spacing commands, ``\\$``, ``%``, degree signs; ``\\dfrac``/``\\tfrac`` →
    ``\\frac``; ``\\frac12`` → ``\\frac{1}{2}``, ``\\sqrt2`` → ``\\sqrt{2}``; remove spaces;
    ``.5`` → ``0.5``; ``x=5`` → ``5`` for a single-letter left side; thousands commas in a lone
    number.
    """
    text = answer.strip()
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
    from regenesis.answers import latex_sympy  # heavy: sympy, loaded only when strings differ

    return latex_sympy.values_equal(left, right)
