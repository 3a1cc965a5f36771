"""Every engine parses: the GGUF and a Hugging Face folder decode under the JSON schema (xgrammar), servers
that take structured output get it, and a tuned checkpoint answers `solve` and `synthesize` in a form that
parses."""

import json
from typing import Literal

import jsonschema

import dspy
import pytest
import torch

from regenesis.cli import main
from regenesis.cli.solve import tuned_checkpoint
from regenesis.finetune import dense_base
from regenesis.models import (ModelSpecError, RemoteLM, TransformersEngine, adapter_for, constrains_output, resolve_lm,
                              sampling_lm)
from tests.fake_server import FakeServer, fields_reply

class MathQA(dspy.Signature):
    """Solve the math word problem. Reason step by step, then give the numeric answer."""

    question: str = dspy.InputField()
    reasoning: str = dspy.OutputField()
    answer: float = dspy.OutputField()


QUESTIONS = ["Tom has 3 apples and buys 4 more. How many apples does he have?",
             "A pen costs 2 dollars. How much do 5 pens cost?"]


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # two torch threads on a shared small machine spin against each other
    yield
    torch.set_num_threads(threads)


# ---------------------------------------------------------------------------------------------
# Servers: structured output where the server takes it, DSPy's default elsewhere


def answer_reply(body: dict) -> str:
    return fields_reply(body, {"reasoning": "3 + 4 = 7", "answer": "7"})


def ask_math(lm) -> float:
    with dspy.context(lm=lm, adapter=adapter_for(lm)):
        return dspy.Predict(MathQA)(question=QUESTIONS[0]).answer


@pytest.mark.parametrize("form", ["json_schema", "json_object"])
def test_a_server_that_takes_structured_output_gets_the_schema_with_bounded_strings(monkeypatch, form):
    monkeypatch.setenv("REGENESIS_STRUCTURED_OUTPUT", form)
    with FakeServer(answer_reply) as server:
        lm = resolve_lm("openai/fake", api_base=server.url, cache=False, max_tokens=320)
        assert constrains_output(lm) and isinstance(adapter_for(lm), dspy.JSONAdapter)
        assert ask_math(lm) == 7.0
        sent = server.requests[-1]["response_format"]
    schema = sent["json_schema"]["schema"] if form == "json_schema" else sent["schema"]
    assert sent["type"] == form and set(schema["properties"]) == {"reasoning", "answer"}
    # One string shares the 320 - 64 tokens: 2 characters a token, as the in-process engines' first try.
    assert schema["properties"]["reasoning"]["maxLength"] == 512


def test_vllm_gets_the_schema_and_other_servers_keep_dspys_default_unless_they_opt_in():
    with FakeServer(answer_reply) as server:
        vllm = resolve_lm("hosted_vllm/fake", api_base=server.url, cache=False)
        assert ask_math(vllm) == 7.0 and server.requests[-1]["response_format"]["type"] == "json_schema"
        assert constrains_output(resolve_lm("openai/fake", api_base=server.url, structured_output=True))
        lm = resolve_lm("openai/fake", api_base=server.url, cache=False)
        assert isinstance(adapter_for(lm), dspy.ChatAdapter)
        assert ask_math(lm) == 7.0
        assert "response_format" not in server.requests[-1]


def test_a_bad_structured_output_setting_is_refused_before_any_call(monkeypatch):
    with pytest.raises(ModelSpecError, match="structured_output='yes'"):
        resolve_lm("openai/fake", api_base="http://127.0.0.1:9/v1", structured_output="yes")
    monkeypatch.setenv("REGENESIS_STRUCTURED_OUTPUT", "yes")
    with pytest.raises(ModelSpecError, match="REGENESIS_STRUCTURED_OUTPUT='yes'"):
        resolve_lm("hosted_vllm/fake", api_base="http://127.0.0.1:9/v1")


def test_a_provider_regenesis_knows_nothing_about_keeps_the_chat_adapter(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
    lm = resolve_lm("anthropic/claude-3-haiku-20240307")
    assert isinstance(lm, RemoteLM) and lm.structured_output is None
    assert isinstance(adapter_for(lm), dspy.ChatAdapter)


def test_a_tuned_checkpoint_is_told_by_its_finetune_json(tmp_path):
    ckpt = tmp_path / "ckpt"
    (ckpt / "gguf").mkdir(parents=True)
    (ckpt / "gguf" / "model-q8_0.gguf").write_bytes(b"GGUF")
    (ckpt / "config.json").write_text("{}")
    assert tuned_checkpoint(str(ckpt)) is None
    (ckpt / "finetune.json").write_text("{}")
    assert tuned_checkpoint(str(ckpt)) == ckpt
    assert tuned_checkpoint(str(ckpt / "gguf" / "model-q8_0.gguf")) == ckpt
    assert tuned_checkpoint(None) is None and tuned_checkpoint("openai/gpt-4o-mini") is None


# ---------------------------------------------------------------------------------------------
# The llama.cpp engine: the embedded GGUF, held to the schema by xgrammar's token masks


class Triage(dspy.Signature):
    """Read the report and triage it."""

    report: str = dspy.InputField()
    urgent: bool = dspy.OutputField()
    severity: Literal["low", "medium", "high"] = dspy.OutputField()
    first_step: str = dspy.OutputField()
    people_affected: int = dspy.OutputField()


def _json_requests(lm) -> list[tuple[dict, str]]:
    """(JSON schema sent, text returned) of each call in the LM's history."""
    return [(entry["kwargs"]["response_format"].model_json_schema(), entry["outputs"][0]) for entry in lm.history]


@pytest.mark.model
@pytest.mark.parametrize("signature, inputs", [
    # 10 s; MathQA's schema is the one the rollout test below samples and validates in the default suite
    pytest.param(MathQA, {"question": QUESTIONS[1]}, marks=pytest.mark.slow),
    (Triage, {"report": "The bridge on Main Street has a crack; 40 cars cross it an hour."}),
])
def test_the_gguf_answers_every_schema_in_json_that_validates(signature, inputs):
    lm = resolve_lm(None, cache=False, max_tokens=160)
    with dspy.context(lm=lm, adapter=adapter_for(lm)):
        prediction = dspy.Predict(signature)(**inputs)
    assert set(prediction.keys()) == set(signature.output_fields)
    for schema, text in _json_requests(lm):
        jsonschema.validate(json.loads(text), schema)
    # The same prompt without the constraint: SmolLM2 writes no JSON at all.
    prompt = "\n\n".join(message["content"] for message in lm.history[-1]["messages"])
    unconstrained = lm(prompt, max_tokens=48)[0]
    with pytest.raises(json.JSONDecodeError):
        json.loads(unconstrained)


@pytest.mark.model
def test_gguf_samples_under_the_schema_repeat_per_seed_and_differ_between_rollout_ids():
    lm = resolve_lm(None, cache=False, max_tokens=96)

    def sample(rollout_id: int | None) -> str:
        model = lm if rollout_id is None else sampling_lm(lm, rollout_id)
        with dspy.context(lm=model, adapter=adapter_for(model)):
            dspy.Predict(MathQA)(question=QUESTIONS[0])
        return model.history[-1]["outputs"][0]

    first = [sample(i) for i in range(3)]
    assert [sample(i) for i in range(3)] == first
    assert len(set(first)) == 3 and all(json.loads(text) for text in first)
    assert sample(None) == sample(None)  # temperature 0: greedy


MATH_QA_SCHEMA = {"type": "object", "properties": {"reasoning": {"type": "string", "maxLength": 640},
                                                    "answer": {"type": "number"}},
                  "required": ["reasoning", "answer"], "additionalProperties": False}


@pytest.mark.model
def test_the_gguf_grammar_bounds_a_numbers_digits_as_llama_cpps_own_json_grammar_did():
    import xgrammar

    lm = resolve_lm(None)
    with lm.engine.borrow() as llm:
        grammar = lm.engine.schema_grammars(llm).compile(MATH_QA_SCHEMA)
        tokenize = lambda text: llm.tokenize(text.encode(), add_bos=False, special=False)  # noqa: E731

    def accepts(text: str) -> bool:
        matcher = xgrammar.GrammarMatcher(grammar)
        return all(matcher.accept_token(token) for token in tokenize(text))

    start = '{"reasoning": "3 + 4 = 7", "answer": '
    assert accepts(start + "7." + "1" * 16) and accepts(start + "1" * 16 + "}")
    assert not accepts(start + "7." + "1" * 17) and not accepts(start + "1" * 17)


# ---------------------------------------------------------------------------------------------
# The transformers engine: the real embedded weights as a Hugging Face folder


@pytest.mark.model
def test_the_base_model_as_a_hugging_face_folder_parses():
    lm = resolve_lm(dense_base(None), cache=False, max_tokens=96)
    assert isinstance(lm.engine, TransformersEngine) and isinstance(adapter_for(lm), dspy.JSONAdapter)
    with dspy.context(lm=lm, adapter=adapter_for(lm)):
        prediction = dspy.Predict(MathQA)(question=QUESTIONS[0])
    assert isinstance(prediction.answer, float) and prediction.reasoning.strip()
    # Without the grammar the same model writes no parseable JSON for this prompt.
    assert all(json.loads(entry["outputs"][0]) for entry in lm.history)


@pytest.mark.model
def test_solve_asks_a_tuned_checkpoint_as_it_was_trained(tiny_finetune, capsys):
    assert main(["solve", "--model", str(tiny_finetune), "--max-tokens", "160", "What is 7 times 6?"]) == 0
    printed = capsys.readouterr().out
    assert "Reasoning" in printed and "Answer:" in printed and "Guidelines" not in printed


@pytest.mark.model
@pytest.mark.slow  # 23 s; the default suite asks the tuned checkpoint through `solve` (above)
def test_synthesize_with_a_tuned_checkpoint_parses_every_step(tiny_finetune, tmp_path):
    out = tmp_path / "syn"
    assert main(["synthesize", "--model", str(tiny_finetune), "--method", "regenesis", "--task", "gsm8k-sample",
                 "--split", "train", "--limit", "1", "--generations", "4", "--no-hint", "--max-tokens", "96",
                 "--num-threads", "1", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["generations"] >= 4
    assert report["dropped"].get("parse", 0) == 0 and report["model_errors"] == 0
