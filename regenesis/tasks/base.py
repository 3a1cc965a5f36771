"""The task spec, the loader interface every benchmark implements, and helpers they share."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from regenesis.errors import BadInput
from regenesis.tasks.example import Example
from regenesis.tasks.readers import Row, read_records

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
EVALUATION_SPLIT_ORDER = ("test", "validation", "dev", "val")


class MissingField(KeyError):
    """A record lacks a field its task needs: the data is in another format."""

    def __init__(self, name: str, record: dict):
        super().__init__(name)
        self.name = name
        self.fields = sorted(str(key) for key in record)

    def __str__(self) -> str:
        return f"no field {self.name!r}; the fields are: {', '.join(self.fields) or '(none)'}"


class Loader:
    """How one benchmark is read: its local files, its hub dataset, and one record → Example.

    ``split_files`` maps each split to the file names it is made of, relative to the task's
    folder or to one of ``search_dirs`` inside it; ``example`` raises ``ValueError`` for a gold
    answer it cannot read and ``MissingField`` for a record of another format.
    """

    split_files: dict[str, tuple[str, ...]] = {}
    search_dirs: tuple[str, ...] = ("",)

    def local_splits(self, folder: Path) -> dict[str, list[Path]]:
        """The splits present in ``folder`` and their files."""
        found = {}
        for split, names in self.split_files.items():
            for directory in self.search_dirs:
                files = _existing(folder / directory if directory else folder, names)
                if files:
                    found[split] = files
                    break
        return found

    def split_of_file(self, path: Path) -> str | None:
        """The split a single data file is, judging by its name."""
        for split, names in self.split_files.items():
            if any("/" not in name and path.match(name) for name in names):
                return split
        return None

    def local_rows(self, files: list[Path], split: str) -> Iterator[Row]:
        return reindex(itertools.chain.from_iterable(read_records(path) for path in files))

    def hub_rows(self, split: str) -> Iterator[Row]:
        raise NotImplementedError

    def example(self, row: Row, task: str, split: str) -> Example:
        raise NotImplementedError


@dataclass(frozen=True)
class TaskSpec:
    """A registered task: what it is, where its data comes from, and how it is read."""

    name: str
    answer_type: str          # one of ANSWER_TYPES, or "mixed" when it varies by row
    domain: str               # "in" (the paper's training tasks) or "out"
    splits: tuple[str, ...]   # the split names it knows; a local copy may hold fewer
    default_split: str
    hub_id: str | None
    folder: str               # its folder under a data root laid out like ../shared/datasets
    license: str
    description: str
    loader: Loader | None     # None for "bbh", which is loaded as its subtasks
    bundled: bool = False     # shipped inside the package (regenesis/data/)

    @property
    def source(self) -> str:
        if self.bundled:
            return "bundled with the package"
        return f"hub {self.hub_id}" if self.hub_id else "local files only"


def field(record: dict, *names: str):
    """The value of the first of ``names`` present in ``record`` (case-insensitive)."""
    lowered = {str(key).lower(): key for key in record}
    for name in names:
        key = name if name in record else lowered.get(name.lower())
        if key is not None:
            return record[key]
    raise MissingField(names[0], record)


def render_choices(stem: str, choices: Iterable[str]) -> str:
    """The question as shown to the model: the stem, then ``Options:`` and ``(A) ...`` lines."""
    options = "\n".join(f"({LETTERS[index]}) {choice}" for index, choice in enumerate(choices))
    return f"{stem.strip()}\nOptions:\n{options}"


def letter_at(index: int, count: int) -> str:
    if not 0 <= index < count:
        raise ValueError(f"answer index {index} is outside the {count} options")
    return LETTERS[index]


def default_split(available: Iterable[str], preferred: str) -> str:
    """``preferred`` if available, else the first evaluation split present, else the only split."""
    available = list(available)
    if preferred in available:
        return preferred
    for name in EVALUATION_SPLIT_ORDER:
        if name in available:
            return name
    if len(available) == 1:
        return available[0]
    raise BadInput(f"several splits and no default among them; pass --split (one of {', '.join(available)})")


def reindex(rows: Iterable[Row]) -> Iterator[Row]:
    """Rows numbered consecutively across the files of one split."""
    for index, row in enumerate(rows):
        yield Row(row.ref, index, row.record)


def _existing(folder: Path, names: tuple[str, ...]) -> list[Path]:
    files = []
    for name in names:
        files.extend(sorted(path for path in folder.glob(name) if path.is_file()))
    return files
