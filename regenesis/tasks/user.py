"""A user's own dataset as a task: a JSONL/JSON/CSV/Parquet file, a folder of split files, or
``hub:owner/name`` (``hub:owner/name:config`` for a config)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from regenesis.errors import BadInput
from regenesis.tasks.example import ANSWER_TYPES, Example
from regenesis.answers import normalize_gold
from regenesis.tasks.base import default_split, render_choices
from regenesis.tasks.hub import hub_rows, hub_splits
from regenesis.tasks.readers import FILE_FORMATS, Row, read_records

HUB_PREFIX = "hub:"


@dataclass(frozen=True)
class UserFields:
    """Which fields of a user's records hold what, and the answer type."""

    question_field: str = "question"   # several fields joined: "Body,Question"
    answer_field: str = "answer"
    answer_type: str | None = None
    choices_field: str | None = None
    labels: tuple[str, ...] = ()

    @property
    def question_fields(self) -> list[str]:
        return [name.strip() for name in self.question_field.split(",") if name.strip()]


def is_user_source(name: str) -> bool:
    """Whether a task name denotes a user dataset rather than a registered task."""
    return name.startswith(HUB_PREFIX) or Path(name).suffix.lower() in FILE_FORMATS or Path(name).exists()


def user_fields(answer_type=None, question_field=None, answer_field=None, choices_field=None,
                labels=None) -> UserFields:
    if answer_type is None:
        raise BadInput(f"a user dataset needs --answer-type (one of {', '.join(ANSWER_TYPES)})")
    if answer_type not in ANSWER_TYPES:
        raise BadInput(f"--answer-type {answer_type!r} is not one of {', '.join(ANSWER_TYPES)}")
    if isinstance(labels, str):
        labels = [label.strip() for label in labels.split(",") if label.strip()]
    return UserFields(question_field or "question", answer_field or "answer", answer_type, choices_field,
                      tuple(labels or ()))


def user_rows(source: str, split: str | None) -> tuple[str, str, Iterator[Row]]:
    """(dataset name, split, rows) of a user file, folder or hub dataset."""
    if source.startswith(HUB_PREFIX):
        hub_id, _, config = source[len(HUB_PREFIX):].partition(":")
        if not hub_id:
            raise BadInput(f"{source!r}: expected hub:owner/name")
        split = split or default_split(hub_splits(hub_id, config or None), "test")
        return hub_id.rsplit("/", 1)[-1], split, hub_rows(hub_id, split, config or None)
    path = Path(source)
    if not path.exists():
        raise BadInput(f"{path}: no such file or folder")
    if path.is_dir():
        files = _split_files(path)
        split = split or default_split(files, "test")
        if split not in files:
            raise BadInput(f"{path}: no file for split {split!r}; found splits: {', '.join(files) or '(none)'}")
        return path.name, split, read_records(files[split])
    return path.stem, split or "all", read_records(path)


def user_example(row: Row, fields: UserFields, name: str, split: str) -> Example:
    record = row.record
    for wanted in fields.question_fields + [fields.answer_field] + ([fields.choices_field] if fields.choices_field else []):
        if wanted not in record:
            raise BadInput(f"{row.ref}: no field {wanted!r}; the fields are: {', '.join(map(str, record)) or '(none)'}")
    question = "\n".join(str(record[name]).strip() for name in fields.question_fields)
    choices = _choices(record[fields.choices_field], row.ref) if fields.choices_field else ()
    if choices:
        question = render_choices(question, choices)
    gold = normalize_gold(record[fields.answer_field], fields.answer_type, choices, fields.labels)
    return Example(id=f"{name}/{split}/{row.index}", question=question, gold=gold, answer_type=fields.answer_type,
                   choices=choices, labels=fields.labels, task=name)


def _choices(value, ref: str) -> tuple[str, ...]:
    """Options from a list, a JSON list in a string (CSV), or one option per line."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                raise BadInput(f"{ref}: the choices {text[:60]!r} are not a valid JSON list") from None
        else:
            value = [line for line in text.splitlines() if line.strip()]
    if not isinstance(value, (list, tuple)) or not value:
        raise BadInput(f"{ref}: the choices must be a non-empty list, got {value!r}")
    return tuple(re.sub(r"^\s*\(?[A-Z]\)\s*", "", str(choice)).strip() for choice in value)


def _split_files(folder: Path) -> dict[str, Path]:
    files = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix.lower() in FILE_FORMATS:
            files.setdefault(path.stem, path)
    return files


def infer_labels(rows: list[Row], answer_field: str) -> tuple[str, ...]:
    """A closed label set read off the data, when none was given: its distinct answers, sorted."""
    return tuple(sorted({str(row.record[answer_field]).strip() for row in rows
                         if answer_field in row.record and str(row.record[answer_field]).strip()}))
