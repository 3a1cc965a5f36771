"""DSPy's own optimizers with regenesis models: BootstrapFinetune fine-tunes the embedded model through
regenesis' provider (trained on JSON rows, the tuned checkpoint is asked in that JSON and decoded under
its schema with xgrammar, as the GGUF is under llama.cpp's grammar), and BetterTogether runs prompt
optimization then ReGenesis fine-tuning (examples/better_together.py)."""

import json
from pathlib import Path

import dspy
import pytest

from regenesis.tasks import load_task


class WordProblem(dspy.Signature):
    """Solve the word problem."""

    question: str = dspy.InputField()
    answer: int = dspy.OutputField()


@pytest.mark.model
def test_bootstrap_finetune_tunes_the_embedded_model_and_the_program_answers_with_it(tmp_path):
    import torch  # heavy: the fine-tuning step's threads

    from regenesis.finetune import finetunable_lm
    from regenesis.models import TransformersEngine, adapter_for, constrains_output
    from regenesis.models.adapters import FinetuneJSONAdapter, finetune_adapter

    lm = finetunable_lm(max_tokens=64)
    program = dspy.ChainOfThought(WordProblem)
    program.set_lm(lm)
    trainset = [dspy.Example(question=p.question, answer=int(p.gold)).with_inputs("question")
                for p in load_task("wordmath-l1", split="train", limit=1)]
    adapter = finetune_adapter(adapter_for(lm))
    optimizer = dspy.BootstrapFinetune(metric=lambda example, prediction, trace=None: isinstance(prediction.answer, int),
                                       num_threads=1, train_kwargs={"max_steps": 2, "batch_size": 1, "max_length": 1024,
                                                                    "out": tmp_path / "ckpt"})
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with dspy.context(adapter=adapter):
            tuned = optimizer.compile(program, trainset=trainset)
            prediction = tuned(question="Ana has 5 apples and buys 3 more. How many apples does she have now?")
    finally:
        torch.set_num_threads(threads)

    assert isinstance(adapter, FinetuneJSONAdapter)
    tuned_lm = tuned.predict.lm
    assert isinstance(tuned_lm.engine, TransformersEngine)
    assert tuned_lm.engine.path == str((tmp_path / "ckpt").resolve()) and tuned_lm.kwargs["max_tokens"] == 64
    assert json.loads((tmp_path / "ckpt" / "finetune.json").read_text())["result"]["steps"] == 2
    assert constrains_output(tuned_lm) and isinstance(prediction.answer, int)
    rows = [json.loads(line) for line in (tmp_path / "ckpt" / "train.jsonl").read_text().splitlines()]
    assert rows and all(set(json.loads(row["messages"][-1]["content"])) == {"reasoning", "answer"} for row in rows)
    sent = tuned_lm.history[-1]
    assert sent["messages"][0] == rows[0]["messages"][0]  # the instructions it was trained on, word for word
    assert "response_format" in sent["kwargs"]  # the schema the transformers engine decodes under (xgrammar)


@pytest.mark.model
@pytest.mark.slow
def test_better_together_runs_prompt_optimization_then_regenesis_fine_tuning(tmp_path):
    import importlib.util

    import torch  # heavy: the fine-tuning step's threads

    from regenesis.models import TransformersEngine

    path = Path(__file__).resolve().parent.parent / "examples" / "better_together.py"
    spec = importlib.util.spec_from_file_location("better_together", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    settings = {"lm": dspy.settings.lm, "adapter": dspy.settings.adapter}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        best = example.main(["--train", "2", "--val", "1", "--max-steps", "2", "--out", str(tmp_path / "run")])
    finally:
        torch.set_num_threads(threads)
        dspy.configure(**settings)

    assert not best.flag_compilation_error_occurred
    candidates = {candidate["strategy"]: candidate["program"] for candidate in best.candidate_programs}
    assert set(candidates) == {"", "p", "p -> w"}
    tuned = candidates["p -> w"].predict
    assert isinstance(tuned.lm.engine, TransformersEngine)
    assert tuned.lm.engine.path == str((tmp_path / "run" / "finetuned" / "lm-0").resolve())
    rows = [json.loads(line) for line in (tmp_path / "run" / "train.jsonl").read_text().splitlines()]
    demo = tuned.demos[0].question  # the demo prompt optimization gave: in the prompts it was trained on
    assert rows and all(demo in json.dumps(row["messages"]) for row in rows)
