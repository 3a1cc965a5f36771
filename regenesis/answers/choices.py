"""Multiple-choice answers: the letter a text names, ``choices`` being the option texts (A, B, ...).

In a final-answer span, in order: a parenthesised letter ``(B)``; ``option B``/``choice B``;
``option 2`` (NumGLUE's form); the span equal to one option's text; a letter opening the span followed
by ``)``, ``.``, ``:``, ``,`` or nothing (``B)``, ``B.``, ``B``; not the article in ``A cat``); a
letter followed by its own option's text; a unique option text contained in the span; a number equal
to the number of exactly one option (``32,400`` for ``A)32400``, ``750`` for ``D)Rs. 750``); a lone
capital (``probably B``). Letters outside the options are ignored.

Fallback: the last ``(X)``/``option X`` of the text (capital X only: ``(i)`` enumerates), else the
last line equal to an option, else a lone capital in the last line (``So D.``).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from regenesis.answers.numbers import numbers_in, parse_number
from regenesis.answers.spans import final_answer_spans, first_sentence, last_line, unwrap

_LETTER_PARENTHESISED = re.compile(r"\(([A-Za-z])\)")
# Possessive blanks (\s*+) around an optional ":" match in linear time; "\s*:?\s*" backtracks
# quadratically over a long run of spaces that no letter follows.
_LETTER_NAMED = re.compile(r"\b(?i:option|choice)\s*+:?\s*+(?:\(([A-Za-z])\)|([A-Z])\b)")
OPTION_NUMBER = re.compile(r"\b(?i:option|choice)\s*+#?\s*+(\d{1,2})\b")
_UPPER_LETTER_MENTION = re.compile(r"\(([A-Z])\)|\b(?i:option|choice)\s*+:?\s*+\(?([A-Z])\b")
_LETTER_OPENING = re.compile(r"([A-Z])(?:[).:,]|\s*$)")
_LONE_CAPITAL = re.compile(r"(?<![\w'])([A-Z])(?![\w'])")


def valid_letters(choices: Sequence[str]) -> str:
    """The letters of ``choices``; any capital when the options are not known."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    return alphabet[:len(choices)] if choices else alphabet


def extract_letter(text: str, choices: Sequence[str]) -> str | None:
    """The letter ``text`` answers, upper-case, or None."""
    letters = valid_letters(choices)
    for span in final_answer_spans(text):
        letter = _letter_in_span(span, choices, letters)
        if letter:
            return letter
    mentions = [match.group(1) or match.group(2) for match in _UPPER_LETTER_MENTION.finditer(text)]
    mentions = [letter for letter in mentions if letter in letters]
    if mentions:
        return mentions[-1]
    line = last_line(text)
    return letter_equal_to_option(line, choices, letters) or _lone_capital(line, line, choices, letters)


def letter_of(text: str) -> str | None:
    """The letter ``text`` is (``B``, ``(b)``, ``B)``, ``B.``), upper-case, or None."""
    text = unwrap(str(text))
    match = re.fullmatch(r"\(?([A-Za-z])[).:]?", text)
    return match.group(1).upper() if match else None


def letters_equal(predicted: str, gold: str) -> bool:
    letter = letter_of(predicted)
    return letter is not None and letter == letter_of(gold)


def letter_equal_to_option(text: str, choices: Sequence[str], letters: str) -> str | None:
    """The letter of the one option whose text equals ``text``: with case first, then without."""
    for fold_case in (False, True):
        keys = [_choice_key(choice, fold_case) for choice in choices]
        key = _choice_key(text, fold_case)
        if key and keys.count(key) == 1:
            return letters[keys.index(key)]
    return None


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
    sentence = first_sentence(span) or span
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
    numbered = OPTION_NUMBER.search(span)
    if numbered and 1 <= int(numbered.group(1)) <= len(letters):
        return letters[int(numbered.group(1)) - 1]
    return None


def _bare_letter(span, sentence, choices, letters):
    alone = re.fullmatch(r"([A-Za-z])[.)]?" if choices else r"([A-Z])[.)]?", span)
    return alone.group(1).upper() if alone and alone.group(1).upper() in letters else None


def _equal_option_text(span, sentence, choices, letters):
    return letter_equal_to_option(span, choices, letters) or letter_equal_to_option(sentence, choices, letters)


def _opening_letter(span, sentence, choices, letters):
    opening = _LETTER_OPENING.match(span)
    return opening.group(1) if opening and opening.group(1) in letters else None


def _letter_with_its_text(span, sentence, choices, letters):
    labelled = re.match(r"([A-Z])\s+(.+)", sentence)
    if labelled and choices and labelled.group(1) in letters:
        if _choice_key(labelled.group(2)) == _choice_key(choices[letters.index(labelled.group(1))]):
            return labelled.group(1)
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
    value = parse_number(sentence)
    if value is None:
        return None
    matches = [index for index, choice in enumerate(choices) if numbers_in(str(choice)) == [value]]
    return letters[matches[0]] if len(matches) == 1 else None
