"""The README's "Use from DSPy" snippet, run exactly as printed: a user's two-step program compiled with
ReGenesisOptimizer on the embedded model (two wordmath problems, one guideline set each, two SFT steps)."""

import json
import re
from pathlib import Path

import dspy
import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_snippet() -> str:
    section = README.read_text().split("\n## Use from DSPy\n", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_snippet_is_a_two_step_program_compiled_with_the_optimizer():
    code = readme_snippet()
    compile(code, "README.md", "exec")
    assert "ReGenesisOptimizer(" in code and "dspy.ChainOfThought(" in code and "dspy.Predict(" in code


@pytest.mark.model
@pytest.mark.slow
def test_the_readme_snippet_runs_and_the_program_answers_with_the_tuned_lm(tmp_path, monkeypatch):
    import torch  # heavy: the fine-tuning step's threads

    from regenesis.models import TransformersEngine

    monkeypatch.chdir(tmp_path)
    settings = {"lm": dspy.settings.lm, "adapter": dspy.settings.adapter}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    namespace: dict = {"__name__": "readme"}
    try:
        exec(readme_snippet(), namespace)
    finally:
        torch.set_num_threads(threads)
        dspy.configure(**settings)

    run = tmp_path / "runs" / "draft-then-answer"
    rows = [json.loads(line) for line in (run / "train.jsonl").read_text().splitlines()]
    assert {row["meta"]["predictor"] for row in rows} == {0, 1}  # a row for each step of every kept sample
    tuned = namespace["tuned"]
    for predictor in tuned.predictors():
        assert isinstance(predictor.lm.engine, TransformersEngine)
        assert predictor.lm.engine.path == str((run / "finetuned" / "lm-0").resolve())
    assert isinstance(namespace["prediction"].answer, int)
