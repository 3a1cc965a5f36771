"""The one prompt format shared by training rows and evaluation.

A fine-tuned model is evaluated with exactly the text it was trained on: the user turn is
``user_prompt(question)`` and the assistant turn is a reasoning path whose last line is
``answer_line(answer)``. Everything that builds or reads these turns imports them from here.
"""

# Worded so that no placeholder or sample answer can be copied: with "of the form 'The answer is X.'"
# the 135M model wrote "The answer is X." literally in 13 of 40 evaluation answers, and with a
# sample answer it copied the sample (benchmarks/instruction.py).
STEP_BY_STEP = "Think step by step. On the last line, write 'The answer is' followed by your answer."
INSTRUCTION = f"Solve the following problem. {STEP_BY_STEP}"
ANSWER_PREFIX = "The answer is"


def user_prompt(question: str) -> str:
    return f"{INSTRUCTION}\n\n{question.strip()}"


def answer_line(answer: str) -> str:
    answer = str(answer).strip().strip(",;:").strip().rstrip(".")
    return f"{ANSWER_PREFIX} {answer}."


def answer_field(output_names) -> str:
    """The output a path's final-answer line states: ``answer`` where there is one, else the last."""
    names = list(output_names)
    return "answer" if "answer" in names else names[-1]


def path_text(reasoning: str, outputs: dict, answer: str) -> str:
    """A reasoning path as a training row holds it: the reasoning, a ``name: value`` line for each output
    but ``answer``, and the final-answer line stating ``outputs[answer]``."""
    others = [f"{name}: {value}" for name, value in outputs.items() if name != answer]
    return "\n".join([str(reasoning).strip(), *others, answer_line(outputs[answer])])


def training_messages(question: str, reasoning_path: str) -> list[dict[str, str]]:
    """The chat turns of one training row: the plain question → the path ending in its answer line."""
    return [
        {"role": "user", "content": user_prompt(question)},
        {"role": "assistant", "content": reasoning_path.strip()},
    ]
