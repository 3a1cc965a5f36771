"""A tokenizer and a recursive-descent parser of the computations a path states.

It reads numbers and + - * / ^ with floats only (never ``eval``), and bounds what it reads: at most
``_MAX_PARSE_DEPTH`` levels of nesting and ``_MAX_SIDE_TOKENS`` tokens a side of an equality, and no
power with an exponent above ``_MAX_EXPONENT`` or more than ``_MAX_POWER_DIGITS`` digits."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from regenesis.answers import MAX_NUMBER_CHARS
from regenesis.optimize.filters.reading import CODE_BLOCK


class _NoParse(Exception):
    pass


class _PowerBomb(_NoParse):
    """A power too large to mean anything in a worked solution; ``args`` are its token range."""


_MAX_PARSE_DEPTH = 16  # parentheses, signs and exponents nested deeper are not read
_MAX_SIDE_TOKENS = 48  # nor is one side of an equality longer than this
_MAX_EXPONENT = 1000  # a power with a larger exponent, or more digits than _MAX_POWER_DIGITS, is a bomb
_MAX_POWER_DIGITS = 1000
_MAX_LATEX_PASSES = 10  # \frac, \boxed and \text nested deeper stay opaque


@dataclass(frozen=True)
class _Token:
    # num, op, eq, lp, rp, word, other, or term: what the parser does not read (3x, 2nd, 5!, 6:00, 1:2, \\sqrt)
    kind: str
    text: str
    start: int
    end: int
    value: float = 0.0
    percent: bool = False
    decimals: int = 0
    fraction: bool = False  # written a/b without spaces, which binds tighter than a spaced "/"


@dataclass(frozen=True)
class Side:
    """One side of a stated equality."""

    value: float
    computed: bool  # holds an operation, as opposed to a bare number
    percent: bool  # a bare number written with %
    decimals: int  # the decimals a bare number shows
    start: int
    end: int
    unit: bool = False  # one number with unit words before the equality ("2 kg = 2 * 1000", "1/4 inch = 10 miles")
    share: bool = False  # a proper fraction a/b, which names a part ("1/5 which is 90/5") more than it computes
    worded: bool = False  # reached through a worded equality ("is", "which is")
    lead: float | None = None  # the value of its first number, when it holds more than one
    mentions_percent: bool = False


_OPAQUE = "⟂"  # stands for a LaTeX command the parser does not read (\\sqrt, \\log, \\binom, ...)
_TOKEN = re.compile(r"""
    (?P<clock>\d+(?::\d+)+)
  | (?<![\d/.^])(?:(?P<whole>\d+)\ (?:and\ )?)?(?P<fraction>\d+/[1-9]\d*)(?![\d/.])
  | (?P<num>(?:\$\ ?)?(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|(?<![\d.])\.\d+))
    (?P<pct>\ ?(?:%|percent\b))?(?P<glued>[A-Za-z_!])?
  | (?P<op>[-+*/^×÷−–])
  | (?P<eq>=|≈)
  | (?P<lp>\()
  | (?P<rp>\))
  | (?P<opaque>⟂)
  | (?P<word>[A-Za-z][A-Za-z0-9_'’]*(?:[/-][A-Za-z]+)*|°[CF]?)
  | (?P<other>\S|\n)
""", re.X)
_SYMBOLS = {"×": "*", "÷": "/", "−": "-", "–": "-"}
_OPERATOR_WORDS = {"x": "*", "times": "*", "plus": "+", "minus": "-"}
_CLAUSE_WORDS = {"is", "are", "was", "were", "equals", "which", "that", "and", "or", "so", "then", "but",
                 "because", "if", "when", "since", "gives", "makes", "than", "to"}
_COMPARATIVES = {"more", "less", "fewer", "greater", "larger", "smaller", "higher", "lower", "times",
                 "older", "younger", "longer", "shorter", "than", "extra", "left"}
_EQUALITY_WORDS = (["which", "is"], ["which", "equals"], ["is", "equal", "to"], ["is", "about"],
                   ["is", "approximately"], ["equals"], ["is"])
_MAX_UNIT_WORDS = 8

# A box one brace level deep, unwrapped pass by pass with the other commands below (answers are read
# out of boxes, at any depth, by ``regenesis.answers.boxed_answers``).
_BOXED = re.compile(r"\\boxed\s*\{((?:[^{}]|\{[^{}]*\})*)\}")
_LAYOUT_COMMANDS = r"\\(?:left|right|displaystyle|quad|qquad|[bB]igg?[lr]?|,|;|:|!| )"


def latex_to_plain(text: str) -> str:
    """The math of ``text`` in plain notation: fractions as ((a)/(b)), \\times as *, \\text{...} as words,
    any other command as an opaque token; display delimiters become line breaks, which end a computation."""
    text = CODE_BLOCK.sub("\n", text).replace("{,}", ",").replace(",\\!", ",")  # LaTeX thousands: 1{,}000
    for _ in range(_MAX_LATEX_PASSES):
        previous = text
        text = _BOXED.sub(r" \1 ", text)
        text = re.sub(r"\\[dt]?frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}", r"((\1)/(\2))", text)
        text = re.sub(r"\\[dt]?frac\s*(\d)(\d)", r"((\1)/(\2))", text)
        text = re.sub(r"\\(?:text|mathrm|textrm|textbf|mbox|operatorname)\s*\{([^{}]*)\}", r" \1 ", text)
        if text == previous:
            break
    for pattern, plain in ((r"\\times|\\cdot|\\ast", " * "), (r"\\div", " / "), (r"\\approx|\\simeq", " ≈ "),
                           (r"\\%", "%"), (r"\\\$", "$"), (_LAYOUT_COMMANDS, " "), (r"\\[\[\]()]", "\n"),
                           (r"\*\*", " "), (r"\\[A-Za-z]+(?:\[[^\]]*\])?", f" {_OPAQUE} ")):
        text = re.sub(pattern, plain, text)
    text = text.replace("{", "(").replace("}", ")")
    return re.sub(r"^[ \t]*[*•-][ \t]+", "", text, flags=re.M)  # bullets are not minus signs


def tokenize(text: str) -> list[_Token]:
    tokens = []
    for match in _TOKEN.finditer(text):
        if (match.group("fraction") or match.group("num")) and len(match.group(0)) > MAX_NUMBER_CHARS:
            tokens.append(_Token("term", match.group(0), match.start(), match.end()))  # digits, not a quantity
            continue
        if match.group("fraction"):
            numerator, denominator = match.group("fraction").split("/")
            value = int(match.group("whole") or 0) + int(numerator) / int(denominator)  # "1 and 1/4", "2 1/2"
            tokens.append(_Token("num", match.group(0), match.start(), match.end(), value, fraction=True))
            continue
        if match.group("num") is None:
            kind = "term" if match.lastgroup in ("clock", "opaque") else match.lastgroup
            tokens.append(_Token(kind, match.group(0), match.start(), match.end()))
            continue
        digits = match.group("num").replace("$", "").replace(",", "").strip()
        percent = match.group("pct") is not None
        leading_zero = re.match(r"0\d", digits) is not None  # "0900" is a time or a code, not a quantity
        kind = "term" if match.group("glued") or leading_zero else "num"
        value = float(digits) / (100 if percent else 1)
        tokens.append(_Token(kind, match.group(0), match.start(), match.end(), value, percent,
                             len(digits.partition(".")[2])))
    return _mark_ranges(tokens)


def _mark_ranges(tokens: list[_Token]) -> list[_Token]:
    """"3-4 days" is a range, not a subtraction: an unspaced hyphen between numbers followed by a word."""
    marked = list(tokens)
    for i in range(1, len(tokens) - 2):
        left, dash, right, after = tokens[i - 1: i + 3]
        if (dash.text in "-–" and left.kind == right.kind == "num" and left.end == dash.start == right.start - 1
                and after.kind == "word" and after.text.lower() not in _OPERATOR_WORDS):
            marked[i] = _Token("other", dash.text, dash.start, dash.end)
    return marked


class Parser:
    """Recursive descent over the tokens of a text.

    chain := expr (equality expr)*     equality := = | ≈ | is | equals | which is | is equal to ...
    expr := term ((+|-) term)*         term := factor ((*|/|x|times|of) factor)*
    factor := unary (^ factor)?        unary := -unary | number [unit] | ( expr ) [unit]

    A unit is a few words after a quantity ("tons of grapes per acre"), read as part of it only
    when an operator or an equality follows them. "of" multiplies only after a share ("20% of").

    A side nested deeper than ``_MAX_PARSE_DEPTH`` or longer than ``_MAX_SIDE_TOKENS`` tokens is not
    read; a power bomb (``_power_is_bomb``) is not read either, and its token range is kept in
    ``power_bombs``.
    """

    def __init__(self, tokens: list[_Token]):
        self.tokens = tokens
        self.depth = 0
        self.side_start = 0
        self.power_bombs: list[tuple[int, int]] = []

    def kind(self, i: int) -> str:
        return self.tokens[i].kind if i < len(self.tokens) else "end"

    def word(self, i: int) -> str:
        return self.tokens[i].text.lower() if self.kind(i) == "word" else ""

    def operator(self, i: int, after_share: bool = False) -> tuple[str, int] | None:
        """The operator at ``i`` (a symbol or a word) and the index after it."""
        if self.kind(i) == "op":
            return _SYMBOLS.get(self.tokens[i].text, self.tokens[i].text), i + 1
        word = self.word(i)
        if word in _OPERATOR_WORDS and (word != "x" or self._spaced(i)):
            return _OPERATOR_WORDS[word], i + 1
        if word == "of" and after_share:
            return "*", i + 1
        return None

    def _spaced(self, i: int) -> bool:
        """Whether the token at ``i`` stands apart from both neighbours ("12 x 6", not "(3/2)x")."""
        return (0 < i < len(self.tokens) - 1 and self.tokens[i - 1].end < self.tokens[i].start
                and self.tokens[i].end < self.tokens[i + 1].start)

    def equality(self, i: int) -> tuple[bool, int] | None:
        """(whether it is worded, index after it) when an equality starts at ``i``."""
        if self.kind(i) == "eq":
            return False, i + 1
        if self.kind(i) == "other" and self.tokens[i].text == "," and self.word(i + 1) == "which":
            i += 1
        words = [self.word(i + k) for k in range(3)]
        phrase = next((p for p in _EQUALITY_WORDS if words[: len(p)] == p), None)
        return (True, i + len(phrase)) if phrase else None

    def can_start(self, i: int) -> bool:
        """A computation starts at a number, a negative number or a parenthesis that does not
        continue something before it ("3x + 8 = 38" does not start at 8)."""
        token = self.tokens[i]
        negative = token.text in "-−" and self.kind(i + 1) == "num" and self.tokens[i + 1].start == token.end
        if token.kind not in ("num", "lp") and not negative:
            return False
        if i == 0:
            return True
        before = self.tokens[i - 1]
        if token.kind == "lp" and before.kind in ("word", "term") and before.end == token.start:
            return False  # "f(3) + 1": a function's argument
        if negative and before.kind == "word" and before.text.lower() not in _CLAUSE_WORDS:
            return False  # "weight - 2" is a subtraction from a word, not -2
        return before.kind not in ("op", "num", "term", "rp") and before.text.lower() not in {*_OPERATOR_WORDS, "of"}

    def chain(self, i: int) -> tuple[list[Side], int]:
        """The sides of the equality chain starting at ``i`` ("a = b = c"), and the index after it."""
        sides: list[Side] = []
        worded = False
        while True:
            try:
                value, j, computed = self.side(self.expression, i)
            except _PowerBomb as bomb:
                self.power_bombs.append(bomb.args)
                return sides, i
            except (_NoParse, OverflowError):
                return sides, i
            glued_word = self.kind(j) == "word" and self.tokens[j].start == self.tokens[j - 1].end
            if self.kind(j) in ("term", "lp", "num", "op") or glued_word:
                return sides, i  # the side goes on in a form this parser does not read ("(3/2)x")
            if worded and not computed and self.word(j) in _COMPARATIVES:
                return sides, i  # "... is 2 more than ..." compares, it does not state a result
            sides.append(self._side(i, j, value, computed, worded))
            equality = self.equality(j)
            if equality is None:
                return sides, j
            worded, i = equality

    def _side(self, i: int, j: int, value: float, computed: bool, worded: bool) -> Side:
        span = self.tokens[i:j]
        numbers = [t for t in span if t.kind == "num"]
        operators = [t.text for t in span if t.kind == "op"]
        bare = numbers[0] if numbers and not computed else None
        single_fraction = (len(numbers) == 2 and operators == ["/"]) or (len(numbers) == 1 and numbers[0].fraction)
        quantity = len(numbers) == 1 and not operators
        return Side(value, computed, bool(bare and bare.percent), bare.decimals if bare else 0,
                     span[0].start, span[-1].end, unit=quantity and any(t.kind == "word" for t in span),
                     share=single_fraction and abs(value) < 1, worded=worded,
                     lead=numbers[0].value if len(numbers) > 1 else None,
                     mentions_percent=any(t.percent for t in numbers))

    def read_exponents(self) -> None:
        """Every exponent, also one of a base no computation starts at ("x^{10^{10}}"), into
        ``power_bombs`` when the power is one."""
        for k, token in enumerate(self.tokens):
            if token.kind != "op" or token.text != "^":
                continue
            try:
                exponent, end, _, _ = self.side(self._factor, k + 1)
            except _PowerBomb as bomb:
                self.power_bombs.append(bomb.args)
                continue
            except (_NoParse, OverflowError):
                continue
            if _power_is_bomb(None, exponent):
                self.power_bombs.append((max(k - 1, 0), end))

    def side(self, parse, i: int):
        """``parse(i)`` as a fresh side of an equality: the depth and token bounds start over."""
        self.depth, self.side_start = 0, i
        return parse(i)

    def _nested(self, parse, i: int):
        if self.depth >= _MAX_PARSE_DEPTH:
            raise _NoParse
        self.depth += 1
        try:
            return parse(i)
        finally:
            self.depth -= 1

    def expression(self, i: int) -> tuple[float, int, bool]:
        """(value, next index, whether it holds an operation)."""
        value, i, computed, _ = self._term(i)
        while (op := self.operator(i)) and op[0] in "+-":
            right = self._operand(self._term, i, op[1])
            if right is None:
                break
            value = value + right[0] if op[0] == "+" else value - right[0]
            i, computed = right[1], True
        return value, i, computed

    def _operand(self, parse, operator_at: int, start: int):
        """What ``parse`` reads at ``start`` after the operator at ``operator_at``; None when that
        operator is a word that turns out not to be one ("4/5 of the day", "3 times as many")."""
        try:
            return parse(start)
        except _NoParse:
            if self.kind(operator_at) == "word":
                return None
            raise

    def _term(self, i: int) -> tuple[float, int, bool, bool]:
        value, i, computed, share = self._factor(i)
        while (op := self.operator(i, share)) and op[0] in "*/":
            right = self._operand(self._factor, i, op[1])
            if right is None:
                break
            if op[0] == "/" and right[0] == 0:
                raise _NoParse
            value = value * right[0] if op[0] == "*" else value / right[0]
            i, computed, share = right[1], True, right[3]
        return value, i, computed, share or computed

    def _factor(self, i: int) -> tuple[float, int, bool, bool]:
        start = i
        base, i, computed, share = self._unary(i)
        if (op := self.operator(i)) and op[0] == "^":
            exponent, i, _, _ = self._nested(self._factor, op[1])
            if _power_is_bomb(base, exponent):
                raise _PowerBomb(start, i)
            if abs(exponent) > 64 or (base == 0 and exponent < 0):
                raise _NoParse
            power = base ** exponent
            if isinstance(power, complex):  # a negative base to a fractional power
                raise _NoParse
            return power, i, True, False
        return base, i, computed, share

    def _unary(self, i: int) -> tuple[float, int, bool, bool]:
        """(value, next index, holds an operation, is a share that "of" may multiply)."""
        if i - self.side_start > _MAX_SIDE_TOKENS:
            raise _NoParse
        if self.kind(i) == "op" and self.tokens[i].text in "-−":
            value, i, computed, share = self._nested(self._unary, i + 1)
            return -value, i, computed, share
        if self.kind(i) == "num":
            token = self.tokens[i]
            return token.value, self._unit_end(i + 1), token.fraction, token.percent or token.fraction
        if self.kind(i) == "lp":
            value, j, computed = self._nested(self.expression, i + 1)
            if self.kind(j) != "rp":
                raise _NoParse
            return value, self._unit_end(j + 1), computed, computed
        raise _NoParse

    def _unit_end(self, i: int) -> int:
        """The index after the unit words that follow a quantity ending before ``i``."""
        if self.word(i) == "of":
            return i  # "1/3 of Solomon" multiplies by something unknown: not a unit
        j = i
        while (j - i < _MAX_UNIT_WORDS and self.kind(j) == "word" and len(self.word(j)) > 1
               and self.word(j) not in _CLAUSE_WORDS and self.word(j) not in _OPERATOR_WORDS):
            j += 1
        continues = self.operator(j)
        if j > i and ((continues and continues[0] != "^") or self.kind(j) in ("eq", "rp")):
            return j
        return i


def _power_is_bomb(base: float | None, exponent: float) -> bool:
    """An exponent above ``_MAX_EXPONENT``, or, for a known base, a power of more than
    ``_MAX_POWER_DIGITS`` digits (or decimals)."""
    if abs(exponent) > _MAX_EXPONENT:
        return True
    return bool(base) and abs(exponent) * abs(math.log10(abs(base))) > _MAX_POWER_DIGITS
