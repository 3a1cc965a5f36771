"""Number answers: reading a number out of text, and comparing numbers with a gold value.

LaTeX is read as plain text first (``\\frac{1}{2}`` → ``1/2``, ``2\\frac{1}{2}`` → ``2 1/2``,
``\\text{}`` unwrapped, ``\\$``, ``\\%``, ``{,}``). In a final-answer span, text after its first
sentence end is dropped, then everything up to the span's last ``=`` (``5 + 3 = 8`` → ``8``), and
the *first* number of what remains is the answer, so trailing remarks ("18 (9 eggs at $2)") do not
leak in. Fallback: the last number of the text (math answers: the last that stands alone,
``standalone_numbers``).

A number may carry a currency sign, thousands commas (``1,234``; ``1,2`` is two numbers), a decimal
part, a minus sign (``-5``, ``−5``; not the hyphen of ``3-5``), a simple fraction (``3/4``), a mixed
number (``2 1/2``), ``%``/``percent`` (``25%`` is 25), a scale word (``2 million``), or be spelled
out (``eighteen``, ``twenty-five``, spans only). Units after it are ignored; a number token longer
than ``MAX_NUMBER_CHARS`` characters is no number.

Values compare exactly as fractions (``51.0`` = ``51`` = ``102/2``); when the gold has two or more
decimals (a rounded value), the prediction rounded half-up to as many decimals must equal it (gold
``4.17``: ``4.1667`` matches, ``4.2`` does not).
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, localcontext
from fractions import Fraction

from regenesis.answers.negation import follows_not
from regenesis.answers.spans import final_answer_spans, first_sentence

MAX_NUMBER_CHARS = 100

_NUMBER = re.compile(
    r"(?P<sign>[-−–](?=\s?[$€£¥]?\s?\.?\d))?\s?[$€£¥]?\s?"
    r"(?:(?P<whole>\d+)\s+(?=\d+\s*/\s*\d))?"
    r"(?P<value>\d{1,3}(?:,\d{3})+(?:\.\d+)?(?!\d)|\d+(?:\.\d+)?|\.\d+)"
    r"(?:\s*/\s*(?P<denominator>\d+(?:\.\d+)?)(?![\d/]))?"
    r"(?P<scale>\s+(?:thousand|million|billion|trillion)\b)?")
_OPERATORS = r"[\^_*/×÷·+]|\\(?:cdot|times|div|pm|mp)(?![a-zA-Z])"
_OPERATOR_BEFORE = re.compile(rf"(?:(?:{_OPERATORS}|{{)\s*|[^\W\d_])\Z")
_OPERATOR_AFTER = re.compile(rf"\s*(?:{_OPERATORS}|[-−–!}}])|[^\W\d_]")
_SCALES = {"thousand": 10**3, "million": 10**6, "billion": 10**9, "trillion": 10**12}
_UNITS = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
          "fifteen sixteen seventeen eighteen nineteen").split()
_TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()
_NUMBER_WORDS = {word: value for value, word in enumerate(_UNITS)}
_NUMBER_WORDS.update({word: 20 + 10 * index for index, word in enumerate(_TENS)})
_NUMBER_WORD = re.compile(r"\b(?:%s)(?:[-\s](?:%s))?\b" % ("|".join(_TENS + _UNITS), "|".join(_UNITS[1:10])),
                          re.IGNORECASE)


def plain_math(text: str) -> str:
    """LaTeX number notation as plain text: ``\\frac{1}{2}`` → ``1/2``, ``2\\frac{1}{2}`` → ``2 1/2``,
    ``\\$5`` → ``$5``."""
    text = re.sub(r"(?<=\d)\s*(?=\\[dt]?frac)", " ", text)  # 15\frac{39}{40} is the mixed number 15 39/40
    text = re.sub(r"\\[dt]?frac\s*\{\s*(-?[\d.]+)\s*\}\s*\{\s*([\d.]+)\s*\}", r"\1/\2", text)
    text = re.sub(r"\\[dt]?frac\s*(\d)\s*(\d)", r"\1/\2", text)
    text = re.sub(r"\\(?:text|textbf|mathrm|mbox)\s*\{([^{}]*)\}", r" \1", text)
    text = text.replace("{,}", ",").replace("\\$", "$").replace("\\%", "%").replace("\\!", "")
    return text.replace("\\left", "").replace("\\right", "")


def numbers_in(text: str, skip_negated: bool = False) -> list[Fraction]:
    """The numbers in ``text``; with ``skip_negated``, not those right after "not" ("not 20")."""
    values = []
    for match in _NUMBER.finditer(plain_math(text)):
        if skip_negated and follows_not(match.string, match.start("value")):
            continue
        value = _number_value(match)
        if value is not None:
            values.append(value)
    return values


def standalone_numbers(text: str) -> list[Fraction]:
    """The numbers in ``text`` that are not part of a larger expression: not an operand of ``+ - * / ^``
    (``17^5``, ``2 \\cdot 3``), not in braces (an exponent, a subscript, a ``\\sqrt{}``) and not
    glued to a letter (``5x``, ``x_2``), so that the end of a half-written formula gives no answer."""
    values = []
    for match in _NUMBER.finditer(plain_math(text)):
        if _in_expression(match):
            continue
        value = _number_value(match)
        if value is not None:
            values.append(value)
    return values


def _in_expression(match: re.Match) -> bool:
    text = match.string
    if match.group("sign"):
        if _is_binary_minus(text, match.start("sign")):
            return True
        start = match.start("sign")
    else:
        start = match.start("whole") if match.group("whole") else match.start("value")
    return bool(_OPERATOR_BEFORE.search(text[max(0, start - 12):start]) or _OPERATOR_AFTER.match(text, match.end()))


def parse_number(text: str) -> Fraction | None:
    """The first number in ``text``, or None."""
    values = numbers_in(text)
    return values[0] if values else None


def parse_plain_number(text: str) -> Fraction | None:
    """The number ``text`` is as a whole (``$5``, ``\\frac12``, ``3.``), or None when it is more."""
    plain = plain_math(text).strip().strip("$").rstrip(".")
    match = _NUMBER.fullmatch(plain.strip())
    return _number_value(match) if match else None


def _number_value(match: re.Match) -> Fraction | None:
    if len(match.group(0)) > MAX_NUMBER_CHARS:
        return None
    value = Fraction(match.group("value").replace(",", ""))
    if match.group("denominator"):
        denominator = Fraction(match.group("denominator"))
        if denominator == 0:
            return None
        value /= denominator
    if match.group("whole"):
        value += int(match.group("whole"))
    if match.group("scale"):
        value *= _SCALES[match.group("scale").strip().lower()]
    if match.group("sign") and not _is_binary_minus(match.string, match.start("sign")):
        value = -value
    return value


def _is_binary_minus(text: str, position: int) -> bool:
    """``5-3``, ``x-3``, ``5 - 3`` subtract; ``is -5``, ``(-5)``, ``= -5`` are negative numbers."""
    before = text[:position]
    if before[-1:].isalnum() or before[-1:] in (")", "]", "}", "%"):
        return True
    operand = before.rstrip()[-1:]
    return operand.isdigit() or operand in (")", "]", "}", "%")


def _spelled_number(text: str) -> Fraction | None:
    match = _NUMBER_WORD.search(text)
    if not match:
        return None
    words = re.split(r"[-\s]+", match.group(0).lower())
    return Fraction(sum(_NUMBER_WORDS[word] for word in words))


def _number_in_span(span: str) -> Fraction | None:
    span = plain_math(first_sentence(span))
    if "=" in span:
        span = span.rsplit("=", 1)[1]
    values = numbers_in(span, skip_negated=True)
    if values:
        return values[0]
    return None if re.search(r"\d", span) else _spelled_number(span)


def extract_number(text: str) -> str | None:
    """The number ``text`` answers, canonical (``format_number``), or None."""
    for span in final_answer_spans(text):
        value = _number_in_span(span)
        if value is not None:
            return format_number(value)
    values = numbers_in(text)
    return format_number(values[-1]) if values else None


def format_number(value: Fraction) -> str:
    """``18``, ``0.5``, ``-2.25``; ``1/3`` when no finite decimal exists."""
    if value.denominator == 1:
        return str(value.numerator)
    denominator = value.denominator
    for prime in (2, 5):
        while denominator % prime == 0:
            denominator //= prime
    if denominator != 1:
        return f"{value.numerator}/{value.denominator}"
    with localcontext() as context:
        context.prec = 60
        decimal = Decimal(value.numerator) / Decimal(value.denominator)
    return format(decimal.normalize(), "f")


def numbers_equal(predicted: str, gold: str) -> bool:
    """Whether ``predicted`` is ``gold``'s value, or rounds to it where ``gold`` is rounded."""
    predicted_value, gold_value = parse_number(predicted), parse_number(gold)
    if predicted_value is None or gold_value is None:
        return False
    if predicted_value == gold_value:
        return True
    decimals = _decimal_places(gold)
    return decimals >= 2 and _rounded_half_up(predicted_value, decimals) == gold_value


def _rounded_half_up(value: Fraction, decimals: int) -> Fraction:
    """``value`` rounded to ``decimals`` places, halves away from zero, exactly."""
    scale = 10 ** decimals
    magnitude = math.floor(abs(value) * scale + Fraction(1, 2))
    return Fraction(magnitude if value >= 0 else -magnitude, scale)


def _decimal_places(text: str) -> int:
    match = re.search(r"\.(\d+)", text)
    return len(match.group(1)) if match else 0
