"""Hostile shapes: text that can break what reads or prints a row, which no reasoning path needs."""

from __future__ import annotations

import re

from rich.errors import StyleSyntaxError
from rich.style import Style

from regenesis.optimize.filters.arithmetic import power_bombs
from regenesis.redact import redact


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
