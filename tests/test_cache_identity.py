"""Two servers that serve the same model name never share DSPy's cache: the endpoint is part of a model's
cache identity (``regenesis.models.model_identity``), for explicit ``Request`` calls and adapter calls alike."""

import json

import dspy

from regenesis.cli import main
from regenesis.models import model_identity, resolve_lm, rollout_base, sampling_lm
from tests.fake_server import FakeServer, fields_reply


def answering(number: int):
    return lambda body: fields_reply(body, {"answer": str(number)}) if body.get("messages", [{}])[0].get(
        "role") == "system" else f"Adding up the numbers. The answer is {number}."


def eval_outputs(out) -> list[str]:
    raw = out.with_suffix(".raw") / "gsm8k-sample.jsonl"
    return [json.loads(line)["output"] for line in raw.read_text().splitlines()]


def run_eval(server, out) -> int:
    return main(["eval", "--model", "openai/m", "--api-base", server.url, "--tasks", "gsm8k-sample", "--limit", "2",
                 "--out", str(out), "--no-progress"])


def test_each_eval_sees_its_own_servers_answers(tmp_path):
    with FakeServer(answering(111)) as first, FakeServer(answering(222)) as second:
        assert run_eval(first, tmp_path / "first.json") == 0
        assert run_eval(second, tmp_path / "second.json") == 0
        assert run_eval(first, tmp_path / "first-again.json") == 0
        assert len(first.requests) == 2 and len(second.requests) == 2  # the third run came from the cache
        assert all(set(body) == {"model", "messages", "max_completion_tokens", "temperature"}
                   for body in first.requests + second.requests)  # nothing but the request reaches the server
    assert all("111" in output for output in eval_outputs(tmp_path / "first.json"))
    assert all("222" in output for output in eval_outputs(tmp_path / "second.json"))
    assert eval_outputs(tmp_path / "first-again.json") == eval_outputs(tmp_path / "first.json")


def test_adapter_calls_and_samples_keep_the_endpoint_apart():
    predict = dspy.Predict("question -> answer")
    with FakeServer(answering(111)) as first, FakeServer(answering(222)) as second:
        answers = {}
        for server in (first, second):
            lm = resolve_lm("openai/m", api_base=server.url)
            with dspy.context(lm=sampling_lm(lm, 3), adapter=dspy.ChatAdapter()):
                answers[server.url] = predict(question="What is 1 + 1?").answer
    assert answers == {first.url: "111", second.url: "222"}


def test_the_identity_names_the_endpoint_and_survives_sampling():
    lm = resolve_lm("openai/m", api_base="http://127.0.0.1:9/v1/")
    assert model_identity(lm) == "openai/m@http://127.0.0.1:9/v1"
    sample = sampling_lm(lm, 5)
    assert model_identity(sample) == model_identity(lm)
    assert sample.kwargs["rollout_id"] == rollout_base(lm) + 5 != rollout_base(resolve_lm(
        "openai/m", api_base="http://127.0.0.1:10/v1")) + 5
    local = resolve_lm(None)
    assert model_identity(local) == local.model and rollout_base(local) == 0
    assert sampling_lm(local, 5).kwargs["rollout_id"] == 5
