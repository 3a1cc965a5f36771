"""Gold answers as datasets write them, made canonical for their answer type."""

from __future__ import annotations

import re
from collections.abc import Sequence
from fractions import Fraction

from regenesis.answers.answer_types import check_answer_type
from regenesis.answers.choices import OPTION_NUMBER, letter_equal_to_option, letter_of, valid_letters
from regenesis.answers.labels import label_key, yes_no_value
from regenesis.answers.numbers import format_number, numbers_in
from regenesis.answers.latex import answer_of_boxes
from regenesis.answers.spans import adjacent_boxes, boxes


def normalize_gold(raw, answer_type: str, choices: Sequence[str] = (), labels: Sequence[str] = ()) -> str:
    """The canonical gold answer for ``answer_type``; ValueError when ``raw`` is not one.

    number: one number, units allowed (``9 (apples)``, ``$1,000``, ``51.0``) → ``"9"``, ``"1000"``,
    ``"51"``; letter: ``B``, ``(B)``, ``B)``, ``Option 2`` or the text of one option → ``"B"``;
    yes_no: a bool or yes/no/true/false → ``"yes"``/``"no"``; label: a label, a synonym, or an unambiguous prefix
    (``e`` → ``entailment``) → the label as spelled in ``labels``; math: the last ``\\boxed{}`` of
    the text if any, with the boxes it closes a run of (``latex.answer_of_boxes``: ``$\\boxed{-2}$ and
    $\\boxed{1}$`` → ``-2, 1``), without ``$``; text: the trimmed text (a list is joined with ``", "``).
    """
    check_answer_type(answer_type)
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
    values = numbers_in(str(raw))
    if len(values) != 1:
        found = "no number" if not values else f"{len(values)} numbers"
        raise ValueError(f"{raw!r} holds {found}, expected exactly one")
    return format_number(values[0])


def _gold_letter(raw, choices=(), **_) -> str:
    letters = valid_letters(choices)
    letter = letter_of(str(raw))
    if letter and letter in letters:
        return letter
    numbered = OPTION_NUMBER.fullmatch(str(raw).strip())
    if numbered and 1 <= int(numbered.group(1)) <= len(letters):
        return letters[int(numbered.group(1)) - 1]
    by_text = letter_equal_to_option(str(raw), choices, letters)
    if by_text:
        return by_text
    allowed = f"A-{letters[-1]}" if choices else "a letter"
    raise ValueError(f"{raw!r} is neither a letter ({allowed}) nor the text of exactly one option")


def _gold_yes_no(raw, **_) -> str:
    if isinstance(raw, bool):
        return "yes" if raw else "no"
    value = yes_no_value(str(raw))
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
    synonyms = [label for label in labels if label_key(text) == label_key(label)]
    if len(synonyms) == 1:
        return synonyms[0]
    prefixed = [label for label in labels if text and label.lower().startswith(text.lower())]
    if len(prefixed) == 1:
        return prefixed[0]
    raise ValueError(f"{raw!r} is not one of the labels {', '.join(labels)}")


def _gold_math(raw, **_) -> str:
    text = str(raw).strip()
    found = boxes(text)
    boxed = answer_of_boxes(text, adjacent_boxes(text, found, len(found) - 1)) if found else None
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
