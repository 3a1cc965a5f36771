"""`regenesis eval` against a local OpenAI-compatible server that injects faults: model errors are counted
apart by kind, the exit code says a run was incomplete, a rerun retries only what failed, and bad input
stops the command before any model call."""

import json

import pytest

from regenesis.cli import main
from regenesis.errors import BadInput
from regenesis.evals.evaluate import evaluate, read_records
from regenesis.tasks import load_task
from regenesis.models import resolve_lm
from regenesis.runfiles import run_lock
from tests.fake_server import FakeServer, Fault, last_user_text

QUESTIONS = {"What is 2 plus 2?": "4", "What is 3 plus 4?": "7", "What is 10 minus 1?": "9"}


@pytest.fixture
def dataset(tmp_path):
    path = tmp_path / "sums.jsonl"
    path.write_text("".join(json.dumps({"question": q, "answer": a}) + "\n" for q, a in QUESTIONS.items()))
    return path


def question_of(body: dict) -> str:
    text = last_user_text(body)
    return next(question for question in QUESTIONS if question in text)


def answering(faults: dict[str, list] | None = None):
    """Right answers, except that the question's listed faults are served first, one per request."""
    pending = {question: list(replies) for question, replies in (faults or {}).items()}

    def respond(body):
        question = question_of(body)
        if pending.get(question):
            return pending[question].pop(0)
        return f"Adding them up.\nThe answer is {QUESTIONS[question]}."
    return respond


def eval_argv(server, tasks, out, *extra):
    """An eval of a model named after the test's folder, so that no test reads another's cached answers."""
    model = f"openai/fake-{out.parent.name}"
    return ["eval", "--model", model, "--api-base", server.url, "--tasks", str(tasks), "--out", str(out),
            "--no-progress", *extra]


def asked(server) -> list[str]:
    return [question_of(body) for body in server.requests]


def test_a_user_dataset_is_evaluated_with_the_dataset_options(tmp_path, dataset):
    out = tmp_path / "results.json"
    with FakeServer(answering()) as server:
        assert main(eval_argv(server, dataset, out, "--answer-type", "number")) == 0
    data = json.loads(out.read_text())
    assert (data["tasks"]["sums"]["n"], data["tasks"]["sums"]["correct"]) == (3, 3)
    assert data["settings"]["user_dataset"] == {"answer_type": "number"}
    assert sorted(asked(server)) == sorted(QUESTIONS)


@pytest.mark.parametrize("tasks, options, named", [
    ("{dataset}", [], "--answer-type"),
    ("gsm8k-sample", ["--answer-type", "number"], "--answer-type"),
    ("{dataset}", ["--answer-type", "number", "--answer-field", "gold"], "'gold'"),
])
def test_bad_dataset_options_exit_2_before_any_model_call(tmp_path, dataset, capsys, tasks, options, named):
    with FakeServer(answering()) as server:
        argv = eval_argv(server, tasks.format(dataset=dataset), tmp_path / "results.json", *options)
        assert main(argv) == 2
    err = capsys.readouterr().err
    assert named in err and len(err.strip().splitlines()) == 1
    assert server.requests == [] and not (tmp_path / "results.raw").exists()


def test_a_model_error_is_counted_apart_exits_1_and_is_retried_by_the_rerun(tmp_path, dataset, capsys):
    out = tmp_path / "results.json"
    refused = Fault(status=400, message="the server refused this one")
    with FakeServer(answering({"What is 3 plus 4?": [refused]})) as server:
        argv = eval_argv(server, dataset, out, "--answer-type", "number")
        assert main(argv) == 1
        first = json.loads(out.read_text())["tasks"]["sums"]
        assert (first["n"], first["correct"], first["errors"], first["accuracy"]) == (2, 2, 1, 1.0)
        assert first["error_kinds"] == {"bad_request": 1}
        assert "1 (bad_request 1) problems ended in a model error" in capsys.readouterr().err

        server.requests.clear()
        assert main(argv) == 0
        assert asked(server) == ["What is 3 plus 4?"]
    second = json.loads(out.read_text())["tasks"]["sums"]
    assert (second["n"], second["correct"], second["errors"]) == (3, 3, 0)
    records = read_records(tmp_path / "results.raw" / "sums.jsonl")
    assert [r["error_kind"] for r in records if r["id"].endswith("/1")] == ["bad_request", None]


def test_a_transient_server_error_is_retried_and_gives_a_normal_result(tmp_path, dataset):
    out = tmp_path / "results.json"
    with FakeServer(answering({"What is 2 plus 2?": [Fault(status=503)]})) as server:
        assert main(eval_argv(server, dataset, out, "--answer-type", "number")) == 0
    assert asked(server).count("What is 2 plus 2?") == 2
    score = json.loads(out.read_text())["tasks"]["sums"]
    assert (score["n"], score["correct"], score["errors"]) == (3, 3, 0)


def test_each_fault_is_recorded_with_its_kind(tmp_path, dataset):
    faults = {"What is 2 plus 2?": [Fault(status=500)], "What is 3 plus 4?": [Fault(close=True)],
              "What is 10 minus 1?": [Fault(delay=3.0, text="The answer is 9.")]}
    examples = load_task(str(dataset), answer_type="number")
    with FakeServer(answering(faults)) as server:
        lm = resolve_lm("openai/fake-kinds", api_base=server.url, num_retries=0, timeout=0.5, cache=False)
        result = evaluate(lm, examples, raw_dir=tmp_path / "raw", progress=False)
    assert result.scores["sums"].error_kinds == {"connection": 1, "server_error": 1, "timeout": 1}
    assert (result.scores["sums"].n, result.errors) == (0, 3)


def test_out_that_is_not_a_results_file_exits_2_naming_it(tmp_path, dataset, capsys):
    with FakeServer(answering()) as server:
        assert main(eval_argv(server, dataset, dataset, "--answer-type", "number")) == 2
        folder = tmp_path / "folder.json"
        folder.mkdir()
        assert main(eval_argv(server, dataset, folder, "--answer-type", "number")) == 2
        other = tmp_path / "mine.json"
        other.write_text('{"my": "data"}')
        assert main(eval_argv(server, dataset, other, "--answer-type", "number")) == 2
    assert other.read_text() == '{"my": "data"}'
    err = capsys.readouterr().err
    assert "expected a .json file name" in err and f"--out {folder}: is a folder" in err
    assert f"--out {other}: an existing file that is not a regenesis eval results file" in err
    assert server.requests == []


def test_a_second_eval_on_the_same_out_exits_2(tmp_path, dataset, capsys):
    out = tmp_path / "results.json"
    with FakeServer(answering()) as server, run_lock(tmp_path / "results.raw"):
        assert main(eval_argv(server, dataset, out, "--answer-type", "number")) == 2
    assert "is in use by another regenesis run" in capsys.readouterr().err
    assert server.requests == []


def test_an_unloadable_gguf_fails_the_run_instead_of_scoring_0(tmp_path, dataset, capsys):
    import gguf

    broken = tmp_path / "broken.gguf"  # a well-formed GGUF file of an architecture llama.cpp does not know
    writer = gguf.GGUFWriter(str(broken), "no-such-architecture")
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    out = tmp_path / "results.json"
    argv = ["eval", "--model", str(broken), "--tasks", str(dataset), "--answer-type", "number", "--out", str(out),
            "--no-progress"]
    assert main(argv) == 1
    assert "broken.gguf" in capsys.readouterr().err
    assert not out.exists()
    assert read_records(tmp_path / "results.raw" / "sums.jsonl") == []


def test_answers_from_another_endpoint_are_never_reused(tmp_path, dataset):
    examples = load_task(str(dataset), answer_type="number")
    with FakeServer(answering()) as first, FakeServer(answering()) as second:
        evaluate(resolve_lm("openai/same-name", api_base=first.url), examples, raw_dir=tmp_path / "raw", progress=False)
        with pytest.raises(BadInput, match=f"api_base: '{first.url}' there, '{second.url}' now"):
            evaluate(resolve_lm("openai/same-name", api_base=second.url), examples, raw_dir=tmp_path / "raw",
                     progress=False)
    assert second.requests == []
