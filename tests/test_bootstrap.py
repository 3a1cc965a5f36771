"""The bootstrap loop's filtering, hint handling, cap and resume, proven with scripted models."""

import json
import re
from dataclasses import replace

import dspy
import pytest
from dspy.utils import DummyLM

from regenesis.tasks.example import Example
from regenesis.guidelines import Guideline
from regenesis.optimize.bootstrap import majority_answer, synthesize
from regenesis.optimize.config import SynthesisConfig
from regenesis.optimize.methods import ReGenesisBudget
from regenesis.optimize.store import PROBLEMS_FILE, ROWS_FILE

PENS = Example(id="t/0", question="If 3 pens cost 6 dollars, what do 5 pens cost?", gold="10",
               answer_type="number", task="t")
SOUND = {"reasoning": "One pen costs 6 / 3 = 2 dollars. Five pens cost 5 * 2 = 10 dollars.", "answer": "10"}
SOUND_2 = {"reasoning": "Each pen is 6 / 3 = 2 dollars, so 5 pens are 2 * 5 = 10 dollars.", "answer": "10"}
SOUND_3 = {"reasoning": "Price per pen: 6 / 3 = 2. For 5 pens: 5 * 2 = 10.", "answer": "10"}
SOUND_4 = {"reasoning": "3 pens are 6 dollars, 6 pens are 12 dollars, one pen fewer is 12 - 2 = 10.", "answer": "10"}
WRONG = {"reasoning": "Five pens cost 5 + 6 = 11 dollars.", "answer": "11"}
LUCKY = {"reasoning": "Five pens cost 5 * 3 = 10 dollars.", "answer": "10"}
LEAK = {"reasoning": "The given answer is 10, so 5 pens cost 10 dollars.", "answer": "10"}
STATED = {"reasoning": "Pens are sold in a shop. Five pens cost 10 dollars there.", "answer": "10"}


def rows(out):
    return [json.loads(line) for line in (out / ROWS_FILE).read_text().splitlines()]


def run(tmp_path, answers, config, examples=(PENS,), name="run"):
    lm = DummyLM(answers)
    return synthesize(lm, list(examples), tmp_path / name, config, progress=False), tmp_path / name


def test_wrong_answers_false_arithmetic_and_duplicates_are_dropped(tmp_path):
    config = SynthesisConfig(method="cot", generations=5, num_threads=1)
    report, out = run(tmp_path, [SOUND, WRONG, LUCKY, SOUND, SOUND_2], config)
    kept = rows(out)
    assert [r["messages"][1]["content"] for r in kept] == [
        SOUND["reasoning"] + "\nThe answer is 10.", SOUND_2["reasoning"] + "\nThe answer is 10."]
    assert report["dropped"] == {"answer": 1, "arithmetic": 1, "duplicate": 1}
    assert report["kept_rows"] == 2 and report["solved_without_hint"] == 1
    first = kept[0]
    assert first["messages"][0]["role"] == "user" and PENS.question in first["messages"][0]["content"]
    assert first["meta"]["problem_id"] == "t/0" and first["meta"]["hinted"] is False


def test_hint_pass_never_leaks_the_hint_into_a_kept_row(tmp_path):
    config = SynthesisConfig(method="star", generations=2, num_threads=1)
    report, out = run(tmp_path, [WRONG, WRONG, LEAK, SOUND], config)
    kept = rows(out)
    assert len(kept) == 1 and kept[0]["meta"]["hinted"] is True
    assert report["solved_without_hint"] == 0 and report["solved_with_hint"] == 1
    assert report["dropped"]["hint_leak"] == 1
    assert (report["planned_generations_per_problem"], report["planned_generations_with_hint_pass"]) == (2, 4)
    for row in kept:
        text = json.dumps(row["messages"]).lower()
        assert "given answer" not in text and "correct_answer" not in text and "hint" not in text


def test_a_hinted_path_must_compute_its_answer_not_state_it(tmp_path):
    config = SynthesisConfig(method="star", generations=2, num_threads=1)
    report, out = run(tmp_path, [WRONG, WRONG, STATED, SOUND], config)
    assert [r["messages"][1]["content"] for r in rows(out)] == [SOUND["reasoning"] + "\nThe answer is 10."]
    assert report["dropped"]["hint_not_derived"] == 1


def test_no_hint_pass_when_turned_off(tmp_path):
    config = SynthesisConfig(method="star", generations=2, num_threads=1, hint_pass=False)
    report, out = run(tmp_path, [WRONG, WRONG, SOUND, SOUND], config)
    assert rows(out) == [] and report["solved_with_hint"] == 0 and report["generations"] == 2
    assert report["planned_generations_with_hint_pass"] == 2


def test_the_cap_per_problem_holds(tmp_path):
    config = SynthesisConfig(method="cot", generations=4, max_kept=2, num_threads=1)
    report, out = run(tmp_path, [SOUND, SOUND_2, SOUND_3, SOUND_4], config)
    assert len(rows(out)) == 2
    assert report["dropped"]["over_cap"] == 2


def test_label_free_keeps_the_majority_and_skips_ties():
    assert majority_answer(["10", "11", "10", None]) == "10"
    assert majority_answer(["10", "11"]) is None
    assert majority_answer(["10", "11", "11", "10"]) is None
    assert majority_answer(["10"]) is None


def test_lmsi_keeps_paths_that_reach_the_majority_answer_without_gold(tmp_path):
    wrong_gold = Example(id="t/1", question=PENS.question, gold="999", answer_type="number", task="t")
    config = SynthesisConfig(method="lmsi", generations=3, num_threads=1)
    report, out = run(tmp_path, [SOUND, WRONG, SOUND_2], config, examples=(wrong_gold,))
    kept = rows(out)
    assert len(kept) == 2 and {r["meta"]["majority_answer"] for r in kept} == {"10"}
    assert all(r["meta"]["gold"] is None for r in kept)


PROBLEMS = [Example(id=f"t/{n}", question=f"What is {n} plus {n}?", gold=str(2 * n), answer_type="number", task="t")
            for n in range(1, 6)]
SCRIPT = {f"What is {n} plus {n}?": {"reasoning": f"{n} + {n} = {2 * n}.", "answer": str(2 * n)} for n in range(1, 6)}


def test_resume_after_an_interrupted_run_gives_exactly_the_rows_of_an_uninterrupted_run(tmp_path):
    config = SynthesisConfig(method="cot", generations=1, num_threads=2)
    _, whole = run(tmp_path, SCRIPT, config, examples=PROBLEMS, name="whole")
    _, broken = run(tmp_path, SCRIPT, config, examples=PROBLEMS, name="broken")

    # What a kill can leave: two problems finished, rows of a third written without its record,
    # and a torn line at the end of each file.
    finished = (broken / PROBLEMS_FILE).read_text().splitlines()[:2]
    (broken / PROBLEMS_FILE).write_text("\n".join(finished) + '\n{"problem_id": "t/')
    done = {json.loads(line)["problem_id"] for line in finished}
    written = [line for line in (broken / ROWS_FILE).read_text().splitlines()]
    orphan = next(line for line in written if json.loads(line)["meta"]["problem_id"] not in done)
    kept_lines = [line for line in written if json.loads(line)["meta"]["problem_id"] in done]
    (broken / ROWS_FILE).write_text("\n".join(kept_lines + [orphan]) + "\n" + orphan[:25])

    report = synthesize(DummyLM(SCRIPT), PROBLEMS, broken, config, progress=False)
    key = lambda r: (r["meta"]["problem_id"], r["meta"]["sample_index"])  # noqa: E731
    assert sorted(rows(broken), key=key) == sorted(rows(whole), key=key)
    assert report["problems"] == 5 and report["kept_rows"] == 5
    assert len((broken / PROBLEMS_FILE).read_text().splitlines()) == 5


def test_a_training_set_of_several_tasks_reports_each_tasks_share(tmp_path):
    other = Example(id="u/0", question="What is 7 plus 7?", gold="15", answer_type="number", task="u")
    script = {**SCRIPT, "What is 7 plus 7?": {"reasoning": "7 + 7 = 14.", "answer": "14"}}
    config = SynthesisConfig(method="cot", generations=1, num_threads=1, hint_pass=False)
    report, _ = run(tmp_path, script, config, examples=[*PROBLEMS[:2], other])
    assert report["by_task"] == {
        "t": {"problems": 2, "solved_without_hint": 2, "solved_with_hint": 0, "kept_rows": 2},
        "u": {"problems": 1, "solved_without_hint": 0, "solved_with_hint": 0, "kept_rows": 0}}


def test_rerun_with_other_settings_is_refused(tmp_path):
    from regenesis.errors import BadInput

    config = SynthesisConfig(method="cot", generations=1, num_threads=1)
    run(tmp_path, SCRIPT, config, examples=PROBLEMS[:1])
    with pytest.raises(BadInput, match="other settings"):
        run(tmp_path, SCRIPT, SynthesisConfig(method="cot", generations=2, num_threads=1), examples=PROBLEMS[:1])


class Failing(DummyLM):
    def forward(self, *args, **kwargs):
        raise RuntimeError("server down [bold]")


def test_a_problem_whose_model_call_failed_is_failed_and_the_rerun_retries_it(tmp_path):
    config = SynthesisConfig(method="cot", generations=2, num_threads=1)
    out = tmp_path / "failing"
    report = synthesize(Failing([]), PROBLEMS[:2], out, config, progress=False)
    assert (report["problems"], report["finished"], report["failed"]) == (2, 0, 2)
    assert report["failed_by_kind"] == {"other": 2} and report["model_errors"] == 2
    # the first failed call ends the problem; it is not a generation, cached or not
    assert (report["generations"], report["cached_generations"], report["failed_calls"]) == (0, 0, 2)
    records = [json.loads(line) for line in (out / PROBLEMS_FILE).read_text().splitlines()]
    assert [(r["status"], r["error_kind"]) for r in records] == [("failed", "other")] * 2
    assert "server down" in records[0]["error_examples"][0]

    report = synthesize(DummyLM(SCRIPT), PROBLEMS[:2], out, config, progress=False)
    assert (report["problems"], report["finished"], report["failed"], report["kept_rows"]) == (2, 2, 0, 2)
    records = [json.loads(line) for line in (out / PROBLEMS_FILE).read_text().splitlines()]
    assert sorted(r["problem_id"] for r in records) == ["t/1", "t/2"] and {r["status"] for r in records} == {"finished"}


def test_a_model_file_that_cannot_load_stops_the_run(tmp_path):
    from regenesis.models import ModelLoadError

    class Unloadable(DummyLM):
        def forward(self, *args, **kwargs):
            raise ModelLoadError("/models/broken.gguf: llama.cpp cannot load this model")

    config = SynthesisConfig(method="cot", generations=2, num_threads=2)
    with pytest.raises(ModelLoadError, match="broken.gguf"):
        synthesize(Unloadable([]), PROBLEMS, tmp_path / "out", config, progress=False)
    assert (tmp_path / "out" / PROBLEMS_FILE).read_text() == ""


def test_run_json_records_what_determines_the_output_and_a_changed_question_is_refused(tmp_path):
    from regenesis.errors import BadInput

    config = SynthesisConfig(method="regenesis", regenesis=ReGenesisBudget(1, 0, 1), num_threads=1, hint_pass=False)
    lm = DummyLM(SCRIPT)
    synthesize(lm, PROBLEMS[:1], tmp_path, config, progress=False)
    settings = json.loads((tmp_path / "run.json").read_text())
    assert settings["tasks"] == ["t"] and settings["problems"] == 1 and len(settings["problems_sha256"]) == 64
    assert len(settings["guidelines_sha256"]) == 64 and settings["adapter"] == "ChatAdapter"
    assert settings["model"] == "dummy" and settings["method"] == "regenesis"
    edited = [Example(id="t/1", question="What is 1 plus 2?", gold="3", answer_type="number", task="t")]
    synthesize(lm, PROBLEMS[:1], tmp_path, replace(config, num_threads=2), progress=False)  # only faster
    with pytest.raises(BadInput, match="problems_sha256"):
        synthesize(lm, edited, tmp_path, config, progress=False)
    with pytest.raises(BadInput, match="guidelines_sha256"):
        synthesize(lm, PROBLEMS[:1], tmp_path, config, progress=False, guidelines=[Guideline("only", "Be careful.")])


def test_the_progress_line_counts_solves_without_and_with_the_hint_apart():
    from regenesis.optimize.bootstrap import progress_status

    done = [{"status": "finished", "solved": False, "solved_with_hint": True, "kept": 4},
            {"status": "finished", "solved": False, "solved_with_hint": False, "kept": 0},
            {"status": "finished", "solved": True, "solved_with_hint": False, "kept": 1},
            {"status": "failed", "solved": False, "solved_with_hint": False, "kept": 0}]
    assert progress_status(done, 310, 10) == "solved 1/3 · with hint 1/3 · kept 5 · failed 1 · 31 tok/s"


def test_sift_counts_a_path_that_fails_several_checks_at_the_first_in_drop_order():
    from regenesis.optimize.bootstrap import Bootstrap, drop_order
    from regenesis.optimize.methods import Candidate, build_method

    bootstrap = Bootstrap(DummyLM([]), build_method("star", 1), SynthesisConfig(method="star", max_kept=1))

    def candidate(reasoning, answer, hinted=False):
        return Candidate(path=f"{reasoning}\nThe answer is {answer}.", answer=answer, sample_index=0, hinted=hinted)

    sifted = bootstrap.sift([
        candidate("The given answer is 11, so 5 + 6 = 11 dollars.", "11", hinted=True),  # wrong, leaks, false sum
        candidate("The given answer is 10, so 5 + 6 = 10 dollars.", "10", hinted=True),  # leaks, false sum
        candidate(STATED["reasoning"], "10", hinted=True),  # not derived, unsupported number
        candidate(LUCKY["reasoning"], "10"),
        candidate(SOUND["reasoning"], "10"),
        candidate(SOUND["reasoning"], "10"),
        candidate(SOUND_2["reasoning"], "10"),
    ], PENS)
    assert sifted.dropped == {"answer": 1, "hint_leak": 1, "hint_not_derived": 1, "arithmetic": 1, "duplicate": 1,
                              "over_cap": 1}
    assert drop_order([f.name for f in bootstrap.filters]) == (
        "answer", "hint_leak", "hint_not_derived", "form", "arithmetic", "number_support", "choice_support",
        "duplicate", "over_cap")


def test_presets_and_the_shared_budget():
    from regenesis.optimize.config import preset
    from regenesis.optimize.methods import build_method

    default, paper = preset("default"), preset("paper")
    assert build_method("regenesis", regenesis_budget=default.regenesis).planned_generations() == 14
    assert build_method("regenesis", regenesis_budget=paper.regenesis).planned_generations() == 20 * 4 + 30 * 3
    assert (paper.temperature, paper.top_p, paper.max_kept) == (1.2, 0.9, 5)
    assert ReGenesisBudget.for_generations(14).generations <= 14
    for name in ("star", "lmsi", "cot", "self-discover"):
        assert build_method(name, 9).planned_generations() == 9


def test_the_final_line_states_only_the_answer(tmp_path):
    rambling = {"reasoning": "One pen costs 6 / 3 = 2 dollars. Five pens cost 5 * 2 = 10 dollars.",
                "answer": "10 dollars. For 24 +"}
    config = SynthesisConfig(method="cot", generations=1, num_threads=1)
    _, out = run(tmp_path, [rambling], config)
    assert rows(out)[0]["messages"][1]["content"].endswith("5 * 2 = 10 dollars.\nThe answer is 10.")
    assert rows(out)[0]["meta"]["answer"] == "10"


# Method fidelity: the budget the user asks for, the hinted pass's own budget, a random cap, no gold
# anywhere in label-free mode.

def asks(field):
    return f"starting with the field `[[ ## {field} ## ]]`"


REGENESIS_STEPS = {
    asks("selected"): {"selected": "[1]"},
    asks("adapted_guidelines"): {"adapted_guidelines": "Find the price of one pen first."},
    asks("reasoning_structure"): {"reasoning_structure": "1. Price of one pen. 2. Price of five pens."},
    asks("reasoning"): SOUND,
}


def test_the_paper_preset_honours_a_shared_budget_and_counts_it(tmp_path):
    from regenesis.cli.synthesize import register
    import argparse

    commands = argparse.ArgumentParser().add_subparsers()
    register(commands)
    args = commands.choices["synthesize"].parse_args(
        ["--task", "gsm8k-sample", "--preset", "paper", "--generations", "8", "--no-hint", "--num-threads", "1",
         "--out", "x"])
    config = SynthesisConfig.from_args(args)
    assert config.regenesis is None and config.temperature == 1.2
    lm = DummyLM(REGENESIS_STEPS)
    report = synthesize(lm, [PENS], tmp_path / "run", config, progress=False)
    assert report["planned_generations_per_problem"] == 7  # 1 selected set (4 calls) + 1 single (3)
    assert report["generations"] == 7


def hinted_star_server(requests_log):
    from tests.fake_server import fields_reply

    def respond(body):
        requests_log.append(body)
        hinted = "correct_answer" in json.dumps(body["messages"])
        return fields_reply(body, SOUND if hinted else WRONG)
    return respond


def test_the_hint_pass_has_its_own_budget_and_temperature(tmp_path):
    from regenesis.models import resolve_lm
    from tests.fake_server import FakeServer

    seen = []
    config = SynthesisConfig(method="star", generations=3, hint_generations=1, hint_temperature=0.85,
                             temperature=1.2, num_threads=1)
    with FakeServer(hinted_star_server(seen)) as server:
        report = synthesize(resolve_lm("openai/fake", api_base=server.url), [PENS], tmp_path / "run", config,
                            progress=False)
    hinted = [b for b in seen if "correct_answer" in json.dumps(b["messages"])]
    plain = [b for b in seen if b not in hinted]
    assert (len(plain), len(hinted)) == (3, 1)
    assert {b["temperature"] for b in plain} == {1.2} and {b["temperature"] for b in hinted} == {0.85}
    assert report["planned_hint_generations_per_problem"] == 1
    assert report["planned_generations_with_hint_pass"] == 4 and report["solved_with_hint"] == 1


def test_the_paper_presets_hint_pass_is_about_100_generations_at_0_85():
    from regenesis.optimize.bootstrap import planned_hint_generations
    from regenesis.optimize.config import preset
    from regenesis.optimize.methods import build_method

    paper = preset("paper")
    method = build_method("regenesis", regenesis_budget=paper.regenesis)
    assert 95 <= planned_hint_generations(method, paper) <= 100 < method.planned_generations()
    assert paper.hint_temperature == 0.85


def test_the_cap_keeps_a_random_reproducible_choice_per_problem(tmp_path):
    paths = [SOUND, SOUND_2, SOUND_3, SOUND_4]
    problems = [replace(PENS, id=f"t/{n}") for n in range(6)]
    config = SynthesisConfig(method="cot", generations=4, max_kept=2, num_threads=1)

    def kept_indices(name):
        report, out = run(tmp_path, paths * len(problems), config, examples=problems, name=name)
        assert report["dropped"]["over_cap"] == 2 * len(problems)
        return [tuple(r["meta"]["sample_index"] for r in rows(out) if r["meta"]["problem_id"] == p.id)
                for p in problems]

    first = kept_indices("a")
    assert first == kept_indices("b")  # seeded by the problem: the same rows again
    assert len(set(first)) > 1 and any(kept != (0, 1) for kept in first)


def test_label_free_shows_the_gold_answer_to_nothing_not_even_the_judge(tmp_path, monkeypatch):
    from regenesis.models import resolve_lm
    from regenesis.optimize.filters import FilterOptions
    from tests.fake_server import FakeServer, fields_reply, output_fields

    secret_gold = replace(PENS, gold="7319")  # label-free keeps the majority answer (10), not gold

    def respond(body):
        fields = output_fields(body)
        if "supports_answer" in fields:
            return fields_reply(body, {"rationale": "Each step follows.", "supports_answer": "True"})
        return fields_reply(body, {**REGENESIS_STEPS[asks("adapted_guidelines")],
                                   **REGENESIS_STEPS[asks("reasoning_structure")], **SOUND})

    with FakeServer(respond) as server:
        monkeypatch.setenv("OPENAI_API_BASE", server.url)
        monkeypatch.setenv("OPENAI_API_KEY", "test")
        config = SynthesisConfig(method="regenesis", regenesis=ReGenesisBudget(selections=0, singles=2),
                                 label_free=True, num_threads=1, filters=FilterOptions(judge_model="openai/judge"))
        report = synthesize(resolve_lm("openai/fake", api_base=server.url), [secret_gold], tmp_path / "run", config,
                            progress=False)
        sent = [json.dumps(body) for body in server.requests]
    judged = [text for text in sent if "supports_answer" in text]
    assert report["kept_rows"] == 1 and judged  # the second, identical path is judged from the cache
    assert not any("7319" in text for text in sent)


def test_synthesize_takes_dspy_examples_and_the_rows_export_as_a_dataset(tmp_path):
    from datasets import load_from_disk

    from regenesis.optimize.store import rows_dataset

    trainset = [dspy.Example(question=PENS.question, answer="10").with_inputs("question")]
    config = SynthesisConfig(method="cot", generations=2, num_threads=1)
    report, out = run(tmp_path, [SOUND, WRONG], config, examples=trainset)
    assert report["kept_rows"] == 1 and report["dropped"] == {"answer": 1}
    dataset = rows_dataset(out)
    dataset.save_to_disk(tmp_path / "dataset")
    saved = load_from_disk(tmp_path / "dataset")
    assert saved[0]["messages"][1]["content"] == SOUND["reasoning"] + "\nThe answer is 10."
    assert saved[0]["meta"]["gold"] == "10"


def test_gold_sft_trains_on_the_datasets_own_solutions_without_a_model_call(tmp_path):
    from regenesis.tasks import load_task

    problems = load_task("gsm8k-sample", split="train", limit=3)
    config = SynthesisConfig(method="gold-sft", num_threads=1)
    lm = DummyLM([])  # any call would fail: it has no answers
    report = synthesize(lm, problems, tmp_path / "gold", config, progress=False)
    kept = rows(tmp_path / "gold")
    assert report["generations"] == 0 and report["planned_generations_with_hint_pass"] == 0
    assert report["kept_rows"] == 3  # (on all 300 bundled train problems: 296 kept, 4 false arithmetic)
    for row in kept:
        problem = next(p for p in problems if p.id == row["meta"]["problem_id"])
        text = row["messages"][1]["content"]
        assert "<<" not in text and text.endswith(f"The answer is {problem.gold}.")
        assert text.startswith(re.sub(r"<<[^<>]*>>", "", problem.meta["solution"]).strip())
