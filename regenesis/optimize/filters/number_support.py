"""The number-support check: a number answer is reached in the reasoning, not only announced."""

from __future__ import annotations

import re

from regenesis.answers import answers_equal
from regenesis.optimize.filters.reading import final_answer, is_answer_line, logical_lines
from regenesis.optimize.filters.verdict import Verdict, too_long_to_check
from regenesis.tasks.example import Example

NUMBER_IN_TEXT = re.compile(r"-?\d+(?:\.\d+)?")


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
                       for number in NUMBER_IN_TEXT.findall(line.replace(",", "")))
        if mentions >= 2:
            return Verdict(self.name, passed=True)
        return Verdict(self.name, passed=False, reason=f"the answer {final} appears nowhere in the reasoning")
