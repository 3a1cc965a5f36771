"""Training rows in the JSON format that constrained models are asked in, for DSPy's BootstrapFinetune too."""

import json

import dspy
from dspy.teleprompt.bootstrap_trace import bootstrap_trace_data
from dspy.utils import DummyLM

from regenesis.guidelines import load_guidelines
from regenesis.models import adapter_for, resolve_lm
from regenesis.optimize.config import SynthesisConfig
from regenesis.optimize.optimizer import Sample, Step, Teacher
from regenesis.models.adapters import FinetuneJSONAdapter, finetune_adapter


class Quote(dspy.Signature):
    """Work out what an order costs."""

    order: str = dspy.InputField()
    quantity: int = dspy.InputField()
    total: float = dspy.OutputField()


def test_a_json_row_holds_the_jsonadapters_prompt_and_an_answer_it_parses_back():
    signature = dspy.ChainOfThought(Quote).predict.signature
    adapter = FinetuneJSONAdapter()
    inputs, outputs = {"order": "3 pens cost 6 dollars", "quantity": 5}, {"reasoning": "5 * 2 = 10.", "total": 10.0}
    row = adapter.format_finetune_data(signature=signature, demos=[], inputs=inputs, outputs=outputs)
    prompt, answer = row["messages"][:-1], row["messages"][-1]
    assert prompt == dspy.JSONAdapter().format(signature=signature, demos=[], inputs=inputs)
    assert answer["role"] == "assistant" and json.loads(answer["content"]) == outputs
    assert dspy.JSONAdapter().parse(signature, answer["content"]) == outputs


def test_bootstrap_finetune_prepares_json_rows_with_it():
    student = dspy.ChainOfThought(Quote)
    trainset = [dspy.Example(order="3 pens cost 6 dollars", quantity=5, total=10.0).with_inputs("order", "quantity")]
    teacher_lm = DummyLM([{"reasoning": "One pen is 2, so 5 * 2 = 10.", "total": "10"}], adapter=dspy.JSONAdapter())
    with dspy.context(lm=teacher_lm, adapter=dspy.JSONAdapter()):
        traces = bootstrap_trace_data(student, trainset, metric=lambda e, p, trace=None: p.total == e.total,
                                      num_threads=1)
    assert traces[0]["score"] is True
    optimizer = dspy.BootstrapFinetune(metric=lambda e, p, trace=None: True, adapter=FinetuneJSONAdapter())
    rows, data_format = optimizer._prepare_finetune_data(trace_data=traces, lm=resolve_lm())
    assert data_format == "chat" and len(rows) == 1
    assert json.loads(rows[0]["messages"][-1]["content"])["total"] == 10.0


def test_bootstrap_finetune_prepares_json_rows_under_the_adapter_configure_sets():
    """``configure()`` sets ``adapter_for(lm)``; BootstrapFinetune's own adapter default is then that one."""
    student = dspy.ChainOfThought(Quote)
    trainset = [dspy.Example(order="3 pens cost 6 dollars", quantity=5, total=10.0).with_inputs("order", "quantity")]
    lm = resolve_lm()
    teacher_lm = DummyLM([{"reasoning": "One pen is 2, so 5 * 2 = 10.", "total": "10"}], adapter=dspy.JSONAdapter())
    with dspy.context(lm=teacher_lm, adapter=adapter_for(lm)):
        traces = bootstrap_trace_data(student, trainset, metric=lambda e, p, trace=None: True, num_threads=1)
        rows, _ = dspy.BootstrapFinetune(metric=None)._prepare_finetune_data(trace_data=traces, lm=lm)
    assert json.loads(rows[0]["messages"][-1]["content"])["total"] == 10.0


def test_in_process_models_train_on_json_rows_and_chat_models_on_dspy_fields():
    assert isinstance(adapter_for(resolve_lm()), FinetuneJSONAdapter)  # decodes JSON
    remote = resolve_lm("openai/fake", api_base="http://127.0.0.1:9/v1")
    assert type(finetune_adapter(adapter_for(remote))) is dspy.ChatAdapter


def test_the_optimizer_formats_rows_with_the_adapter_the_program_runs_under():
    lm, student = resolve_lm(), dspy.ChainOfThought(Quote)
    guidelines = load_guidelines()
    assert isinstance(Teacher(student, [lm], None, SynthesisConfig(), guidelines).adapters[0], FinetuneJSONAdapter)
    with dspy.context(adapter=dspy.ChatAdapter()):
        assert type(Teacher(student, [lm], None, SynthesisConfig(), guidelines).adapters[0]) is dspy.ChatAdapter
    with dspy.context(adapter=dspy.JSONAdapter()):
        assert isinstance(Teacher(student, [lm], None, SynthesisConfig(), guidelines).adapters[0], FinetuneJSONAdapter)


def test_rows_carry_the_predictors_demos_as_its_prompts_do():
    student = dspy.ChainOfThought(Quote)
    student.predict.demos = [dspy.Example(order="2 cups cost 4 dollars", quantity=3, reasoning="3 * 2 = 6.", total=6.0)]
    teacher = Teacher(student, [resolve_lm()], None, SynthesisConfig(), load_guidelines())
    sample = Sample(0, 0.8, None, steps=[Step(0, {"order": "3 pens cost 6 dollars", "quantity": 5},
                                              {"reasoning": "5 * 2 = 10.", "total": 10.0}, {})])
    row = teacher.row("p0", sample, sample.steps[0])
    sent = dspy.JSONAdapter().format(signature=student.predict.signature, demos=student.predict.demos,
                                     inputs=sample.steps[0].inputs)
    assert row["messages"][:-1] == sent and "2 cups cost 4 dollars" in json.dumps(row["messages"])
