"""LaTeX answers: find the last ``\\boxed{}``, normalise, and decide equivalence.

Model output is never evaluated as code. Equivalence goes through a small recursive-descent
parser of its own that builds sympy objects directly from a whitelist of LaTeX constructs
(numbers, single-letter variables, ``+ - * / ^``, ``\\frac``, ``\\sqrt``, ``\\pi``, ``\\infty``,
a few functions). Anything else makes the parse fail, and the answers are then compared as
normalised strings only. Inputs are size-limited, and powers whose result would be huge are
refused, so a hostile answer cannot make the comparison slow.
"""

from __future__ import annotations

import re
from fractions import Fraction
from functools import lru_cache

MAX_EXPRESSION_CHARS = 300
MAX_POWER_DIGITS = 2000  # refuse a**b when the result would have more digits than this
SAMPLE_POINTS = ((0.5772, 1.3247, 2.7183), (1.618, -0.7071, 0.9159), (-2.236, 0.3183, 1.4142))
RELATIVE_TOLERANCE = 1e-12

_BOX = re.compile(r"\\(?:boxed|fbox)(?![a-zA-Z])")


def boxed_answers(text: str, max_chars: int = 1_000) -> list[tuple[int, str]]:
    """Every ``\\boxed{...}`` (or ``\\fbox{}``, or ``\\boxed 5``) in ``text``: (position, content).

    Content longer than ``max_chars`` (or never closed) is not an answer and is left out.
    """
    found = []
    for match in _BOX.finditer(text):
        start = match.end()
        opening = re.compile(r"\s*\{").match(text, start)
        if opening:
            content = braced(text, opening.end() - 1, max_chars)
            if content is not None:
                found.append((match.start(), content[0]))
        else:
            word = re.compile(r"\s+([^\s$]+)").match(text, start)
            if word and len(word.group(1)) <= max_chars:
                found.append((match.start(), word.group(1)))
    return found


def last_boxed(text: str) -> str | None:
    """The content of the last ``\\boxed{...}`` in ``text``, or None."""
    found = boxed_answers(text)
    return found[-1][1] if found else None


def braced(text: str, start: int, max_chars: int | None = None) -> tuple[str, int] | None:
    """The content of the brace group opening at ``text[start]`` and the index after it."""
    depth = 0
    end = len(text) if max_chars is None else min(len(text), start + max_chars + 2)
    for index in range(start, end):
        char = text[index]
        if char == "{" and (index == 0 or text[index - 1] != "\\"):
            depth += 1
        elif char == "}" and (index == 0 or text[index - 1] != "\\"):
            depth -= 1
            if depth == 0:
                return text[start + 1:index], index + 1
    return None


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
    """Whether two LaTeX answers denote the same value (rules in ``regenesis.evals.matching``)."""
    left, right = normalize_latex(predicted), normalize_latex(gold)
    if not left or not right:
        return False
    if left == right:
        return True
    if re.fullmatch(r"[A-Za-z ]+", left) and re.fullmatch(r"[A-Za-z ]+", right):
        return left.lower() == right.lower()
    return _structures_equal(left, right)


def _structures_equal(left: str, right: str) -> bool:
    left_matrix, right_matrix = _matrix_rows(left), _matrix_rows(right)
    if left_matrix is not None or right_matrix is not None:
        return (left_matrix is not None and right_matrix is not None
                and len(left_matrix) == len(right_matrix)
                and all(_sequences_equal(a, b) for a, b in zip(left_matrix, right_matrix)))
    left_open, left_items, left_close = _split_sequence(left)
    right_open, right_items, right_close = _split_sequence(right)
    if len(left_items) > 1 or len(right_items) > 1:
        if (left_open, left_close) != (right_open, right_close) or len(left_items) != len(right_items):
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
    left_value, right_value = to_sympy(left), to_sympy(right)
    if left_value is None or right_value is None:
        return False
    return _sympy_equal(left_value, right_value)


def _sympy_equal(left, right) -> bool:
    """Exact for rational values; otherwise equal at 30 digits at three fixed points."""
    import cmath

    try:
        if left == right:
            return True
        if left.is_Rational and right.is_Rational:
            return False
        if left.free_symbols != right.free_symbols:
            return False
        symbols = sorted(left.free_symbols, key=lambda symbol: symbol.name)
        for point in SAMPLE_POINTS:
            values = {symbol: point[i % len(point)] + i for i, symbol in enumerate(symbols)}
            a = complex(left.evalf(30, subs=values))
            b = complex(right.evalf(30, subs=values))
            if not (cmath.isfinite(a) and cmath.isfinite(b)) or abs(a - b) > RELATIVE_TOLERANCE * max(1.0, abs(b)):
                return False
            if not symbols:
                break
        return True
    except (TypeError, ValueError, ArithmeticError, AttributeError):
        return False


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
    except (_ParseError, RecursionError, ValueError, TypeError, ArithmeticError):
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
    unary := ('-'|'+') unary | power; power := atom ('^' unary)?"""

    def __init__(self, tokens: list[tuple[str, str]]):
        self.tokens = tokens
        self.position = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token is None or (value is not None and token[1] != value):
            raise _ParseError(f"expected {value!r}")
        self.position += 1
        return token

    def expression(self):
        value = self.term()
        while self.peek() and self.peek()[1] in ("+", "-"):
            operator = self.take()[1]
            right = self.term()
            value = value + right if operator == "+" else value - right
        return value

    def term(self):
        value = self.unary()
        while True:
            token = self.peek()
            if token and (token[1] in ("*", "/") or token[1] in _MULTIPLY + _DIVIDE):
                self.take()
                right = self.unary()
                value = value / right if token[1] in ("/",) + _DIVIDE else value * right
            elif token and self._starts_atom(token):
                value = value * self.power()
            else:
                return value

    def unary(self):
        token = self.peek()
        if token and token[1] in ("-", "+"):
            self.take()
            value = self.unary()
            return -value if token[1] == "-" else value
        return self.power()

    def power(self):
        base = self.atom()
        if self.peek() and self.peek()[1] == "^":
            self.take()
            exponent = self.unary()
            return _bounded_power(base, exponent)
        return base

    @staticmethod
    def _starts_atom(token: tuple[str, str]) -> bool:
        kind, value = token
        return kind in ("number", "letter") or value in ("(", "{") or (
            kind == "command" and value not in _MULTIPLY + _DIVIDE)

    def group(self, opening: str, closing: str):
        self.take(opening)
        value = self.expression()
        self.take(closing)
        return value

    def atom(self):
        import sympy

        token = self.peek()
        if token is None:
            raise _ParseError("unexpected end")
        kind, value = token
        if kind == "number":
            self.take()
            return sympy.Rational(Fraction(value))
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
        import sympy

        name = self.take()[1][1:]
        if name == "frac":
            numerator = self.group("{", "}")
            denominator = self.group("{", "}")
            return numerator / denominator
        if name == "sqrt":
            degree = None
            if self.peek() and self.peek()[1] == "[":
                degree = self.group("[", "]")
            radicand = self.group("{", "}")
            return sympy.sqrt(radicand) if degree is None else _bounded_power(radicand, 1 / degree)
        if name == "pi":
            return sympy.pi
        if name == "infty":
            return sympy.oo
        if name in _FUNCTIONS:
            argument = self.unary() if not (self.peek() and self.peek()[1] in ("(", "{")) else self.atom()
            function = {"ln": sympy.log, "log": sympy.log}.get(name) or getattr(sympy, name)
            return function(argument)
        raise _ParseError(f"unsupported command \\{name}")


def _bounded_power(base, exponent):
    import math

    import sympy

    if exponent.is_number and base.is_number:
        magnitude = abs(complex(exponent.evalf(15)))
        base_size = abs(complex(base.evalf(15)))
        if base_size > 1 and magnitude * math.log10(base_size) > MAX_POWER_DIGITS:
            raise _ParseError("power too large")
    elif exponent.is_number and abs(complex(exponent.evalf(15))) > MAX_POWER_DIGITS:
        raise _ParseError("exponent too large")
    return sympy.Pow(base, exponent)
