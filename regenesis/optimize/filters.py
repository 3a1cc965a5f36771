"""Quality filters: keep only the reasoning paths that support their answer.

Answer matching alone keeps lucky guesses: a small model often reaches the gold number through false
arithmetic, or names the right option with no reason at all. Every method's bootstrap loop runs these
filters on the paths that passed answer matching, cheap ones first:

- ``form``: one final-answer line, at the end; no degenerate repetition; within the length limit; no
  trace of the prompt's hint or guidelines;
- ``arithmetic``: every computation the path states ("16 - 3 - 4 = 9", "12 x 6 is 72", "20% of 500 =
  100") is checked with a small parser of numbers and + - * / ^ (never ``eval``);
- ``choice_support``: for multiple-choice and yes/no tasks, the choice follows from stated reasons
  instead of being named, contradicted or argued for equally with another option;
- ``judge`` (optional, as in the paper's reference code): a model reads question, path and gold answer
  and decides whether the reasoning supports the answer; its verdict and rationale become provenance.
  Label-free, the judge is not shown any gold answer: it decides whether the path earns its own.

``check_path`` runs them in order and stops at the first failure, so the judge is only asked about
paths every cheap filter kept.

A path is untrusted model output. Every check reads at most ``MAX_PATH_CHARS`` characters (a longer
path fails with a reason), parses at most ``_MAX_PARSE_DEPTH`` levels of nesting and
``_MAX_SIDE_TOKENS`` tokens a side of an equality, computes only with floats and small powers, and
matches patterns in linear time; ``form`` rejects the hostile shapes themselves (control characters,
console markup, absurd nesting, power bombs, secrets). A checker that fails all the same turns
into a failed verdict (``checker_error: <type>``) instead of ending the run.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Protocol

import dspy
from rich.errors import StyleSyntaxError
from rich.style import Style

from regenesis.tasks.example import Example
from regenesis.answers import MAX_NUMBER_CHARS, answers_equal, extract_answer
from regenesis.models import adapter_for, resolve_lm
from regenesis.redact import redact
from regenesis.signatures.judge import JudgeOwnAnswer, JudgeReasoning

# Phrases that only the scaffolding of a prompt puts in a path: the hinted prompts (STaR's
# rationalization, ReGenesis's hinted steps) know the gold answer, and ReGenesis's prompts carry
# reasoning guidelines. The training row pairs the path with the plain question, where neither exists.
DEFAULT_HINT_PHRASES = (
    "the given answer", "the answer given", "the provided answer", "the answer provided",
    "the expected answer", "the known answer", "the answer we were given", "we are told the answer",
    "we were told the answer", "as the hint", "the hint", "hinted", "correct_answer", "guideline",
)


@dataclass(frozen=True)
class Verdict:
    """One filter's decision on one path; ``reason`` says why it failed, ``detail`` is provenance."""

    filter: str
    passed: bool
    reason: str = ""
    detail: dict = field(default_factory=dict)


class PathFilter(Protocol):
    name: str

    def check(self, path: str, example: Example) -> Verdict: ...


@dataclass
class FilterOptions:
    """Which filters the bootstrap loop runs; each one is counted in the run's report by its name."""

    arithmetic: bool = True
    form: bool = True
    choice_support: bool = True
    number_support: bool = True
    judge_model: str | None = None  # a model spec (see regenesis.models); None turns the judge off
    hinted_derivation: bool = True  # a hinted path must compute its number answer (derives_answer)
    max_chars: int = 4000
    hint_phrases: tuple[str, ...] = DEFAULT_HINT_PHRASES


def build_filters(options: FilterOptions, label_free: bool = False) -> list[PathFilter]:
    """The filters ``options`` turns on, cheapest first; the judge, when on, comes last."""
    filters: list[PathFilter] = []
    if options.form:
        filters.append(FormFilter(options.max_chars, options.hint_phrases))
    if options.arithmetic:
        filters.append(ArithmeticFilter())
    if options.number_support:
        filters.append(NumberSupportFilter())
    if options.choice_support:
        filters.append(ChoiceSupportFilter())
    if options.judge_model:
        filters.append(JudgeFilter(resolve_lm(options.judge_model), label_free=label_free))
    return filters


MAX_PATH_CHARS = 20_000  # no checker reads a longer path: it fails as too long to check


def check_path(filters: Sequence[PathFilter], path: str, example: Example) -> list[Verdict]:
    """The verdicts of ``filters`` on ``path`` in order, up to and including the first failure.

    A filter that raises fails the path (reason ``checker_error: <type>``): one unreadable path must
    not end a run whose other paths are fine."""
    verdicts = []
    for path_filter in filters:
        try:
            verdict = path_filter.check(path, example)
        except Exception as error:  # the last line of defence; the bounds below should make it unreachable
            verdict = Verdict(path_filter.name, False, f"checker_error: {type(error).__name__}")
        verdicts.append(verdict)
        if not verdict.passed:
            break
    return verdicts


def too_long_to_check(path: str) -> str:
    """Why no checker reads ``path`` (it is longer than ``MAX_PATH_CHARS``), or ""."""
    return f"too long to check: {len(path)} characters (limit {MAX_PATH_CHARS})" if len(path) > MAX_PATH_CHARS else ""


def mentions_hint(path: str, phrases: Sequence[str] = DEFAULT_HINT_PHRASES) -> str | None:
    """The first of ``phrases`` that ``path`` contains as words (case-insensitive), or None."""
    return next((phrase for phrase in phrases
                 if re.search(rf"(?<!\w){re.escape(phrase)}(?!\w)", path, re.I)), None)


# Phrasings with which a hinted path refers to an answer it was given instead of one it found. Each
# family is one way of saying it; ``{gold}`` stands for the gold answer (as written, or as a number with
# an optional currency sign and trailing zeros).
_KNOWN = r"(?:correct|right|given|expected|known|provided|true|target|actual|official|intended)"
_ANSWER_WORD = r"(?:answer|result|solution|value|total)"
HINT_LEAK_FAMILIES = {
    "known answer named": rf"\b(?:the|an?|our)\s+{_KNOWN}\s+(?:final\s+)?{_ANSWER_WORD}\b",
    "answer said to be known": (r"\b(?:we|i|you)\s+(?:already\s+)?(?:know|knew|are\s+told|were\s+told|were\s+given|"
                                r"have\s+been\s+(?:told|given)|are\s+given)\s+(?:that\s+)?(?:the|our)\s+"
                                rf"(?:final\s+)?{_ANSWER_WORD}\b"),
    "answer said to be given": rf"\b{_ANSWER_WORD}\s+(?:is|was|has\s+been)\s+(?:given|known|provided|expected)\b",
    "reasoning from the answer": (r"\b(?:since|because|as|given\s+that)\s+the\s+(?:final\s+)?answer\s+"
                                  r"(?:is|must\s+be|should\s+be)\s+\$?{gold}"),
    "steering to the answer": (r"\b(?:to\s+(?:get|reach|arrive\s+at|match|obtain)|towards?|backwards?\s+from)\s+"
                               rf"(?:the\s+)?(?:answer|{_KNOWN}\s+{_ANSWER_WORD})(?:\s+of)?\s*\$?{{gold}}"),
}


def _gold_pattern(gold: str) -> str:
    """``gold`` as a pattern: a number also as 10, 10.0 or 10.00, never as the start of 100."""
    number = re.fullmatch(r"-?\d+(?:\.\d+)?", gold.strip())
    if number:
        whole, _, decimals = gold.strip().partition(".")
        decimals = decimals.rstrip("0")
        tail = rf"\.{decimals}0*" if decimals else r"(?:\.0+)?"
        return rf"(?<![\d.]){re.escape(whole)}{tail}(?!\d|\.\d)"
    return re.escape(gold.strip()) + r"(?!\w)"


def hint_leak(path: str, gold: str, phrases: Sequence[str] = DEFAULT_HINT_PHRASES) -> str | None:
    """Why ``path`` reads as written from a given answer, or None: the scaffolding ``phrases`` of the
    prompt, or a phrasing family of ``HINT_LEAK_FAMILIES`` (the classifier ``tests/test_filters.py``
    measures). The text read is bounded by ``MAX_PATH_CHARS``; every pattern runs in linear time."""
    text = path[:MAX_PATH_CHARS]
    phrase = mentions_hint(text, phrases)
    if phrase:
        return f"phrase {phrase!r}"
    value = _gold_pattern(gold) if gold.strip() else r"(?!)"
    for family, pattern in HINT_LEAK_FAMILIES.items():
        if re.search(pattern.replace("{gold}", value), text, re.I):
            return family
    return None


# ---------------------------------------------------------------------------------------------
# The structure of a path: logical lines, answer statements, the final answer


_CODE_BLOCK = re.compile(r"```.*?(?:```|\Z)", re.S)
_LIST_MARKER = re.compile(r"^\s*(?:[-*•>]+\s*|\d+[.)]\s+|step\s*\d+\s*[:.)]\s*|\*\*)+", re.I)
_ANSWER_PHRASE = re.compile(r"\banswer\s*(?:is\b|was\b|(?:would|should|will|must)\s+be\b|:)\s*:?\s*", re.I)
_BOXED = re.compile(r"\\boxed\s*\{((?:[^{}]|\{[^{}]*\})*)\}")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=\S)")
_BARE_YES_NO = re.compile(r"\s*+(yes|no)\s*+[.!]?\s*+", re.I)  # possessive: linear on long blanks


def logical_lines(text: str) -> list[str]:
    """The non-empty lines of ``text``; a display-math block (``\\[ ... \\]``) joins the line before it
    and a fenced code block becomes one line, so "the answer is:" and its boxed value are one line."""
    text = _CODE_BLOCK.sub(lambda m: "\n" + " ".join(m.group(0).split()) + "\n", text)
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
    """Whether ``line`` gives an answer: "answer is ...", "answer: ...", a boxed value or "#### ..."."""
    return bool(_BOXED.search(line) or _ANSWER_PHRASE.search(line) or strip_marker(line).startswith("####"))


def stated_value(line: str) -> str:
    """What ``line`` gives as the answer: the last boxed value, else the text after the last
    "answer is", else the text after "####"."""
    boxed = _BOXED.findall(line)
    if boxed:
        return boxed[-1].strip()
    matches = list(_ANSWER_PHRASE.finditer(line))
    if matches:
        return line[matches[-1].end():].strip()
    return strip_marker(line).removeprefix("####").strip()


def is_answer_line(line: str) -> bool:
    """A line that does nothing but state the answer ("The answer is 18.", "#### 18", "Yes.")."""
    sentences = _SENTENCE_END.split(strip_marker(line))
    return all(states_answer(s) or _BARE_YES_NO.fullmatch(s) for s in sentences)


def option_letters(example: Example) -> str:
    return "ABCDEFGHIJ"[: len(example.choices)] if example.choices else "ABCDE"


def answer_of(text: str, example: Example) -> str | None:
    """The answer of ``example``'s type that ``text`` gives (``regenesis.answers`` rules)."""
    return extract_answer(text, example.answer_type, example.choices, example.labels)


def final_answer(path: str, example: Example) -> str | None:
    """The answer stated on the last line of ``path``, or None when the last line states none."""
    lines = logical_lines(path)
    if not lines or not states_answer(lines[-1]):
        return None
    return answer_of(lines[-1], example)


# ---------------------------------------------------------------------------------------------
# Form


_LOOP_REPEATS = 8  # a sentence recurring more often than this, numbers aside ("Step 7: add 3"), is a loop


def _sentences(text: str) -> list[str]:
    """The sentences and lines of ``text`` outside code, as lower-case words and numbers."""
    pieces = re.split(r"(?<=[.!?])\s+|\n+|:\s+", _CODE_BLOCK.sub("\n", text))
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


_NUMBER_IN_TEXT = re.compile(r"-?\d+(?:\.\d+)?")
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


# Hostile shapes: none belongs in a training row, and each can break what reads or prints the row.
# Control characters but tab and line breaks (ANSI escapes start with \x1b), and bidirectional overrides.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_MARKUP_TAG = re.compile(r"(?<!\\)\[(/?)([a-z#@][^\[\]\n]{0,100})?\]")  # rich's tag syntax: [bold red], [/], [link=...]
_BRACKET = re.compile(r"[()\[\]{}\n]")
# BIG-Bench's Dyck-language questions nest up to 21 deep in one (unclosed) line; formulas rarely pass 8.
_MAX_NESTING = 40


def console_markup(text: str) -> str | None:
    """The first console markup tag in ``text`` (rich's ``[bold]``, ``[/]``, ``[link=...]``), or None.
    A closing tag always counts; an opening one when it names a style, and has more than one
    letter, so that "a[i]" and "[a, b]" are not markup."""
    for match in _MARKUP_TAG.finditer(text):
        closing, tag = match.groups()
        if closing or (tag and len(tag) > 1 and _is_style(tag)):
            return match.group(0)
    return None


def _is_style(tag: str) -> bool:
    """Whether rich reads ``tag`` as a style, a link (``link=...``) or an action (``@click``)."""
    if tag.startswith("@") or tag.partition("=")[0].strip() == "link":
        return True
    try:
        Style.parse(tag)
    except StyleSyntaxError:
        return False
    return True


def nesting_depth(text: str) -> int:
    """How deep the brackets of ``text`` nest within one line (an unmatched closing bracket is
    ignored, and each line starts at the top, as a quoted unclosed sequence ends with its line)."""
    depth = deepest = 0
    for match in _BRACKET.finditer(text):
        if match.group() == "\n":
            depth = 0
        elif match.group() in "([{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth = max(0, depth - 1)
    return deepest


def hostile_shape(path: str) -> str:
    """Why ``path`` is hostile rather than reasoning, or "": a control character (an ANSI escape,
    say), console markup, brackets nested more than ``_MAX_NESTING`` deep, a power bomb
    (``power_bombs``), or a secret that ``regenesis.redact`` would hide (an echoed API key)."""
    control = _CONTROL.search(path)
    if control:
        return f"control character: {control.group()!r}"
    markup = console_markup(path)
    if markup:
        return f"console markup: {markup[:40]!r}"
    depth = nesting_depth(path)
    if depth > _MAX_NESTING:
        return f"nested {depth} levels deep (limit {_MAX_NESTING})"
    if redact(path) != path:
        return "holds a secret: an API key or one shaped like it"
    bombs = power_bombs(path)
    if bombs:
        return f"power bomb: {bombs[0][:60]!r}"
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
        reason = self._defect(path, example)
        return Verdict(self.name, passed=not reason, reason=reason)

    def _defect(self, path: str, example: Example) -> str:
        if len(path) > self.max_chars:
            return f"too long: {len(path)} characters (limit {self.max_chars})"
        hostile = too_long_to_check(path) or hostile_shape(path)
        if hostile:
            return hostile
        phrase = mentions_hint(path, self.hint_phrases)
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


# ---------------------------------------------------------------------------------------------
# Arithmetic: a tokenizer and a recursive-descent parser of the computations a path states


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
class _Side:
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

_LAYOUT_COMMANDS = r"\\(?:left|right|displaystyle|quad|qquad|[bB]igg?[lr]?|,|;|:|!| )"


def _latex_to_plain(text: str) -> str:
    """The math of ``text`` in plain notation: fractions as ((a)/(b)), \\times as *, \\text{...} as words,
    any other command as an opaque token; display delimiters become line breaks, which end a computation."""
    text = _CODE_BLOCK.sub("\n", text).replace("{,}", ",").replace(",\\!", ",")  # LaTeX thousands: 1{,}000
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


def _tokens(text: str) -> list[_Token]:
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


class _Parser:
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

    def chain(self, i: int) -> tuple[list[_Side], int]:
        """The sides of the equality chain starting at ``i`` ("a = b = c"), and the index after it."""
        sides: list[_Side] = []
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

    def _side(self, i: int, j: int, value: float, computed: bool, worded: bool) -> _Side:
        span = self.tokens[i:j]
        numbers = [t for t in span if t.kind == "num"]
        operators = [t.text for t in span if t.kind == "op"]
        bare = numbers[0] if numbers and not computed else None
        single_fraction = (len(numbers) == 2 and operators == ["/"]) or (len(numbers) == 1 and numbers[0].fraction)
        quantity = len(numbers) == 1 and not operators
        return _Side(value, computed, bool(bare and bare.percent), bare.decimals if bare else 0,
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


def _states_computation(left: _Side, right: _Side) -> bool:
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


def _agrees(left: _Side, right: _Side) -> bool:
    """Whether a stated equality holds, allowing a result rounded or cut to the decimals it shows."""
    pairs = [(left.value, right.value)]
    # "30/120 * 100 = 25%" and "15/90 * 100% = 16.66" both read right
    if left.mentions_percent != right.mentions_percent:
        pairs += [(left.value * 100, right.value), (left.value, right.value * 100)]
    return any(_close(a, b, left, right) for a, b in pairs)


def _close(a: float, b: float, left: _Side, right: _Side) -> bool:
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
def _read_computations(path: str) -> _Reading:
    """The computations ``path`` states and the power bombs it holds; nothing for an over-long path."""
    if too_long_to_check(path):
        return _Reading((), ())
    plain = _latex_to_plain(path)
    parser = _Parser(_tokens(plain))
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
    return list(_read_computations(path).statements)


def power_bombs(path: str) -> list[str]:
    """The powers in ``path`` with an exponent above 1,000 or more than 1,000 digits ("(1/2)^{10^{10}}",
    "2^{2^{2^{2^{2^{2}}}}}"): no worked solution needs one, and an exact evaluator would not return."""
    return list(_read_computations(path).power_bombs)


def derives_answer(path: str, example: Example) -> bool:
    """For number answers: the final answer is the result of a computation the path states. A hinted
    path must meet this: having seen the answer, it can otherwise simply state it as a fact."""
    if example.answer_type != "number":
        return True
    final = final_answer(path, example)
    if final is None:
        return False
    results = (statement.text.replace(",", "").rsplit("=", 1)[-1] for statement in stated_computations(path))
    return any(answers_equal(number, final, "number") for result in results for number in _NUMBER_IN_TEXT.findall(result))


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


# ---------------------------------------------------------------------------------------------
# Support for choices


_STOPWORDS = set("""
a an the and or but if of to in on at by for with from as into onto than then that this these those it its
is are was were be been being has have had do does did will would can could should may might must shall
so such not no yes all any each every some more most less few many much very also just only too there here about
what which who whom whose when where why how their they them he she his her we our you your i me my
""".split())
# Words of the reasoning's scaffolding, not of its content.
_META_WORDS = set("""
answer answers question questions option options choice choices correct incorrect step steps determine identify
analyze analyse analysis solve solution think reason reasoning problem puzzle given following let first second
third next finally conclusion therefore thus hence based explanation breakdown check evaluate consider need
understand read look statement true false final best right wrong
""".split())
_MIN_REASON_WORDS = 3
_OPTION_LABEL = re.compile(r"^(?:option\s+)?\(?([A-J])[).:]\s*|^option\s+([A-J])\b\s*[:.)-]?\s*", re.I)
_CONCLUSION = re.compile(r"^(?:therefore|thus|so|hence|in conclusion|in summary|based on|after analyzing|"
                         r"after considering|overall|conclusion)\b", re.I)
_NEGATIVE_VERDICT = re.compile(r"\b(?:incorrect|wrong|false|not (?:the )?(?:best|right|correct|true|valid|answer))\b",
                               re.I)
_POSITIVE_VERDICT = re.compile(r"\b(?:correct|right|true|best)\b", re.I)
_NEGATION = re.compile(r"\b(?:not|no|never|cannot|none)\b|n't\b", re.I)


def _stem(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s", "ly"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def content_words(text: str) -> set[str]:
    """The stems of ``text``'s words that carry content (numbers included)."""
    words = re.findall(r"[a-z]+|\d+(?:\.\d+)?", text.lower().replace("’", "'"))
    return {_stem(w) for w in words if w not in _STOPWORDS and (len(w) > 1 or w.isdigit())}


def _reason_words(lines: Sequence[str], example: Example) -> set[str]:
    """The content words of ``lines`` that neither the question nor the scaffolding supplies."""
    known = content_words(example.question) | {_stem(w) for w in _META_WORDS}
    return content_words(" ".join(map(strip_marker, lines))) - known


def _overlap(text_words: set[str], option: str) -> float:
    words = content_words(option)
    return len(words & text_words) / len(words) if words else 0.0


def _letters_named(text: str, example: Example) -> list[str]:
    """The option letters ``text`` names as such: "(C)", "option C", "is C.", a line opening "C)"."""
    letters = option_letters(example)
    pattern = rf"\(([{letters}])\)|(?:\b(?:option|choice|answer|is)\s+|^)([{letters}])(?:[).:,]|\s*$)"
    return [a or b for a, b in re.findall(pattern, text, re.M)]


def _option_named(text: str, example: Example) -> str | None:
    """The option ``text`` points at: the letter it names, else the one option whose words it mostly holds."""
    named = _letters_named(text, example)
    if named:
        return named[-1]
    letters = option_letters(example)
    words = content_words(text)
    scores = sorted(((_overlap(words, choice), letters[k]) for k, choice in enumerate(example.choices)), reverse=True)
    if scores and scores[0][0] >= 0.6 and (len(scores) == 1 or scores[0][0] > scores[1][0]):
        return scores[0][1]
    return None


@dataclass
class _OptionBlock:
    letter: str
    analysis: str  # the block's text without the option's own words


def _option_blocks(lines: Sequence[str], example: Example) -> list[_OptionBlock]:
    """The per-option analyses of a path: a line led by an option label, with the bullets below it."""
    letters = option_letters(example)
    blocks: list[_OptionBlock] = []
    current = None
    for line in lines:
        unmarked = line.lstrip("*# ").replace("**", "")
        label = _OPTION_LABEL.match(unmarked)
        letter = (label.group(1) or label.group(2)).upper() if label else ""
        if letter and letter in letters:
            choice = example.choices[letters.index(letter)]
            current = _OptionBlock(letter, _without(unmarked[label.end():], choice))
            blocks.append(current)
        elif current and line.startswith(("-", "*", "•")):
            current.analysis += " " + strip_marker(line)
        else:
            current = None
    return blocks


def _without(text: str, choice: str) -> str:
    """``text`` with the words of an option taken out."""
    return re.sub(re.escape(choice.strip().rstrip(".")), " ", text, flags=re.I).strip(" :.-")


def _stance(analysis: str) -> str:
    """Whether an option's analysis endorses (+) or rejects (-) it: an explicit verdict ("This is
    incorrect", "not the best") decides; without one, a negated first sentence rejects."""
    if _NEGATIVE_VERDICT.search(analysis):
        return "-"
    if _POSITIVE_VERDICT.search(analysis):
        return "+"
    first_sentence = _SENTENCE_END.split(analysis.strip(), maxsplit=1)[0]
    return "-" if _NEGATION.search(first_sentence) else "+"


def _is_option_echo(line: str, example: Example) -> bool:
    """A line that only restates an option (with or without its label), or holds no words at all."""
    words = content_words(strip_marker(line)) - {_stem(w) for w in _META_WORDS} - set("abcdefghij")
    return not words or any(words <= content_words(choice) for choice in example.choices)


class NumberSupportFilter:
    """For number answers: the final number is reached in the reasoning, not only announced.

    Its value must appear in the reasoning (answer-only lines left out) besides the final statement,
    as the result of a step or a stated quantity. A path that computes 50 and then answers 10, or that
    never mentions its answer before the last line, is a guess."""

    name = "number_support"

    def check(self, path: str, example: Example) -> Verdict:
        if example.answer_type != "number":
            return Verdict(self.name, passed=True)
        unread = too_long_to_check(path)
        if unread:
            return Verdict(self.name, False, unread)
        final = final_answer(path, example)
        if final is None:
            return Verdict(self.name, passed=True)
        lines = logical_lines(path)
        # The last line states the answer once; a line may also carry the last steps (display math).
        text = [line for line in lines[:-1] if not is_answer_line(line)] + lines[-1:]
        mentions = sum(answers_equal(number, final, "number") for line in text
                       for number in _NUMBER_IN_TEXT.findall(line.replace(",", "")))
        if mentions >= 2:
            return Verdict(self.name, passed=True)
        return Verdict(self.name, passed=False, reason=f"the answer {final} appears nowhere in the reasoning")


class ChoiceSupportFilter:
    """For multiple-choice and yes/no tasks: the path reaches its choice from stated reasons.

    Multiple choice: no other letter is stated as the answer; the final line does not quote another
    option; the reasoning has words of its own (beyond the question and options restated) and
    discusses the chosen option; an option-by-option analysis neither rejects the chosen option nor
    endorses another one as well; the conclusion does not point at another option. Yes/no: reasons
    come before the first yes or no, and the path never answers the other way."""

    name = "choice_support"

    def check(self, path: str, example: Example) -> Verdict:
        unread = too_long_to_check(path)
        if unread:
            return Verdict(self.name, False, unread)
        if example.answer_type == "letter" and example.choices:
            reason = self._choice_defect(path, example)
        elif example.answer_type == "yes_no":
            reason = self._yes_no_defect(path, example)
        else:
            reason = ""
        return Verdict(self.name, passed=not reason, reason=reason)

    def _choice_defect(self, path: str, example: Example) -> str:
        lines = logical_lines(path)
        chosen = final_answer(path, example)
        if chosen is None:
            return "the last line names no option"
        reasoning = lines[:-1]
        stated = {answer_of(line, example) for line in reasoning if states_answer(line)} - {None, chosen}
        if stated:
            return f"answers {chosen} but also states {sorted(stated)[0]} as the answer"
        quoted = re.sub(rf"^\(?{chosen}\)?[).:]?\s*", "", stated_value(lines[-1]))
        quoted_option = _option_named(quoted, example) if content_words(quoted) else None
        if quoted_option and quoted_option != chosen:
            return f"answers {chosen} with the words of option {quoted_option}"
        own_lines = [line for line in reasoning if not _is_option_echo(line, example) and not is_answer_line(line)]
        if len(_reason_words(own_lines, example)) < _MIN_REASON_WORDS:
            return f"names {chosen} without reasons of its own"
        text = "\n".join(reasoning)
        option = example.choices[option_letters(example).index(chosen)]
        if chosen not in _letters_named(text, example) and _overlap(content_words(text), option) < 0.6:
            return f"never discusses option {chosen}"
        return self._analysis_defect(reasoning, chosen, example)

    def _analysis_defect(self, reasoning: Sequence[str], chosen: str, example: Example) -> str:
        blocks = [b for b in _option_blocks(reasoning, example) if len(content_words(b.analysis)) >= 2]
        stances = {b.letter: _stance(b.analysis) for b in blocks}
        if chosen in stances and len(stances) > 1:
            if stances[chosen] == "-":
                return f"its own analysis rejects option {chosen}"
            rivals = sorted(letter for letter, stance in stances.items() if stance == "+" and letter != chosen)
            if rivals:
                return f"argues for option {rivals[0]} as it does for {chosen}"
        conclusion = next((line for line in reversed(reasoning) if _CONCLUSION.match(strip_marker(line))), None)
        concluded = _option_named(strip_marker(conclusion), example) if conclusion else None
        if concluded and concluded != chosen:
            return f"concludes for option {concluded} but answers {chosen}"
        return ""

    def _yes_no_defect(self, path: str, example: Example) -> str:
        chosen = final_answer(path, example)
        if chosen is None:
            return "the last line answers neither yes nor no"
        stances = list(_yes_no_stances(path))
        contrary = [answer for _, answer in stances if answer != chosen]
        if contrary:
            return f"answers {chosen} but also {contrary[0]}"
        before = path[: stances[0][0]] if stances else path
        if len(_reason_words(logical_lines(before), example)) < _MIN_REASON_WORDS:
            return f"says {chosen} before giving reasons"
        return ""


_YES_NO_STANCE = re.compile(
    r"answer\s*+(?:is|:)\s*+:?\s*+(?:indeed\s++|clearly\s++|simply\s++)?\**(yes|no)\b(?!\s+or\b)"
    r"|(?:^|[.!?:]\s+|\n|\b(?:so|therefore|thus|hence),?\s+)(?:[-*]\s*)?\**(yes|no)\b\**(?=[,.!:]|\s*$)",
    re.I | re.M)


def _yes_no_stances(path: str):
    """(position, "yes"/"no") of each place the path takes a side: "the answer is no", "Yes, ...",
    "so yes, ...", "No."."""
    for match in _YES_NO_STANCE.finditer(path):
        group = 1 if match.group(1) else 2
        yield match.start(group), match.group(group).lower()


# ---------------------------------------------------------------------------------------------
# Judge


class JudgeFilter:
    """A model reads the question, the path and the gold answer, and decides whether the reasoning
    supports that answer; ``label_free``, it is shown no gold answer and judges the path's own answer.
    Its verdict and rationale are the detail of the verdict (the row's provenance)."""

    name = "judge"

    def __init__(self, lm: dspy.LM, adapter: dspy.Adapter | None = None, label_free: bool = False):
        self.lm = lm
        self.adapter = adapter or adapter_for(lm)
        self.label_free = label_free
        self.judge = dspy.Predict(JudgeOwnAnswer if label_free else JudgeReasoning)

    def check(self, path: str, example: Example) -> Verdict:
        unread = too_long_to_check(path)
        if unread:
            return Verdict(self.name, False, unread)
        gold = {} if self.label_free else {"gold_answer": example.gold}
        try:
            with dspy.context(lm=self.lm, adapter=self.adapter):
                judged = self.judge(question=example.question, reasoning=path, **gold)
        except Exception as error:  # an unreadable verdict keeps no path: the judge is the last word
            return Verdict(self.name, False, f"judge failed: {type(error).__name__}: {error}",
                           {"model": self.lm.model, "error": str(error)})
        supports = judged.supports_answer is True
        rationale = str(judged.rationale or "").strip()
        detail = {"model": self.lm.model, "supports_answer": supports, "rationale": rationale}
        return Verdict(self.name, supports, "" if supports else f"judge: {rationale}", detail)
