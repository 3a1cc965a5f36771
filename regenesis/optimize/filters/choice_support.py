"""The choice-support check: a multiple-choice or yes/no answer follows from stated reasons."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from regenesis.answers import SENTENCE_END
from regenesis.optimize.filters.reading import (answer_of, final_answer, is_answer_line, logical_lines, option_letters,
                                                stated_value, states_answer, strip_marker)
from regenesis.optimize.filters.verdict import Verdict, too_long_to_check
from regenesis.tasks.example import Example


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
    first_sentence = SENTENCE_END.split(analysis.strip(), maxsplit=1)[0]
    return "-" if _NEGATION.search(first_sentence) else "+"


def _is_option_echo(line: str, example: Example) -> bool:
    """A line that only restates an option (with or without its label), or holds no words at all."""
    words = content_words(strip_marker(line)) - {_stem(w) for w in _META_WORDS} - set("abcdefghij")
    return not words or any(words <= content_words(choice) for choice in example.choices)


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
            reason = _choice_defect(path, example)
        elif example.answer_type == "yes_no":
            reason = _yes_no_defect(path, example)
        else:
            reason = ""
        return Verdict(self.name, passed=not reason, reason=reason)


def _choice_defect(path: str, example: Example) -> str:
    """Why a multiple-choice path does not earn its letter, or ""."""
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
    return _analysis_defect(reasoning, chosen, example)


def _analysis_defect(reasoning: Sequence[str], chosen: str, example: Example) -> str:
    """Why an option-by-option analysis or the conclusion points away from ``chosen``, or ""."""
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


def _yes_no_defect(path: str, example: Example) -> str:
    """Why a yes/no path does not earn its answer, or ""."""
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
