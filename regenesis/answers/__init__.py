"""Reading a final answer out of model text and comparing it with gold: the one place both the
metric and the synthesis filters take their rules from."""

from regenesis.answers.matching import (ANSWER_TYPES, MAX_NUMBER_CHARS, answers_equal, extract_answer,
                                        final_answer_spans, format_number, is_correct, normalize_gold)

__all__ = ["ANSWER_TYPES", "MAX_NUMBER_CHARS", "answers_equal", "extract_answer", "final_answer_spans",
           "format_number", "is_correct", "normalize_gold"]
