"""Reading a final answer out of model text and comparing it with gold: the metric that decides
training data and every reported score, and the place the synthesis filters take their rules from.

Model output is only ever read as text: nothing in it is executed or passed to ``eval``; LaTeX goes
through a whitelist parser of our own. Where the answer is (``spans``): the *final-answer spans*
after each answer marker ("The answer is ...", ``####``) and inside each ``\\boxed{}``, tried from
the last one backwards; the first that holds a valid answer for the type wins, and only when none
does extraction falls back to the end of the text, with a rule per type. Each type has a module of
its own with its rules: ``numbers``, ``choices`` (letters), ``labels`` (yes/no and closed label
sets), ``latex`` (math), ``text``; ``gold`` makes a dataset's gold answer canonical.

The synthesis filters read a path's final answer with the same primitives, so that what synthesis
keeps and what evaluation scores cannot disagree: ``ANSWER_MARKER`` (the answer phrase),
``SENTENCE_END`` with ``sentences`` and ``first_sentence`` (where a sentence ends), ``boxed_answers``
and ``last_boxed`` (the reader of ``\\boxed{}``), and ``extract_answer`` itself.

Bounds keep hostile outputs cheap: only the last 20,000 characters are read, a span is at most
1,000 characters, the last 50 spans are tried, and a number token longer than 100 characters is no
number; an answer (or gold answer) longer than 20,000 characters equals nothing. Every pattern
matches in time linear in the text it reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from regenesis.answers.answer_types import ANSWER_TYPES, check_answer_type
from regenesis.answers.choices import extract_letter, letters_equal
from regenesis.answers.gold import normalize_gold
from regenesis.answers.labels import extract_label, extract_yes_no, labels_equal, yes_no_equal
from regenesis.answers.latex import extract_math, math_equal
from regenesis.answers.numbers import MAX_NUMBER_CHARS, extract_number, format_number, numbers_equal
from regenesis.answers.spans import (ANSWER_MARKER, MAX_TEXT_CHARS, SENTENCE_END, boxed_answers, final_answer_spans,
                                     first_sentence, last_boxed, readable, sentences)
from regenesis.answers.text import extract_text, texts_equal

if TYPE_CHECKING:  # an Example is read, never built, here; tasks import this package
    from regenesis.tasks.example import Example

__all__ = ["ANSWER_MARKER", "ANSWER_TYPES", "MAX_NUMBER_CHARS", "SENTENCE_END", "answers_equal", "boxed_answers",
           "extract_answer", "final_answer_spans", "first_sentence", "format_number", "is_correct", "last_boxed",
           "normalize_gold", "sentences"]


def extract_answer(text: str, answer_type: str, choices: Sequence[str] = (),
                   labels: Sequence[str] = ()) -> str | None:
    """The normalised answer a model's ``text`` gives for ``answer_type``, or None if none is found.

    Numbers come back canonical (``"18"``, ``"0.5"``), letters upper-case, yes/no as ``"yes"``/
    ``"no"``, labels as spelled in ``labels``, math and text as written (trimmed).
    """
    check_answer_type(answer_type)
    text = readable(text)
    if answer_type == "number":
        return extract_number(text)
    if answer_type == "letter":
        return extract_letter(text, choices)
    if answer_type == "yes_no":
        return extract_yes_no(text)
    if answer_type == "label":
        return extract_label(text, labels)
    if answer_type == "math":
        return extract_math(text)
    return extract_text(text)


_EQUALITY = {"number": numbers_equal, "letter": letters_equal, "yes_no": yes_no_equal, "label": labels_equal,
             "math": math_equal, "text": texts_equal}


def answers_equal(predicted: str, gold: str, answer_type: str) -> bool:
    """Whether an extracted answer equals the gold answer under the rules of ``answer_type``."""
    check_answer_type(answer_type)
    if predicted is None or gold is None:
        return False
    predicted, gold = str(predicted), str(gold)
    if max(len(predicted), len(gold)) > MAX_TEXT_CHARS:
        return False
    return _EQUALITY[answer_type](predicted, gold)


def is_correct(text: str, example: Example) -> bool:
    """Whether a model's output ``text`` answers ``example`` correctly (extract, then compare)."""
    predicted = extract_answer(text, example.answer_type, example.choices, example.labels)
    return predicted is not None and answers_equal(predicted, example.gold, example.answer_type)
