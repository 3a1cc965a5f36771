"""The benchmarks of the paper, each read from its original release format or from the hub.

Local formats are those of ``../shared/datasets`` (see its README); hub records go through the
same ``example`` functions, which accept both schemas where they differ.
"""

from __future__ import annotations

import itertools
import json
import re
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from pathlib import Path

from regenesis.errors import BadInput
from regenesis.tasks.example import Example
from regenesis.answers import normalize_gold
from regenesis.tasks.base import Loader, field, letter_at, reindex, render_choices
from regenesis.tasks.hub import hub_rows
from regenesis.tasks.readers import Row, open_text

NLI_LABELS = ("entailment", "neutral", "contradiction")


def _example_id(task: str, split: str, key) -> str:
    return f"{task}/{split}/{key}"


def _chain_hub(hub_id: str, parts: list[tuple[str | None, str]]) -> Iterator[Row]:
    """Rows of several (config, split) parts of one hub dataset, numbered as one split."""
    return reindex(itertools.chain.from_iterable(hub_rows(hub_id, split, config) for config, split in parts))


class GSM8K(Loader):
    """Grade-school math; gold is the number after ``####`` in ``answer``."""

    split_files = {"train": ("train.jsonl",), "test": ("test.jsonl",)}

    def hub_rows(self, split):
        return hub_rows("openai/gsm8k", split, "main")

    def example(self, row, task, split):
        solution = str(field(row.record, "answer"))
        reasoning, _, final = solution.rpartition("####")
        if not _:
            raise ValueError(f"no '#### <answer>' line in {solution[-60:]!r}")
        return Example(id=_example_id(task, split, row.index), question=str(field(row.record, "question")),
                       gold=normalize_gold(final, "number"), answer_type="number", task=task,
                       meta={"solution": reasoning.strip()})


class NumGLUE(Loader):
    """Eight task types in one file; the answer type follows the record's ``type``.

    Official files are ``NumGLUE_{train,dev,test}.json``; a folder of per-type files
    (``*type1.json`` ... ``*type8.json``, as in the APRICOT copy) is the split ``subset``.
    """

    split_files = {"train": ("NumGLUE_train.json",), "dev": ("NumGLUE_dev.json",),
                   "test": ("NumGLUE_test.json",), "subset": tuple(f"*type{n}.json" for n in range(1, 9))}
    hub_split_names = {"train": "train", "dev": "validation", "test": "test"}

    def hub_rows(self, split):
        if split not in self.hub_split_names:
            raise BadInput(f"numglue: the hub dataset has no split {split!r}; it has train, dev, test")
        return hub_rows("metaeval/num-glue", self.hub_split_names[split])

    def example(self, row, task, split):
        record = row.record
        kind = str(field(record, "type"))
        number = int(re.sub(r"\D", "", kind) or 0)
        question, answer_type, gold, choices, labels = self._content(record, number)
        return Example(id=_example_id(task, split, row.index), question=question, gold=gold,
                       answer_type=answer_type, choices=choices, labels=labels, task=task,
                       meta={"numglue_type": number})

    def _content(self, record, number):
        answer = field(record, "answer")
        if number == 3:
            choices = (str(field(record, "Option1")), str(field(record, "Option2")))
            numbered = re.fullmatch(r"\s*option\s*([12])\s*", str(answer), re.IGNORECASE)
            gold = "AB"[int(numbered.group(1)) - 1] if numbered else normalize_gold(answer, "letter", choices)
            return render_choices(str(field(record, "question")), choices), "letter", gold, choices, ()
        if number == 7:
            labels = tuple(label.strip().lower() for label in
                           re.split(r"\s+or\s+", str(field(record, "options")).strip(" ?")))
            question = (f"Statement 1: {field(record, 'statement1')}\nStatement 2: {field(record, 'statement2')}\n"
                        f"Does statement 1 entail statement 2, contradict it, or neither? "
                        f"Options: {', '.join(labels)}.")
            return question, "label", normalize_gold(answer, "label", labels=labels), (), labels
        question = str(field(record, "question"))
        if "passage" in record and record["passage"]:
            question = f"{record['passage'].strip()}\n\n{question}"
        answer_type, gold = self._typed_answer(answer)
        return question, answer_type, gold, (), ()

    @staticmethod
    def _typed_answer(answer):
        if isinstance(answer, dict):  # DROP-style: a number, a date, or spans
            if str(answer.get("number") or "").strip():
                return "number", normalize_gold(answer["number"], "number")
            date = answer.get("date") or {}
            parts = [str(date.get(key) or "").strip() for key in ("day", "month", "year")]
            if any(parts):
                return "text", " ".join(part for part in parts if part)
            return "text", normalize_gold(list(answer.get("spans") or []), "text")
        try:
            return "number", normalize_gold(answer, "number")
        except ValueError:
            return "text", normalize_gold(answer, "text")


class ARC(Loader):
    """ARC-Challenge, in the hub's schema or AI2's original ``question.stem`` schema."""

    split_files = {"train": ("train.jsonl", "train_partial.jsonl", "ARC-Challenge-Train.jsonl"),
                   "validation": ("validation.jsonl", "ARC-Challenge-Dev.jsonl"),
                   "test": ("test.jsonl", "ARC-Challenge-Test.jsonl")}

    def hub_rows(self, split):
        return hub_rows("allenai/ai2_arc", split, "ARC-Challenge")

    def example(self, row, task, split):
        record = row.record
        question = field(record, "question")
        if isinstance(question, dict):  # AI2's original release
            stem = question["stem"]
            options = question["choices"]
            texts, labels = [o["text"] for o in options], [str(o["label"]) for o in options]
        else:
            stem = question
            options = field(record, "choices")
            texts, labels = list(options["text"]), [str(label) for label in options["label"]]
        key = str(field(record, "answerKey")).strip()
        if key not in labels:
            raise ValueError(f"answerKey {key!r} is not one of the option labels {labels}")
        choices = tuple(texts)
        gold = letter_at(labels.index(key), len(choices))
        return Example(id=_example_id(task, split, field(record, "id")), question=render_choices(stem, choices),
                       gold=gold, answer_type="letter", choices=choices, task=task)


class ReClor(Loader):
    """Logical reasoning; ``label`` (0-3) indexes ``answers``. Its test split is unlabelled."""

    split_files = {"train": ("train.json",), "validation": ("val.json", "validation.json")}

    def hub_rows(self, split):
        return hub_rows("tasksource/reclor", split)

    def example(self, row, task, split):
        record = row.record
        choices = tuple(str(answer) for answer in field(record, "answers"))
        label = field(record, "label")
        if label is None or not re.fullmatch(r"\s*\d+\s*", str(label)):
            raise ValueError(f"label {label!r} is not an option index")
        stem = f"{str(field(record, 'context')).strip()}\n\n{field(record, 'question')}"
        return Example(id=_example_id(task, split, field(record, "id_string")),
                       question=render_choices(stem, choices), gold=letter_at(int(label), len(choices)),
                       answer_type="letter", choices=choices, task=task)


class StrategyQA(Loader):
    """Yes/no questions needing implicit multi-step reasoning; ``answer`` is a boolean."""

    split_files = {"train": ("train.json", "strategyqa_train.json"), "dev": ("dev.json",),
                   "test": ("test.json",)}

    def hub_rows(self, split):
        return hub_rows("ChilleD/StrategyQA", split)

    def example(self, row, task, split):
        record = row.record
        key = record.get("qid") or row.index
        return Example(id=_example_id(task, split, key), question=str(field(record, "question")),
                       gold=normalize_gold(field(record, "answer"), "yes_no"), answer_type="yes_no", task=task)


class ASDiv(Loader):
    """ASDiv's XML release. ``test`` is all 2,305 problems, ``asdiv-a`` the 1,218 arithmetic ones
    listed in ``nfolds/asdiv-a``. Answers are ``9 (apples)``; the few non-numeric answers (names,
    ratios, several values) are scored as yes/no or short text, without their units."""

    split_files = {"test": ("ASDiv.xml",), "asdiv-a": ("ASDiv.xml",)}
    search_dirs = ("", "dataset")

    def local_rows(self, files, split):
        path = files[0]
        keep = self._fold_ids(path.parent) if split == "asdiv-a" else None
        return reindex(row for row in self._problems(path) if keep is None or row.record["ID"] in keep)

    def hub_rows(self, split):
        if split != "test":
            raise BadInput(f"asdiv: the hub dataset has only the split 'test' (all problems), not {split!r}")
        return hub_rows("EleutherAI/asdiv", "validation")

    def example(self, row, task, split):
        record = row.record
        answer = str(field(record, "answer"))
        question = f"{str(field(record, 'body')).strip()} {str(field(record, 'question')).strip()}"
        answer_type, gold = self._typed_answer(answer)
        key = record.get("ID") or row.index
        return Example(id=_example_id(task, split, key), question=question, gold=gold,
                       answer_type=answer_type, task=task)

    @staticmethod
    def _typed_answer(answer: str) -> tuple[str, str]:
        if re.fullmatch(r"\s*-?[\d.,/]+\s*(\([^)]*\))?\s*", answer):
            return "number", normalize_gold(answer, "number")
        bare = re.sub(r"\s*\([^)]*\)", "", answer).strip()
        if bare.lower() in ("yes", "no"):
            return "yes_no", normalize_gold(bare, "yes_no")
        return "text", normalize_gold(bare, "text")

    @staticmethod
    def _problems(path: Path) -> Iterator[Row]:
        with open_text(path) as handle:
            try:
                root = ElementTree.parse(handle).getroot()
            except ElementTree.ParseError as exc:
                raise BadInput(f"{path}:{exc.position[0]}: not valid XML ({exc})") from None
        for index, problem in enumerate(root.iter("Problem")):
            record = {child.tag: (child.text or "").strip() for child in problem}
            record["ID"] = problem.get("ID", str(index))
            yield Row(f"{path} (problem {record['ID']})", index, record)

    @staticmethod
    def _fold_ids(folder: Path) -> set[str]:
        folds = sorted((folder / "nfolds" / "asdiv-a").glob("fold*.txt"))
        if not folds:
            raise BadInput(f"{folder}: the split 'asdiv-a' needs nfolds/asdiv-a/fold*.txt next to ASDiv.xml")
        return {line.strip() for path in folds for line in open_text(path) if line.strip()}


class SVAMP(Loader):
    """Arithmetic word problems with varied structure; ``Answer`` is a float (``51.0``).

    The release has no split: ``test`` is all 1,000 problems (on the hub, ChilleD/SVAMP's train and
    test parts together)."""

    split_files = {"test": ("SVAMP.json",)}

    def hub_rows(self, split):
        if split != "test":
            raise BadInput(f"svamp: the only split is 'test' (all 1,000 problems), not {split!r}")
        return _chain_hub("ChilleD/SVAMP", [(None, "train"), (None, "test")])

    def example(self, row, task, split):
        record = row.record
        question = f"{str(field(record, 'Body')).strip()} {str(field(record, 'Question')).strip()}"
        return Example(id=_example_id(task, split, field(record, "ID")), question=question,
                       gold=normalize_gold(field(record, "Answer"), "number"), answer_type="number", task=task)


class AQuA(Loader):
    """Algebra word problems with five options (``A)32400``) and a rationale."""

    split_files = {"train": ("train.json",), "validation": ("dev.json",), "test": ("test.json",)}

    def hub_rows(self, split):
        return hub_rows("deepmind/aqua_rat", split, "raw")

    def example(self, row, task, split):
        record = row.record
        choices = tuple(re.sub(r"^\s*[A-E]\s*\)\s*", "", str(option)).strip() for option in field(record, "options"))
        return Example(id=_example_id(task, split, row.index),
                       question=render_choices(str(field(record, "question")), choices),
                       gold=normalize_gold(field(record, "correct"), "letter", choices), answer_type="letter",
                       choices=choices, task=task, meta={"rationale": record.get("rationale", "")})


MATH_SUBJECTS = ("algebra", "counting_and_probability", "geometry", "intermediate_algebra",
                 "number_theory", "prealgebra", "precalculus")


class MATH(Loader):
    """Competition mathematics; gold is the last ``\\boxed{}`` of ``solution``. Reads a JSONL file
    per split or the original release's ``<split>/<subject>/<n>.json`` folders."""

    split_files = {"train": ("train.jsonl", "train/*/*.json"), "test": ("test.jsonl", "test/*/*.json")}
    search_dirs = ("", "MATH")

    def local_rows(self, files, split):
        if all(path.suffix == ".json" for path in files):
            return reindex(self._problem_files(files))
        return super().local_rows(files[:1], split)

    def hub_rows(self, split):
        return _chain_hub("EleutherAI/hendrycks_math", [(subject, split) for subject in MATH_SUBJECTS])

    def example(self, row, task, split):
        record = row.record
        solution = str(field(record, "solution"))
        if "\\boxed" not in solution and "\\fbox" not in solution:
            raise ValueError("the solution has no \\boxed{} answer")
        return Example(id=_example_id(task, split, row.index), question=str(field(record, "problem")),
                       gold=normalize_gold(solution, "math"), answer_type="math", task=task,
                       meta={"level": record.get("level", ""), "subject": record.get("type", ""),
                             "solution": solution})

    @staticmethod
    def _problem_files(files: list[Path]) -> Iterator[Row]:
        for path in files:
            with open_text(path) as handle:
                try:
                    record = json.load(handle)
                except json.JSONDecodeError as exc:
                    raise BadInput(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
            yield Row(str(path), 0, record)


class ANLI(Loader):
    """Adversarial NLI, rounds R1-R3; ``test``/``dev``/``train`` join the three rounds."""

    search_dirs = ("", "anli_v1.0")
    split_files = {
        **{f"{part}_r{round_}": (f"R{round_}/{part}.jsonl",) for part in ("train", "dev", "test")
           for round_ in (1, 2, 3)},
        **{part: tuple(f"R{round_}/{part}.jsonl" for round_ in (1, 2, 3)) for part in ("train", "dev", "test")},
    }
    label_letters = {"e": "entailment", "n": "neutral", "c": "contradiction"}

    def hub_rows(self, split):
        if re.fullmatch(r"(train|dev|test)_r[123]", split):
            return hub_rows("facebook/anli", split)
        return _chain_hub("facebook/anli", [(None, f"{split}_r{round_}") for round_ in (1, 2, 3)])

    def example(self, row, task, split):
        record = row.record
        premise = field(record, "context", "premise")
        question = (f"Premise: {str(premise).strip()}\nHypothesis: {str(field(record, 'hypothesis')).strip()}\n"
                    "Does the premise entail the hypothesis, contradict it, or neither? "
                    f"Options: {', '.join(NLI_LABELS)}.")
        return Example(id=_example_id(task, split, field(record, "uid")), question=question,
                       gold=self._gold(field(record, "label")), answer_type="label", labels=NLI_LABELS, task=task)

    def _gold(self, label) -> str:
        if isinstance(label, int) and not isinstance(label, bool):  # the hub's ClassLabel
            if not 0 <= label < len(NLI_LABELS):
                raise ValueError(f"label {label} is not 0, 1 or 2")
            return NLI_LABELS[label]
        return normalize_gold(self.label_letters.get(str(label).strip().lower(), label), "label", labels=NLI_LABELS)


class HellaSwag(Loader):
    """Commonsense sentence completion: pick the ending (``label`` 0-3) of ``ctx``. Reads the
    original JSONL or the six-lines-per-item text export (context, label, four endings)."""

    split_files = {"train": ("hellaswag_train.jsonl",),
                   "validation": ("hellaswag_val.jsonl", "hellaswag_val_full.txt")}

    def local_rows(self, files, split):
        if files[0].suffix == ".txt":
            return self._text_export(files[0])
        return super().local_rows(files[:1], split)

    def hub_rows(self, split):
        return hub_rows("Rowan/hellaswag", split)

    def example(self, row, task, split):
        record = row.record
        context = record.get("text_context") or f"{field(record, 'activity_label')}: {field(record, 'ctx')}"
        choices = tuple(str(ending).strip() for ending in field(record, "endings"))
        label = field(record, "label")
        if not re.fullmatch(r"\s*\d+\s*", str(label)):
            raise ValueError(f"label {label!r} is not an ending index")
        stem = f"Which ending continues the text most plausibly?\n\n{context.strip()} ..."
        return Example(id=_example_id(task, split, row.index), question=render_choices(stem, choices),
                       gold=letter_at(int(label), len(choices)), answer_type="letter", choices=choices, task=task)

    @staticmethod
    def _text_export(path: Path) -> Iterator[Row]:
        with open_text(path) as handle:
            lines = handle.read().splitlines()
        if len(lines) % 6:
            raise BadInput(f"{path}: expected 6 lines per item (context, label, 4 endings), got {len(lines)} lines")
        for index in range(len(lines) // 6):
            context, label, *endings = lines[6 * index:6 * index + 6]
            yield Row(f"{path}:{6 * index + 1}", index,
                      {"text_context": context, "label": label, "endings": endings})
