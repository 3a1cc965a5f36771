"""Test settings: offline, and a fresh DSPy cache per session so counts of generations are real; one tiny
real fine-tune that every test inspecting a checkpoint shares, made once even when pytest-xdist runs the
suite in several worker processes (`make test` runs three)."""

import atexit
import importlib.util
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ["DSPY_CACHEDIR"] = tempfile.mkdtemp(prefix="regenesis-test-dspy-cache-")
atexit.register(shutil.rmtree, os.environ["DSPY_CACHEDIR"], ignore_errors=True)

# `from tests.fake_server import FakeServer` and `from fake_server import ...` both work.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# After the settings above: DSPy reads its cache folder, and the hub its offline switch, when first imported.
from regenesis.cli import main  # noqa: E402
from tests.finetune_rows import TINY_FINETUNE_STEPS, dspy_rows, shortest_lines, write_rows  # noqa: E402


@pytest.fixture(scope="session")
def tiny_finetune(tmp_path_factory) -> Path:
    """The embedded model fine-tuned through `regenesis finetune` for two steps on one problem, written as
    `regenesis synthesize` writes it and as DSPy does; one batch holds both rows, so each step's loss is the
    training loss on those same rows. It reports to TensorBoard where that is installed (the log and the
    curve are written either way)."""
    from filelock import FileLock

    # pytest-xdist's workers share the parent of their temporary folders: the first to ask trains, the rest
    # wait for it and load its checkpoint.
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent
    folder = shared / "tiny-finetune"
    with FileLock(str(shared / "tiny-finetune.lock")):
        record = folder / "ckpt" / "finetune.json"
        if not (record.is_file() and "result" in json.loads(record.read_text())):
            _train_tiny(folder)
    return folder / "ckpt"


def _train_tiny(folder: Path) -> None:
    import torch  # heavy: the training step's threads

    synthesized = shortest_lines(1)
    rows = write_rows(folder / "rows", synthesized + dspy_rows([json.loads(line)["messages"] for line in synthesized]))
    report_to = "tensorboard" if importlib.util.find_spec("tensorboard") else "none"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # two threads on a small shared machine spin against each other
    try:
        code = main(["finetune", "--data", str(rows), "--out", str(folder / "ckpt"), "--max-steps",
                     str(TINY_FINETUNE_STEPS), "--batch-size", "2", "--max-length", "512", "--lr", "1e-4",
                     "--report-to", report_to])
    finally:
        torch.set_num_threads(threads)
    assert code == 0
