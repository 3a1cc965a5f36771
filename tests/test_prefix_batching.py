"""Prompt-prefix reuse in the llama.cpp engine: the same text as processing every prompt from scratch,
far fewer prompt tokens processed, and distinct, reproducible samples per rollout id."""

import dspy
import pytest

from regenesis.models.llama_prefix import PrefixStates
from regenesis.models import LlamaCppEngine, resolve_lm, sampling_lm

SYSTEM = ("You answer questions about the sea. Your output fields are: `answer` (str), one short sentence. "
          "Write plainly, name one concrete fact, and never repeat the question. ") * 3
MAX_TOKENS = 16


def test_a_state_that_a_longer_one_extends_is_dropped_and_the_longest_prefix_wins():
    states = PrefixStates(capacity_bytes=10)
    states.put((1, 2, 3), b"abc")
    states.put((1, 2, 3, 4, 5), b"abcde")  # extends (1, 2, 3): keeps only the longer state
    states.put((7, 8), b"xy")
    assert len(states) == 2
    assert states.longest([1, 2, 9]) == ((1, 2, 3, 4, 5), b"abcde", 2)
    assert states.longest([9]) is None
    states.put((4, 4, 4), b"zzzz")  # 11 bytes > 10: the least recently used state goes
    assert states.longest([7, 8]) is None and states.longest([1, 2])[0] == (1, 2, 3, 4, 5)


def _processed_prompt_tokens(engine: LlamaCppEngine) -> int:
    import llama_cpp

    with engine.borrow() as llm:
        return llama_cpp.llama_perf_context(llm.ctx).n_p_eval


def _questions_lm(n_ctx: int) -> tuple[dspy.LM, LlamaCppEngine]:
    default = resolve_lm(None)
    engine = LlamaCppEngine(default.engine.path, n_ctx=n_ctx, copies=1)  # its own pool and store
    return dspy.LM(default.model, engine=engine, temperature=0.0, max_tokens=MAX_TOKENS, cache=False), engine


def _prompt(question: str) -> str:
    return f"{SYSTEM}\n\n{question}"


def _ask(lm: dspy.LM, question: str) -> str:
    return lm(_prompt(question))[0]


@pytest.mark.model
def test_prefix_reused_generation_is_the_same_text_as_generation_from_scratch():
    from llama_cpp import Llama

    questions = ["Why is the sea salty?", "What lives in the deep sea?", "Why is the sea salty?"]
    lm, engine = _questions_lm(n_ctx=1280)
    reused = [_ask(lm, q) for q in questions]
    processed = _processed_prompt_tokens(engine)

    scratch = Llama(model_path=engine.path, n_ctx=1280, n_threads=1, verbose=False, seed=0)
    fresh = []
    for q in questions:
        scratch.reset()
        scratch._ctx.kv_cache_seq_rm(-1, 0, -1)
        out = scratch.create_chat_completion(messages=[{"role": "user", "content": _prompt(q)}],
                                             temperature=0.0, max_tokens=MAX_TOKENS)
        fresh.append(out["choices"][0]["message"]["content"])
    prompt_tokens = len(scratch.tokenize(SYSTEM.encode())) * len(questions)
    assert reused == fresh
    assert processed < 0.6 * prompt_tokens  # the system prompt was processed once, not three times


@pytest.mark.model
def test_distinct_rollout_ids_give_distinct_samples_and_one_id_the_same_sample_again():
    lm, _ = _questions_lm(n_ctx=1408)
    first = [_ask(sampling_lm(lm, i), "Write about waves.") for i in range(2)]
    _ask(lm, "What lives in the deep sea?")  # another prompt in between moves the copy's state on
    again = [_ask(sampling_lm(lm, i), "Write about waves.") for i in range(2)]
    assert len(set(first)) == 2
    assert again == first  # no DSPy cache here: the engine itself reproduces each seed from a stored state
