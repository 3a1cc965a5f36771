"""wordmath: generated arithmetic word problems with exact answers and a controlled number of steps.

A problem states a starting quantity and then changes it ``level`` times, one operation a sentence
(add or subtract 2-6, multiply by 2-3, divide exactly by 2-3); the answer is the final quantity, a positive
whole number. The wording comes from surface templates: six *seen* templates make the levels
``l1`` ... ``l4`` (a train and a test split each), and two templates that never appear there make
``unseen`` (a test split, levels 1 and 2), so a model trained on the seen templates can be tried on new
wording at a difficulty it can reach.

The problems are bundled as JSONL in ``regenesis/data/wordmath`` (written by ``write_bundle`` with
``BUNDLED_SEED``; a test checks the files are exactly what the generator makes). Another seed gives
another, equally disjoint set: ``python -m regenesis.tasks.wordmath --seed 7 --out DIR``, then
``--data DIR``.
"""

from __future__ import annotations

import argparse
import json
import random
from dataclasses import dataclass
from pathlib import Path

from regenesis.tasks.example import Example
from regenesis.answers import normalize_gold
from regenesis.tasks.base import Loader, field

BUNDLED_SEED = 0
LEVELS = (1, 2, 3, 4)
SPLIT_SIZES = {"train": 200, "test": 150}
UNSEEN_LEVELS = (1, 2)
UNSEEN_SIZE = 150
MAX_VALUE = 100  # no intermediate quantity exceeds it: small numbers keep the easy levels within a 135M model's reach
OPERATIONS = ("add", "subtract", "multiply", "divide")

NAMES = (("Maya", "she", "her"), ("Omar", "he", "his"), ("Lena", "she", "her"), ("Theo", "he", "his"),
         ("Priya", "she", "her"), ("Jonas", "he", "his"), ("Ana", "she", "her"), ("Kofi", "he", "his"))
COLORS = ("red", "blue", "green", "white", "black")


@dataclass(frozen=True)
class Template:
    """The wording of one kind of story: a start sentence, one sentence per operation, the question.

    Sentences fill ``{n}`` (the operand), ``{name}``/``{they}``/``{their}`` (the main character) and, for
    a chain of entities (ages, towers), ``{this}`` (the entity a step introduces) and ``{prev}``."""

    name: str
    start: str
    add: str
    subtract: str
    multiply: str
    divide: str
    question: str
    start_range: tuple[int, int] = (2, 12)
    entities: tuple[str, ...] = ()  # a chain template names a new entity at each step


SEEN = (
    Template("savings", "{name} has {n} dollars.", "Then {they} earns {n} dollars washing cars.",
             "Then {they} spends {n} dollars on a book.",
             "Then {their} savings grow to {n} times as much.",
             "Then {they} splits {their} money equally into {n} envelopes and keeps only one envelope.",
             "How many dollars does {name} have now?"),
    Template("bakery", "A baker has {n} muffins.", "Then she bakes {n} more muffins.",
             "Then customers buy {n} of the muffins.",
             "Then a party order leaves her with {n} times as many muffins as before.",
             "Then she packs the muffins equally into {n} boxes and sends away all but one box.",
             "How many muffins does the baker have now?"),
    Template("train", "A train leaves the station with {n} passengers.",
             "At the next stop, {n} passengers get on.", "At the next stop, {n} passengers get off.",
             "At the next stop, a crowd boards and the number of passengers becomes {n} times as large.",
             "At the next stop, the passengers are shared equally among {n} trains, and this train keeps its share.",
             "How many passengers are on the train now?"),
    Template("ages", "{this} is {n} years old.", "{this} is {n} years older than {prev}.",
             "{this} is {n} years younger than {prev}.", "{this} is {n} times as old as {prev}.",
             "{prev} is {n} times as old as {this}.", "How old is {this}?", start_range=(4, 12),
             entities=tuple(name for name, _, _ in NAMES)),
    Template("pipes", "A pipe carries {n} liters of water a minute into a tank.",
             "Then a second pipe adds {n} liters a minute.", "Then a leak loses {n} liters a minute.",
             "Then a stronger pump makes the flow {n} times as fast.",
             "Then a splitter divides the flow equally among {n} pipes, and only one of them still reaches the tank.",
             "How many liters a minute reach the tank now?"),
    Template("orchard", "{name} picks {n} apples.", "Then {they} picks {n} more apples.",
             "Then {n} of {their} apples are bruised and thrown away.",
             "Then {they} trades them at the market and comes back with {n} times as many apples.",
             "Then {they} shares the apples equally among {n} baskets and keeps one basket.",
             "How many apples does {name} have now?"),
)
UNSEEN = (
    Template("library", "A library shelf holds {n} books.", "A volunteer puts {n} more books on the shelf.",
             "Readers borrow {n} books from the shelf.",
             "After a donation, the shelf holds {n} times as many books.",
             "The books are spread equally over {n} shelves, this one included.",
             "How many books are on the shelf now?"),
    Template("towers", "The {this} tower is {n} meters tall.",
             "The {this} tower is {n} meters taller than the {prev} tower.",
             "The {this} tower is {n} meters shorter than the {prev} tower.",
             "The {this} tower is {n} times as tall as the {prev} tower.",
             "The {prev} tower is {n} times as tall as the {this} tower.",
             "How tall is the {this} tower, in meters?", entities=COLORS),
)


def apply(value: int, operation: str, operand: int) -> int:
    """One step; exact by construction (a division is only ever drawn when it leaves no remainder)."""
    if operation == "add":
        return value + operand
    if operation == "subtract":
        return value - operand
    if operation == "multiply":
        return value * operand
    if operation == "divide":
        quotient, remainder = divmod(value, operand)
        if remainder:
            raise ValueError(f"{value} is not divisible by {operand}")
        return quotient
    raise ValueError(f"unknown operation {operation!r}")


def _operands(value: int, operation: str) -> list[int]:
    """The operands that keep the quantity a whole number from 1 to ``MAX_VALUE``."""
    if operation == "add":
        return [n for n in range(2, 7) if value + n <= MAX_VALUE]
    if operation == "subtract":
        return [n for n in range(2, 7) if value - n >= 1]
    if operation == "multiply":
        return [n for n in range(2, 4) if value * n <= MAX_VALUE]
    return [n for n in range(2, 4) if value % n == 0]


def _steps(rng: random.Random, start: int, level: int) -> list[tuple[str, int]]:
    steps, value = [], start
    for _ in range(level):
        operation = rng.choice([op for op in OPERATIONS if _operands(value, op)])
        operand = rng.choice(_operands(value, operation))
        steps.append((operation, operand))
        value = apply(value, operation, operand)
    return steps


def render(template: Template, start: int, steps: list[tuple[str, int]], rng: random.Random) -> str:
    name, they, their = rng.choice(NAMES)
    entities = rng.sample(template.entities, len(steps) + 1) if template.entities else [name] * (len(steps) + 1)

    def fill(text: str, n: int | None, index: int) -> str:
        filled = text.format(n=n, name=name, they=they, their=their, this=entities[index],
                             prev=entities[max(index - 1, 0)])
        return filled[0].upper() + filled[1:]

    sentences = [fill(template.start, start, 0)]
    sentences += [fill(getattr(template, operation), operand, index)
                  for index, (operation, operand) in enumerate(steps, start=1)]
    sentences.append(fill(template.question, None, len(steps)))
    return " ".join(sentences)


def problem(rng: random.Random, template: Template, level: int) -> dict:
    start = rng.randint(*template.start_range)
    steps = _steps(rng, start, level)
    answer = start
    for operation, operand in steps:
        answer = apply(answer, operation, operand)
    return {"question": render(template, start, steps, rng), "answer": answer, "level": level,
            "template": template.name, "start": start, "steps": [list(step) for step in steps]}


def content_key(record: dict) -> tuple:
    """What makes two problems the same problem: template, start and steps (names are only wording)."""
    return record["template"], record["start"], tuple(map(tuple, record["steps"]))


def _draw(rng: random.Random, templates, levels, size: int, drawn: set[tuple]) -> list[dict]:
    """``size`` problems cycling through ``levels`` with a random template each; a problem already drawn
    for any split is drawn again, so no problem is in two splits, even under other names."""
    problems = []
    while len(problems) < size:
        level = levels[len(problems) % len(levels)]
        candidate = problem(rng, rng.choice(templates), level)
        if content_key(candidate) not in drawn:
            drawn.add(content_key(candidate))
            problems.append({"id": len(problems), **candidate})
    return problems


def generate(seed: int = BUNDLED_SEED) -> dict[str, list[dict]]:
    """Every part of the family, keyed by file name (``l1-train.jsonl`` ... ``unseen-test.jsonl``)."""
    drawn: set[tuple] = set()
    parts = {}
    for level in LEVELS:
        for split, size in SPLIT_SIZES.items():
            rng = random.Random(f"wordmath/{seed}/l{level}/{split}")
            parts[f"l{level}-{split}.jsonl"] = _draw(rng, SEEN, (level,), size, drawn)
    rng = random.Random(f"wordmath/{seed}/unseen/test")
    parts["unseen-test.jsonl"] = _draw(rng, UNSEEN, UNSEEN_LEVELS, UNSEEN_SIZE, drawn)
    return parts


def file_text(problems: list[dict]) -> str:
    return "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in problems)


def write_bundle(out: Path, seed: int = BUNDLED_SEED) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for file_name, problems in generate(seed).items():
        (out / file_name).write_text(file_text(problems), encoding="utf-8")
        written.append(out / file_name)
    return written


class WordMath(Loader):
    """One part of the family: ``l1`` ... ``l4`` (train, test) or ``unseen`` (test)."""

    def __init__(self, part: str):
        self.part = part
        splits = ("test",) if part == "unseen" else tuple(SPLIT_SIZES)
        self.split_files = {split: (f"{part}-{split}.jsonl",) for split in splits}

    def example(self, row, task, split):
        record = row.record
        return Example(id=f"{task}/{split}/{field(record, 'id')}", question=str(field(record, "question")),
                       gold=normalize_gold(field(record, "answer"), "number"), answer_type="number", task=task,
                       meta={"level": record.get("level"), "template": record.get("template"),
                             "start": record.get("start"), "steps": record.get("steps")})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write a wordmath problem set (the bundled one is --seed 0).")
    parser.add_argument("--seed", type=int, default=BUNDLED_SEED)
    parser.add_argument("--out", type=Path, required=True)
    arguments = parser.parse_args(argv)
    for path in write_bundle(arguments.out, arguments.seed):
        print(path)


if __name__ == "__main__":
    main()
