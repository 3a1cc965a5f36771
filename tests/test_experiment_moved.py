"""A finished experiment folder moved or copied whole resumes from its own files."""

import json
import shutil

from regenesis.experiment import run_experiment
from regenesis.experiment.stages import STAGE_FILE
from tests.fake_server import FakeServer
from tests.test_experiment_stages import unique_model, write_config, wrong


def test_a_copied_run_folder_reuses_its_own_stages_and_reports_its_own_files(tmp_path):
    made, copied, model = tmp_path / "made", tmp_path / "elsewhere" / "copied", unique_model()
    with FakeServer(wrong) as server:
        config = write_config(tmp_path, server, model)
        first = run_experiment(config, made, progress=False)
        assert first.ran == ["eval base", "synthesize cot"]
        copied.parent.mkdir()
        shutil.copytree(made, copied)
        shutil.rmtree(made)  # nothing of the original is left to read by mistake
        sent = len(server.requests)
        again = run_experiment(config, copied, progress=False)
        assert len(server.requests) == sent  # nothing asked again
    assert again.ran == [] and again.skipped == first.ran and again.recomputed == []
    record = json.loads((copied / "eval" / "base" / STAGE_FILE).read_text())
    assert (record["folder"], record["results"]) == ("eval/base", "eval/base/results.json")
    summary = json.loads((copied / "summary.json").read_text())
    assert summary["evaluations"]["base"] == str(copied / "eval" / "base" / "results.json")
    assert "`eval/base/results.json`" in (copied / "report.md").read_text()
