"""A bounded comparison of LaTeX values through sympy, for answers that differ as strings.

Model output is never evaluated as code. A small recursive-descent parser builds sympy objects
directly from a whitelist of LaTeX constructs (numbers, single-letter variables, ``+ - * / ^``,
``\\frac``, ``\\sqrt``, ``\\pi``, ``\\infty``, a few functions); anything else makes the parse fail.
Two values are equal exactly when both are rational numbers, else to ``RELATIVE_TOLERANCE`` at the
fixed ``SAMPLE_POINTS``, with the same free symbols.

A hostile answer cannot make the comparison slow, because sympy never sees anything large: an
expression is at most ``MAX_EXPRESSION_CHARS`` long and ``MAX_DEPTH`` groups deep; an exact
number has at most ``MAX_POWER_DIGITS`` digits; a power's exponent is at most ``MAX_EXPONENT``
(a root at most ``MAX_ROOT_DEGREE``) and its value at most ``MAX_POWER_DIGITS`` digits; a
function's argument is at most ``MAX_FUNCTION_ARGUMENT`` (``\\exp``: its value at most
``MAX_POWER_DIGITS`` digits). Where the expression has variables, these hold at each of the points
the comparison evaluates it at, so those evaluations stay small too. Anything past a bound is
"not comparable": the parse fails before sympy would evaluate it.

sympy takes seconds to import, so ``regenesis.answers.latex`` imports this module only when a
comparison needs it.
"""

from __future__ import annotations

import cmath
import math
import re
from fractions import Fraction
from functools import lru_cache

import sympy

MAX_EXPRESSION_CHARS = 300
MAX_DEPTH = 40
MAX_POWER_DIGITS = 2000
MAX_EXPONENT = 1000
MAX_ROOT_DEGREE = 100
MAX_FUNCTION_ARGUMENT = 1e6
# Each column holds a negative value: a variable takes the values of one column (see _sample_values).
SAMPLE_POINTS = ((0.5772, 1.3247, -2.7183), (1.618, -0.7071, 0.9159), (-2.236, 0.3183, 1.4142))
RELATIVE_TOLERANCE = 1e-12


def values_equal(left: str, right: str) -> bool:
    """Whether two normalised LaTeX strings parse (whitelist) to equal values."""
    left_value, right_value = to_sympy(left), to_sympy(right)
    if left_value is None or right_value is None:
        return False
    return _sympy_equal(left_value, right_value)


def _sympy_equal(left, right) -> bool:
    """Exact for rational values; otherwise equal at 30 digits at three fixed points."""
    try:
        if left == right:
            return True
        if left.is_Rational and right.is_Rational:
            return False
        if left.free_symbols != right.free_symbols:
            return False
        for values in _sample_values(left.free_symbols):
            a = complex(left.evalf(30, subs=values))
            b = complex(right.evalf(30, subs=values))
            if not (cmath.isfinite(a) and cmath.isfinite(b)) or abs(a - b) > RELATIVE_TOLERANCE * max(1.0, abs(b)):
                return False
        return True
    except (TypeError, ValueError, ArithmeticError, AttributeError):
        return False


_SYMBOL_ORDER = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _sample_values(symbols) -> list[dict]:
    """The substitutions an expression with ``symbols`` is compared at: one (none) for a number,
    else one for each sample point. A variable's value depends on its name only, so that the parser
    can bound an expression at the very points the comparison will use."""
    if not symbols:
        return [{}]
    return [{symbol: _sample_value(symbol.name, point) for symbol in symbols} for point in SAMPLE_POINTS]


def _sample_value(name: str, point: tuple[float, ...]) -> float:
    """A value of one column of ``point``, scaled by the letter's rank so that no two letters agree."""
    rank = _SYMBOL_ORDER.index(name)
    return point[rank % len(point)] * (1 + rank / len(_SYMBOL_ORDER))


# --- a whitelist parser from LaTeX to sympy -----------------------------------------------------

_TOKEN = re.compile(
    r"\s*(?:(?P<number>\d+(?:\.\d+)?|\.\d+)|(?P<command>\\[a-zA-Z]+)|(?P<letter>[a-zA-Z])"
    r"|(?P<symbol>[-+*/^(){}\[\]]))")
_FUNCTIONS = ("sin", "cos", "tan", "cot", "sec", "csc", "log", "ln", "exp")
_MULTIPLY = ("\\cdot", "\\times")
_DIVIDE = ("\\div",)


class _ParseError(ValueError):
    pass


@lru_cache(maxsize=4096)
def to_sympy(text: str):
    """A sympy expression for a normalised LaTeX string, or None when it is outside the whitelist."""
    if not text or len(text) > MAX_EXPRESSION_CHARS:
        return None
    try:
        tokens = _tokenize(text)
        parser = _Parser(tokens)
        value = parser.expression()
        if parser.position != len(tokens):
            raise _ParseError("trailing tokens")
        return value
    except (_ParseError, ValueError, TypeError, ArithmeticError):
        return None


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    text = text.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match or match.end() == position:
            raise _ParseError(f"unexpected {text[position:position + 10]!r}")
        kind = match.lastgroup
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


class _Parser:
    """expression := term (('+'|'-') term)*; term := unary (('*'|'/'|implicit) unary)*;
    unary := ('-'|'+') unary | power; power := atom ('^' unary)?

    Every value it builds passes a bound (``_bounded``, ``_bounded_power``, ``_bounded_function``)
    before sympy computes with it, and groups, signs and exponents nest at most ``MAX_DEPTH`` deep."""

    def __init__(self, tokens: list[tuple[str, str]]):
        self.tokens = tokens
        self.position = 0
        self.depth = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token is None or (value is not None and token[1] != value):
            raise _ParseError(f"expected {value!r}")
        self.position += 1
        return token

    def nested(self, parse):
        """``parse()`` one level deeper; past ``MAX_DEPTH`` the text is not read."""
        if self.depth >= MAX_DEPTH:
            raise _ParseError("nested too deeply")
        self.depth += 1
        try:
            return parse()
        finally:
            self.depth -= 1

    def expression(self):
        value = self.term()
        while self.peek() and self.peek()[1] in ("+", "-"):
            operator = self.take()[1]
            right = self.term()
            value = _bounded(value + right if operator == "+" else value - right)
        return value

    def term(self):
        value = self.unary()
        while True:
            token = self.peek()
            if token and (token[1] in ("*", "/") or token[1] in _MULTIPLY + _DIVIDE):
                self.take()
                right = self.unary()
                value = _bounded(value / right if token[1] in ("/",) + _DIVIDE else value * right)
            elif token and self._starts_atom(token):
                value = _bounded(value * self.power())
            else:
                return value

    def unary(self):
        token = self.peek()
        if token and token[1] in ("-", "+"):
            self.take()
            value = self.nested(self.unary)
            return -value if token[1] == "-" else value
        return self.power()

    def power(self):
        base = self.atom()
        if self.peek() and self.peek()[1] == "^":
            self.take()
            exponent = self.nested(self.unary)
            return _bounded_power(base, exponent)
        return base

    @staticmethod
    def _starts_atom(token: tuple[str, str]) -> bool:
        kind, value = token
        return kind in ("number", "letter") or value in ("(", "{") or (
            kind == "command" and value not in _MULTIPLY + _DIVIDE)

    def group(self, opening: str, closing: str):
        self.take(opening)
        value = self.nested(self.expression)
        self.take(closing)
        return value

    def atom(self):
        token = self.peek()
        if token is None:
            raise _ParseError("unexpected end")
        kind, value = token
        if kind == "number":
            self.take()
            return _bounded(sympy.Rational(Fraction(value)))
        if kind == "letter":
            self.take()
            return sympy.Symbol(value)
        if value == "(":
            return self.group("(", ")")
        if value == "{":
            return self.group("{", "}")
        if kind == "command":
            return self.command()
        raise _ParseError(f"unexpected {value!r}")

    def command(self):
        name = self.take()[1][1:]
        if name == "frac":
            numerator = self.group("{", "}")
            denominator = self.group("{", "}")
            return _bounded(numerator / denominator)
        if name == "sqrt":
            degree = sympy.Integer(2)
            if self.peek() and self.peek()[1] == "[":
                degree = self.group("[", "]")
            radicand = self.group("{", "}")
            return _bounded_power(radicand, 1 / degree)
        if name == "pi":
            return sympy.pi
        if name == "infty":
            return sympy.oo
        if name in _FUNCTIONS:
            argument = self.nested(self.unary if not (self.peek() and self.peek()[1] in ("(", "{")) else self.atom)
            return _bounded_function(name, argument)
        raise _ParseError(f"unsupported command \\{name}")


# --- bounds: checked before sympy computes, at the points the comparison will evaluate -------------

def _bounded(value):
    """``value``, unless it is an exact number with more than ``MAX_POWER_DIGITS`` digits."""
    if value.is_Rational and _digits(value) > MAX_POWER_DIGITS:
        raise _ParseError("number too large")
    return value


def _digits(value) -> float:
    """About how many digits an exact rational's numerator or denominator has."""
    return max(abs(value.p), value.q).bit_length() * math.log10(2)


def _sizes(value) -> list[float]:
    """|value| at each substitution the comparison uses (``_sample_values``); inf where it is not finite."""
    sizes = []
    for values in _sample_values(value.free_symbols):
        try:
            size = abs(complex(value.evalf(15, subs=values)))
        except (TypeError, ValueError, ArithmeticError):
            size = math.inf
        sizes.append(size if math.isfinite(size) else math.inf)
    return sizes


def _log10_size(value) -> float:
    """The largest log10 |value| over the sample points (exact for rationals); 0 for zero."""
    if value.is_Rational:
        return 0.0 if value == 0 else math.log10(abs(value.p)) - math.log10(value.q)
    return max((math.log10(size) if size else 0.0) for size in _sizes(value))


def _bounded_power(base, exponent):
    """``base ** exponent`` when the exponent is small (at most ``MAX_EXPONENT``, a root at most
    ``MAX_ROOT_DEGREE``) and the power has at most ``MAX_POWER_DIGITS`` digits (or decimals);
    sympy would otherwise compute it exactly, or evaluate it at a precision without bound."""
    if exponent.is_Rational:
        if abs(exponent) > MAX_EXPONENT or exponent.q > MAX_ROOT_DEGREE:
            raise _ParseError("exponent too large")
        largest_exponent = float(abs(exponent))
    else:
        largest_exponent = max(_sizes(exponent))
        if largest_exponent > MAX_EXPONENT:
            raise _ParseError("exponent too large")
    if largest_exponent * abs(_log10_size(base)) > MAX_POWER_DIGITS:
        raise _ParseError("power too large")
    return _bounded(sympy.Pow(base, exponent))


def _bounded_function(name: str, argument):
    """``name(argument)`` when the argument is small enough to evaluate: \\exp of at most
    ``MAX_POWER_DIGITS`` digits, any other function of at most ``MAX_FUNCTION_ARGUMENT``."""
    largest = max(_sizes(argument))
    limit = MAX_POWER_DIGITS * math.log(10) if name == "exp" else MAX_FUNCTION_ARGUMENT
    if name not in ("log", "ln") and largest > limit:
        raise _ParseError(f"argument of \\{name} too large")
    function = {"ln": sympy.log, "log": sympy.log}.get(name) or getattr(sympy, name)
    return function(argument)
