"""The vLLM engine's wiring, with vLLM's own classes (``LLM``, ``SamplingParams``,
``StructuredOutputsParams``) replaced at the boundary: no GPU or vLLM here. What is checked is what
regenesis sends them and how it reads their outputs; that vLLM then generates is vLLM's part."""

import json
import re
import sys
import threading
import time
import types
from dataclasses import dataclass, field

import dspy
import pytest

from regenesis.models import ModelSpecError, TransformersEngine, VLLMEngine, adapter_for, resolve_lm, sampling_lm
from regenesis.optimize.distributed import gpus_for


@dataclass
class SamplingParams:
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 16
    stop: list = field(default_factory=list)
    seed: int | None = None
    structured_outputs: object = None


@dataclass
class StructuredOutputsParams:
    json: object = None
    json_object: bool | None = None


class LLM:
    """Records how it was built and every batch; answers each conversation after a short pause."""

    instances: list = []

    def __init__(self, **kwargs):
        self.kwargs = kwargs
        self.batches: list[list] = []
        LLM.instances.append(self)

    def chat(self, conversations, sampling_params, use_tqdm=True):
        time.sleep(0.05)  # a batch takes a while, so concurrent callers queue behind it
        self.batches.append(list(zip(conversations, sampling_params)))
        return [self._output(messages, params) for messages, params in zip(conversations, sampling_params)]

    @staticmethod
    def _output(messages, params):
        question = messages[-1]["content"]
        if params.structured_outputs is not None:
            text = json.dumps({"answer": re.search(r"what is (\w+)", question).group(1)})
        else:
            text = f"echo {question.split()[-1]}"
        tokens = text.split()
        finish = "length" if len(tokens) >= params.max_tokens else "stop"
        completion = types.SimpleNamespace(text=text, token_ids=list(range(len(tokens))), finish_reason=finish)
        return types.SimpleNamespace(prompt_token_ids=list(range(len(question.split()))), outputs=[completion])


@pytest.fixture
def vllm(monkeypatch, tmp_path):
    module = types.ModuleType("vllm")
    module.__spec__ = types.SimpleNamespace(name="vllm")  # found by importlib.util.find_spec
    module.LLM, module.SamplingParams = LLM, SamplingParams
    sampling = types.ModuleType("vllm.sampling_params")
    sampling.StructuredOutputsParams = StructuredOutputsParams
    monkeypatch.setitem(sys.modules, "vllm", module)
    monkeypatch.setitem(sys.modules, "vllm.sampling_params", sampling)
    monkeypatch.setenv("REGENESIS_ENGINE", "vllm")
    LLM.instances.clear()
    (tmp_path / "config.json").write_text("{}")
    return tmp_path


def test_a_model_folder_runs_on_vllm_with_prefix_caching(vllm):
    lm = resolve_lm(str(vllm), cache=False, max_tokens=64)
    assert isinstance(lm.engine, VLLMEngine)
    assert lm("say seven")[0] == "echo seven"
    (llm,) = LLM.instances
    assert llm.kwargs["model"] == str(vllm.resolve()) and llm.kwargs["enable_prefix_caching"] is True
    ((messages, params),) = llm.batches[0]
    assert messages[-1] == {"role": "user", "content": "say seven"}
    assert (params.temperature, params.max_tokens, params.structured_outputs) == (0.0, 64, None)


def test_concurrent_requests_go_to_vllm_as_batches(vllm):
    lm = resolve_lm(str(vllm), cache=False)
    answers = {}

    def ask(i):
        answers[i] = sampling_lm(lm, i, temperature=0.7)(f"number {i}")[0]

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == {i: f"echo {i}" for i in range(12)}
    (llm,) = LLM.instances  # one engine for every copy of the LM
    sizes = [len(batch) for batch in llm.batches]
    assert sum(sizes) == 12 and max(sizes) > 1 and len(sizes) < 12
    seeds = sorted(params.seed for batch in llm.batches for _, params in batch)
    assert seeds == list(range(12))  # each sample's rollout id is its seed
    assert all(params.temperature == 0.7 for batch in llm.batches for _, params in batch)


def test_structured_output_and_token_counts_reach_dspy(vllm):
    lm = resolve_lm(str(vllm), cache=False, max_tokens=128)
    assert isinstance(adapter_for(lm), dspy.JSONAdapter)
    with dspy.context(lm=lm, adapter=adapter_for(lm)), dspy.track_usage() as usage:
        prediction = dspy.Predict("question -> answer")(question="what is nine")
    assert prediction.answer == "nine"
    params = LLM.instances[0].batches[0][0][1]
    schema = params.structured_outputs.json
    assert schema["properties"]["answer"]["maxLength"] > 0  # strings bounded as for every engine
    (entry,) = usage.usage_data[lm.model]
    assert entry["completion_tokens"] == 2 and entry["prompt_tokens"] > 0


def test_a_generation_cut_at_the_budget_reaches_dspy_as_truncated(vllm, caplog):
    resolve_lm(str(vllm), cache=False, max_tokens=4)("four words")
    assert "truncated" not in caplog.text
    resolve_lm(str(vllm), cache=False, max_tokens=2)("two words")
    assert "LM response was truncated" in caplog.text


def test_engine_choice(vllm, monkeypatch):
    monkeypatch.setenv("REGENESIS_ENGINE", "transformers")
    assert isinstance(resolve_lm(str(vllm)).engine, TransformersEngine)
    monkeypatch.setenv("REGENESIS_ENGINE", "tensorrt")
    with pytest.raises(ModelSpecError, match=r"REGENESIS_ENGINE='tensorrt'.*transformers, vllm"):
        resolve_lm(str(vllm))
    monkeypatch.setenv("REGENESIS_ENGINE", "vllm")
    monkeypatch.delitem(sys.modules, "vllm")
    monkeypatch.setattr(sys, "path", [])  # vLLM is not installed
    with pytest.raises(ModelSpecError, match=r"pip install 'regenesis\[vllm\]'"):
        resolve_lm(str(vllm))


def test_a_ray_shard_on_vllm_reserves_a_gpu(vllm):
    assert gpus_for(resolve_lm(str(vllm))) == 1.0
    assert gpus_for(resolve_lm("openai/served", api_base="http://127.0.0.1:9/v1")) == 0.0
