"""The task registry and ``load_task``: every benchmark and user dataset as a list of ``Example``.

Where a registered task's data comes from, in order: ``data`` (a file or a folder in the
benchmark's original release format, as in ``../shared/datasets/<folder>``); else
``data_root/<folder>``, with ``data_root`` defaulting to ``$REGENESIS_DATA_ROOT``; else the
task's Hugging Face hub dataset through ``datasets`` (``$REGENESIS_HUB_MIRROR`` can hold hub
snapshots, see ``hub.py``). ``gsm8k-sample``, ``strategyqa-sample``, ``svamp-sample``, ``bbh-sample/<subtask>`` and ``wordmath-*`` are bundled in the package and need none of them.

Example ids are ``<task>/<split>/<record id or row index>``: stable across runs of the same
source, they are the resume keys of long runs.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import replace
from importlib import resources
from pathlib import Path

from regenesis.errors import BadInput
from regenesis.tasks.base import Loader, MissingField, TaskSpec, default_split
from regenesis.tasks.bbh import BBH_HUB_ID, BBH_SUBTASKS, BBHSubtask
from regenesis.tasks.benchmarks import (
    ANLI, ARC, ASDiv, AQuA, GSM8K, HellaSwag, MATH, NumGLUE, ReClor, StrategyQA, SVAMP)
from regenesis.tasks.user import infer_labels, is_user_source, user_example, user_fields, user_rows
from regenesis.tasks.wordmath import LEVELS as WORDMATH_LEVELS, WordMath

DATA_ROOT_VARIABLE = "REGENESIS_DATA_ROOT"
BUNDLED_BBH_SUBTASKS = ("boolean_expressions", "navigate", "sports_understanding")

__all__ = ["TASKS", "IN_DOMAIN", "OUT_OF_DOMAIN", "BBH_TASKS", "TaskSpec", "LoadedExamples", "load_task",
           "DATA_ROOT_VARIABLE"]


def _spec(name, answer_type, domain, splits, hub_id, folder, license, description, loader,
          default="test", bundled=False) -> TaskSpec:
    return TaskSpec(name=name, answer_type=answer_type, domain=domain, splits=tuple(splits),
                    default_split=default, hub_id=hub_id, folder=folder, license=license,
                    description=description, loader=loader, bundled=bundled)


_REGISTERED = [
    _spec("gsm8k", "number", "in", ("train", "test"), "openai/gsm8k", "gsm8k", "MIT",
          "grade-school math word problems", GSM8K()),
    _spec("numglue", "mixed", "in", ("train", "dev", "test", "subset"), "metaeval/num-glue", "numglue",
          "ODC-By", "8 numerical reasoning formats (number, option, NLI label, span)", NumGLUE()),
    _spec("arc_challenge", "letter", "in", ("train", "validation", "test"), "allenai/ai2_arc", "arc_challenge",
          "CC BY-SA 4.0", "grade-school science, multiple choice", ARC()),
    _spec("reclor", "letter", "in", ("train", "validation"), "tasksource/reclor", "reclor",
          "non-commercial research", "logical reasoning from standardized tests", ReClor(), default="validation"),
    _spec("strategyqa", "yes_no", "in", ("train", "dev", "test"), "ChilleD/StrategyQA", "strategyqa", "MIT",
          "yes/no questions needing implicit multi-step strategies", StrategyQA()),
    _spec("asdiv", "number", "out", ("test", "asdiv-a"), "EleutherAI/asdiv", "asdiv", "CC BY-NC 4.0",
          "diverse math word problems (a few text answers)", ASDiv()),
    _spec("svamp", "number", "out", ("test",), "ChilleD/SVAMP", "svamp", "MIT",
          "math word problems with structural variations", SVAMP()),
    _spec("aqua", "letter", "out", ("train", "validation", "test"), "deepmind/aqua_rat", "aqua", "Apache-2.0",
          "algebra word problems, five options", AQuA()),
    _spec("math", "math", "out", ("train", "test"), "EleutherAI/hendrycks_math", "math", "MIT",
          "competition mathematics, LaTeX answers", MATH()),
    _spec("anli", "label", "out", ("train", "dev", "test") + tuple(
        f"{part}_r{round_}" for part in ("train", "dev", "test") for round_ in (1, 2, 3)),
          "facebook/anli", "anli", "CC BY-NC 4.0", "adversarial NLI, three rounds", ANLI()),
    _spec("hellaswag", "letter", "out", ("train", "validation"), "Rowan/hellaswag", "hellaswag", "MIT",
          "commonsense sentence completion", HellaSwag(), default="validation"),
    _spec("bbh", "mixed", "out", ("test",), BBH_HUB_ID, "bbh", "MIT",
          f"BIG-Bench Hard, all {len(BBH_SUBTASKS)} subtasks (or bbh/<subtask>)", None),
    *[_spec(f"bbh/{subtask}", answer_type, "out", ("test",), BBH_HUB_ID, "bbh", "MIT",
            f"BIG-Bench Hard: {subtask.replace('_', ' ')}", BBHSubtask(subtask))
      for subtask, answer_type in BBH_SUBTASKS.items()],
    _spec("gsm8k-sample", "number", "in", ("train", "test"), None, "gsm8k_sample", "MIT",
          "300 train and 200 test GSM8K problems shipped with the package", GSM8K(), bundled=True),
    _spec("strategyqa-sample", "yes_no", "in", ("train", "dev"), None, "strategyqa_sample", "MIT",
          "200 train and 100 dev StrategyQA questions shipped with the package", StrategyQA(), default="dev",
          bundled=True),
    _spec("svamp-sample", "number", "out", ("test",), None, "svamp_sample", "MIT",
          "all 1,000 SVAMP problems, shipped with the package", SVAMP(), bundled=True),
    *[_spec(f"bbh-sample/{subtask}", BBH_SUBTASKS[subtask], "out", ("test",), None, "bbh_sample", "MIT",
            f"BIG-Bench Hard: {subtask.replace('_', ' ')}, shipped with the package", BBHSubtask(subtask), bundled=True)
      for subtask in BUNDLED_BBH_SUBTASKS],
    *[_spec(f"wordmath-l{level}", "number", "in" if level <= 2 else "out", ("train", "test"), None, "wordmath", "MIT",
            f"generated word problems of {level} step{'s' if level > 1 else ''}, shipped with the package",
            WordMath(f"l{level}"), bundled=True)
      for level in WORDMATH_LEVELS],
    _spec("wordmath-unseen", "number", "out", ("test",), None, "wordmath", "MIT",
          "generated word problems of 1-2 steps in templates no wordmath level uses, shipped with the package",
          WordMath("unseen"), bundled=True),
]
TASKS: dict[str, TaskSpec] = {spec.name: spec for spec in _REGISTERED}
IN_DOMAIN = ["gsm8k", "numglue", "arc_challenge", "reclor", "strategyqa"]
OUT_OF_DOMAIN = ["asdiv", "svamp", "aqua", "math", "anli", "hellaswag", "bbh"]
BBH_TASKS = [f"bbh/{subtask}" for subtask in BBH_SUBTASKS]


class LoadedExamples(list):
    """The examples of a task, plus what loading them left out (``--skip-bad-rows``)."""

    def __init__(self, examples=(), skipped: list[str] | None = None, split: str = "", source: str = ""):
        super().__init__(examples)
        self.skipped_rows = skipped or []
        self.split = split
        self.source = source

    @property
    def skipped(self) -> int:
        return len(self.skipped_rows)


def load_task(name: str, data: str | Path | None = None, split: str | None = None, limit: int | None = None,
              skip_bad_rows: bool = False, data_root: str | Path | None = None, **fields) -> LoadedExamples:
    """The examples of a registered task, of ``bbh`` (all subtasks; ``limit`` is then per subtask),
    of ``bbh/<subtask>``, of a user file or folder, or of a ``hub:owner/name`` user dataset.

    ``fields`` (user datasets only): ``question_field``, ``answer_field``, ``answer_type``,
    ``choices_field``, ``labels``. A gold answer that cannot be read for its answer type is an
    error naming the file and line, unless ``skip_bad_rows``: then the row is counted in
    ``skipped_rows``. Raises ``BadInput`` for anything the user can fix.
    """
    if limit is not None and limit < 1:
        raise BadInput(f"--limit must be at least 1, got {limit}")
    if name in TASKS:
        given = sorted(key for key, value in fields.items() if value not in (None, (), [], ""))
        if given:
            raise BadInput(f"{', '.join(given)}: only for a user dataset, not the registered task {name!r}")
        if name == "bbh":
            return _load_all_bbh(data, split, limit, skip_bad_rows, data_root)
        return _load_registered(TASKS[name], data, split, limit, skip_bad_rows, data_root)
    if is_user_source(name):
        if data is not None:
            raise BadInput(f"--data is for registered tasks; {name!r} is itself the data")
        return _load_user(name, split, limit, skip_bad_rows, fields)
    raise BadInput(_unknown_task_message(name))


def _load_registered(spec: TaskSpec, data, split, limit, skip_bad_rows, data_root) -> LoadedExamples:
    source = _local_source(spec, data, data_root)
    if source is None:
        split = split or spec.default_split
        if split not in spec.splits:
            raise BadInput(f"{spec.name}: no split {split!r} on the hub; splits: {', '.join(spec.splits)}")
        rows, where = spec.loader.hub_rows(split), f"hub {spec.hub_id}"
    else:
        split, files = _local_split(spec, source, split)
        rows, where = spec.loader.local_rows(files, split), str(source)
    return _collect(rows, lambda row: spec.loader.example(row, spec.name, split), limit, skip_bad_rows,
                    split, where, spec.name)


def _local_source(spec: TaskSpec, data, data_root) -> Path | None:
    if data is not None:
        path = Path(data).expanduser()
        if not path.exists():
            raise BadInput(f"--data {path}: no such file or folder")
        return path
    if spec.bundled:
        return Path(str(resources.files("regenesis") / "data" / spec.folder))
    root = data_root if data_root is not None else os.environ.get(DATA_ROOT_VARIABLE) or None
    if root is None:
        return None
    folder = Path(root).expanduser() / spec.folder
    if not folder.is_dir():
        where = "--data-root" if data_root is not None else f"${DATA_ROOT_VARIABLE}"
        raise BadInput(f"{where} {root}: no folder {spec.folder!r} for task {spec.name}")
    return folder


def _local_split(spec: TaskSpec, source: Path, split: str | None) -> tuple[str, list[Path]]:
    loader: Loader = spec.loader
    if source.is_file():
        return split or loader.split_of_file(source) or source.stem, [source]
    available = loader.local_splits(source)
    if not available:
        expected = sorted({name for names in loader.split_files.values() for name in names})
        raise BadInput(f"{source}: no {spec.name} data files here (expected one of: {', '.join(expected)})")
    split = split or default_split(available, spec.default_split)
    if split not in available:
        raise BadInput(f"{source}: no split {split!r} for {spec.name}; available here: {', '.join(available)}")
    return split, available[split]


def _load_all_bbh(data, split, limit, skip_bad_rows, data_root) -> LoadedExamples:
    combined = LoadedExamples(split=split or "test")
    for name in BBH_TASKS:
        part = _load_registered(TASKS[name], data, split, limit, skip_bad_rows, data_root)
        combined.extend(part)
        combined.skipped_rows.extend(part.skipped_rows)
        combined.source = part.source
    return combined


def _load_user(name: str, split, limit, skip_bad_rows, fields) -> LoadedExamples:
    spec = user_fields(**fields)
    dataset, split, rows = user_rows(name, split)
    if spec.answer_type == "label" and not spec.labels:
        rows = list(rows)
        if rows and spec.answer_field in rows[0].record:
            spec = replace(spec, labels=infer_labels(rows, spec.answer_field))
    return _collect(iter(rows), lambda row: user_example(row, spec, dataset, split), limit, skip_bad_rows,
                    split, name, dataset)


def _collect(rows, to_example, limit, skip_bad_rows, split, where, task) -> LoadedExamples:
    examples = LoadedExamples(split=split, source=where)
    seen_ids = set()
    for row in rows:
        try:
            example = to_example(row)
        except MissingField as exc:
            raise BadInput(f"{row.ref}: not {task} data: {exc}") from None
        except (KeyError, TypeError, AttributeError) as exc:  # a record shaped unlike the task's format
            raise BadInput(f"{row.ref}: not {task} data ({type(exc).__name__}: {exc})") from None
        except ValueError as exc:
            if isinstance(exc, BadInput):
                raise
            if not skip_bad_rows:
                raise BadInput(f"{row.ref}: bad gold answer: {exc} (pass --skip-bad-rows to skip such rows)") from None
            examples.skipped_rows.append(f"{row.ref}: {exc}")
            continue
        if example.id in seen_ids:
            raise BadInput(f"{row.ref}: duplicate example id {example.id!r}")
        seen_ids.add(example.id)
        examples.append(example)
        if limit is not None and len(examples) >= limit:
            break
    if not examples:
        skipped = f" ({examples.skipped} rows skipped as bad)" if examples.skipped else ""
        raise BadInput(f"{where}: no examples for {task} split {split!r}{skipped}")
    return examples


def _unknown_task_message(name: str) -> str:
    close = difflib.get_close_matches(name, TASKS, n=3)
    hint = f" Did you mean {' or '.join(close)}?" if close else ""
    listed = ", ".join(name for name in TASKS if not name.startswith("bbh/"))
    return (f"unknown task {name!r}.{hint} Registered tasks: {listed}, bbh/<subtask> "
            f"(see `regenesis tasks`); or give a path to a .jsonl/.json/.csv/.parquet file, or hub:owner/name")
