"""Model spec resolution, its errors, and the real embedded model through DSPy."""

import re
import shutil
import socket

import dspy
import pytest
from dspy.utils.exceptions import is_retryable_lm_error

from regenesis import redact
from regenesis.errors import BadInput
from regenesis.finetune import dense_base
from regenesis.models import (
    DEFAULT_MODEL,
    JSON_OVERHEAD_TOKENS,
    LlamaCppEngine,
    ModelLoadError,
    ModelSpecError,
    RemoteLM,
    SourceKind,
    TransformersEngine,
    adapter_for,
    bounded_strings,
    error_kind,
    model_source,
    resolve_lm,
    sample_lms,
)
from tests.fake_server import FakeServer, Fault


def test_no_spec_gives_the_embedded_default():
    lm = resolve_lm(None)
    assert isinstance(lm.engine, LlamaCppEngine) and lm.engine.path.endswith("SmolLM2-135M-Instruct.Q4_1.gguf")
    assert re.fullmatch(r"local/smollm2-135m-[0-9a-f]{10}", lm.model) and DEFAULT_MODEL == "local/smollm2-135m"
    assert resolve_lm(DEFAULT_MODEL).model == lm.model  # the name is stable: DSPy's cache key
    assert isinstance(adapter_for(lm), dspy.JSONAdapter)


def test_a_gguf_file_and_a_folder_holding_one(tmp_path):
    source = resolve_lm(None).engine.path
    gguf = tmp_path / "my-model.gguf"
    gguf.symlink_to(source)
    assert resolve_lm(str(gguf)).engine.path == str(gguf.resolve())
    assert resolve_lm(str(tmp_path)).model.startswith("local/my-model-")


def test_two_local_models_with_the_same_file_name_never_share_a_cache_key(tmp_path):
    source = resolve_lm(None).engine.path
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "model-q8_0.gguf").symlink_to(source)
    first, second = (resolve_lm(str(tmp_path / f / "model-q8_0.gguf")) for f in ("a", "b"))
    assert first.model != second.model
    assert first.model == resolve_lm(str(tmp_path / "a" / "model-q8_0.gguf")).model


def test_one_classification_of_a_spec_serves_inference_and_fine_tuning(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    embedded = resolve_lm(None).engine.path
    (tmp_path / "model.gguf").symlink_to(embedded)
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "config.json").write_text("{}")
    (tmp_path / "holder").mkdir()
    (tmp_path / "holder" / "weights.gguf").symlink_to(embedded)
    (tmp_path / "copy").mkdir()
    shutil.copy2(embedded, tmp_path / "copy" / "model.gguf")
    dense = dense_base(None)  # the embedded GGUF's dense conversion, cached (a GGUF links to the same file)
    kinds = {  # spec: (kind, the engine that runs it, where fine-tuning loads it from)
        DEFAULT_MODEL: (SourceKind.EMBEDDED, LlamaCppEngine, dense),
        str(tmp_path / "model.gguf"): (SourceKind.GGUF, LlamaCppEngine, dense),
        str(tmp_path / "hf"): (SourceKind.HF_FOLDER, TransformersEngine, str((tmp_path / "hf").resolve())),
        str(tmp_path / "holder"): (SourceKind.GGUF, LlamaCppEngine, dense),
        str(tmp_path / "copy" / "model.gguf"): (SourceKind.GGUF, LlamaCppEngine, dense),  # the same bytes elsewhere
        "someone/some-model": (SourceKind.HUB, None, "someone/some-model"),
        "openai/x": (SourceKind.PROVIDER, RemoteLM, None),
    }
    for spec, (kind, runs_on, trains_from) in kinds.items():
        assert model_source(spec).kind is kind, spec
        if runs_on is None:  # a hub id names no server: inference refuses it in one line
            with pytest.raises(ModelSpecError, match="^someone/some-model: unknown provider 'someone'"):
                resolve_lm(spec)
        else:
            lm = resolve_lm(spec)
            assert isinstance(lm if runs_on is RemoteLM else lm.engine, runs_on), spec
        if trains_from is None:  # a hosted model has no weights to tune
            with pytest.raises(BadInput, match="^base model 'openai/x': a hosted model of the LiteLLM provider"):
                dense_base(spec)
        else:
            assert dense_base(spec) == trains_from, spec


@pytest.mark.parametrize(("spec", "named"), [
    ("local/nope", "^Unknown model spec 'local/nope': not found"),
    ("{tmp}/missing.gguf", "missing.gguf: not found"),
    ("{tmp}", "a folder without config.json or a .gguf file is not a model"),
    ("{tmp}/rows.gguf", "rows.gguf: not a GGUF file"),
    ("nosuchprovider/a/b", "^nosuchprovider/a/b: unknown provider 'nosuchprovider'"),
])
def test_a_bad_spec_is_one_line_naming_it_for_inference_and_fine_tuning(tmp_path, spec, named):
    (tmp_path / "rows.gguf").write_text('{"question": "not weights"}')
    spec = spec.format(tmp=tmp_path / "empty" if spec == "{tmp}" else tmp_path)
    (tmp_path / "empty").mkdir()
    for classify, error in ((model_source, ModelSpecError), (resolve_lm, ModelSpecError), (dense_base, BadInput)):
        with pytest.raises(error) as raised:
            classify(spec)
        message = str(raised.value)
        assert "\n" not in message and spec in message, (classify, message)
        assert re.search(named, message.removeprefix("base model: ")), (classify, message)


def test_a_hugging_face_folder_runs_through_transformers(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    lm = resolve_lm(str(tmp_path))
    assert isinstance(lm.engine, TransformersEngine) and lm.engine.path == str(tmp_path.resolve())


@pytest.mark.parametrize("spec", ["openai/gpt-4o-mini", "anthropic/claude-3-5-haiku-latest",
                                  "together_ai/meta-llama/Llama-3-8b-chat-hf"])
def test_hosted_strings_resolve_without_a_call(spec, monkeypatch):
    for var in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "TOGETHER_API_KEY"):
        monkeypatch.setenv(var, "test-key")
    lm = resolve_lm(spec)
    assert lm.model == spec and not hasattr(lm.engine, "complete")
    assert isinstance(adapter_for(lm), dspy.ChatAdapter)


def test_local_servers_need_no_key(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert resolve_lm("ollama_chat/llama3").model == "ollama_chat/llama3"
    lm = resolve_lm("openai/my-model", api_base="http://localhost:8000/v1")
    assert lm.kwargs["api_base"] == "http://localhost:8000/v1" and lm.kwargs["api_key"]


def test_a_hosted_model_without_its_key_names_the_variable(monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with pytest.raises(ModelSpecError, match="ANTHROPIC_API_KEY"):
        resolve_lm("anthropic/claude-3-5-haiku-latest")


def test_unknown_specs_are_one_line_naming_the_spec_and_the_forms():
    with pytest.raises(ModelSpecError, match="^Unknown model spec 'smollm': not found") as error:
        resolve_lm("smollm")
    assert "local/smollm2-135m" in str(error.value) and "LiteLLM" in str(error.value)
    assert "\n" not in str(error.value) and "`regenesis models`" in str(error.value)
    with pytest.raises(ModelSpecError, match="^Unknown model spec 'local/unknown-model'"):
        resolve_lm("local/unknown-model")


def test_missing_or_invalid_gguf_paths_are_named(tmp_path):
    with pytest.raises(ModelSpecError, match=r"missing.gguf: not found \(no such file or folder\)"):
        resolve_lm(str(tmp_path / "missing.gguf"))
    fake = tmp_path / "fake.gguf"
    fake.write_text("not a model")
    with pytest.raises(ModelSpecError, match="fake.gguf: not a GGUF file"):
        resolve_lm(str(fake))


def test_a_truncated_or_damaged_gguf_is_refused_at_resolve_time(tmp_path):
    with open(resolve_lm(None).engine.path, "rb") as source:
        head = source.read(5_000_000)
    (tmp_path / "cut.gguf").write_bytes(head)
    with pytest.raises(ModelSpecError, match=r"cut.gguf: a truncated GGUF file \(5000000 bytes"):
        resolve_lm(str(tmp_path / "cut.gguf"))
    (tmp_path / "header.gguf").write_bytes(head[:100])
    with pytest.raises(ModelSpecError, match="header.gguf: a damaged GGUF file"):
        resolve_lm(str(tmp_path / "header.gguf"))


def gguf_llama_cpp_refuses(path):
    """A well-formed GGUF file of an architecture llama.cpp does not know."""
    import gguf
    import numpy as np

    writer = gguf.GGUFWriter(str(path), "nosucharch")
    writer.add_tensor("weight", np.zeros(4, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_a_model_llama_cpp_cannot_load_raises_model_load_error_naming_the_file(tmp_path):
    lm = resolve_lm(str(gguf_llama_cpp_refuses(tmp_path / "odd.gguf")), num_retries=3)
    with pytest.raises(ModelLoadError, match="odd.gguf: llama.cpp cannot load this model") as error:
        lm("hello")
    assert error_kind(error.value) == "model_load" and not is_retryable_lm_error(error.value)


def test_a_folder_transformers_cannot_load_raises_model_load_error(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "llama"}')
    with pytest.raises(ModelLoadError, match=re.escape(f"{tmp_path}: transformers cannot load this model")):
        resolve_lm(str(tmp_path))("hello")


def refused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("engine", ["auto", "litellm"])
@pytest.mark.parametrize("fault, kind", [(Fault(status=500), "server_error"), (Fault(status=429), "rate_limit"),
                                         (Fault(status=401), "auth"), (Fault(status=400), "bad_request"),
                                         (Fault(close=True), "connection"), (Fault(delay=3.0), "timeout")])
def test_error_kinds_of_real_failed_calls(fault, kind, engine):
    with FakeServer(lambda body: fault) as server:
        lm = resolve_lm("openai/m", api_base=server.url, num_retries=0, timeout=1, engine=engine, cache=False)
        with pytest.raises(Exception) as error:
            lm("hello")
    assert error_kind(error.value) == kind


def test_a_refused_connection_and_a_parse_failure_have_their_kinds():
    lm = resolve_lm("openai/m", api_base=f"http://127.0.0.1:{refused_port()}/v1", num_retries=0, cache=False)
    with pytest.raises(Exception) as refused:
        lm("hello")
    assert error_kind(refused.value) == "connection"
    with FakeServer(lambda body: "no fields here") as server:
        lm = resolve_lm("openai/m", api_base=server.url, num_retries=0, cache=False)
        with dspy.context(lm=lm, adapter=dspy.ChatAdapter(use_json_adapter_fallback=False)):
            with pytest.raises(Exception) as unparsed:
                dspy.Predict("question -> answer")(question="?")
    assert error_kind(unparsed.value) == "parse" and error_kind(ValueError("x")) == "other"


def test_unknown_providers_are_refused_before_any_call():
    with pytest.raises(ModelSpecError, match="unknown provider 'nosuchprovider'"):
        resolve_lm("nosuchprovider/xyz")


def test_a_given_api_key_is_registered_as_a_secret():
    resolve_lm("openai/m", api_base="http://127.0.0.1:9/v1", api_key="given-secret-value")
    assert redact.redact("the key given-secret-value was refused") == "the key [redacted] was refused"


def test_a_local_server_that_is_down_fails_after_retries_naming_the_url():
    lm = resolve_lm("openai/my-model", api_base="http://127.0.0.1:9/v1", num_retries=1, cache=False)
    with pytest.raises(Exception, match="127.0.0.1:9"):
        lm("hello")


def test_grammar_bounds_every_string_so_json_always_closes():
    schema = {"type": "object", "properties": {"reasoning": {"type": "string"}, "answer": {"type": "string"},
                                               "choice": {"type": "string", "enum": ["A", "B"]}}}
    bounded = bounded_strings(schema, 300)
    assert bounded["properties"]["reasoning"]["maxLength"] == 300
    assert "maxLength" not in bounded["properties"]["choice"]


class QA(dspy.Signature):
    """Solve the math word problem step by step."""

    question: str = dspy.InputField()
    reasoning: str = dspy.OutputField()
    answer: float = dspy.OutputField()


@pytest.mark.model
def test_the_embedded_model_answers_a_typed_signature_that_parses():
    lm = resolve_lm(None, max_tokens=128)
    with dspy.context(lm=lm, adapter=adapter_for(lm)):
        prediction = dspy.Predict(QA)(question="If 3 pens cost 6 dollars, what do 5 pens cost?")
    assert isinstance(prediction.answer, float) and prediction.reasoning.strip()


@pytest.mark.model
def test_a_large_token_budget_keeps_the_grammar_within_llama_cpp_limits():
    lm = resolve_lm(None, max_tokens=8192)
    with dspy.context(lm=lm, adapter=adapter_for(lm)):
        prediction = dspy.Predict("question -> answer")(question="Name one colour.")
    assert prediction.answer.strip()


@pytest.mark.model
def test_the_string_bound_leaves_reasoning_most_of_the_token_budget():
    from regenesis.programs.path import reasoning_first
    from regenesis.programs.star import load_exemplars
    from regenesis.signatures.answer import AnswerQuestion

    lm = resolve_lm(None, max_tokens=384)
    rationale = dspy.Predict(reasoning_first(AnswerQuestion))  # STaR's step as JSON: a plain Predict
    rationale.demos = load_exemplars()
    with dspy.context(lm=lm, adapter=adapter_for(lm)):
        prediction = rationale(question="Is a pound sterling valuable?")  # greedy, few-shot: a long rationale
    share = (384 - JSON_OVERHEAD_TOKENS) // 2
    assert len(prediction.reasoning) > 1.5 * share  # one character a token cut it at `share`


@pytest.mark.model
def test_a_token_budget_too_small_for_the_strings_still_closes_the_json():
    from regenesis.programs.path import reasoning_first
    from regenesis.signatures.answer import AnswerQuestion

    lm = resolve_lm(None, max_tokens=JSON_OVERHEAD_TOKENS, cache=False)  # no share of the budget left for strings
    with dspy.context(lm=lm, adapter=adapter_for(lm)):
        # greedy, the model counts in its answer string a token a character and overflows; the retry must close
        prediction = dspy.Predict(reasoning_first(AnswerQuestion))(
            question="Count from 1 to 50, separated by commas, then say how many numbers you wrote.")
    assert "}" not in prediction.answer  # a truncated reply repaired by the adapter left its brace in the answer


@pytest.mark.model
def test_n_distinct_samples_of_one_prompt():
    lm = resolve_lm(None, max_tokens=48)
    messages = [{"role": "user", "content": "Write one short sentence about the sea."}]
    texts = [copy(messages=messages)[0] for copy in sample_lms(lm, 4, temperature=1.0)]
    assert len(set(texts)) == 4
    again = [copy(messages=messages)[0] for copy in sample_lms(lm, 4, temperature=1.0)]
    assert again == texts  # the same rollout ids are the same samples (cached), never new ones


def test_an_engine_loads_a_second_copy_only_for_a_concurrent_request():
    from regenesis.models.engine import ModelPool

    loads = []
    pool = ModelPool(lambda: loads.append(len(loads)) or f"copy-{len(loads)}", size=2)
    first = pool.take()
    pool.give_back(first)
    assert pool.take() == first and loads == [0]  # one caller at a time reuses one copy
    second = pool.take()  # a request while the first copy is lent out loads another
    assert second != first and len(loads) == 2
    pool.give_back(first)
    pool.give_back(second)
    assert {pool.take(), pool.take()} == {first, second} and len(loads) == 2  # never more than size


def test_llama_copies_default_to_one_per_core(monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    monkeypatch.delenv("REGENESIS_LLAMA_COPIES", raising=False)
    engine = LlamaCppEngine("model.gguf")
    assert (engine.copy_count(), engine.threads_per_copy()) == (2, 1)
    monkeypatch.setenv("REGENESIS_LLAMA_COPIES", "1")
    assert (engine.copy_count(), engine.threads_per_copy()) == (1, 2)
    assert LlamaCppEngine("model.gguf", copies=3).copy_count() == 3


@pytest.mark.model
def test_loading_copies_for_concurrent_requests_keeps_stdout_and_stderr(tmp_path):
    import os
    from concurrent.futures import ThreadPoolExecutor

    default = resolve_lm(None)
    before = [(os.fstat(fd).st_dev, os.fstat(fd).st_ino) for fd in (1, 2)]
    for n_ctx in (640, 768, 896, 1152):  # each size a pool of its own: two copies load side by side
        engine = LlamaCppEngine(default.engine.path, n_ctx=n_ctx, copies=2)
        lm = dspy.LM(default.model, engine=engine, temperature=0.0, max_tokens=4, cache=False)
        with ThreadPoolExecutor(max_workers=2) as pool:
            list(pool.map(lambda i: lm(f"Say {i}."), range(2)))
        assert [(os.fstat(fd).st_dev, os.fstat(fd).st_ino) for fd in (1, 2)] == before
