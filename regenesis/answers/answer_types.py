"""The kinds of answer a task can have; each has its own rules for reading and comparing."""

ANSWER_TYPES = ("number", "letter", "yes_no", "label", "math", "text")


def check_answer_type(answer_type: str) -> None:
    """ValueError naming the allowed types when ``answer_type`` is none of them."""
    if answer_type not in ANSWER_TYPES:
        raise ValueError(f"answer_type must be one of {', '.join(ANSWER_TYPES)}; got {answer_type!r}")
