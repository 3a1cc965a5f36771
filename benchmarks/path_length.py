"""How long the reasoning of ReGenesis's solve step is, next to the same model's free chain of thought.

    nice .venv/bin/python benchmarks/path_length.py [--task wordmath-l2] [--limit 6] [--rollouts 2]

On the embedded model and the same problems, in one run:

- ``eval``: the free chain of thought that ``eval`` gets (its prompt, greedy, ``--max-tokens``);
- ``solve, plain-text path``: the ``reasoning`` of the four-step program as synthesis samples it
  (temperature 0.8, rollout ids 0..rollouts-1, ``--max-tokens``): the solve step asked in plain text
  (``PathAdapter``), as it is now;
- the solve step again on the same reasoning structures, asked as it was before, for the JSON schema's
  ``reasoning`` string (``JSONAdapter``), then with each suspected cause of its short reasoning removed
  in turn: a larger token budget, the JSON strings unbounded (the engine's string bound lifted), and
  plain step-by-step instructions in place of the solve step's own.

Per variant it prints the token length of the reasoning (median, p25, p75), the share whose reasoning
never reaches the answer it gives (its value nowhere in the reasoning; the plain-text path's own
answer statement is not part of its reasoning), the share whose reasoning filled its string bound, and
the correct answers; samples that did not parse (a JSON string that never closed, a plain-text path
that states no answer) are counted apart. Tokens are counted with the model's own tokenizer.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field

import common  # noqa: F401  (offline cost map)
import dspy
from dspy.utils.exceptions import AdapterParseError

from regenesis.answers import extract_answer, is_correct
from regenesis.evals.evaluate import eval_request
from regenesis.models import LlamaCppEngine, adapter_for, bounded_strings, resolve_lm
from regenesis.models.engine import CHARS_PER_TOKEN, string_bound
from regenesis.models.sampling import sampling_lm
from regenesis.programs.regenesis import ReGenesis, solve_signature
from regenesis.signatures.regenesis import SolveWithStructure
from regenesis.tasks import load_task

LARGE_BUDGET = 1024


class JSONSolve(dspy.Predict):
    """The solve step as it was asked before: its outputs one JSON object, ``reasoning`` a string in it."""


class PlainSolve(SolveWithStructure):
    """Solve the problem step by step, following the reasoning structure. Write out every step of your
    reasoning in full, and finish with the final answer."""


class MeteredEngine(LlamaCppEngine):
    """The llama.cpp engine, noting for each JSON request the string bound of its first try and whether
    it overflowed its budget (and was answered again under the one-character-a-token bound)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.requests: list[dict] = []
        self.generations = 0

    def _complete_json(self, model, kwargs, schema):
        bound = string_bound(schema, kwargs["max_tokens"], CHARS_PER_TOKEN, self.max_string_chars)
        before = self.generations
        response = super()._complete_json(model, kwargs, schema)
        self.requests.append({"bound": bound, "retried": self.generations - before > 1})
        return response

    def _generate(self, model, kwargs, spent_before=0):
        self.generations += 1
        return super()._generate(model, kwargs, spent_before)

    def token_count(self, text: str) -> int:
        with self.borrow() as llm:
            return len(llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))


class UnboundedEngine(MeteredEngine):
    """Strings of the JSON schema unbounded: the grammar still holds the output to the schema."""

    def _complete_json(self, model, kwargs, schema):
        kwargs["response_format"] = {"type": "json_object", "schema": bounded_strings(schema, None)}
        self.requests.append({"bound": None, "retried": False})
        return self._generate(model, kwargs)


@dataclass
class Variant:
    name: str
    lengths: list[int] = field(default_factory=list)
    unfinished: int = 0
    filled: int = 0
    correct: int = 0
    unparsed: int = 0

    def add(self, tokens: int, unfinished: bool, filled: bool, correct: bool) -> None:
        self.lengths.append(tokens)
        self.unfinished += unfinished
        self.filled += filled
        self.correct += correct

    def line(self) -> str:
        n = len(self.lengths)
        if not n:
            return f"{self.name:<26} {n:>3} {'':>42} {self.unparsed:>9}"
        p25, median, p75 = (statistics.quantiles(self.lengths, n=4, method="inclusive") if n > 1
                            else [self.lengths[0]] * 3)
        return (f"{self.name:<26} {n:>3} {median:>7.0f} {p25:>5.0f} {p75:>5.0f} "
                f"{self.unfinished / n:>10.0%} {self.filled / n:>7.0%} {self.unparsed:>9} {self.correct:>4}/{n}")


EMBEDDED = resolve_lm(None)


def engine_lm(engine: LlamaCppEngine, max_tokens: int) -> dspy.LM:
    """The embedded model on ``engine``, uncached: every call is a real generation."""
    return dspy.LM(EMBEDDED.model, engine=engine, temperature=0.0, max_tokens=max_tokens, cache=False)


def states_answer(reasoning: str, answer: str) -> bool:
    """Whether the reasoning itself arrives at the answer it is paired with (its value appears in it)."""
    value = str(answer).strip().rstrip(".")
    return bool(value) and value.lower() in reasoning.lower()


def measure_eval(lm: dspy.LM, engine: MeteredEngine, examples) -> Variant:
    variant = Variant("eval (free CoT, greedy)")
    for example in examples:
        response = lm(eval_request(lm, example.question))
        text = response.text or ""
        answer = extract_answer(text, example.answer_type, example.choices, example.labels)
        variant.add(engine.token_count(text), answer is None, response.finish_reason == "length",
                    bool(is_correct(text, example)))
    return variant


def measure_solve(variant: Variant, program: ReGenesis, solve: dspy.Predict, engine: MeteredEngine,
                  lm: dspy.LM, cases: list[tuple], solve_only: bool) -> None:
    """The reasoning of ``solve`` on each case (example, rollout id, plan); without ``solve_only`` the whole
    program runs first and each case's plan is filled in for the other variants. A failed parse is a
    JSON string that never closed or a plain-text path that states no answer."""
    adapter = adapter_for(lm)
    for case in cases:
        example, rollout, plan = case[:3]
        if solve_only and plan is None:  # the program's own run of this case did not parse
            continue
        with dspy.context(lm=sampling_lm(lm, rollout, temperature=0.8, top_p=0.95), adapter=adapter):
            try:
                if solve_only:
                    solved = solve(question=example.question, reasoning_structure=plan)
                else:
                    solved = program(question=example.question)
                    case[2] = solved.reasoning_structure
            except AdapterParseError:
                variant.unparsed += 1
                continue
        reasoning = str(solved.reasoning)
        request = engine.requests[-1] if isinstance(solve, JSONSolve) else None
        filled = request is not None and (
            request["retried"] or (request["bound"] is not None and len(reasoning) >= request["bound"]))
        variant.add(engine.token_count(reasoning), not states_answer(reasoning, solved.answer), filled,
                    bool(is_correct(program.path(reasoning, {"answer": solved.answer}), example)))


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="wordmath-l2", help="gsm8k-sample or wordmath-l2")
    parser.add_argument("--limit", type=int, default=6, help="problems")
    parser.add_argument("--rollouts", type=int, default=2, help="solve samples per problem")
    parser.add_argument("--max-tokens", type=int, default=384, help="the token budget of eval and of solve")
    args = parser.parse_args()
    examples = list(load_task(args.task, limit=args.limit))

    bounded = MeteredEngine(EMBEDDED.engine.path)
    unbounded = UnboundedEngine(bounded.path)
    budget = engine_lm(bounded, args.max_tokens)
    program = ReGenesis()
    json_solve = JSONSolve(program.solve.signature)
    plain_solve = JSONSolve(solve_signature(program.signature, PlainSolve))

    cases = [[example, rollout, None] for example in examples for rollout in range(args.rollouts)]
    variants: list[tuple[Variant, Callable[[Variant], None]]] = [
        (Variant("solve, plain-text path"),
         lambda v: measure_solve(v, program, program.solve, bounded, budget, cases, solve_only=False)),
        (Variant(f"JSON solve ({args.max_tokens} tokens)"),
         lambda v: measure_solve(v, program, json_solve, bounded, budget, cases, True)),
        (Variant(f"JSON solve, {LARGE_BUDGET} tokens"),
         lambda v: measure_solve(v, program, json_solve, bounded, engine_lm(bounded, LARGE_BUDGET), cases, True)),
        (Variant("JSON solve, unbounded"),
         lambda v: measure_solve(v, program, json_solve, unbounded, engine_lm(unbounded, args.max_tokens),
                                 cases, True)),
        (Variant("JSON solve, plain words"),
         lambda v: measure_solve(v, program, plain_solve, bounded, budget, cases, True)),
    ]
    print(f"{args.task}: {len(examples)} problems, {args.rollouts} rollouts, max_tokens {args.max_tokens}")
    print(f"{'variant':<26} {'n':>3} {'median':>7} {'p25':>5} {'p75':>5} {'unreached':>10} {'filled':>7} "
          f"{'unparsed':>9} correct")
    print(measure_eval(budget, bounded, examples).line(), flush=True)
    for variant, measure in variants:
        measure(variant)
        print(variant.line(), flush=True)


if __name__ == "__main__":
    run()
