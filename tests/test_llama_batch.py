"""Batched sampling in the llama.cpp engine: concurrent requests decoded as the sequences of one batch give
the same text as one-at-a-time generation (plain text and JSON, greedy and sampled for the same seed), and
distinct rollout ids distinct samples, the same ones on every run."""

from concurrent.futures import ThreadPoolExecutor

import dspy
import pytest

from regenesis.models import LlamaCppEngine, ModelSpecError, adapter_for, resolve_lm, sampling_lm

SYSTEM = ("You answer questions about the sea. Your output fields are: `answer` (str), one short sentence. "
          "Write plainly, name one concrete fact, and never repeat the question. ") * 3
QUESTIONS = ["Why is the sea salty?", "What lives in the deep sea?", "What is a tide?"]
MAX_TOKENS = 16
BATCH = 3


class SeaAnswer(dspy.Signature):
    """Answer the question about the sea in one short sentence."""

    question: str = dspy.InputField()
    answer: str = dspy.OutputField()


def _lm(batch_size: int | None) -> dspy.LM:
    default = resolve_lm(None)
    engine = LlamaCppEngine(default.engine.path, n_ctx=1024, copies=1, batch_size=batch_size)
    return dspy.LM(default.model, engine=engine, temperature=0.0, max_tokens=MAX_TOKENS, cache=False)


def _text(lm: dspy.LM, question: str) -> str:
    return lm(f"{SYSTEM}\n\n{question}")[0]


def _json(lm: dspy.LM, question: str) -> str:
    with dspy.context(lm=lm, adapter=adapter_for(lm)):
        return dspy.Predict(SeaAnswer)(question=question).answer


def _together(ask, lms: list[dspy.LM], questions: list[str]) -> list[str]:
    """The answers asked from as many threads as the batch has slots, so the requests run as one batch."""
    with ThreadPoolExecutor(max_workers=BATCH) as pool:
        return list(pool.map(ask, lms, questions))


@pytest.fixture(scope="module")
def one_at_a_time() -> dspy.LM:
    return _lm(None)


@pytest.fixture(scope="module")
def batched() -> dspy.LM:
    return _lm(BATCH)


@pytest.mark.model
@pytest.mark.parametrize("ask", [_text, _json], ids=["plain text", "json"])
def test_batched_greedy_generation_is_the_same_text_as_one_at_a_time(one_at_a_time, batched, ask):
    alone = [ask(one_at_a_time, q) for q in QUESTIONS]
    together = _together(ask, [batched] * len(QUESTIONS), QUESTIONS)
    assert together == alone
    with batched.engine.lend() as llm:  # every slot served a request: they ran at once
        assert all(slot.tokens for slot in llm.batch.slots)


@pytest.mark.model
def test_distinct_rollout_ids_give_distinct_samples_the_same_as_one_at_a_time_on_every_run(one_at_a_time, batched):
    question = "Write about waves."
    alone = [_text(sampling_lm(one_at_a_time, i), question) for i in range(BATCH)]
    runs = [_together(_text, [sampling_lm(batched, i) for i in range(BATCH)], [question] * BATCH) for _ in range(2)]
    assert len(set(runs[0])) == BATCH
    assert runs[0] == runs[1] == alone


def test_a_batch_size_that_is_not_a_whole_number_names_the_variable(monkeypatch):
    monkeypatch.setenv("REGENESIS_LLAMA_BATCH", "four")
    with pytest.raises(ModelSpecError, match="REGENESIS_LLAMA_BATCH"):
        LlamaCppEngine("model.gguf")
