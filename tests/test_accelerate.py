"""`regenesis finetune` under `accelerate launch`, two CPU processes (gloo), with the configs in
examples/accelerate/: each run trains across both processes and writes one loadable checkpoint.

On CPU, accelerate runs a multi-process job as DDP whatever the config (it applies FSDP only to GPU
processes), so examples/accelerate/fsdp.yaml is exercised on GPUs only; DeepSpeed ZeRO-3 runs on CPU
through DeepSpeed's CPU accelerator.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import dspy
import pytest
import torch

from regenesis.models import TransformersEngine, resolve_lm
from tests.finetune_rows import shortest_lines, write_rows

ROOT = Path(__file__).resolve().parents[1]
STEPS = 1  # one row per process per step: enough for both processes to train and the weights to be gathered

pytestmark = pytest.mark.model


def launch(config: str, tmp_path: Path) -> tuple[Path, str]:
    """``STEPS`` steps of `regenesis finetune` on two rows under ``accelerate launch``: the checkpoint and the
    output."""
    rows = write_rows(tmp_path / "rows", shortest_lines(2 * STEPS))
    ckpt = tmp_path / "ckpt"
    regenesis = str(Path(sys.executable).parent / "regenesis")
    command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
               str(ROOT / "examples" / "accelerate" / config), "--num_processes", "2", regenesis, "finetune",
               "--data", str(rows), "--out", str(ckpt), "--max-steps", str(STEPS), "--batch-size", "1",
               "--max-length", "512"]
    done = subprocess.run(command, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return ckpt, done.stdout + done.stderr


def check_checkpoint(ckpt: Path):
    """Trained on two processes, saved once as one Hugging Face folder that answers as a model spec."""
    args = torch.load(ckpt / "training_args.bin", weights_only=False)
    assert args.world_size == 2
    assert [p.name for p in ckpt.glob("*.safetensors")] == ["model.safetensors"]
    assert json.loads((ckpt / "finetune.json").read_text())["result"]["steps"] == STEPS
    lm = resolve_lm(str(ckpt), max_tokens=24, cache=False)
    assert isinstance(lm.engine, TransformersEngine)
    with dspy.context(lm=lm):
        assert lm("What is 2 plus 2?")[0].strip()
    return args


def losses(ckpt: Path) -> list[float]:
    log = [json.loads(line) for line in (ckpt / "training_log.jsonl").read_text().splitlines()]
    return [entry["loss"] for entry in log if "loss" in entry]


@pytest.mark.slow  # two processes each loading torch and the model: 28 s
def test_two_cpu_processes_under_accelerate_launch_write_one_checkpoint(tmp_path):
    ckpt, _ = launch("multi_gpu.yaml", tmp_path)
    assert check_checkpoint(ckpt).parallel_mode.name == "DISTRIBUTED"


@pytest.mark.slow
def test_deepspeed_zero3_on_two_cpu_processes_trains_as_data_parallel_does(tmp_path):
    pytest.importorskip("deepspeed")
    zero3, output = launch("deepspeed_zero3.yaml", tmp_path / "zero3")
    check_checkpoint(zero3)
    assert "DeepSpeed" in output
    ddp, _ = launch("multi_gpu.yaml", tmp_path / "ddp")
    # ZeRO-3 partitions what DDP replicates: the same steps on the same rows give the same losses
    assert losses(zero3) == pytest.approx(losses(ddp), abs=1e-3) and len(losses(ddp)) == STEPS
