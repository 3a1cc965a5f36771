"""Reading records from data files, each with a reference (``file:line``) for error messages."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from regenesis.errors import BadInput

FILE_FORMATS = (".jsonl", ".json", ".csv", ".parquet")


@dataclass(frozen=True)
class Row:
    """One record of a source and where it came from."""

    ref: str      # "path:line" or "hub-id[split] row N": shown in error messages
    index: int    # 0-based position among the rows of its split: part of stable ids
    record: dict


def read_records(path: Path) -> Iterator[Row]:
    """The records of a JSONL, JSON, CSV or Parquet file, by its suffix."""
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return read_jsonl(path)
    if suffix == ".json":
        return read_json(path)
    if suffix == ".csv":
        return read_csv(path)
    if suffix == ".parquet":
        return read_parquet(path)
    raise BadInput(f"{path}: unsupported file type {suffix or '(none)'!r}; use one of {', '.join(FILE_FORMATS)}")


def read_jsonl(path: Path) -> Iterator[Row]:
    index = 0
    with open_text(path) as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise BadInput(f"{path}:{line_number}: not valid JSON ({exc.msg})") from None
            yield Row(f"{path}:{line_number}", index, _as_record(record, path, line_number))
            index += 1


def read_json(path: Path, list_key: str | None = None) -> Iterator[Row]:
    """A JSON file holding a list of records, or an object with one list of records (``examples``,
    ``data``, ...); a file of one JSON object per line is read as JSONL."""
    with open_text(path) as handle:
        text = handle.read()
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data":
            yield from read_jsonl(path)
            return
        raise BadInput(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    records, start = _record_list(document, text, path, list_key)
    lines = _element_lines(text, start, len(records))
    for index, record in enumerate(records):
        yield Row(f"{path}:{lines[index]} (record {index + 1})", index, _as_record(record, path, lines[index]))


def read_csv(path: Path) -> Iterator[Row]:
    with open_text(path, newline="") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None:  # reads the header
            return
        previous_line = reader.line_num
        for index, record in enumerate(reader):
            yield Row(f"{path}:{previous_line + 1}", index, dict(record))
            previous_line = reader.line_num


def read_parquet(path: Path) -> Iterator[Row]:
    import pyarrow.parquet as parquet  # heavy: pyarrow, only for Parquet files

    try:
        table = parquet.read_table(path)
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise BadInput(f"{path}: not a readable Parquet file ({exc})") from None
    for index, record in enumerate(table.to_pylist()):
        yield Row(f"{path}: row {index + 1}", index, record)


def open_text(path: Path, newline: str | None = None) -> io.StringIO:
    """The file's text, decoded up front: a file that is not UTF-8 is bad input naming the line at fault."""
    if not path.is_file():
        raise BadInput(f"{path}: no such file")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise BadInput(f"{path}:{line}: not UTF-8 text (byte 0x{data[exc.start]:02x}); save the file as UTF-8") from None
    return io.StringIO(text, newline=newline)


def _as_record(record, path: Path, line: int) -> dict:
    if not isinstance(record, dict):
        raise BadInput(f"{path}:{line}: expected a JSON object per record, got {type(record).__name__}")
    return record


def _record_list(document, text: str, path: Path, list_key: str | None) -> tuple[list, int]:
    """The list of records in a JSON document and the character offset where it starts."""
    if isinstance(document, list):
        return document, text.index("[")
    if isinstance(document, dict):
        keys = [list_key] if list_key else [key for key, value in document.items() if isinstance(value, list)]
        if len(keys) == 1 and isinstance(document.get(keys[0]), list):
            match = re.search(r'"%s"\s*:\s*\[' % re.escape(keys[0]), text)
            return document[keys[0]], (match.end() - 1 if match else 0)
    raise BadInput(f"{path}: expected a list of records or an object holding one list of records")


def _element_lines(text: str, start: int, count: int) -> list[int]:
    """The line on which each element of the JSON array opening at ``text[start]`` begins."""
    decoder = json.JSONDecoder()
    lines, position = [], start + 1
    line = text.count("\n", 0, position) + 1
    for _ in range(count):
        skipped = re.compile(r"[\s,]*").match(text, position).end()
        line += text.count("\n", position, skipped)
        lines.append(line)
        _, end = decoder.raw_decode(text, skipped)
        line += text.count("\n", skipped, end)
        position = end
    return lines
