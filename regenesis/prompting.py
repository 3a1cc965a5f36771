"""The one prompt format shared by training rows and evaluation.

A fine-tuned model is evaluated with exactly the text it was trained on: the user turn is
``user_prompt(question)`` and the assistant turn is a reasoning path whose last line is
``answer_line(answer)``. Everything that builds or reads these turns imports them from here.
"""

# Worded so that no placeholder or sample answer can be copied: with "of the form 'The answer is X.'"
# the 135M model wrote "The answer is X." literally in 13 of 40 evaluation answers, and with a
# sample answer it copied the sample (benchmarks/instruction.py).
INSTRUCTION = (
    "Solve the following problem. Think step by step. On the last line, write 'The answer is' "
    "followed by your answer."
)
ANSWER_PREFIX = "The answer is"


def user_prompt(question: str) -> str:
    return f"{INSTRUCTION}\n\n{question.strip()}"


def answer_line(answer: str) -> str:
    answer = str(answer).strip().strip(",;:").strip().rstrip(".")
    return f"{ANSWER_PREFIX} {answer}."


def training_messages(question: str, reasoning_path: str) -> list[dict[str, str]]:
    """The chat turns of one training row: the plain question → the path ending in its answer line."""
    return [
        {"role": "user", "content": user_prompt(question)},
        {"role": "assistant", "content": reasoning_path.strip()},
    ]
