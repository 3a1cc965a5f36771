"""The arithmetic check: every computation a path states holds."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

from regenesis.optimize.filters.arithmetic_parser import Parser, Side, latex_to_plain, tokenize
from regenesis.optimize.filters.verdict import Verdict, too_long_to_check
from regenesis.tasks.example import Example


def _states_computation(left: Side, right: Side) -> bool:
    """Whether "left = right" states the result of a computation. "2 kg = 2 * 1000" converts units;
    a worded equality counts only as "computation is number" ("12 x 6 is 72"), since in "less than 5
    is 5-1" or "1/5 which is 90/5" the words before "is" name something else."""
    if not (left.computed or right.computed) or left.unit:
        return False
    if left.computed and right.computed and right.lead is not None and math.isclose(right.lead, left.value):
        return False  # "7 x 60 = 420 + 23": the writer carries the result on into the next step
    if right.worded:
        return left.computed and not left.share and not right.computed
    return True


def _agrees(left: Side, right: Side) -> bool:
    """Whether a stated equality holds, allowing a result rounded or cut to the decimals it shows."""
    pairs = [(left.value, right.value)]
    # "30/120 * 100 = 25%" and "15/90 * 100% = 16.66" both read right
    if left.mentions_percent != right.mentions_percent:
        pairs += [(left.value * 100, right.value), (left.value, right.value * 100)]
    return any(_close(a, b, left, right) for a, b in pairs)


def _close(a: float, b: float, left: Side, right: Side) -> bool:
    if math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9):
        return True
    if left.computed and right.computed:
        return math.isclose(a, b, rel_tol=1e-6)
    computed, stated, side = (a, b, right) if left.computed else (b, a, left)
    if math.isclose(computed, round(computed), abs_tol=1e-9):
        return False  # an exact result must be stated exactly
    step = 10.0 ** -side.decimals * (0.01 if side.percent else 1)
    return abs(computed - stated) <= step or math.isclose(computed, stated, rel_tol=1e-2)


@dataclass(frozen=True)
class Statement:
    text: str
    holds: bool


@dataclass(frozen=True)
class _Reading:
    statements: tuple[Statement, ...]
    power_bombs: tuple[str, ...]


@lru_cache(maxsize=256)  # the form filter, the arithmetic filter and derives_answer read the same path
def read_computations(path: str) -> _Reading:
    """The computations ``path`` states and the power bombs it holds; nothing for an over-long path."""
    if too_long_to_check(path):
        return _Reading((), ())
    plain = latex_to_plain(path)
    parser = Parser(tokenize(plain))
    statements = []
    i = 0
    while i < len(parser.tokens):
        if not parser.can_start(i):
            i += 1
            continue
        sides, end = parser.chain(i)
        if len(sides) > 1 and not sides[0].computed and sides[1].computed:
            sides = sides[1:]  # "Week 2 = 35 + 35": a bare number before a computation labels it
        for left, right in zip(sides, sides[1:]):
            if _states_computation(left, right):
                statements.append(Statement(" ".join(plain[left.start:right.end].split()), _agrees(left, right)))
        i = max(end, i + 1)
    parser.read_exponents()
    bombs = (" ".join(plain[parser.tokens[a].start:parser.tokens[b - 1].end].split()) for a, b in parser.power_bombs)
    return _Reading(tuple(statements), tuple(dict.fromkeys(bombs)))


def stated_computations(path: str) -> list[Statement]:
    """Every computation ``path`` states as an equality, with whether it holds. Equalities between
    bare numbers ("1 hour = 60 minutes") state no computation and are left out; a path longer than
    ``MAX_PATH_CHARS`` is not read."""
    return list(read_computations(path).statements)


def power_bombs(path: str) -> list[str]:
    """The powers in ``path`` with an exponent above 1,000 or more than 1,000 digits ("(1/2)^{10^{10}}",
    "2^{2^{2^{2^{2^{2}}}}}"): no worked solution needs one, and an exact evaluator would not return."""
    return list(read_computations(path).power_bombs)


class ArithmeticFilter:
    """Every computation the path states holds (rounding to the shown decimals allowed)."""

    name = "arithmetic"

    def check(self, path: str, example: Example) -> Verdict:
        unread = too_long_to_check(path)
        if unread:
            return Verdict(self.name, False, unread)
        statements = stated_computations(path)
        false = [s.text for s in statements if not s.holds]
        if false:
            return Verdict(self.name, False, f"false statement: {false[0]}", {"false_statements": false})
        return Verdict(self.name, True, detail={"checked": len(statements)} if statements else {})
