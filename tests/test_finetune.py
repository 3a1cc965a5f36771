"""The distillation stage: bad input refused before training, the real embedded model fine-tuned for a few
steps (loss falls, the checkpoint answers as a model spec), resume after an interruption, the DSPy provider."""

import importlib.util
import json
import sys
from pathlib import Path

import dspy
import pytest
import torch
from transformers import TrainerCallback

from regenesis.cli import main
from regenesis.errors import BadInput
from regenesis.finetune import FinetuneConfig, dense_base, export_gguf, finetunable_lm, finetune
from regenesis.finetune.base import load_tokenizer
from regenesis.finetune.chat_template import training_template, without_generation_markers
from regenesis.finetune.data import load_rows
from regenesis.models import TransformersEngine, resolve_lm
from tests.finetune_rows import ROWS, TINY_FINETUNE_STEPS, shortest_lines, write_rows

TINY = {"max_length": 256, "batch_size": 2, "lr": 1e-4}


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    # On a small machine shared with other jobs, two torch threads spin against each other: a training
    # step measured 6x slower than with one thread.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def shortest_rows(tmp_path: Path, n: int) -> Path:
    return write_rows(tmp_path / "rows", shortest_lines(n))


def losses(ckpt: Path) -> list[float]:
    log = [json.loads(line) for line in (ckpt / "training_log.jsonl").read_text().splitlines()]
    return [entry["loss"] for entry in log if "loss" in entry]


# ---------------------------------------------------------------------------------------------
# Bad input: a clear error before any training starts


def test_the_fixture_rows_follow_the_contract():
    rows = load_rows(ROWS)
    assert len(rows.messages) == 8
    assert all(m[-1]["content"].splitlines()[-1].startswith("The answer is ") for m in rows.messages)


def test_rows_written_in_another_order_train_the_same_way(tmp_path):
    """Parallel synthesis appends rows as problems finish: the order on disk must not matter."""
    lines = ROWS.joinpath("train.jsonl").read_text().splitlines() if ROWS.is_dir() else ROWS.read_text().splitlines()
    (tmp_path / "reversed.jsonl").write_text("\n".join(reversed(lines)) + "\n")
    forward, backward = load_rows(ROWS), load_rows(tmp_path / "reversed.jsonl")
    assert forward.messages == backward.messages and forward.digest() == backward.digest()
    assert sorted(forward.lines) == list(range(1, len(lines) + 1))
    assert backward.lines == [len(lines) + 1 - line for line in forward.lines]


@pytest.mark.parametrize("line, complaint", [
    ('{"messages": [', "row 2: not valid JSON"),
    ('{"meta": {}}', 'row 2: expected an object with a "messages" list'),
    ('{"messages": [{"role": "user", "content": "q"}]}', "row 2: the last message must be a non-empty assistant"),
    ('{"messages": [{"role": "robot", "content": "q"}, {"role": "assistant", "content": "a"}]}', "row 2: message 0"),
])
def test_a_malformed_row_is_named_by_file_and_row(tmp_path, line, complaint):
    good = (ROWS / "train.jsonl").read_text().splitlines()[0]
    data = write_rows(tmp_path, [good, line])
    with pytest.raises(BadInput, match=complaint) as error:
        finetune(data, None, tmp_path / "out")
    assert str(data / "train.jsonl") in str(error.value)
    assert not (tmp_path / "out").exists()


def test_empty_and_missing_data(tmp_path):
    with pytest.raises(BadInput, match="no training rows"):
        finetune(write_rows(tmp_path / "empty", ["", "  "]), None, tmp_path / "out")
    with pytest.raises(BadInput, match="holds no train.jsonl"):
        finetune(tmp_path, None, tmp_path / "out")
    with pytest.raises(BadInput, match="no such training file"):
        finetune(tmp_path / "nope.jsonl", None, tmp_path / "out")


def test_a_base_model_that_cannot_be_found(tmp_path):
    with pytest.raises(BadInput, match="not found"):
        finetune(ROWS, str(tmp_path / "missing.gguf"), tmp_path / "out")
    with pytest.raises(BadInput, match="not found"):
        finetune(ROWS, "local/no-such-model", tmp_path / "out")
    with pytest.raises(BadInput, match="not a GGUF file"):
        finetune(ROWS, str(ROWS / "train.jsonl"), tmp_path / "out")


def test_a_hub_id_that_cannot_be_loaded_is_named(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(BadInput, match="cannot load the Hugging Face hub model 'someone/no-such-model'"):
        finetune(ROWS, "someone/no-such-model", tmp_path / "out")


def test_bad_settings_and_an_occupied_out(tmp_path):
    with pytest.raises(BadInput, match="unknown setting"):
        finetune(ROWS, None, tmp_path / "out", learning_rate=1e-4)
    with pytest.raises(BadInput, match="max_length must be positive"):
        FinetuneConfig(max_length=0)
    out = tmp_path / "out"
    out.mkdir()
    (out / "finetune.json").write_text(json.dumps({"base": "local/smollm2-135m"}))
    with pytest.raises(BadInput, match="an interrupted run .pass --resume"):
        finetune(ROWS, None, out)


def test_the_command_line_reports_bad_input_with_exit_code_2(tmp_path, capsys):
    empty = write_rows(tmp_path / "empty", [])
    assert main(["finetune", "--data", str(empty), "--out", str(tmp_path / "out")]) == 2
    assert "no training rows" in capsys.readouterr().err
    assert main(["export-gguf", str(tmp_path)]) == 2
    assert "no config.json" in capsys.readouterr().err


def test_an_unknown_gguf_type_is_refused(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(BadInput, match="unknown GGUF type 'q3_x'"):
        export_gguf(tmp_path, "q3_x")


def test_export_without_the_installed_converter_names_the_make_target(tmp_path, monkeypatch):
    (tmp_path / "config.json").write_text("{}")
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "an-environment-without-it"))
    with pytest.raises(BadInput, match="converter is not installed .* run `make converter`"):
        export_gguf(tmp_path, "q8_0")
    assert not (tmp_path / "gguf").exists()


@pytest.mark.model
def test_a_checkpoint_exports_to_gguf_with_the_installed_converter_and_answers(tiny_finetune, monkeypatch):
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # nothing may come from a package index at run time
    gguf = export_gguf(tiny_finetune, "q8_0")
    assert gguf == tiny_finetune / "gguf" / "model-q8_0.gguf"
    assert resolve_lm(str(gguf), max_tokens=16)("Say hello.")[0].strip()


# ---------------------------------------------------------------------------------------------
# The chat template and the length check, on the embedded model's tokenizer


@pytest.fixture(scope="module")
def smollm_tokenizer():
    return load_tokenizer(dense_base(None), "local/smollm2-135m")


@pytest.mark.model
def test_the_training_template_marks_exactly_the_assistant_turn(smollm_tokenizer):
    template = training_template(smollm_tokenizer, "local/smollm2-135m")
    messages = load_rows(ROWS).messages[0]
    encoded = smollm_tokenizer.apply_chat_template(messages, chat_template=template, tokenize=True,
                                                   return_dict=True, return_assistant_tokens_mask=True)
    trained = [token for token, mask in zip(encoded["input_ids"], encoded["assistant_masks"]) if mask]
    assert smollm_tokenizer.decode(trained) == messages[-1]["content"] + "<|im_end|>"
    assert smollm_tokenizer.apply_chat_template(messages, tokenize=False) == smollm_tokenizer.apply_chat_template(
        messages, chat_template=without_generation_markers(template), tokenize=False)


@pytest.mark.model
def test_a_template_without_markers_that_is_not_chatml_is_refused(smollm_tokenizer):
    original = smollm_tokenizer.chat_template
    smollm_tokenizer.chat_template = "{% for m in messages %}[INST] {{ m['content'] }} [/INST]{% endfor %}"
    try:
        with pytest.raises(BadInput, match="no {% generation %} markers and is neither ChatML"):
            training_template(smollm_tokenizer, "some/base")
    finally:
        smollm_tokenizer.chat_template = original


@pytest.mark.model
def test_a_max_length_shorter_than_the_rows_says_how_many_would_be_cut(tmp_path):
    with pytest.raises(BadInput, match=r"8 of 8 rows are longer than --max-length 64 tokens .* raise --max-length to"):
        finetune(ROWS, None, tmp_path / "out", max_length=64)
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------------------------
# Real fine-tuning of the embedded model (a few steps on two rows)


@pytest.mark.model
def test_fine_tuning_lowers_the_loss_and_the_checkpoint_answers_through_dspy(tiny_finetune):
    # The session's shared run: one problem as `regenesis synthesize` writes it and as DSPy does, in one batch.
    steps = losses(tiny_finetune)
    assert len(steps) == TINY_FINETUNE_STEPS and steps[-1] < steps[0]
    record = json.loads((tiny_finetune / "finetune.json").read_text())
    assert record["result"]["steps"] == TINY_FINETUNE_STEPS and record["result"]["tokens_per_second"] > 0
    assert not (tiny_finetune / "checkpoints").exists()
    tokenizer_config = json.loads((tiny_finetune / "tokenizer_config.json").read_text())
    assert tokenizer_config["tokenizer_class"] == "PreTrainedTokenizerFast"

    lm = resolve_lm(str(tiny_finetune), max_tokens=48)  # it writes both fields in its first 30 tokens
    assert isinstance(lm.engine, TransformersEngine)
    question = json.loads(shortest_lines(1)[0])["messages"][0]["content"].split("\n\n", 1)[1]
    with dspy.context(lm=lm, adapter=dspy.ChatAdapter()):
        prediction = dspy.ChainOfThought("question -> answer")(question=question)
    assert prediction.answer.strip() and prediction.reasoning.strip()


class InterruptAfterFirstCheckpoint(TrainerCallback):
    def on_save(self, args, state, control, **kwargs):
        raise KeyboardInterrupt


@pytest.fixture(scope="module")
def resumed_lora_run(tmp_path_factory) -> tuple[Path, dict[str, bool]]:
    """A LoRA run interrupted at its first checkpoint, what that left on disk, then resumed to the end while
    reporting to TensorBoard (the tracker is not part of a run's identity, so the resume accepts it)."""
    folder = tmp_path_factory.mktemp("lora")
    data, out = shortest_rows(folder, 1), folder / "ckpt"
    with pytest.raises(KeyboardInterrupt):
        finetune(data, None, out, lora=True, max_steps=2, save_steps=1, callbacks=(InterruptAfterFirstCheckpoint(),),
                 **TINY)
    left = {"checkpoint-1": (out / "checkpoints" / "checkpoint-1").is_dir(),
            "config.json": (out / "config.json").exists()}
    report_to = "tensorboard" if importlib.util.find_spec("tensorboard") else "none"
    finetune(data, None, out, lora=True, max_steps=2, save_steps=1, resume=True, report_to=report_to, **TINY)
    return out, left


@pytest.mark.model
def test_an_interrupted_lora_run_resumes_from_its_last_checkpoint(resumed_lora_run):
    out, left = resumed_lora_run
    assert left == {"checkpoint-1": True, "config.json": False}
    assert len(losses(out)) == 2 and (out / "config.json").is_file()
    assert not list(out.glob("adapter_*"))  # merged: a plain model folder
    data = out.parent / "rows"
    assert finetune(data, None, out, lora=True, max_steps=2, save_steps=1, resume=True, **TINY) == out  # no work
    assert len(losses(out)) == 2


@pytest.mark.model
def test_a_resumed_run_logs_each_step_once_and_may_switch_on_tensorboard(resumed_lora_run):
    pytest.importorskip("tensorboard")
    out, _ = resumed_lora_run
    log = [json.loads(line) for line in (out / "training_log.jsonl").read_text().splitlines()]
    assert [entry["step"] for entry in log] == [1, 2] and all("learning_rate" in entry for entry in log)
    assert (out / "training_curve.png").is_file()
    assert len(list((out / "runs").rglob("events.out.tfevents.*"))) == 1  # the resumed session's
    assert json.loads((out / "finetune.json").read_text())["report_to"] == "tensorboard"


@pytest.mark.model
@pytest.mark.slow  # the default suite's BootstrapFinetune run: tests/test_dspy_finetune.py (the JSON adapter's)
def test_dspy_bootstrap_finetune_tunes_a_regenesis_model_with_this_stage(tmp_path):
    from dspy.utils import DummyLM

    (user, assistant), = load_rows(shortest_rows(tmp_path, 1)).messages
    question, (reasoning, answer) = user["content"].split("\n\n", 1)[1], assistant["content"].rsplit("\n", 1)
    student = dspy.ChainOfThought("question -> answer")
    student.set_lm(finetunable_lm(max_tokens=16))
    teacher = dspy.ChainOfThought("question -> answer")
    teacher.set_lm(DummyLM([{"reasoning": reasoning, "answer": answer}]))
    optimizer = dspy.BootstrapFinetune(metric=lambda example, prediction, trace=None: True, num_threads=1,
                                       train_kwargs={"out": str(tmp_path / "tuned"), "lora": True, "max_steps": 1,
                                                     **TINY, "max_length": 512})
    tuned = optimizer.compile(student, trainset=[dspy.Example(question=question).with_inputs("question")],
                              teacher=teacher)

    lm = tuned.predict.lm
    assert isinstance(lm.engine, TransformersEngine) and lm.engine.path == str((tmp_path / "tuned").resolve())
    assert lm.kwargs["max_tokens"] == 16 and isinstance(lm("What is 2 + 3?")[0], str)
    assert "[[ ## reasoning ## ]]" in (tmp_path / "tuned" / "train.jsonl").read_text()


# ---------------------------------------------------------------------------------------------
# CUDA (bf16): runs wherever a GPU is present


@pytest.mark.model
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_a_short_bf16_run_on_cuda(tmp_path):
    ckpt = finetune(shortest_rows(tmp_path, 4), None, tmp_path / "ckpt", max_steps=4, **{**TINY, "batch_size": 4})
    record = json.loads((ckpt / "finetune.json").read_text())
    assert record["device"] == "cuda"
    assert record["precision"] == ("bf16" if torch.cuda.is_bf16_supported() else "fp32")
    assert losses(ckpt)[-1] < losses(ckpt)[0]
