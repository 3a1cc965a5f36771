"""wordmath: generated arithmetic word problems with exact answers and a controlled number of steps.

A problem states a starting quantity and then changes it ``level`` times, one operation a sentence;
the answer is the final quantity, a positive whole number. The levels grow in steps and in what a
step may do (``LEVEL_DESIGNS``): ``l1`` is one addition or subtraction of 2-9 to a start of 2-9
(result at most 20), ``l2`` two of them, of 2-5 each with every quantity at most 12; ``l3`` adds
multiplying by 2 or 3 (quantities up to 50) and ``l4`` exact division by 2 or 3 (up to 100). The
wording comes from surface templates: six *seen* templates make the levels (a train and a test split
each), and two templates that never appear there make ``unseen`` (a test split, levels 1 and 2
alternating), so a model trained on the seen templates can be tried on new wording at a difficulty it
can reach.

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
SPLIT_SIZES = {"train": 200, "test": 150}
UNSEEN_LEVELS = (1, 2)
UNSEEN_SIZE = 150
START_RANGE = (2, 9)
OPERAND_RANGES = {"add": (2, 9), "subtract": (2, 9), "multiply": (2, 3), "divide": (2, 3)}


@dataclass(frozen=True)
class LevelDesign:
    """What the problems of one level may do: how many steps, which operations, how large a quantity.

    The easy levels keep to one-digit additions and subtractions with small results: the embedded 135M
    model solved 2 of 40 two-step problems with quantities up to 20, and 5 of 40 with quantities up
    to 12 and operands up to 5."""

    steps: int
    operations: tuple[str, ...]
    max_value: int
    max_operand: int = 9  # of an addition or subtraction


LEVEL_DESIGNS = {
    1: LevelDesign(1, ("add", "subtract"), 20),
    2: LevelDesign(2, ("add", "subtract"), 12, max_operand=5),
    3: LevelDesign(3, ("add", "subtract", "multiply"), 50),
    4: LevelDesign(4, ("add", "subtract", "multiply", "divide"), 100),
}
LEVELS = tuple(LEVEL_DESIGNS)

NAMES = (("Maya", "she", "her"), ("Omar", "he", "his"), ("Lena", "she", "her"), ("Theo", "he", "his"),
         ("Priya", "she", "her"), ("Jonas", "he", "his"), ("Ana", "she", "her"), ("Kofi", "he", "his"))
COLORS = ("red", "blue", "green", "white", "black")


@dataclass(frozen=True)
class Template:
    """The wording of one kind of story: a start sentence, one sentence per operation, the question.

    Sentences fill ``{n}`` (the operand), ``{name}``/``{they}``/``{their}`` (the main character) and, for
    a chain of entities (ages, towers), ``{this}`` (the entity a step introduces) and ``{prev}``. A step
    says plainly what happens to the quantity ("gets 3 more", "gives away 3"): with the story
    decorations of the first design ("earns 4 dollars washing cars") the 135M model multiplied the
    numbers it saw more often than it added them."""

    name: str
    start: str
    add: str
    subtract: str
    multiply: str
    divide: str
    question: str
    entities: tuple[str, ...] = ()  # a chain template names a new entity at each step


SEEN = (
    Template("stickers", "{name} has {n} stickers.", "{they} gets {n} more stickers.",
             "{they} gives away {n} stickers.", "{they} trades them for {n} times as many stickers.",
             "{they} splits {their} stickers into {n} equal piles and keeps one pile.",
             "How many stickers does {name} have now?"),
    Template("savings", "{name} has {n} dollars.", "{they} earns {n} more dollars.",
             "{they} spends {n} dollars.", "{their} money grows to {n} times as much.",
             "{they} splits {their} money into {n} equal parts and keeps one part.",
             "How many dollars does {name} have now?"),
    Template("bakery", "A baker has {n} muffins.", "She bakes {n} more muffins.", "She sells {n} muffins.",
             "She bakes until she has {n} times as many muffins.",
             "She packs the muffins into {n} equal boxes and keeps one box.",
             "How many muffins does the baker have now?"),
    Template("bus", "A bus has {n} passengers.", "{n} more passengers get on the bus.",
             "{n} passengers get off the bus.", "At a big stop, the number of passengers becomes {n} times as large.",
             "The passengers split into {n} equal groups and only one group stays on the bus.",
             "How many passengers are on the bus now?"),
    Template("ages", "{this} is {n} years old.", "{this} is {n} years older than {prev}.",
             "{this} is {n} years younger than {prev}.", "{this} is {n} times as old as {prev}.",
             "{prev} is {n} times as old as {this}.", "How old is {this}?",
             entities=tuple(name for name, _, _ in NAMES)),
    Template("orchard", "{name} picks {n} apples.", "{they} picks {n} more apples.",
             "{they} eats {n} of the apples.", "{they} trades them for {n} times as many apples.",
             "{they} puts the apples into {n} equal baskets and keeps one basket.",
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


SYMBOLS = {"add": "+", "subtract": "-", "multiply": "*", "divide": "/"}


def solution(start: int, steps) -> str:
    """The worked solution of a problem, one computation a line: the rationale ``gold-sft`` trains on."""
    lines, value = [f"The quantity starts at {start}."], start
    for operation, operand in steps:
        result = apply(value, operation, operand)
        lines.append(f"{value} {SYMBOLS[operation]} {operand} = {result}.")
        value = result
    return "\n".join(lines)


def _operands(value: int, operation: str, design: LevelDesign) -> list[int]:
    """The operands that keep the quantity a whole number from 1 to the level's largest."""
    low, high = OPERAND_RANGES[operation]
    if operation in ("add", "subtract"):
        high = min(high, design.max_operand)
    candidates = range(low, high + 1)
    if operation == "divide":
        return [n for n in candidates if value % n == 0]
    return [n for n in candidates if 1 <= apply(value, operation, n) <= design.max_value]


def _steps(rng: random.Random, start: int, design: LevelDesign) -> list[tuple[str, int]]:
    steps, value = [], start
    for _ in range(design.steps):
        operation = rng.choice([op for op in design.operations if _operands(value, op, design)])
        operand = rng.choice(_operands(value, operation, design))
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
    start = rng.randint(*START_RANGE)
    steps = _steps(rng, start, LEVEL_DESIGNS[level])
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
                             "start": record.get("start"), "steps": record.get("steps"),
                             "solution": solution(record["start"], record["steps"]) if "steps" in record else ""})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write a wordmath problem set (the bundled one is --seed 0).")
    parser.add_argument("--seed", type=int, default=BUNDLED_SEED)
    parser.add_argument("--out", type=Path, required=True)
    arguments = parser.parse_args(argv)
    for path in write_bundle(arguments.out, arguments.seed):
        print(path)


if __name__ == "__main__":
    main()
