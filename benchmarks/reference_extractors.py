"""The field's reference answer extractors, run beside ours on the same model text.

- lm-eval-harness on GSM8K: the ``strict-match`` and ``flexible-extract`` filters and the
  ``exact_match`` settings of its installed ``gsm8k`` task file, applied with its own filter
  classes and metric function, so the rules follow the installed version rather than a copy.
- lm-eval-harness on MATH: ``hendrycks_math``'s ``process_results`` (the text between the first and
  last ``$``, compared with the gold after its string normalisation). Its ``minerva_math`` variant
  is left out: its module refuses to import unless antlr4 4.11 is installed, and Math-Verify needs 4.13.
- Math-Verify on MATH: ``parse`` both sides, then ``verify``.

They are an optional extra (``pip install -e '.[audit]'``): each import sits in the function that
needs it. Every extractor gives a ``Verdict`` for a text and a gold answer in our normalised form.
"""

from __future__ import annotations

import importlib.util
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from regenesis.answers import answers_equal, extract_answer
from regenesis.tasks.example import Example

EXTRA_MODULES = ("lm_eval", "math_verify")
HOSTILE_MATH = "So the answer is $\\boxed{9^{9^{9^9}}}$."
CHILD_MEMORY_BYTES = 4 << 30  # a runaway sympy number in the child fails there, not on the machine


@dataclass(frozen=True)
class Verdict:
    """What one extractor read from a text and whether it counts that as the gold answer."""

    extracted: str | None
    correct: bool


def missing_extra() -> list[str]:
    """The reference packages that are not installed (empty when the audit extra is)."""
    return [name for name in EXTRA_MODULES if importlib.util.find_spec(name) is None]


def ours(text: str, example: Example) -> Verdict:
    """Our reading: the same two calls as ``is_correct``, keeping what was extracted."""
    extracted = extract_answer(text, example.answer_type, example.choices, example.labels)
    return Verdict(extracted, extracted is not None and answers_equal(extracted, example.gold, example.answer_type))


class Gsm8kRule:
    """One filter of lm-eval's ``gsm8k`` task (its regex, then ``take_first``) and the task's exact match.

    The reference is written as lm-eval's GSM8K target is (``... #### 18``); the task's
    ``regexes_to_ignore`` strip everything up to ``#### `` from it, commas, ``$`` and a final dot.
    """

    def __init__(self, name: str, regex: dict, match_settings: dict):
        from lm_eval.filters.extraction import RegexFilter  # lm-eval: the optional audit extra

        self.name = name
        self.filter = RegexFilter(regex_pattern=regex["regex_pattern"], group_select=regex.get("group_select", 0))
        self.match_settings = match_settings

    def __call__(self, text: str, example: Example) -> Verdict:
        from lm_eval.api.metrics import exact_match_hf_evaluate  # lm-eval: the optional audit extra

        extracted = self.filter.apply([[text]], [{}])[0][0]
        score = exact_match_hf_evaluate(predictions=[extracted], references=[f"#### {example.gold}"],
                                        **self.match_settings)["exact_match"]
        return Verdict(None if extracted == self.filter.fallback else extracted, bool(score))


def gsm8k_rules() -> dict[str, Gsm8kRule]:
    """lm-eval's GSM8K rules by filter name, read from the installed task file."""
    import lm_eval  # lm-eval: the optional audit extra
    import yaml  # PyYAML: installed with lm-eval

    task = yaml.safe_load((Path(lm_eval.__file__).parent / "tasks" / "gsm8k" / "gsm8k.yaml").read_text())
    metric = next(entry for entry in task["metric_list"] if entry["metric"] == "exact_match")
    match_settings = {key: metric[key] for key in ("regexes_to_ignore", "ignore_case", "ignore_punctuation")
                      if key in metric}
    rules = {}
    for entry in task["filter_list"]:
        steps = [step["function"] for step in entry["filter"]]
        if steps != ["regex", "take_first"]:
            raise ValueError(f"lm-eval's gsm8k filter {entry['name']!r} is now {steps}; this audit reads regex, take_first")
        rules[entry["name"]] = Gsm8kRule(entry["name"], entry["filter"][0], match_settings)
    return rules


def lm_eval_math(text: str, example: Example) -> Verdict:
    """``hendrycks_math``'s ``process_results`` on the text, with the gold as the boxed solution."""
    from lm_eval.tasks.hendrycks_math import utils  # lm-eval: the optional audit extra

    dollars = [position for position, char in enumerate(text) if char == "$"]
    extracted = text if len(dollars) <= 1 else text[dollars[0] + 1:dollars[-1]]
    score = utils.process_results({"solution": f"\\boxed{{{example.gold}}}"}, [text])["exact_match"]
    return Verdict(extracted, bool(score))


def math_verify(text: str, example: Example, timeout_seconds: int | None = 5) -> Verdict:
    """Math-Verify's ``parse`` of both sides and ``verify``; its timeouts are ``signal.alarm`` ones,
    which only the main thread may set (``timeout_seconds=None`` runs without them)."""
    from math_verify import parse, verify  # math-verify: the optional audit extra

    gold = parse(f"\\boxed{{{example.gold}}}", parsing_timeout=timeout_seconds)
    predicted = parse(text, parsing_timeout=timeout_seconds)
    extracted = str(predicted[-1]) if predicted else None
    return Verdict(extracted, bool(verify(gold, predicted, timeout_seconds=timeout_seconds)))


def references(task: str) -> dict[str, Callable[[str, Example], Verdict]]:
    """The reference extractors of a task, by the name the tables print."""
    if task == "gsm8k":
        return {f"lm-eval {name}": rule for name, rule in gsm8k_rules().items()}
    if task == "math":
        return {"lm-eval hendrycks_math": lm_eval_math, "Math-Verify": math_verify}
    return {}


# --- bounded time off the main thread -----------------------------------------------------------------

def in_worker_thread(call: Callable[[], object], wait_seconds: float) -> tuple[str, float]:
    """Run ``call`` in a worker thread: (``"returned ..."`` or ``"raised ..."`` or ``"still running"``, seconds)."""
    outcome = ["still running"]

    def work():
        try:
            outcome[0] = f"returned {call()!r}"[:160]
        except Exception as error:  # noqa: BLE001  (the outcome is what is reported)
            outcome[0] = f"raised {type(error).__name__}: {error}"[:160]

    started = time.perf_counter()
    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    worker.join(wait_seconds)
    return outcome[0], time.perf_counter() - started


def math_verify_in_child(timeout_seconds: int | None, wait_seconds: float, worker_thread: bool = True
                         ) -> tuple[str, float]:
    """Math-Verify on ``HOSTILE_MATH`` in a child process killed after ``wait_seconds``, called from a
    worker thread there or from its main thread: a stuck sympy call holds the interpreter, so it
    cannot be watched from inside."""
    call = f"lambda: r.math_verify(r.HOSTILE_MATH, example, {timeout_seconds!r})"
    run = f"r.in_worker_thread({call}, {wait_seconds + 5})[0]" if worker_thread else f"({call})()"
    child = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
             "import reference_extractors as r; from regenesis.tasks.example import Example; "
             "example = Example(id='hostile', question='', gold='1', answer_type='math'); "
             f"print({run})")
    started = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=wait_seconds,
                              preexec_fn=_limit_memory)
    except subprocess.TimeoutExpired:
        return f"still running after {wait_seconds:.0f} s (process killed)", time.perf_counter() - started
    lines = done.stdout.strip().splitlines() or [done.stderr.strip()[-160:]]
    return lines[-1], time.perf_counter() - started


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (CHILD_MEMORY_BYTES, CHILD_MEMORY_BYTES))
