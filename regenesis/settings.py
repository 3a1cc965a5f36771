"""Settings tables: a TOML table (or the same keys from command-line flags) read into a dataclass.

A dataclass is its own schema: each field is a key, its type annotation the value's type, and its
``minimum`` metadata the least value a number may take. ``check`` refuses an unknown key or a value of
the wrong type with one line that names the key, so every stage's configuration is read the same way
from a config file, from flags and from Python. ``toml_text`` writes such tables back, so a config built
in Python is kept as the file that reproduces it.
"""

from __future__ import annotations

import difflib
import json
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import fields, is_dataclass
from typing import Any

from regenesis.errors import BadInput

Hints = dict[str, tuple[Any, float | None]]  # key → (its type, its least value or None)


def schema(cls, without: tuple[str, ...] = (), minimum: float | None = None) -> Hints:
    """The keys of a dataclass: each field's type and least value (its metadata's, else ``minimum``)."""
    hints = typing.get_type_hints(cls)
    return {f.name: (hints[f.name], f.metadata.get("minimum", minimum)) for f in fields(cls)
            if f.name not in without and f.metadata.get("toml", True)}


def dotted(where: str) -> Callable[[str], str]:
    """How a TOML table's key is named in an error: ``methods.star.temperature``."""
    return lambda key: f"{where}.{key}" if where else key


def check(table: Any, hints: Hints, name: Callable[[str], str], where: str = "") -> dict:
    """``table`` with every key known and every value of its key's type; tuple-typed values as tuples.

    ``name`` turns a key into what the user wrote (a dotted TOML key, or a command-line flag)."""
    if not isinstance(table, dict):
        raise BadInput(f"{where}: expected a table, got {table!r}")
    for key, value in table.items():
        if key not in hints:
            close = difflib.get_close_matches(key, hints, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise BadInput(f"{name(key)}: unknown key{hint}; known: {', '.join(sorted(hints))}")
        kind, minimum = hints[key]
        if not conforms(value, kind):
            raise BadInput(f"{name(key)}: expected {type_name(kind)}, got {value!r}")
        if minimum is not None and conforms(value, float) and value < minimum:
            raise BadInput(f"{name(key)}: must be at least {minimum}, got {value!r}")
    return {key: tuple(value) if typing.get_origin(hints[key][0]) is tuple else value
            for key, value in table.items()}


def conforms(value: Any, kind: Any) -> bool:
    """Whether a TOML value has the type ``kind`` (a dataclass type stands for a table)."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        return any(conforms(value, arg) for arg in args)
    if kind is type(None):
        return value is None
    if kind is Any:
        return True
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if origin in (list, tuple):
        return isinstance(value, (list, tuple)) and all(conforms(item, args[0]) for item in value)
    if origin is dict:
        return isinstance(value, dict) and all(conforms(item, args[1]) for item in value.values())
    if is_dataclass(kind):
        return isinstance(value, dict)
    return isinstance(value, kind)


TYPE_NAMES = {bool: ("true or false", "true or false values"), int: ("a whole number", "whole numbers"),
              float: ("a number", "numbers"), str: ("a string", "strings")}


def type_name(kind: Any, plural: bool = False) -> str:
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(type_name(arg, plural) for arg in args if arg is not type(None))
    if origin in (list, tuple):
        return "lists" if plural else f"a list of {type_name(args[0], plural=True)}"
    if origin is dict or is_dataclass(kind) or kind is dict:
        return "tables" if plural else "a table"
    return TYPE_NAMES.get(kind, (str(kind), str(kind)))[plural]


# -- writing tables back ------------------------------------------------------------------------------

class InlineTable(dict):
    """A table written as a value on one line (``splits = { reclor = "validation" }``), not as a section."""


def toml_text(table: Mapping[str, Any], header: str = "") -> str:
    """``table`` as TOML: its plain keys, then each sub-table as its own ``[section]``. None values are
    left out (TOML has no null; a key left out takes its default)."""
    def section(value: Any) -> bool:
        return isinstance(value, Mapping) and not isinstance(value, InlineTable)

    plain = {key: value for key, value in table.items() if value is not None and not section(value)}
    lines = [f"[{header}]"] if header and (plain or not any(map(section, table.values()))) else []
    lines += [f"{bare(key)} = {toml_value(value)}" for key, value in plain.items()]
    parts = ["\n".join(lines) + "\n"] if lines else []
    parts += [toml_text(value, f"{header}.{bare(key)}" if header else bare(key))
              for key, value in table.items() if section(value)]
    return "\n".join(parts)


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a TOML basic string
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{bare(k)} = {toml_value(v)}" for k, v in value.items() if v is not None) + " }"
    raise TypeError(f"no TOML form for {value!r}")


def bare(key: str) -> str:
    """A key as TOML writes it: bare when it can be, quoted otherwise (``"bbh-sample/navigate"``)."""
    return key if key and all(c.isalnum() or c in "_-" for c in key) else json.dumps(key, ensure_ascii=False)
