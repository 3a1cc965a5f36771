"""Synthesis on a local Ray cluster (2 CPUs, started here) against the fake server: the same rows as one
process, and a worker killed mid-run still leaves every problem done once."""

import fcntl
import json
import os
import re
import signal
import threading

import pytest

from regenesis.cli import main
from regenesis.errors import BadInput
from regenesis.tasks import load_task
from regenesis.experiment import Experiment, ExperimentConfig
from regenesis.optimize.bootstrap import synthesize
from regenesis.optimize.config import SynthesisConfig
from regenesis.optimize.distributed import SHARDS_FOLDER, ModelSource, synthesize_on_ray
from tests.fake_server import FakeServer, fields_reply, last_user_text

ray = pytest.importorskip("ray")

CONFIG = SynthesisConfig(method="star", generations=2, num_threads=2, hint_pass=False)


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture
def problems(tmp_path):
    path = tmp_path / "plus.jsonl"
    path.write_text("".join(json.dumps({"question": f"What is {k} plus {k}?", "answer": 2 * k}) + "\n"
                            for k in range(1, 9)))
    return load_task(str(path), answer_type="number")


def plus_reply(body):
    """A sound path for "What is k plus k?", wrong for every third k so that some problems keep nothing."""
    k = int(re.search(r"What is (\d+) plus", last_user_text(body)).group(1))
    answer = 2 * k + (k % 3 == 0)
    return fields_reply(body, {"rationale": f"{k} + {k} = {answer}.", "reasoning": f"{k} + {k} = {answer}.",
                               "answer": str(answer)})


def canonical(folder):
    rows = sorted(json.dumps(json.loads(line), sort_keys=True) for line in (folder / "train.jsonl").open())
    records = [json.loads(line) for line in (folder / "problems.jsonl").open()]
    return rows, sorted((r["problem_id"], r["status"], r["kept"], r["generations"]) for r in records)


def test_ray_run_writes_the_rows_of_a_single_process_run(cluster, problems, tmp_path):
    with FakeServer(plus_reply) as server:
        model = ModelSource("openai/plus", {"api_base": server.url, "cache": False})
        single = synthesize(model.resolve(), problems, tmp_path / "single", CONFIG, progress=False)
        report = synthesize_on_ray(model, problems, tmp_path / "ray", CONFIG, shards=4, progress=False)
    assert canonical(tmp_path / "ray") == canonical(tmp_path / "single")
    assert (report["problems"], report["finished"], report["kept_rows"]) == (8, 8, single["kept_rows"])
    assert 0 < report["kept_rows"] < 16  # multiples of 3 keep nothing, the others their one distinct path
    assert report["generations"] == single["generations"] == 16 and report["ray"]["shards"] == 4
    assert len(list((tmp_path / "ray" / SHARDS_FOLDER).iterdir())) == 4


def kill_one_shard_worker(shard_root):
    """SIGKILL the worker that holds the lock of a shard folder (``run_lock`` writes its pid there)."""
    for lock in sorted(shard_root.glob("*/.lock")):
        with open(lock) as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(handle, fcntl.LOCK_UN)
            except BlockingIOError:
                os.kill(int(handle.read()), signal.SIGKILL)
                return True
    return False


def test_a_worker_killed_mid_run_leaves_every_problem_done_once(cluster, problems, tmp_path):
    out = tmp_path / "ray"
    killed, calls, lock = [], [0], threading.Lock()

    def responder(body):
        with lock:
            calls[0] += 1
            if calls[0] == 7 and not killed:  # some problems finished, others in flight
                killed.append(kill_one_shard_worker(out / SHARDS_FOLDER))
        return plus_reply(body)

    with FakeServer(responder) as server:
        model = ModelSource("openai/plus-killed", {"api_base": server.url, "cache": False, "num_retries": 0})
        report = synthesize_on_ray(model, problems, out, CONFIG, shards=2, progress=False)
        single = synthesize(model.resolve(), problems, tmp_path / "single", CONFIG, progress=False)
    assert killed == [True]
    records = [json.loads(line) for line in (out / "problems.jsonl").open()]
    assert sorted(r["problem_id"] for r in records) == sorted(e.id for e in problems)
    assert all(r["status"] == "finished" for r in records)
    rows, _ = canonical(out)
    assert len(rows) == len(set(rows)) == report["kept_rows"]
    assert rows == canonical(tmp_path / "single")[0]


def test_the_synthesize_command_runs_on_ray(cluster, problems, tmp_path, capsys):
    data = tmp_path / "plus.jsonl"
    with FakeServer(plus_reply) as server:
        command = ["synthesize", "--method", "star", "--task", str(data), "--answer-type", "number",
                   "--model", "openai/plus-cli", "--api-base", server.url, "--generations", "2", "--no-hint",
                   "--ray", "auto", "--out", str(tmp_path / "out")]
        assert main(command) == 0
        report = json.loads((tmp_path / "out" / "report.json").read_text())
        assert (report["finished"], report["ray"]["cluster_cpus"]) == (8, 2.0)
        self_discover = [*command[:2], "self-discover", *command[3:-1], str(tmp_path / "self-discover")]
        assert main(self_discover) == 2  # one plan per task from all the problems: not sharded
        assert not (tmp_path / "self-discover").exists()
        assert "--ray: self-discover" in capsys.readouterr().err


def test_an_experiment_config_with_a_ray_key_synthesizes_on_ray(cluster, problems, tmp_path):
    data = tmp_path / "plus.jsonl"
    toml = tmp_path / "ray.toml"
    with FakeServer(plus_reply) as server:
        toml.write_text(f'model = "openai/plus-toml"\napi_base = "{server.url}"\nray = "auto"\n'
                        f'[train]\ntask = "{data}"\nanswer_type = "number"\n[eval]\ntasks = ["{data}"]\n'
                        '[methods.star]\nmethod = "star"\ngenerations = 2\nhint_pass = false\n')
        config = ExperimentConfig.load(toml)
        stage = Experiment(config, tmp_path / "exp", progress=False).synthesize(
            tmp_path / "exp" / "synthesize-star", "star", config.methods["star"], config.model, problems, {})
    report = json.loads((tmp_path / "exp" / "synthesize-star" / "report.json").read_text())
    assert config.ray == "auto" and report["ray"]["address"] == "auto" and report["finished"] == 8
    assert stage["stage"] == "synthesize star" and stage["report"]["kept_rows"] == report["kept_rows"]
    toml.write_text(toml.read_text().replace('ray = "auto"', "ray = 2"))
    with pytest.raises(BadInput, match=r"ray\.toml: ray"):
        ExperimentConfig.load(toml)
