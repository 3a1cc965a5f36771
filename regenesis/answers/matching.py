"""Answer extraction and matching: the metric that decides training data and every reported score.

Model output is only ever read as text: nothing in it is executed or passed to ``eval``. LaTeX
goes through a whitelist parser of our own (``regenesis.answers.latex``).

Where the answer is
    Models are asked to end with ``The answer is X.`` (``regenesis.prompting``). The *final-answer
    spans* of a text are what follows each answer marker up to the end of its line — ``answer
    is``, ``answer:``, ``final answer:``, ``answer would be``, GSM8K's ``####``; when the rest of
    the marker's line is blank, the next non-empty line — and the content of each ``\\boxed{}``.
    Spans are tried from the last one in the text backwards, and the first span that holds a valid
    answer for the type wins. Only when no span holds one does extraction fall back to the end of
    the text, with a rule per type. Bounds keep hostile outputs cheap: only the last 20,000
    characters are read, a span is at most 1,000 characters, the last 50 spans are tried, and a
    number token longer than 100 characters is no number; an answer (or gold answer) longer than
    20,000 characters equals nothing. Every pattern matches in time linear in the text it reads.

number
    LaTeX is read as plain text first (``\\frac{1}{2}`` → ``1/2``, ``\\text{}`` unwrapped, ``\\$``,
    ``\\%``, ``{,}``). In a span, text after its first sentence end is dropped, then everything up
    to the span's last ``=`` (``5 + 3 = 8`` → ``8``), and the *first* number of what remains is the
    answer, so trailing remarks ("18 (9 eggs at $2)") do not leak in. Fallback: the last number of
    the text. A number may carry a currency sign, thousands commas (``1,234``; ``1,2`` is two
    numbers), a decimal part, a minus sign (``-5``, ``−5``; not the hyphen of ``3-5``), a simple
    fraction (``3/4``), a mixed number (``2 1/2``), ``%``/``percent`` (``25%`` is 25), a scale word
    (``2 million``), or be spelled out (``eighteen``, ``twenty-five``, spans only). Units after it
    are ignored. Values compare exactly as fractions (``51.0`` = ``51`` = ``102/2``); when the gold
    has two or more decimals (a rounded value), the prediction rounded half-up to as many
    decimals must equal it (gold ``4.17``: ``4.1667`` matches, ``4.2`` does not).

letter (multiple choice; ``choices`` are the option texts, lettered A, B, ...)
    In a span, in order: a parenthesised letter ``(B)``; ``option B``/``choice B``; ``option 2``
    (NumGLUE's form); the span equal
    to one option's text; a letter opening the span followed by ``)``, ``.``, ``:``, ``,`` or
    nothing (``B)``, ``B.``, ``B``; not the article in ``A cat``); a letter followed by its own
    option's text; a unique option text contained in the span; a number equal to the number of
    exactly one option (``32,400`` for ``A)32400``, ``750`` for ``D)Rs. 750``); a lone capital
    (``probably B``). Letters outside the options are ignored.
    Fallback: the last ``(X)``/``option X`` of the text (capital X only: ``(i)`` enumerates), else
    the last line equal to an option, else a lone capital in the last line (``So D.``).

yes_no (also true/false: ``true`` ≡ ``yes``, ``false`` ≡ ``no``)
    In a span: the first of the words yes/no/true/false (``not true`` is no, ``not false`` yes;
    ``no`` inside ``not``/``nobody`` is not a word). Fallback: the text's first word ("Yes, because
    ..."), else the last such word of its last line.

label (a closed set, e.g. ``entailment``/``neutral``/``contradiction``)
    A label matches as a whole word, case-insensitively, also through its synonyms (``entails``,
    ``contradicts``, ``neither``, ``cannot be determined``, ``not valid`` → ``invalid``; for NLI sets
    ``true`` → entailment and ``false`` → contradiction); ``_``/``-`` in a label match spaces. A
    mention preceded by a negation (``not``, ``no``, ``n't``) is skipped unless the synonym itself
    is negative. In a span the first mention wins; fallback: the last mention in the last line
    with one.

math (LaTeX expressions, MATH)
    The last ``\\boxed{}`` wins (it is a span); in a marker span the first ``$...$`` group, else
    the first sentence. Fallback: the last ``$...$`` of the last line, else the last number.
    Equivalence (``latex.latex_equal``): equal normalised strings (``\\dfrac``→``\\frac``,
    ``\\frac12``, ``\\left``, spaces, ``^\\circ``, ``\\%``, ``\\text{ units}``, ``x=``, ``.5``);
    else, for tuples and intervals, the same brackets and element-wise equal; for a bare list
    (``-2, 3``), equal as multisets; for matrices, element-wise; else both parse (whitelist) to
    sympy and are equal: exactly when both are rational numbers, else to 12 significant digits
    at three fixed points, with the same free symbols. ``0.333`` is not ``\\frac{1}{3}``.

text (short free text)
    The span, unwrapped from quotes and markdown, without a trailing period; fallback: the last
    non-empty line. Compared case-insensitively after collapsing spaces and dropping a leading
    article; also equal when the word/symbol sequences agree ignoring spaces and ``,.;:!?"'``
    (``] ) }`` = ``])}``), or when both are lists (``,``/``;``/``and``) of the same items in any
    order, or when a first sentence of the prediction (ending in its first 1,000 characters)
    equals the gold.
"""

from __future__ import annotations

import math
import re
import unicodedata
from decimal import Decimal, localcontext
from fractions import Fraction
from itertools import takewhile
from typing import TYPE_CHECKING, Sequence

from regenesis.answers import latex

if TYPE_CHECKING:  # an Example is read, never built, here; tasks import this module
    from regenesis.tasks.example import Example

ANSWER_TYPES = ("number", "letter", "yes_no", "label", "math", "text")

# --- final-answer spans -------------------------------------------------------------------------

_ANSWER_MARKER = re.compile(
    r"\b(?:final\s+)?answer\s*(?:is|was|(?:would|should|will|must)\s+be|:|=)\s*:?|####",
    re.IGNORECASE)
_SENTENCE_END = re.compile(r"[.!?](?=\s|$)")
MAX_TEXT_CHARS = 20_000  # only the end of a longer output is read: the final answer is there
MAX_SPAN_CHARS = 1_000
MAX_SPANS = 50
MAX_NUMBER_CHARS = 100


def _readable(text) -> str:
    """The part of a model's output that is read: its last ``MAX_TEXT_CHARS`` characters."""
    return str(text or "")[-MAX_TEXT_CHARS:]


def final_answer_spans(text: str) -> list[str]:
    """The texts after each answer marker and inside each ``\\boxed{}``, the last one first.

    A marker's span is the rest of its line (at most ``MAX_SPAN_CHARS``); only the last
    ``MAX_SPANS`` spans count.
    """
    text = _readable(text)
    spans = [(match.start(), match.end()) for match in _ANSWER_MARKER.finditer(text)]
    spans = [(start, _rest_of_line(text[end:end + MAX_SPAN_CHARS])) for start, end in spans[-MAX_SPANS:]]
    spans.extend(latex.boxed_answers(text, MAX_SPAN_CHARS)[-MAX_SPANS:])
    spans.sort(key=lambda span: span[0], reverse=True)
    return [_unwrap(span) for _, span in spans[:MAX_SPANS] if span.strip()]


def _rest_of_line(text: str) -> str:
    """The first line of ``text``, or the next non-empty one when it is blank ("answer:" then a newline)."""
    first, newline, rest = text.partition("\n")
    if first.strip(" \t*:") or not newline:
        return first
    return rest.lstrip("\n").partition("\n")[0]


_QUOTE_PAIRS = ('""', "''", "``", "“”", "‘’")


def _unwrap(span: str) -> str:
    """Strip markdown emphasis, a pair of surrounding quotes, and blanks."""
    span = span.replace("**", "").replace("__", "").strip()
    while len(span) > 1 and span[0] + span[-1] in _QUOTE_PAIRS:
        span = span[1:-1].strip()
    return span


def _first_sentence(span: str) -> str:
    match = _SENTENCE_END.search(span)
    return span if match is None else span[:match.start()]


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return _unwrap(lines[-1]) if lines else ""


# --- numbers ------------------------------------------------------------------------------------

_NUMBER = re.compile(
    r"(?P<sign>[-−–](?=\s?[$€£¥]?\s?\.?\d))?\s?[$€£¥]?\s?"
    r"(?:(?P<whole>\d+)\s+(?=\d+\s*/\s*\d))?"
    r"(?P<value>\d{1,3}(?:,\d{3})+(?:\.\d+)?(?!\d)|\d+(?:\.\d+)?|\.\d+)"
    r"(?:\s*/\s*(?P<denominator>\d+(?:\.\d+)?)(?![\d/]))?"
    r"(?P<scale>\s+(?:thousand|million|billion|trillion)\b)?")
_SCALES = {"thousand": 10**3, "million": 10**6, "billion": 10**9, "trillion": 10**12}
_UNITS = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
          "fifteen sixteen seventeen eighteen nineteen").split()
_TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()
_NUMBER_WORDS = {word: value for value, word in enumerate(_UNITS)}
_NUMBER_WORDS.update({word: 20 + 10 * index for index, word in enumerate(_TENS)})
_NUMBER_WORD = re.compile(r"\b(?:%s)(?:[-\s](?:%s))?\b" % ("|".join(_TENS + _UNITS), "|".join(_UNITS[1:10])),
                          re.IGNORECASE)


def _plain_math(text: str) -> str:
    """LaTeX number notation as plain text: ``\\frac{1}{2}`` → ``1/2``, ``\\$5`` → ``$5``."""
    text = re.sub(r"\\[dt]?frac\s*\{\s*(-?[\d.]+)\s*\}\s*\{\s*([\d.]+)\s*\}", r"\1/\2", text)
    text = re.sub(r"\\[dt]?frac\s*(\d)\s*(\d)", r"\1/\2", text)
    text = re.sub(r"\\(?:text|textbf|mathrm|mbox)\s*\{([^{}]*)\}", r" \1", text)
    text = text.replace("{,}", ",").replace("\\$", "$").replace("\\%", "%").replace("\\!", "")
    return text.replace("\\left", "").replace("\\right", "")


def _numbers(text: str, skip_negated: bool = False) -> list[Fraction]:
    """The numbers in ``text``; with ``skip_negated``, not those right after "not" ("not 20")."""
    values = []
    for match in _NUMBER.finditer(_plain_math(text)):
        if skip_negated and _follows_not(match.string, match.start("value")):
            continue
        value = _number_value(match)
        if value is not None:
            values.append(value)
    return values


def _follows_not(text: str, end: int) -> bool:
    """Whether ``text[:end]`` ends in "not" and then at most a sign, a currency sign and a whole
    number, blanks between them ("not 20", "not -$5", "not 2 1/2"): the regex
    ``\\bnot\\s*[-−–]?\\s*[$€£¥]?\\s*(?:\\d+\\s+)?$``, read backwards from ``end`` so that a long run
    of spaces is walked once instead of backtracked over."""
    blank_end = _skip_back(text, end, str.isspace)
    digits_end = _skip_back(text, blank_end, str.isdecimal)
    i = _skip_back(text, digits_end, str.isspace) if blank_end < end and digits_end < blank_end else blank_end
    for symbols in ("$€£¥", "-−–"):
        if i and text[i - 1] in symbols:
            i = _skip_back(text, i - 1, str.isspace)
    return _ends_with_word(text, i, ("not",))


def _skip_back(text: str, end: int, belongs) -> int:
    """The start of the run of characters for which ``belongs`` holds that ends at ``end``."""
    while end and belongs(text[end - 1]):
        end -= 1
    return end


def _ends_with_word(text: str, end: int, words: Sequence[str]) -> bool:
    """Whether ``text[:end]`` ends in one of ``words`` (case-insensitive) with no word character before it."""
    for word in words:
        start = end - len(word)
        if start >= 0 and text[start:end].lower() == word and not (start and _is_word_char(text[start - 1])):
            return True
    return False


def _is_word_char(char: str) -> bool:
    return char.isalnum() or char == "_"


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
    span = _plain_math(_first_sentence(span))
    if "=" in span:
        span = span.rsplit("=", 1)[1]
    values = _numbers(span, skip_negated=True)
    if values:
        return values[0]
    return None if re.search(r"\d", span) else _spelled_number(span)


def _extract_number(text: str) -> str | None:
    for span in final_answer_spans(text):
        value = _number_in_span(span)
        if value is not None:
            return format_number(value)
    values = _numbers(text)
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


def _parse_number(text: str) -> Fraction | None:
    values = _numbers(text)
    return values[0] if values else None


def _numbers_equal(predicted: str, gold: str) -> bool:
    predicted_value, gold_value = _parse_number(predicted), _parse_number(gold)
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


# --- letters ------------------------------------------------------------------------------------

_LETTER_PARENTHESISED = re.compile(r"\(([A-Za-z])\)")
# Possessive blanks (\s*+) around an optional ":" match in linear time; "\s*:?\s*" backtracks
# quadratically over a long run of spaces that no letter follows.
_LETTER_NAMED = re.compile(r"\b(?i:option|choice)\s*+:?\s*+(?:\(([A-Za-z])\)|([A-Z])\b)")
_OPTION_NUMBER = re.compile(r"\b(?i:option|choice)\s*+#?\s*+(\d{1,2})\b")
_UPPER_LETTER_MENTION = re.compile(r"\(([A-Z])\)|\b(?i:option|choice)\s*+:?\s*+\(?([A-Z])\b")
_LETTER_OPENING = re.compile(r"([A-Z])(?:[).:,]|\s*$)")
_LONE_CAPITAL = re.compile(r"(?<![\w'])([A-Z])(?![\w'])")


def _valid_letters(choices: Sequence[str]) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    return alphabet[:len(choices)] if choices else alphabet


def _choice_key(text: str, fold_case: bool = True) -> str:
    """Option text for equality: spaces and a final period do not count, nor case if ``fold_case``."""
    text = unicodedata.normalize("NFKC", str(text)).replace("−", "-")
    text = text.lower() if fold_case else text
    return re.sub(r"\s+", "", text).rstrip(".")


def _choice_words(text: str) -> str:
    text = unicodedata.normalize("NFKC", str(text)).lower()
    return re.sub(r"\s+", " ", text).strip().rstrip(".")


def _letter_in_span(span: str, choices: Sequence[str], letters: str) -> str | None:
    """The first of the span readers, in the documented order, that finds a valid letter."""
    sentence = _first_sentence(span) or span
    for reader in (_marked_letter, _numbered_option, _bare_letter, _equal_option_text, _opening_letter,
                   _letter_with_its_text, _contained_option_text, _option_with_the_number, _lone_capital):
        letter = reader(span, sentence, choices, letters)
        if letter:
            return letter
    return None


def _marked_letter(span, sentence, choices, letters):
    for pattern in (_LETTER_PARENTHESISED, _LETTER_NAMED):
        match = pattern.search(span)
        letter = next(group for group in match.groups() if group).upper() if match else ""
        if letter and letter in letters:
            return letter
    return None


def _numbered_option(span, sentence, choices, letters):
    numbered = _OPTION_NUMBER.search(span)
    if numbered and 1 <= int(numbered.group(1)) <= len(letters):
        return letters[int(numbered.group(1)) - 1]
    return None


def _bare_letter(span, sentence, choices, letters):
    alone = re.fullmatch(r"([A-Za-z])[.)]?" if choices else r"([A-Z])[.)]?", span)
    return alone.group(1).upper() if alone and alone.group(1).upper() in letters else None


def _equal_option_text(span, sentence, choices, letters):
    return _letter_equal_to_option(span, choices, letters) or _letter_equal_to_option(sentence, choices, letters)


def _opening_letter(span, sentence, choices, letters):
    opening = _LETTER_OPENING.match(span)
    return opening.group(1) if opening and opening.group(1) in letters else None


def _letter_with_its_text(span, sentence, choices, letters):
    labelled = re.match(r"([A-Z])\s+(.+)", sentence)
    if labelled and choices and labelled.group(1) in letters:
        if _choice_key(labelled.group(2)) == _choice_key(choices[letters.index(labelled.group(1))]):
            return labelled.group(1)
    return None


def _letter_equal_to_option(text: str, choices: Sequence[str], letters: str) -> str | None:
    """The letter of the one option whose text equals ``text``: with case first, then without."""
    for fold_case in (False, True):
        keys = [_choice_key(choice, fold_case) for choice in choices]
        key = _choice_key(text, fold_case)
        if key and keys.count(key) == 1:
            return letters[keys.index(key)]
    return None


def _lone_capital(span, sentence, choices, letters):
    """The one capital letter standing alone in the sentence (``probably B``), not ``I``/``A`` as words."""
    found = {match.group(1) for match in _LONE_CAPITAL.finditer(sentence)
             if match.group(1) in letters and not _used_as_word(sentence, match)}
    return found.pop() if len(found) == 1 else None


def _used_as_word(sentence: str, match: re.Match) -> bool:
    return match.group(1) in "AI" and re.match(r"\s+[a-z]", sentence[match.end():]) is not None


def _contained_option_text(span, sentence, choices, letters):
    """The option whose text the sentence contains; with several, the longest if it holds the others."""
    words = _choice_words(sentence)
    found = {}
    for index, choice in enumerate(choices):
        option = _choice_words(choice)
        if option and re.search(r"(?<!\w)" + re.escape(option) + r"(?!\w)", words):
            found.setdefault(option, []).append(index)
    if not found:
        return None
    longest = max(found, key=len)
    if len(found[longest]) == 1 and all(option in longest for option in found):
        return letters[found[longest][0]]
    return None


def _option_with_the_number(span, sentence, choices, letters):
    """The letter of the one option holding exactly one number, equal to the sentence's number."""
    value = _parse_number(sentence)
    if value is None:
        return None
    matches = [index for index, choice in enumerate(choices) if _numbers(str(choice)) == [value]]
    return letters[matches[0]] if len(matches) == 1 else None


def _extract_letter(text: str, choices: Sequence[str]) -> str | None:
    letters = _valid_letters(choices)
    for span in final_answer_spans(text):
        letter = _letter_in_span(span, choices, letters)
        if letter:
            return letter
    mentions = [match.group(1) or match.group(2) for match in _UPPER_LETTER_MENTION.finditer(text)]
    mentions = [letter for letter in mentions if letter in letters]
    if mentions:
        return mentions[-1]
    last_line = _last_line(text)
    return _letter_equal_to_option(last_line, choices, letters) or _lone_capital(last_line, last_line, choices, letters)


def _letter_of(text: str) -> str | None:
    text = _unwrap(str(text))
    match = re.fullmatch(r"\(?([A-Za-z])[).:]?", text)
    return match.group(1).upper() if match else None


# --- yes / no -----------------------------------------------------------------------------------

_YES_NO = re.compile(r"\b(not\s+)?(yes|no|true|false)\b", re.IGNORECASE)
_YES_NO_VALUE = {"yes": "yes", "true": "yes", "no": "no", "false": "no"}


def _yes_no_from(match: re.Match) -> str:
    value = _YES_NO_VALUE[match.group(2).lower()]
    if match.group(1) and match.group(2).lower() in ("true", "false"):
        value = "no" if value == "yes" else "yes"
    return value


def _extract_yes_no(text: str) -> str | None:
    for span in final_answer_spans(text):
        match = _YES_NO.search(span)
        if match:
            return _yes_no_from(match)
    opening = re.match(r"\W*(yes|no|true|false)\b", text, re.IGNORECASE)
    if opening:
        return _YES_NO_VALUE[opening.group(1).lower()]
    matches = list(_YES_NO.finditer(_last_line(text)))
    return _yes_no_from(matches[-1]) if matches else None


def _yes_no_value(text: str) -> str | None:
    match = re.fullmatch(r"\W*(yes|no|true|false)\W*", str(text), re.IGNORECASE)
    return _YES_NO_VALUE[match.group(1).lower()] if match else None


# --- labels -------------------------------------------------------------------------------------

LABEL_SYNONYMS = {
    "entailment": ("entailment", "entails", "entailed", "entail", "entailing", "implied", "implies"),
    "contradiction": ("contradiction", "contradicts", "contradicted", "contradictory", "contradict"),
    "neutral": ("neutral", "neither", "undetermined", "cannot be determined", "can't be determined",
                "not enough information", "inconclusive", "unknown"),
    "invalid": ("invalid", "not valid"),
    "valid": ("valid",),
}
_NLI_TRUTH = {"true": "entailment", "false": "contradiction"}


def _label_phrases(labels: Sequence[str]) -> list[tuple[str, str]]:
    """(phrase, label) pairs, longest phrase first."""
    pairs = []
    canonical = {label.lower(): label for label in labels}
    for label in labels:
        spaced = re.sub(r"[_-]+", " ", label.lower())
        for phrase in {label.lower(), spaced, *LABEL_SYNONYMS.get(label.lower(), ())}:
            pairs.append((phrase, label))
    if "entailment" in canonical and "contradiction" in canonical:
        pairs.extend((word, canonical[label]) for word, label in _NLI_TRUTH.items())
    return sorted(set(pairs), key=lambda pair: -len(pair[0]))


def _label_mentions(text: str, labels: Sequence[str]) -> list[str]:
    """The labels mentioned in ``text``, in order, skipping negated mentions."""
    phrases = _label_phrases(labels)
    pattern = re.compile(r"(?<!\w)(" + "|".join(re.escape(phrase) for phrase, _ in phrases) + r")(?!\w)",
                         re.IGNORECASE)
    by_phrase = {}
    for phrase, label in phrases:
        by_phrase.setdefault(phrase, label)
    mentions = []
    for match in pattern.finditer(text.replace("_", " ")):
        phrase = match.group(1).lower()
        if _negated_label(text, match.start()) and not phrase.startswith("not "):
            continue
        mentions.append(by_phrase[phrase])
    return mentions


def _negated_label(text: str, end: int) -> bool:
    """Whether ``text[:end]`` ends in "not", "no" or "n't", blanks and maybe "a"/"an" after it
    ("not an entailment"): the regex ``(?:\\bnot|\\bno|n't)\\s+(?:an?\\s+)?$``, read backwards."""
    blank_end = _skip_back(text, end, str.isspace)
    if blank_end == end:
        return False
    if _negation_ends(text, blank_end):
        return True
    article = next((a for a in ("an", "a") if text[max(0, blank_end - len(a)):blank_end].lower() == a), None)
    article_start = blank_end - len(article) if article else 0
    if not article_start or not text[article_start - 1].isspace():
        return False
    return _negation_ends(text, _skip_back(text, article_start, str.isspace))


def _negation_ends(text: str, end: int) -> bool:
    return _ends_with_word(text, end, ("not", "no")) or text[max(0, end - 3):end].lower() == "n't"


def _extract_label(text: str, labels: Sequence[str]) -> str | None:
    if not labels:
        return None
    for span in final_answer_spans(text):
        mentions = _label_mentions(span, labels)
        if mentions:
            return mentions[0]
    for line in reversed([line for line in text.splitlines() if line.strip()]):
        mentions = _label_mentions(line, labels)
        if mentions:
            return mentions[-1]
    return None


def _label_key(text: str) -> str:
    text = re.sub(r"[_\-\s]+", " ", _unwrap(str(text)).lower()).rstrip(".")
    for label, synonyms in LABEL_SYNONYMS.items():
        if text in synonyms:
            return label
    return text


# --- math ---------------------------------------------------------------------------------------

_INLINE_MATH = re.compile(r"(?<!\\)\$((?:\\.|[^$\\])+)\$")


def _math_in_span(span: str) -> str | None:
    inline = _INLINE_MATH.search(span)
    if inline:
        return inline.group(1).strip()
    sentence = re.split(r"\.(?=\s|$)", span)[0].strip()
    return sentence.strip("$ ") or None


def _extract_math(text: str) -> str | None:
    for span in final_answer_spans(text):
        answer = _math_in_span(span)
        if answer:
            return answer
    inline = _INLINE_MATH.findall(_last_line(text))
    if inline:
        return inline[-1].strip()
    values = _numbers(text)
    return format_number(values[-1]) if values else None


def _math_equal(predicted: str, gold: str) -> bool:
    if latex.latex_equal(predicted, gold):
        return True
    predicted_number, gold_number = _parse_plain_number(predicted), _parse_plain_number(gold)
    return predicted_number is not None and predicted_number == gold_number


def _parse_plain_number(text: str) -> Fraction | None:
    plain = _plain_math(text).strip().strip("$").rstrip(".")
    match = _NUMBER.fullmatch(plain.strip())
    return _number_value(match) if match else None


# --- short text ---------------------------------------------------------------------------------

_ARTICLE = re.compile(r"^(?:the|a|an)\s+", re.IGNORECASE)
_LIST_SEPARATOR = re.compile(r"\s*(?:[,;]|\band\b|&)\s*", re.IGNORECASE)


def _text_key(text: str) -> str:
    text = unicodedata.normalize("NFKC", _unwrap(str(text))).lower().rstrip(".").strip()
    return _ARTICLE.sub("", re.sub(r"\s+", " ", text))


def _text_tokens(text: str) -> list[str]:
    return re.findall(r"[^\W_]+(?:'[^\W_]+)?|[^\w\s,.;:!?\"']", _text_key(text))


def _text_items(text: str) -> list[str]:
    return sorted(_ARTICLE.sub("", item) for item in _LIST_SEPARATOR.split(_text_key(text)) if item)


def _texts_equal(predicted: str, gold: str) -> bool:
    key, tokens, items = _text_key(gold), _text_tokens(gold), _text_items(gold)
    if not key:
        return False
    sentence_ends = takewhile(lambda match: match.start() < MAX_SPAN_CHARS, _SENTENCE_END.finditer(predicted))
    candidates = [predicted] + [predicted[:match.start()] for match in sentence_ends]
    for candidate in candidates:
        if _text_key(candidate) == key or _text_tokens(candidate) == tokens:
            return True
        if len(items) > 1 and _text_items(candidate) == items:
            return True
    return False


def _extract_text(text: str) -> str | None:
    spans = final_answer_spans(text)
    answer = spans[0] if spans else _last_line(text)
    answer = _unwrap(answer).rstrip(".").strip()
    return answer or None


# --- public API ---------------------------------------------------------------------------------

def extract_answer(text: str, answer_type: str, choices: Sequence[str] = (),
                   labels: Sequence[str] = ()) -> str | None:
    """The normalised answer a model's ``text`` gives for ``answer_type``, or None if none is found.

    Numbers come back canonical (``"18"``, ``"0.5"``), letters upper-case, yes/no as ``"yes"``/
    ``"no"``, labels as spelled in ``labels``, math and text as written (trimmed).
    """
    _check_type(answer_type)
    text = _readable(text)
    if answer_type == "number":
        return _extract_number(text)
    if answer_type == "letter":
        return _extract_letter(text, choices)
    if answer_type == "yes_no":
        return _extract_yes_no(text)
    if answer_type == "label":
        return _extract_label(text, labels)
    if answer_type == "math":
        return _extract_math(text)
    return _extract_text(text)


def answers_equal(predicted: str, gold: str, answer_type: str) -> bool:
    """Whether an extracted answer equals the gold answer under the rules of ``answer_type``."""
    _check_type(answer_type)
    if predicted is None or gold is None:
        return False
    predicted, gold = str(predicted), str(gold)
    if max(len(predicted), len(gold)) > MAX_TEXT_CHARS:
        return False
    if answer_type == "number":
        return _numbers_equal(predicted, gold)
    if answer_type == "letter":
        letter = _letter_of(predicted)
        return letter is not None and letter == _letter_of(gold)
    if answer_type == "yes_no":
        value = _yes_no_value(predicted)
        return value is not None and value == _yes_no_value(gold)
    if answer_type == "label":
        return bool(_label_key(predicted)) and _label_key(predicted) == _label_key(gold)
    if answer_type == "math":
        return _math_equal(predicted, gold)
    return _texts_equal(predicted, gold)


def is_correct(text: str, example: Example) -> bool:
    """Whether a model's output ``text`` answers ``example`` correctly (extract, then compare)."""
    predicted = extract_answer(text, example.answer_type, example.choices, example.labels)
    return predicted is not None and answers_equal(predicted, example.gold, example.answer_type)


def normalize_gold(raw, answer_type: str, choices: Sequence[str] = (), labels: Sequence[str] = ()) -> str:
    """The canonical gold answer for ``answer_type``; ValueError when ``raw`` is not one.

    number: one number, units allowed (``9 (apples)``, ``$1,000``, ``51.0``) → ``"9"``, ``"1000"``,
    ``"51"``; letter: ``B``, ``(B)``, ``B)``, ``Option 2`` or the text of one option → ``"B"``;
    yes_no: a bool or yes/no/true/false → ``"yes"``/``"no"``; label: a label, a synonym, or an unambiguous prefix
    (``e`` → ``entailment``) → the label as spelled in ``labels``; math: the last ``\\boxed{}`` of
    the text if any, without ``$``; text: the trimmed text (a list is joined with ``", "``).
    """
    _check_type(answer_type)
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        raise ValueError("the gold answer is empty")
    normalizer = {"number": _gold_number, "letter": _gold_letter, "yes_no": _gold_yes_no,
                  "label": _gold_label, "math": _gold_math, "text": _gold_text}[answer_type]
    return normalizer(raw, choices=choices, labels=labels)


def _gold_number(raw, **_) -> str:
    if isinstance(raw, bool):
        raise ValueError(f"{raw!r} is a boolean, not a number")
    if isinstance(raw, (int, float)):
        if raw != raw or raw in (float("inf"), float("-inf")):
            raise ValueError(f"{raw!r} is not a finite number")
        return format_number(Fraction(str(raw)))
    values = _numbers(str(raw))
    if len(values) != 1:
        found = "no number" if not values else f"{len(values)} numbers"
        raise ValueError(f"{raw!r} holds {found}, expected exactly one")
    return format_number(values[0])


def _gold_letter(raw, choices=(), **_) -> str:
    letters = _valid_letters(choices)
    letter = _letter_of(str(raw))
    if letter and letter in letters:
        return letter
    numbered = _OPTION_NUMBER.fullmatch(str(raw).strip())
    if numbered and 1 <= int(numbered.group(1)) <= len(letters):
        return letters[int(numbered.group(1)) - 1]
    by_text = _letter_equal_to_option(str(raw), choices, letters)
    if by_text:
        return by_text
    allowed = f"A-{letters[-1]}" if choices else "a letter"
    raise ValueError(f"{raw!r} is neither a letter ({allowed}) nor the text of exactly one option")


def _gold_yes_no(raw, **_) -> str:
    if isinstance(raw, bool):
        return "yes" if raw else "no"
    value = _yes_no_value(str(raw))
    if value is None:
        raise ValueError(f"{raw!r} is not yes/no/true/false")
    return value


def _gold_label(raw, labels=(), **_) -> str:
    if not labels:
        raise ValueError("no label set was given for a label answer")
    text = str(raw).strip()
    exact = [label for label in labels if label.lower() == text.lower()]
    if exact:
        return exact[0]
    synonyms = [label for label in labels if _label_key(text) == _label_key(label)]
    if len(synonyms) == 1:
        return synonyms[0]
    prefixed = [label for label in labels if text and label.lower().startswith(text.lower())]
    if len(prefixed) == 1:
        return prefixed[0]
    raise ValueError(f"{raw!r} is not one of the labels {', '.join(labels)}")


def _gold_math(raw, **_) -> str:
    text = str(raw).strip()
    boxed = latex.last_boxed(text)
    answer = re.sub(r"\s+", " ", boxed if boxed is not None else text).strip().strip("$").strip()
    if not answer:
        raise ValueError(f"{raw!r} holds no answer")
    return answer


def _gold_text(raw, **_) -> str:
    if isinstance(raw, (list, tuple)):
        raw = ", ".join(str(item).strip() for item in raw if str(item).strip())
    text = str(raw).strip()
    if not text:
        raise ValueError("the gold answer is empty")
    return text


def _check_type(answer_type: str) -> None:
    if answer_type not in ANSWER_TYPES:
        raise ValueError(f"answer_type must be one of {', '.join(ANSWER_TYPES)}; got {answer_type!r}")
