"""Whether a mention is negated: "not 20" is no answer of 20, "not an entailment" no entailment.

Each reader walks backwards from the mention, so that a long run of blanks is read once: the
end-anchored regexes they replace backtracked over it cubically.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence


def follows_not(text: str, end: int) -> bool:
    """Whether ``text[:end]`` ends in "not" and then at most a sign, a currency sign and a whole
    number, blanks between them ("not 20", "not -$5", "not 2 1/2"): the regex
    ``\\bnot\\s*[-−–]?\\s*[$€£¥]?\\s*(?:\\d+\\s+)?$``, read backwards from ``end``."""
    blank_end = _skip_back(text, end, str.isspace)
    digits_end = _skip_back(text, blank_end, str.isdecimal)
    i = _skip_back(text, digits_end, str.isspace) if blank_end < end and digits_end < blank_end else blank_end
    for symbols in ("$€£¥", "-−–"):
        if i and text[i - 1] in symbols:
            i = _skip_back(text, i - 1, str.isspace)
    return _ends_with_word(text, i, ("not",))


def negated_label(text: str, end: int) -> bool:
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


def _skip_back(text: str, end: int, belongs: Callable[[str], bool]) -> int:
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
