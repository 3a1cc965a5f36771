"""ReGenesis and the baselines as DSPy modules, with scripted models."""

import dspy
import pytest
from dspy.teleprompt.bootstrap_trace import bootstrap_trace_data
from dspy.utils import DummyLM

from regenesis.tasks.example import Example
from regenesis.answers import is_correct
from regenesis.optimize.bootstrap import synthesize
from regenesis.optimize.config import SynthesisConfig
from regenesis.optimize.filters import FilterOptions
from regenesis.programs import ChainOfThoughtSolver, ReGenesis, SelfDiscover
from regenesis.programs.chain_of_thought import with_path
from regenesis.signatures.answer import AnswerQuestion

def asks(field):
    """The part of a ChatAdapter prompt that names the first output field: a key for DummyLM's dict mode."""
    return f"starting with the field `[[ ## {field} ## ]]`"


STEPS = {
    asks("selected"): {"selected": "[3, 1]"},
    asks("adapted_guidelines"): {"adapted_guidelines": "List the two prices and the count of pens."},
    asks("reasoning_structure"): {"reasoning_structure": "1. Price of one pen. 2. Price of five pens."},
    asks("reasoning"): {"reasoning": "One pen costs 6 / 3 = 2 dollars; five cost 5 * 2 = 10 dollars.", "answer": "10"},
}


def scripted(steps):
    """A DummyLM that answers each step by the output field its prompt asks for."""
    return DummyLM({key: value for key, value in steps.items()})


def test_regenesis_chains_the_four_steps_and_shows_its_work():
    with dspy.context(lm=scripted(STEPS)):
        prediction = ReGenesis()(question="If 3 pens cost 6 dollars, what do 5 pens cost?")
    assert prediction.answer == "10"
    assert prediction.guidelines == ["list-facts", "decompose"] and prediction.guideline_set == [2, 0]
    assert prediction.adapted_guidelines.startswith("List the two prices")
    assert prediction.reasoning_structure.startswith("1. Price of one pen")
    assert prediction.path.endswith("five cost 5 * 2 = 10 dollars.\nThe answer is 10.")


def test_regenesis_stands_in_for_chain_of_thought_inside_a_program():
    class ReadAndAnswer(dspy.Module):
        def __init__(self):
            super().__init__()
            self.answer = ReGenesis("context, question -> answer")

        def forward(self, context, question):
            return self.answer(context=context, question=question)

    with dspy.context(lm=scripted(STEPS)):
        prediction = ReadAndAnswer()(context="Pens are sold in packs.", question="What do 5 pens cost?")
    assert prediction.answer == "10" and prediction.reasoning
    solve = ReGenesis("context, question -> answer").solve.signature
    assert list(solve.input_fields) == ["context", "question", "reasoning_structure"]
    assert list(solve.output_fields) == ["reasoning", "answer"]
    assert "reasoning structure" in solve.instructions


def test_a_given_guideline_set_skips_selection_and_the_hint_reaches_only_hinted_steps():
    lm = scripted({k: v for k, v in STEPS.items() if k != asks("selected")})
    program = ReGenesis()
    with dspy.context(lm=lm):
        prediction = program(question="What do 5 pens cost?", guideline_set=[4], correct_answer="10")
    assert prediction.guidelines == ["work-backwards"] and prediction.hinted
    prompts = [entry["messages"][-1]["content"] for entry in lm.history]
    assert len(prompts) == 3 and all("correct_answer" in p for p in prompts)


def test_self_discover_writes_one_plan_for_the_task():
    lm = scripted({asks("selected"): {"selected": "[1]"},
                   asks("adapted_guidelines"): {"adapted_guidelines": "Split into parts."},
                   asks("reasoning_plan"): {"reasoning_plan": '{"Step 1: find unit price": ""}'},
                   asks("reasoning"): {"reasoning": "Unit price 2, so 5 * 2 = 10.", "answer": "10"}})
    program = SelfDiscover()
    with dspy.context(lm=lm):
        plan = program.discover(["What do 5 pens cost?", "What do 7 pens cost?"])
        first = program(question="What do 5 pens cost?", plan=plan.reasoning_plan)
    assert plan.reasoning_plan == '{"Step 1: find unit price": ""}' and first.answer == "10"


def test_cot_method_keeps_what_dspy_bootstrap_finetune_collects():
    """`--method cot` is BootstrapFinetune's data collection from a ChainOfThought student."""
    problems = [("If 3 pens cost 6 dollars, what do 5 pens cost?", "10"),
                ("What is 4 times 3?", "12"), ("What is 9 minus 2?", "7")]
    script = {"3 pens": {"reasoning": "One pen costs 6 / 3 = 2, so 5 * 2 = 10.", "answer": "10"},
              "4 times 3": {"reasoning": "4 + 3 = 7.", "answer": "7"},
              "9 minus 2": {"reasoning": "9 - 2 = 7.", "answer": "7"}}
    examples = [Example(id=f"t/{i}", question=q, gold=g, answer_type="number", task="t")
                for i, (q, g) in enumerate(problems)]

    def metric(example, prediction, trace=None):
        return is_correct(with_path(prediction).path, examples[int(example.id[2:])])

    trainset = [dspy.Example(id=e.id, question=e.question).with_inputs("question") for e in examples]
    with dspy.context(lm=DummyLM(script)):
        traces = bootstrap_trace_data(dspy.ChainOfThought(AnswerQuestion), trainset, metric=metric, num_threads=1)
    dspy_kept = {(t["example"].id, with_path(t["prediction"]).path) for t in traces if t["score"]}

    config = SynthesisConfig(method="cot", generations=1, hint_pass=False, num_threads=1,
                             filters=FilterOptions(arithmetic=False, form=False, choice_support=False))
    import tempfile, json, pathlib  # noqa: E401
    out = pathlib.Path(tempfile.mkdtemp())
    synthesize(DummyLM(script), examples, out, config, progress=False)
    rows = [json.loads(line) for line in (out / "train.jsonl").read_text().splitlines()]
    ours = {(r["meta"]["problem_id"], r["messages"][1]["content"]) for r in rows}
    assert ours == dspy_kept and len(ours) == 2


def test_chain_of_thought_solver_adds_the_training_path():
    with dspy.context(lm=DummyLM([{"reasoning": "2 + 2 = 4.", "answer": "4"}])):
        prediction = ChainOfThoughtSolver()(question="What is 2 + 2?")
    assert prediction.path == "2 + 2 = 4.\nThe answer is 4."


def test_guideline_selection_admits_only_numbers_of_the_library():
    from dspy.utils.exceptions import AdapterParseError
    import pytest

    select = ReGenesis().select.signature
    adapter = dspy.ChatAdapter(use_json_adapter_fallback=False)
    assert adapter.parse(select, "[[ ## selected ## ]]\n[3, 30]\n\n[[ ## completed ## ]]")["selected"] == [3, 30]
    for invalid in ("[50]", "[0, 2]", "[31]"):
        with pytest.raises(AdapterParseError):
            adapter.parse(select, f"[[ ## selected ## ]]\n{invalid}\n\n[[ ## completed ## ]]")


def test_an_empty_selection_falls_back_to_a_guideline_that_varies_by_sample():
    lm = scripted({**STEPS, asks("selected"): {"selected": "[]"}})
    program = ReGenesis()
    chosen = []
    for rollout_id in range(8):
        with dspy.context(lm=lm.copy(rollout_id=rollout_id, temperature=1.0)):
            chosen.append(tuple(program(question="What do 5 pens cost?").guideline_set))
    again = lm.copy(rollout_id=3, temperature=1.0)
    with dspy.context(lm=again):
        assert tuple(program(question="What do 5 pens cost?").guideline_set) == chosen[3]
    assert len(set(chosen)) >= 4


def test_a_path_ends_with_every_output_field_the_answer_last():
    lm = scripted({**STEPS, asks("reasoning"): {"reasoning": "One pen costs 6 / 3 = 2 dollars.",
                                                "unit_price": "2", "answer": "10"}})
    with dspy.context(lm=lm):
        prediction = ReGenesis("question -> unit_price, answer")(question="If 3 pens cost 6 dollars, what do 5 cost?")
    assert prediction.path.endswith("One pen costs 6 / 3 = 2 dollars.\nunit_price: 2\nThe answer is 10.")


def test_regenesis_runs_async_and_in_dspy_parallel():
    import asyncio

    program = ReGenesis()
    with dspy.context(lm=scripted(STEPS)):
        prediction = asyncio.run(program.acall(question="If 3 pens cost 6 dollars, what do 5 pens cost?"))
    assert prediction.answer == "10" and prediction.guideline_set == [2, 0]
    questions = [dspy.Example(question=f"What do {n} pens cost?").with_inputs("question") for n in (5, 7)]
    with dspy.context(lm=scripted(STEPS)):
        results = dspy.Parallel(num_threads=2)([(program, q) for q in questions])
    assert [r.answer for r in results] == ["10", "10"]


def test_the_solve_steps_ask_for_complete_reasoning_that_ends_in_the_answer():
    """A solve prompt that asks for short or brief work gets paths far shorter than the model's own
    chain of thought (benchmarks/path_length.py), and thin paths make thin training rows."""
    program = ReGenesis()
    for step in (program.solve, program.structure, program.solve_with_hint, program.structure_with_hint):
        wording = " ".join([step.signature.instructions, *(field.json_schema_extra["desc"]
                            for name, field in step.signature.fields.items() if name != "answer")]).lower()
        assert not {"short", "brief", "concise", "briefly"} & set(wording.replace(",", " ").replace(".", " ").split())
    for step in (program.solve, program.solve_with_hint):
        instructions = step.signature.instructions.lower()
        reasoning = step.signature.output_fields["reasoning"].json_schema_extra["desc"]
        assert "every step in full" in instructions and "ending in the final answer" in reasoning


# The path-writing steps ask in plain text where the program's adapter would hold the output to a JSON
# schema: a small model closes a JSON reasoning string after a sentence (benchmarks/path_length.py).

class ScriptedText(DummyLM):
    """DummyLM whose plain-string answers are the model's text as it is; dict answers are formatted by its
    adapter as usual."""

    def _format_answer_fields(self, answer):
        return answer if isinstance(answer, str) else super()._format_answer_fields(answer)


JSON_STEPS = [{"selected": [3, 1]}, {"adapted_guidelines": "List the prices."},
              {"reasoning_structure": "1. Price of one pen. 2. Price of five pens."}]
FREE_PATH = ("Step 1: one pen costs 6 / 3 = 2 dollars.\nStep 2: five pens cost 5 * 2 = 10 dollars.\n"
             "So the answer is 10.\nI hope this helps!")


def test_under_a_json_adapter_the_solve_step_writes_a_plain_text_path():
    from regenesis.prompting import STEP_BY_STEP

    lm = ScriptedText([*JSON_STEPS, FREE_PATH], adapter=dspy.JSONAdapter())
    with dspy.context(lm=lm, adapter=dspy.JSONAdapter()):
        prediction = ReGenesis()(question="If 3 pens cost 6 dollars, what do 5 pens cost?")
    solve_request = lm.history[-1]
    assert STEP_BY_STEP in solve_request["messages"][-1]["content"]
    assert "response_format" not in solve_request["kwargs"]
    assert "response_format" in lm.history[0]["kwargs"] or "json" in lm.history[0]["messages"][0]["content"].lower()
    assert prediction.reasoning == "Step 1: one pen costs 6 / 3 = 2 dollars.\nStep 2: five pens cost 5 * 2 = 10 dollars."
    assert prediction.answer == "10"
    assert prediction.path.endswith("= 10 dollars.\nThe answer is 10.")


def test_a_plain_text_path_is_read_back_as_the_metric_reads_it():
    from dspy.utils.exceptions import AdapterParseError

    from regenesis.models.adapters import PathAdapter
    from regenesis.programs.path import reasoning_first

    class Advise(dspy.Signature):
        """Advise on an order."""

        order: str = dspy.InputField()
        stock: str = dspy.InputField(desc="what the shop has")
        advice: str = dspy.OutputField()

    signature, adapter = reasoning_first(Advise), PathAdapter()
    messages = adapter.format(signature, [], {"order": "5 pens", "stock": "pens at 2 dollars"})
    assert "- stock: what the shop has" in messages[0]["content"]
    assert messages[-1]["content"].startswith("Order:\n5 pens\n\nStock:\npens at 2 dollars\n\nThink step by step.")
    read = adapter.parse(signature, "Each pen is 2 dollars, 5 pens are 10.\nThus, the final answer is buy them. Bye.")
    assert read == {"reasoning": "Each pen is 2 dollars, 5 pens are 10.", "advice": "buy them"}
    written = adapter.format_assistant_message_content(signature, read)
    assert written == "Each pen is 2 dollars, 5 pens are 10.\nThe answer is buy them." and adapter.parse(signature, written) == read
    with pytest.raises(AdapterParseError):
        adapter.parse(signature, "Each pen is 2 dollars, so 10 in all.")


def test_only_a_json_adapter_and_a_free_text_answer_give_way_to_the_plain_text_path():
    """Typed or several outputs keep the schema: in plain text the embedded model wrote no readable
    two-output path."""
    from regenesis.models import FinetuneJSONAdapter
    from regenesis.models.adapters import PathAdapter, path_adapter
    from regenesis.programs.path import reasoning_first

    chat, json_adapter = dspy.ChatAdapter(), FinetuneJSONAdapter()
    text_answer = reasoning_first("question -> answer")
    assert isinstance(path_adapter(json_adapter, text_answer), PathAdapter)
    assert path_adapter(chat, text_answer) is chat and path_adapter(None, text_answer) is None
    for structured in ("question -> answer: int", "question -> unit_price, answer"):
        assert path_adapter(json_adapter, reasoning_first(structured)) is json_adapter
