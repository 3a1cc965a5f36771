"""The one example type every task loads into."""

from __future__ import annotations

from dataclasses import dataclass, field

from regenesis.answers import ANSWER_TYPES


@dataclass(frozen=True)
class Example:
    """One problem of a task.

    ``question`` is the text shown to the model, with the choices already rendered into it where
    there are choices. ``gold`` is the normalised gold answer for ``answer_type``: a number as text
    (``"18"``), a letter (``"B"``), ``"yes"``/``"no"``, a label from ``labels``, a LaTeX expression,
    or short free text.
    """

    id: str
    question: str
    gold: str
    answer_type: str
    choices: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    task: str = ""
    meta: dict = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self):
        if self.answer_type not in ANSWER_TYPES:
            raise ValueError(f"answer_type must be one of {ANSWER_TYPES}, got {self.answer_type!r}")
