import json
import threading
from dataclasses import replace

import dspy
import pytest
from dspy.lm15 import Message, Response, TextPart, Usage, response_to_events
from dspy.utils.dummies import DummyLM

from regenesis.errors import BadInput
from regenesis.evals.evaluate import EvalResult, evaluate, read_records, task_domains
from regenesis.evals.scores import MacroAverage, TaskScore, domain_averages, score_tasks, wilson_interval
from regenesis.tasks.example import Example
from regenesis.evals.report import comparison_chart, comparison_table, load_results, rich_table, write_results


# Wilson score intervals published in Newcombe (1998), Statistics in Medicine 17:857-872, table I
# (method 3), and the textbook n = 10 cases; 0/n has the closed form upper = z^2 / (n + z^2).
@pytest.mark.parametrize(("correct", "n", "low", "high"), [
    (0, 10, 0.0, 0.2775),
    (5, 10, 0.2366, 0.7634),
    (10, 10, 0.7225, 1.0),
    (81, 263, 0.2553, 0.3662),
    (15, 148, 0.0624, 0.1605),
    (0, 20, 0.0, 0.1611),
    (1, 29, 0.0061, 0.1718),
])
def test_wilson_interval_matches_published_values(correct, n, low, high):
    got_low, got_high = wilson_interval(correct, n)
    assert got_low == pytest.approx(low, abs=5e-5)
    assert got_high == pytest.approx(high, abs=5e-5)


def test_wilson_interval_edges():
    assert wilson_interval(0, 0) == (0.0, 1.0)
    assert wilson_interval(0, 10)[1] == pytest.approx(1.959963984540054 ** 2 / (10 + 1.959963984540054 ** 2))
    with pytest.raises(ValueError):
        wilson_interval(11, 10)


# ---------------------------------------------------------------------------------------------
# evaluate() with scripted models


def number_examples(task="toy", count=6):
    return [Example(id=f"{task}-{i}", question=f"({task}) What is {i} plus {i}?", gold=str(2 * i), answer_type="number",
                    task=task) for i in range(count)]


class ScriptedEngine:
    """Answers by question: a text, or an exception to raise; counts the calls (thread-safe)."""

    def __init__(self, answers):
        self.answers = answers
        self.calls = 0
        self.lock = threading.Lock()

    def complete(self, request):
        with self.lock:
            self.calls += 1
        question = request.messages[-1].text
        answer = next(value for key, value in self.answers.items() if key in question)
        if isinstance(answer, Exception):
            raise answer
        return Response(id=None, model=request.model, message=Message.assistant([TextPart(answer)]),
                        finish_reason="stop", usage=Usage(input_tokens=10, output_tokens=4, total_tokens=14))

    def stream(self, request):
        return response_to_events(self.complete(request))


def scripted_lm(answers, model="local/scripted"):
    engine = ScriptedEngine(answers)
    return dspy.LM(model, engine=engine, cache=False, num_retries=0, temperature=0.0, max_tokens=64), engine


def right_answers(examples, wrong=()):
    return {ex.question: f"Add them.\nThe answer is {int(ex.gold) + (1 if ex.id in wrong else 0)}."
            for ex in examples}


def test_evaluate_counts_accuracy_and_writes_every_output(tmp_path):
    examples = number_examples(count=4)
    lm = DummyLM({ex.question: {"answer": f"The answer is {ex.gold}."} for ex in examples[:3]}
                 | {examples[3].question: {"answer": "The answer is 99."}})
    result = evaluate(lm, examples, raw_dir=tmp_path, num_threads=2, progress=False, domains={"toy": "in"})

    score = result.scores["toy"]
    assert (score.n, score.correct, score.errors) == (4, 3, 0)
    assert score.accuracy == 0.75
    records = read_records(tmp_path / "toy.jsonl")
    assert sorted(r["id"] for r in records) == [ex.id for ex in examples]
    wrong = next(r for r in records if r["id"] == "toy-3")
    assert wrong["answer"] == "99" and wrong["correct"] is False and wrong["gold"] == "6"
    assert "The answer is 99." in wrong["output"]
    assert result.averages["in"].accuracy == 0.75
    assert result.raw_files == {"toy": str(tmp_path / "toy.jsonl")}


def test_evaluate_sends_the_training_prompt_greedily(tmp_path):
    from regenesis.prompting import user_prompt

    examples = number_examples(count=1)
    lm, engine = scripted_lm(right_answers(examples))
    seen = []
    engine.complete = lambda request, original=engine.complete: seen.append(request) or original(request)
    evaluate(lm, examples, raw_dir=tmp_path, progress=False)
    (request,) = seen
    assert [m.text for m in request.messages] == [user_prompt(examples[0].question)]
    assert request.config.temperature == 0.0 and request.config.max_tokens == 64


def test_rerun_resumes_after_a_killed_run(tmp_path):
    examples = number_examples(count=6)
    lm, engine = scripted_lm(right_answers(examples, wrong={"toy-1"}))
    first = evaluate(lm, examples, raw_dir=tmp_path, num_threads=3, progress=False)
    raw = tmp_path / "toy.jsonl"
    lines = raw.read_text().splitlines(keepends=True)
    raw.write_text("".join(lines[:3]) + lines[3][: len(lines[3]) // 2])  # a kill -9 in the middle of a write

    engine.calls = 0
    second = evaluate(lm, examples, raw_dir=tmp_path, num_threads=3, progress=False)

    assert engine.calls == 3
    assert second.scores == first.scores
    assert (second.scores["toy"].n, second.scores["toy"].correct) == (6, 5)
    ids = [r["id"] for r in read_records(raw)]
    assert sorted(ids) == sorted(ex.id for ex in examples)
    assert all(json.loads(line) for line in raw.read_text().splitlines())
    assert second.throughput.problems == 3


def test_model_errors_are_counted_recorded_and_retried_by_a_rerun(tmp_path):
    examples = number_examples(count=4)
    answers = right_answers(examples)
    answers[examples[2].question] = RuntimeError("server went away")
    lm, engine = scripted_lm(answers)
    result = evaluate(lm, examples, raw_dir=tmp_path, progress=False)
    # the failed call is not a wrong answer: accuracy is over the 3 answered problems
    score = result.scores["toy"]
    assert (score.n, score.correct, score.errors, score.accuracy) == (3, 3, 1, 1.0)
    assert score.error_kinds == {"other": 1} and result.errors == 1
    failed = next(r for r in read_records(tmp_path / "toy.jsonl") if r["id"] == "toy-2")
    assert "server went away" in failed["error"] and failed["correct"] is False and failed["error_kind"] == "other"

    engine.answers = right_answers(examples)
    engine.calls = 0
    retried = evaluate(lm, examples, raw_dir=tmp_path, progress=False)
    assert engine.calls == 1
    assert (retried.scores["toy"].n, retried.scores["toy"].correct, retried.scores["toy"].errors) == (4, 4, 0)
    assert retried.errors == 0


def test_a_model_that_keeps_failing_stops_the_run(tmp_path):
    examples = number_examples(count=8)
    lm, _ = scripted_lm({"What": RuntimeError("bad key")})
    with pytest.raises(RuntimeError, match="in a row failed"):
        evaluate(lm, examples, raw_dir=tmp_path, progress=False)
    assert len(read_records(tmp_path / "toy.jsonl")) >= 5


def test_outputs_of_another_model_are_not_mixed_in(tmp_path):
    examples = number_examples(count=2)
    evaluate(scripted_lm(right_answers(examples))[0], examples, raw_dir=tmp_path, progress=False)
    other, _ = scripted_lm(right_answers(examples), model="local/other")
    with pytest.raises(BadInput, match="other settings"):
        evaluate(other, examples, raw_dir=tmp_path, progress=False)


def test_verdicts_follow_a_corrected_gold_answer_without_asking_again(tmp_path):
    examples = number_examples(count=3)
    lm, engine = scripted_lm(right_answers(examples))
    assert evaluate(lm, examples, raw_dir=tmp_path, progress=False).scores["toy"].correct == 3

    corrected = [replace(examples[0], gold="1")] + examples[1:]
    engine.calls = 0
    result = evaluate(lm, corrected, raw_dir=tmp_path, progress=False)
    assert engine.calls == 0
    assert (result.scores["toy"].n, result.scores["toy"].correct) == (3, 2)


def test_a_changed_question_for_the_same_id_is_asked_again(tmp_path):
    examples = number_examples(count=2)
    lm, engine = scripted_lm(right_answers(examples) | {"What is 5 plus 5": "The answer is 10."})
    evaluate(lm, examples, raw_dir=tmp_path, progress=False)

    changed = [replace(examples[0], question="(toy) What is 5 plus 5?", gold="10"), examples[1]]
    engine.calls = 0
    result = evaluate(lm, changed, raw_dir=tmp_path, progress=False)
    assert engine.calls == 1
    assert result.scores["toy"].correct == 2
    latest = {r["id"]: r for r in read_records(tmp_path / "toy.jsonl")}
    assert latest["toy-0"]["question"] == "(toy) What is 5 plus 5?" and "10" in latest["toy-0"]["output"]


def test_a_model_file_that_cannot_be_loaded_stops_the_run_and_blames_no_problem(tmp_path):
    from regenesis.models import ModelLoadError

    examples = number_examples(count=3)
    lm, engine = scripted_lm({"What": ModelLoadError("/models/broken.gguf: llama.cpp cannot load this model")})
    with pytest.raises(Exception, match="broken.gguf") as raised:
        evaluate(lm, examples, raw_dir=tmp_path, progress=False)
    assert not isinstance(raised.value, BadInput)
    assert engine.calls == 1
    assert read_records(tmp_path / "toy.jsonl") == []


def test_a_second_run_on_the_same_folder_is_refused_while_the_first_holds_it(tmp_path):
    from regenesis.runfiles import run_lock

    examples = number_examples(count=2)
    lm, engine = scripted_lm(right_answers(examples))
    with run_lock(tmp_path), pytest.raises(BadInput, match="in use by another regenesis run"):
        evaluate(lm, examples, raw_dir=tmp_path, progress=False)
    assert engine.calls == 0
    assert evaluate(lm, examples, raw_dir=tmp_path, progress=False).scores["toy"].correct == 2


def test_keys_in_outputs_and_errors_are_redacted_from_every_file(tmp_path):
    from regenesis.redact import register_secret

    secret = "sekrit-key-0123456789abcdef"
    register_secret(secret)
    examples = number_examples(count=2)
    lm, _ = scripted_lm({examples[0].question: f"My key is {secret}. The answer is 0.",
                         examples[1].question: RuntimeError(f"401: bad key {secret} and sk-{'a' * 24}")})
    result = evaluate(lm, examples, raw_dir=tmp_path / "raw", progress=False, settings={"note": secret})
    write_results(result, tmp_path / "results.json")
    written = {path: path.read_text() for path in tmp_path.rglob("*") if path.is_file()}
    assert len(written) >= 4  # run.json, the raw file, results.json and .md
    assert not [path for path, text in written.items() if secret in text or "sk-aaaa" in text]
    assert result.scores["toy"].correct == 1 and result.errors == 1
    assert "[redacted]" in written[tmp_path / "raw" / "toy.jsonl"]


def test_the_progress_display_shows_a_task_name_that_looks_like_markup_as_it_is(tmp_path, capsys):
    examples = number_examples("mine[/red]", count=2)
    lm, _ = scripted_lm(right_answers(examples) | {examples[1].question: RuntimeError("down")})
    result = evaluate(lm, examples, raw_dir=tmp_path, progress=True)
    assert result.scores["mine[/red]"].errors == 1
    err = capsys.readouterr().err
    assert "mine[/red]" in err and "1 model errors" in err


def test_several_tasks_each_get_a_raw_file_and_a_score(tmp_path):
    examples = number_examples("gsm", 3) + number_examples("bbh/navigate", 2) + number_examples("bbh/snarks", 2)
    lm, _ = scripted_lm(right_answers(examples, wrong={"bbh/snarks-0"}))
    # the registry knows the bbh subtasks are out of domain; "gsm" is not registered
    result = evaluate(lm, examples, raw_dir=tmp_path, num_threads=2, progress=False, domains={"gsm": "in"})
    assert list(result.scores) == ["gsm", "bbh", "bbh/navigate", "bbh/snarks"]
    assert (tmp_path / "bbh" / "navigate.jsonl").exists()
    assert (result.scores["bbh"].n, result.scores["bbh"].correct) == (4, 3)
    assert result.averages["out"].tasks == ("bbh",)
    assert result.averages["out"].accuracy == 0.75


# ---------------------------------------------------------------------------------------------
# Scores and averages


def records(correct, wrong, errors=0):
    return ([{"correct": True, "error": None}] * correct + [{"correct": False, "error": None}] * wrong
            + [{"correct": False, "error": "boom"}] * errors)


def test_families_are_pooled_once_and_domains_macro_averaged():
    scores = score_tasks(
        {"gsm8k": records(8, 2), "arc": records(1, 3), "bbh/a": records(3, 1), "bbh/b": records(1, 2, errors=1),
         "svamp": records(5, 5)},
        {"gsm8k": "in", "arc": "in", "bbh/a": "out", "bbh/b": "out", "svamp": "out"},
    )
    assert list(scores) == ["gsm8k", "arc", "bbh", "bbh/a", "bbh/b", "svamp"]
    assert scores["bbh"] == TaskScore("bbh", n=7, correct=4, errors=1, domain="out", subtasks=("bbh/a", "bbh/b"),
                                      error_kinds={"other": 1})
    averages = domain_averages(scores)
    assert averages["in"].accuracy == pytest.approx((0.8 + 0.25) / 2)
    assert averages["out"].tasks == ("bbh", "svamp")
    assert averages["out"].accuracy == pytest.approx((4 / 7 + 0.5) / 2)
    assert (averages["out"].errors, averages["in"].errors) == (1, 0)
    assert averages["in"].ci_low < averages["in"].accuracy < averages["in"].ci_high


def test_domain_overrides_apply_to_a_task_or_its_whole_family():
    domains = task_domains(["gsm8k", "bbh/navigate", "mine"], {"bbh": "in", "mine": "out"})
    assert domains == {"gsm8k": "in", "bbh/navigate": "in", "mine": "out"}
    assert task_domains(["bbh/navigate", "mine"], {}) == {"bbh/navigate": "out", "mine": None}


def test_answers_cut_off_by_the_token_limit_are_counted():
    cut = [{"correct": False, "error": None, "finish_reason": "length"}]
    scores = score_tasks({"bbh/a": records(1, 0) + cut, "bbh/b": cut * 2}, {})
    assert (scores["bbh/a"].truncated, scores["bbh/b"].truncated, scores["bbh"].truncated) == (1, 2, 3)


def test_macro_average_of_one_task_is_its_agresti_coull_interval():
    # Agresti-Coull 95% intervals: 0/10 -> (0, 0.3209), 5/10 -> (0.2366, 0.7634)
    none_right = MacroAverage.of("in", [TaskScore("a", 10, 0)])
    assert (none_right.accuracy, none_right.ci_low) == (0.0, 0.0)
    assert none_right.ci_high == pytest.approx(0.3209, abs=5e-5)
    half_right = MacroAverage.of("in", [TaskScore("a", 10, 5)])
    assert (half_right.ci_low, half_right.ci_high) == pytest.approx((0.2366, 0.7634), abs=5e-5)


def test_macro_average_interval_adds_the_task_variances_around_the_mean():
    z2 = 1.959963984540054 ** 2
    p1, p2 = (96 + z2 / 2) / (96 + z2), (48 + z2 / 2) / (96 + z2)
    half_width = 1.959963984540054 * ((p1 * (1 - p1) + p2 * (1 - p2)) / (96 + z2)) ** 0.5 / 2
    average = MacroAverage.of("in", [TaskScore("a", 96, 96), TaskScore("b", 96, 48)])
    assert average.accuracy == 0.75
    assert (average.ci_low, average.ci_high) == pytest.approx((0.75 - half_width, 0.75 + half_width))


def test_macro_average_interval_holds_its_mean_over_many_tasks_near_zero():
    """Centred on the adjusted proportions, 5 tasks at 0-1 of 8 gave an interval above the mean."""
    average = MacroAverage.of("out", [TaskScore(t, 8, c) for t, c in zip("abcde", (0, 0, 1, 0, 0))])
    assert average.ci_low <= average.accuracy == 0.025 <= average.ci_high


# ---------------------------------------------------------------------------------------------
# Reports


def synthetic_result(model, counts, domains):
    scores = score_tasks({task: records(c, n - c) for task, (c, n) in counts.items()}, domains)
    return EvalResult(model=model, settings={}, scores=scores, averages=domain_averages(scores), raw_files={})


DOMAINS = {"gsm8k": "in", "svamp": "out", "bbh/navigate": "out"}


def test_comparison_table_shows_intervals_and_changes_in_points():
    base = synthetic_result("base", {"gsm8k": (81, 263), "svamp": (5, 10), "bbh/navigate": (0, 10)}, DOMAINS)
    tuned = synthetic_result("tuned", {"gsm8k": (100, 263), "svamp": (10, 10), "bbh/navigate": (5, 10)}, DOMAINS)
    table = comparison_table({"base": base, "regenesis": tuned.to_dict()})
    lines = table.splitlines()
    assert lines[0] == "| task | base | regenesis | Δ regenesis (pts) |"
    assert "| gsm8k | 30.8 [25.5, 36.6] | 38.0 [32.4, 44.0] | +7.2 |" in lines
    assert "| svamp | 50.0 [23.7, 76.3] | 100.0 [72.2, 100.0] | +50.0 |" in lines
    assert "| bbh/navigate | 0.0 [0.0, 27.8] | 50.0 [23.7, 76.3] | +50.0 |" in lines
    out_line = next(line for line in lines if line.startswith("| out-of-domain average"))
    assert "| 25.0 [" in out_line and out_line.endswith("| +50.0 |")


def test_model_errors_are_shown_beside_the_accuracy_in_every_report(tmp_path):
    from rich.console import Console

    scores = score_tasks({"gsm8k": records(3, 1, errors=2)}, DOMAINS)
    scores["gsm8k"] = replace(scores["gsm8k"], error_kinds={"server_error": 1, "timeout": 1})
    result = EvalResult(model="m", settings={}, scores=scores, averages=domain_averages(scores), raw_files={})
    assert result.scores["gsm8k"].accuracy == 0.75

    _, markdown_path = write_results(result, tmp_path / "results.json")
    assert "| gsm8k | in | 4 | 3 | 0 | 75.0 | [30.1, 95.4] | 2 (server_error 1, timeout 1) |" in markdown_path.read_text()
    clean = synthetic_result("base", {"gsm8k": (2, 4)}, DOMAINS)
    table = comparison_table({"base": clean, "tuned": result})
    assert "| gsm8k | 50.0 [15.0, 85.0] | 75.0 [30.1, 95.4] (2 model errors) | +25.0 |" in table
    console = Console(record=True, width=200)
    console.print(rich_table(result))
    assert "2 (server_error 1, timeout 1)" in console.export_text()


def test_rich_table_prints_names_that_look_like_markup_as_they_are():
    from rich.console import Console

    result = synthetic_result("m[/bold]", {"mine[/red].jsonl": (1, 2)}, {})
    console = Console(record=True, width=200)
    console.print(rich_table(result))
    text = console.export_text()
    assert "mine[/red].jsonl" in text and "m[/bold]" in text


def test_comparison_table_needs_its_baseline():
    result = synthetic_result("m", {"gsm8k": (1, 2)}, DOMAINS)
    with pytest.raises(ValueError, match="baseline"):
        comparison_table({"tuned": result})


def test_comparison_chart_writes_a_png(tmp_path):
    base = synthetic_result("base", {"gsm8k": (81, 263), "svamp": (5, 10)}, DOMAINS)
    tuned = synthetic_result("tuned", {"gsm8k": (100, 263), "svamp": (10, 10)}, DOMAINS)
    path = comparison_chart({"base": base, "tuned": tuned}, tmp_path / "chart" / "accuracy.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_results_json_round_trips_and_markdown_lists_every_task(tmp_path):
    result = synthetic_result("m", {"gsm8k": (81, 263), "svamp": (5, 10)}, DOMAINS)
    json_path, markdown_path = write_results(result, tmp_path / "results.json")
    assert load_results(json_path) == result
    data = json.loads(json_path.read_text())
    assert data["tasks"]["gsm8k"]["ci_low"] == pytest.approx(0.2553, abs=5e-5)
    markdown = markdown_path.read_text()
    assert "| gsm8k | in | 263 | 81 | 0 | 30.8 | [25.5, 36.6] | 0 |" in markdown
    assert "in-domain average" in markdown and "macro average" in markdown


# ---------------------------------------------------------------------------------------------
# The command line


def test_cli_rejects_an_unknown_task_with_exit_2(tmp_path, capsys):
    from regenesis.cli import main

    assert main(["eval", "--tasks", "gsm8k-sample,no_such_task", "--out", str(tmp_path / "r.json")]) == 2
    assert "no_such_task" in capsys.readouterr().err


def test_cli_writes_json_markdown_and_raw_outputs(tmp_path, monkeypatch):
    import regenesis.cli.eval as eval_cli
    from regenesis.cli import main
    from regenesis.tasks import load_task

    examples = load_task("gsm8k-sample", split="test", limit=3)
    lm, _ = scripted_lm(right_answers(examples, wrong={examples[0].id}))
    monkeypatch.setattr(eval_cli, "resolve_lm", lambda *args, **kwargs: lm)
    out = tmp_path / "results.json"
    argv = ["eval", "--tasks", "gsm8k-sample", "--split", "test", "--limit", "3", "--out", str(out), "--no-progress"]
    assert main(argv) == 0

    data = json.loads(out.read_text())
    assert data["tasks"]["gsm8k-sample"]["n"] == 3 and data["tasks"]["gsm8k-sample"]["correct"] == 2
    assert data["averages"]["in"]["tasks"] == ["gsm8k-sample"]
    assert data["settings"]["tasks"] == ["gsm8k-sample"] and data["settings"]["limit"] == 3
    assert out.with_suffix(".md").exists()
    assert len(read_records(tmp_path / "results.raw" / "gsm8k-sample.jsonl")) == 3


@pytest.mark.model
def test_embedded_model_on_three_bundled_problems(tmp_path):
    from regenesis.tasks import load_task
    from regenesis.models import resolve_lm

    examples = load_task("gsm8k-sample", split="test", limit=3)
    lm = resolve_lm(None, max_tokens=96, cache=False)
    result = evaluate(lm, examples, raw_dir=tmp_path / "raw", progress=False)
    json_path, _ = write_results(result, tmp_path / "results.json")

    data = json.loads(json_path.read_text())
    score = data["tasks"]["gsm8k-sample"]
    assert score["n"] == 3 and score["errors"] == 0 and 0 <= score["correct"] <= 3
    assert score["ci_low"] <= score["accuracy"] <= score["ci_high"]
    assert data["averages"]["in"]["tasks"] == ["gsm8k-sample"]
    assert data["throughput"]["output_tokens"] > 0
    records = read_records(tmp_path / "raw" / "gsm8k-sample.jsonl")
    assert len(records) == 3 and all(r["output"] and r["output_tokens"] > 0 for r in records)
