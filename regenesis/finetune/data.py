"""Training rows: read, check and hand to TRL.

The rows are the contract with ``regenesis synthesize``: a folder holding ``train.jsonl`` (or the
file itself), one JSON object a line, ``{"messages": [{"role", "content"}, ...], "meta": {...}}``,
the last message being the assistant turn the model learns to write. Only ``messages`` is trained on.
Every check names the file and the row (1-based line number) at fault.

Rows are taken in a canonical order (sorted by their content), not in file order: parallel synthesis
appends each problem's rows when it finishes, so two runs that kept the same rows can write them in
different orders, and the trainer's seeded shuffle of a different order is a different training run.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from regenesis.errors import BadInput

ROLES = {"system", "user", "assistant"}


@dataclass(frozen=True)
class Rows:
    file: Path
    messages: list[list[dict[str, str]]]
    lines: list[int]  # the file line of each row

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.messages, sort_keys=True).encode()).hexdigest()[:16]

    def dataset(self):
        from datasets import Dataset  # heavy: the datasets library

        return Dataset.from_list([{"messages": messages} for messages in self.messages])


def rows_file(data: str | Path) -> Path:
    path = Path(data).expanduser()
    if path.is_dir():
        path = path / "train.jsonl"
        if not path.is_file():
            raise BadInput(f"{data}: the folder holds no train.jsonl (the rows `regenesis synthesize` writes)")
    elif not path.is_file():
        raise BadInput(f"{data}: no such training file or folder")
    return path


def load_rows(data: str | Path) -> Rows:
    path = rows_file(data)
    rows = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                messages = _row_messages(path, number, line)
                rows.append((json.dumps(json.loads(line), sort_keys=True), number, messages))
    if not rows:
        raise BadInput(f"{path}: no training rows (the file is empty)")
    rows.sort()
    return Rows(path, [messages for _, _, messages in rows], [number for _, number, _ in rows])


def _row_messages(path: Path, number: int, line: str) -> list[dict[str, str]]:
    where = f"{path}, row {number}"
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise BadInput(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})") from exc
    if not isinstance(row, dict) or not isinstance(row.get("messages"), list):
        raise BadInput(f'{where}: expected an object with a "messages" list')
    messages = row["messages"]
    for index, message in enumerate(messages):
        if not (isinstance(message, dict) and message.get("role") in ROLES
                and isinstance(message.get("content"), str)):
            raise BadInput(f"{where}: message {index} needs a role ({', '.join(sorted(ROLES))}) and a text content")
    if not messages or messages[-1]["role"] != "assistant" or not messages[-1]["content"].strip():
        raise BadInput(f"{where}: the last message must be a non-empty assistant turn (what the model learns)")
    if not any(message["role"] == "user" for message in messages):
        raise BadInput(f"{where}: no user turn")
    return [{"role": message["role"], "content": message["content"]} for message in messages]


def check_lengths(rows: Rows, tokenizer, chat_template: str, max_length: int) -> int:
    """The longest row in tokens; refuses a ``max_length`` that would cut rows, saying how many."""
    lengths = [len(tokenizer.apply_chat_template(messages, chat_template=chat_template, tokenize=True,
                                                 return_dict=True)["input_ids"])
               for messages in rows.messages]
    too_long = [(length, line) for length, line in zip(lengths, rows.lines) if length > max_length]
    if too_long:
        longest, line = max(too_long)
        raise BadInput(f"{rows.file}: {len(too_long)} of {len(lengths)} rows are longer than --max-length "
                       f"{max_length} tokens and would be cut (the longest, row {line}, has {longest}); "
                       f"raise --max-length to {longest} or drop those rows")
    return max(lengths)
