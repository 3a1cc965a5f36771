"""``dspy.Example``s as the project's ``Example``: what answer matching reads from a user's data."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any, Literal, get_args, get_origin

import dspy

from regenesis.tasks.example import Example
from regenesis.answers import extract_answer
from regenesis.signatures.answer import AnswerQuestion


def answer_field_of(signature: type[dspy.Signature]) -> str:
    """The output field answer matching reads: ``answer`` if the signature has one, else its last."""
    names = [name for name in signature.output_fields if name != "reasoning"]
    return "answer" if "answer" in names else names[-1]


def answer_type_of(annotation: Any, gold: Any) -> tuple[str, tuple[str, ...]]:
    """The project's answer type (and labels) for an output field's type and its gold value."""
    if get_origin(annotation) is Literal:
        return "label", tuple(str(a) for a in get_args(annotation))
    if annotation is bool or isinstance(gold, bool):
        return "yes_no", ()
    if annotation in (int, float) or isinstance(gold, (int, float)):
        return "number", ()
    text = str(gold).strip()
    if extract_answer(text, "number") == text.replace(",", ""):
        return "number", ()
    if text.lower() in ("yes", "no"):
        return "yes_no", ()
    return "text", ()


def gold_text(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def example_key(example: dspy.Example) -> str:
    """A stable id for an example: its own ``id``, or a hash of everything it holds."""
    if example.get("id") is not None:
        return str(example.get("id"))
    text = json.dumps(dict(example.items()), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def task_example(example: dspy.Example, signature: type[dspy.Signature], task: str = "dspy") -> Example:
    """``example`` as the project's ``Example`` for matching the signature's answer field."""
    name = answer_field_of(signature)
    gold = example.get(name)
    answer_type, labels = answer_type_of(signature.output_fields[name].annotation, gold)
    inputs = [k for k in signature.input_fields if example.get(k) is not None]
    question = (str(example.get(inputs[0])) if len(inputs) == 1
                else "\n".join(f"{k}: {example.get(k)}" for k in inputs))
    return Example(example_key(example), question, gold_text(gold), answer_type, labels=labels, task=task)


def task_examples(examples: Sequence[Example | dspy.Example]) -> Sequence[Example]:
    """``examples`` with every ``dspy.Example`` (``question`` in, ``answer`` out) as a project ``Example``."""
    if not any(isinstance(e, dspy.Example) for e in examples):
        return examples
    return [task_example(e, AnswerQuestion) if isinstance(e, dspy.Example) else e for e in examples]
