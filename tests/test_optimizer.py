"""ReGenesisOptimizer on a user's own signature (two inputs, two typed outputs) and metric."""

import json
import re
from collections import Counter

import dspy
import pytest

from regenesis.models import resolve_lm
from regenesis.optimize.optimizer import ReGenesisOptimizer
from regenesis.optimize.methods import ReGenesisBudget
from tests.fake_server import FakeServer, fields_reply, last_user_text, output_fields


class PriceQuote(dspy.Signature):
    """Work out what an order costs."""

    order: str = dspy.InputField(desc="what is bought and what a pack costs")
    quantity: int = dspy.InputField()
    unit_price: float = dspy.OutputField()
    total: float = dspy.OutputField()


TRAINSET = [
    dspy.Example(order="3 pens cost 6 dollars", quantity=5, unit_price=2.0, total=10.0).with_inputs("order", "quantity"),
    dspy.Example(order="4 cups cost 12 dollars", quantity=2, unit_price=3.0, total=6.0).with_inputs("order", "quantity"),
]


def quote_is_right(example, prediction, trace=None):
    return (abs(float(prediction.total) - example.total) < 1e-6
            and abs(float(prediction.unit_price) - example.unit_price) < 1e-6)


class Shop:
    """A model that plans plainly and quotes each order: right, or (``wrong``) a dollar too much unless
    the prompt carries the correct answer."""

    def __init__(self, wrong=False):
        self.wrong = wrong

    def __call__(self, body):
        fields = output_fields(body)
        text = json.dumps(body["messages"])
        if "total" not in fields:
            return fields_reply(body, {"selected": "[1, 2]", "adapted_guidelines": "Find the price of one item.",
                                       "reasoning_structure": "1. Price of one item. 2. Price of the order."})
        count, price = (3, 6) if "pens" in text else (4, 12)
        quantity = 5 if "pens" in text else 2
        unit = price / count
        extra = 1 if self.wrong and "correct_answer" not in text else 0
        return fields_reply(body, {
            "reasoning": f"One item costs {price} / {count} = {unit:g} dollars. "
                         f"The order costs {quantity} * {unit:g} = {quantity * unit + extra:g} dollars.",
            "unit_price": f"{unit:g}", "total": f"{quantity * unit + extra:g}"})


def compile_on(server, tmp_path, **options):
    student = dspy.ChainOfThought(PriceQuote)
    student.set_lm(resolve_lm("openai/shop", api_base=server.url))
    optimizer = ReGenesisOptimizer(metric=quote_is_right, finetune=False, run_dir=tmp_path / "run", num_threads=1,
                                   regenesis=ReGenesisBudget(selections=1, singles=2), **options)
    return optimizer, optimizer.compile(student, trainset=TRAINSET)


def test_finetune_false_gives_the_student_the_kept_paths_as_demos(tmp_path):
    with FakeServer(Shop()) as server:
        optimizer, compiled = compile_on(server, tmp_path)
    demos = compiled.predict.demos
    assert optimizer.report["solved"] == 2 and optimizer.report["kept_samples"] == 2  # 3 samples alike → 1 each
    assert {d.order for d in demos} == {e.order for e in TRAINSET}
    assert all(d.reasoning.startswith("One item costs") and d.total in (10.0, 6.0) for d in demos)
    assert compiled._compiled and compiled.predict.lm.model.endswith("shop")


def test_a_resume_through_run_dir_makes_no_model_call(tmp_path):
    with FakeServer(Shop()) as server:
        compile_on(server, tmp_path)
        calls = len(server.requests)
        again, compiled = compile_on(server, tmp_path)
        assert len(server.requests) == calls > 0
    assert again.report["kept_samples"] == 2 and len(compiled.predict.demos) == 2


def test_unsolved_examples_get_the_hinted_pass_and_the_rows_never_show_the_hint(tmp_path):
    with FakeServer(Shop(wrong=True)) as server:
        optimizer, compiled = compile_on(server, tmp_path)
        hinted = [b for b in server.requests if "correct_answer" in json.dumps(b["messages"])]
    assert optimizer.report["solved_with_hint"] == 2 and optimizer.report["dropped"]["metric"] == 6
    assert any("unit_price: 2.0\\ntotal: 10.0" in json.dumps(b["messages"]) for b in hinted)
    rows = [json.loads(line) for line in (tmp_path / "run" / "train.jsonl").read_text().splitlines()]
    assert rows and not any("correct_answer" in json.dumps(r["messages"]) for r in rows)
    assert all(r["meta"]["hinted"] for r in rows)


def test_label_free_scores_against_the_majority_and_shows_gold_to_nothing(tmp_path):
    trainset = [e.copy(total=999.0, unit_price=555.0) for e in TRAINSET]

    def majority_total(example, prediction, trace=None):
        return float(prediction.total) == float(example.total)

    with FakeServer(Shop()) as server:
        student = dspy.ChainOfThought(PriceQuote)
        student.set_lm(resolve_lm("openai/shop", api_base=server.url))
        optimizer = ReGenesisOptimizer(metric=majority_total, finetune=False, label_free=True, num_threads=1,
                                       regenesis=ReGenesisBudget(selections=0, singles=3), run_dir=tmp_path / "lf")
        optimizer.compile(student, trainset=trainset)
        sent = json.dumps(server.requests)
    assert optimizer.report["solved"] == 2
    assert "999" not in sent and "555" not in sent


def test_a_trainset_without_marked_inputs_is_named():
    student = dspy.ChainOfThought(PriceQuote)
    with pytest.raises(ValueError, match=r"trainset\[0\]"):
        ReGenesisOptimizer(finetune=False).compile(student, trainset=[dspy.Example(order="x", quantity=1)])


@pytest.mark.model
def test_compile_on_the_embedded_model_fine_tunes_it_and_the_program_answers_with_the_tuned_lm(tmp_path):
    import torch

    from regenesis.finetune import finetunable_lm
    from regenesis.models import TransformersEngine, adapter_for

    def gives_a_total(example, prediction, trace=None):  # a lenient metric: this test is about the plumbing
        return float(prediction.total) >= 0

    student = dspy.ChainOfThought(PriceQuote)
    student.set_lm(finetunable_lm(max_tokens=96))
    optimizer = ReGenesisOptimizer(metric=gives_a_total, run_dir=tmp_path / "run", num_threads=1, hint_pass=False,
                                   regenesis=ReGenesisBudget(selections=0, singles=1),
                                   train_kwargs={"max_steps": 1, "batch_size": 1, "max_length": 1024, "lr": 1e-4})
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        compiled = optimizer.compile(student, trainset=TRAINSET[:1])
    finally:
        torch.set_num_threads(threads)

    rows = optimizer.dataset()
    assert len(rows) == 1 and rows[0]["meta"]["predictor"] == 0
    lm = compiled.predict.lm
    assert isinstance(lm.engine, TransformersEngine)
    assert lm.engine.path == str((tmp_path / "run" / "finetuned" / "lm-0").resolve())
    assert json.loads((tmp_path / "run" / "finetuned" / "lm-0" / "finetune.json").read_text())["result"]["steps"] == 1
    with dspy.context(adapter=adapter_for(lm)):
        answer = compiled(order="2 apples cost 4 dollars", quantity=3)
    assert isinstance(answer.total, float) and isinstance(answer.unit_price, float)


class PriceThenTotal(dspy.Module):
    """A user's own two-step program: the unit price from the order, then the total."""

    def __init__(self):
        super().__init__()
        self.price = dspy.ChainOfThought("order -> unit_price: float")
        self.total = dspy.ChainOfThought("unit_price: float, quantity: int -> total: float")

    def forward(self, order, quantity):
        unit_price = self.price(order=order).unit_price
        return self.total(unit_price=unit_price, quantity=quantity)


def two_steps(body):
    fields, text = output_fields(body), json.dumps(body["messages"])
    if "unit_price" in fields:
        unit = 2 if "pens" in text else 3
        return fields_reply(body, {"reasoning": f"A pack costs {unit * 3} / 3 = {unit}.", "unit_price": str(unit)})
    if "total" in fields:  # always 10, unless told the correct answer
        told = re.search(r"\[\[ ## correct_answer ## \]\]\n([\d.]+)", last_user_text(body))
        total = told.group(1) if told else "10"
        return fields_reply(body, {"reasoning": f"The order costs {total}.", "total": total})
    return fields_reply(body, {"selected": "[1]", "adapted_guidelines": "Price one item.",
                               "reasoning_structure": "1. Multiply."})


def test_every_predictor_of_a_multi_step_program_gets_its_own_rows_and_the_hint_pass_its_temperature(tmp_path):
    def total_is_right(example, prediction, trace=None):
        return float(prediction.total) == example.total and len(trace) == 2

    with FakeServer(two_steps) as server:
        student = PriceThenTotal()
        student.set_lm(resolve_lm("openai/shop", api_base=server.url))
        optimizer = ReGenesisOptimizer(metric=total_is_right, finetune=False, run_dir=tmp_path / "run", num_threads=1,
                                       regenesis=ReGenesisBudget(selections=1, singles=1), temperature=1.2,
                                       hint_generations=4, hint_temperature=0.85)
        compiled = optimizer.compile(student, trainset=TRAINSET)
        temperatures = Counter(b["temperature"] for b in server.requests)
        hinted = {b["temperature"] for b in server.requests if "correct_answer" in json.dumps(b["messages"])}
    assert optimizer.report["solved"] == 2 and optimizer.report["solved_with_hint"] == 1  # 4 cups: total 6, not 10
    # first pass: 2 examples x 2 predictors x (a selected set: 4 calls + a single guideline: 3 calls);
    # the hinted pass of the cups (4 generations: one selected set) for both predictors
    assert temperatures == {1.2: 2 * 2 * 7, 0.85: 2 * 4} and hinted == {0.85}
    assert [d.unit_price for d in compiled.price.predict.demos] == [2.0, 3.0]
    assert [d.total for d in compiled.total.predict.demos] == [10.0, 6.0]
