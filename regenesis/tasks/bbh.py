"""BIG-Bench Hard: 27 subtasks of ``{"input", "target"}`` records, one answer type each.

Options are already part of ``input`` (``Options:`` then ``(A) ...`` lines), so the question is
the input unchanged and the choices are parsed out of it. BBH scores by its target string: the
three targets that are an option's text rather than its letter (a known defect of the release,
in movie_recommendation and ruin_names) are scored as short text.
"""

from __future__ import annotations

import re

from regenesis.tasks.example import Example
from regenesis.answers import normalize_gold
from regenesis.tasks.base import Loader, field
from regenesis.tasks.hub import hub_rows

BBH_HUB_ID = "lukaemon/bbh"
FORMAL_FALLACY_LABELS = ("valid", "invalid")

_YES_NO = ("boolean_expressions", "causal_judgement", "navigate", "sports_understanding", "web_of_lies")
_NUMBER = ("multistep_arithmetic_two", "object_counting")
_TEXT = ("dyck_languages", "word_sorting")
_LABEL = ("formal_fallacies",)
_LETTER = (
    "date_understanding", "disambiguation_qa", "geometric_shapes", "hyperbaton",
    "logical_deduction_five_objects", "logical_deduction_seven_objects", "logical_deduction_three_objects",
    "movie_recommendation", "penguins_in_a_table", "reasoning_about_colored_objects", "ruin_names",
    "salient_translation_error_detection", "snarks", "temporal_sequences",
    "tracking_shuffled_objects_five_objects", "tracking_shuffled_objects_seven_objects",
    "tracking_shuffled_objects_three_objects",
)
BBH_SUBTASKS: dict[str, str] = dict(sorted(
    [(name, "yes_no") for name in _YES_NO] + [(name, "number") for name in _NUMBER]
    + [(name, "text") for name in _TEXT] + [(name, "label") for name in _LABEL]
    + [(name, "letter") for name in _LETTER]))

_OPTION_LINE = re.compile(r"^\(([A-Z])\)\s?(.*)$", re.MULTILINE)


def parse_options(text: str) -> tuple[str, ...]:
    """The option texts of ``(A) ...`` lines, in letter order."""
    return tuple(text.strip() for _, text in _OPTION_LINE.findall(text))


class BBHSubtask(Loader):
    """One BBH subtask: ``<subtask>.json`` in the task folder or its ``bbh/`` subfolder."""

    search_dirs = ("", "bbh")

    def __init__(self, subtask: str):
        self.subtask = subtask
        self.answer_type = BBH_SUBTASKS[subtask]
        self.split_files = {"test": (f"{subtask}.json",)}

    def split_of_file(self, path):
        return "test"

    def hub_rows(self, split):
        return hub_rows(BBH_HUB_ID, split, self.subtask)

    def example(self, row, task, split):
        question = str(field(row.record, "input"))
        target = str(field(row.record, "target"))
        answer_type, choices, labels = self.answer_type, (), ()
        if answer_type == "letter":
            choices = parse_options(question)
        if answer_type == "label":
            labels = FORMAL_FALLACY_LABELS
        try:
            gold = normalize_gold(target, answer_type, choices, labels)
        except ValueError:
            if answer_type != "letter":
                raise
            answer_type, choices, gold = "text", (), normalize_gold(target, "text")
        return Example(id=f"bbh/{self.subtask}/{row.index}", question=question, gold=gold,
                       answer_type=answer_type, choices=choices, labels=labels, task=task)
