"""The powered example is the main job with a larger evaluation, so it reuses a main-job run's stages."""

import dataclasses
from pathlib import Path

from regenesis.experiment import ExperimentConfig

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_the_powered_config_is_the_main_job_with_fifty_items_a_task():
    main_job = ExperimentConfig.load(EXAMPLES / "quickstart.toml")
    powered = ExperimentConfig.load(EXAMPLES / "quickstart-powered.toml")
    assert (main_job.eval.limit, powered.eval.limit) == (6, 50)
    # everything a synthesis or fine-tuning stage is made from is the main job's
    same = {field.name for field in dataclasses.fields(ExperimentConfig)} - {"name", "eval", "source", "text"}
    assert {name: getattr(powered, name) for name in same} == {name: getattr(main_job, name) for name in same}
    assert dataclasses.replace(powered.eval, limit=6) == main_job.eval
