"""The synthesis funnel of a real ReGenesis run on a local fake server whose solve replies are scripted
so that each stage drops one path: the funnel's counts equal the report's, the server's and the rows'."""

import json
import re

import pytest
from PIL import Image

from regenesis.evals.funnel import funnel_chart, funnel_order, funnel_stages, funnel_table
from regenesis.tasks import load_task
from regenesis.models import resolve_lm
from regenesis.optimize.bootstrap import synthesize
from regenesis.optimize.config import SynthesisConfig
from regenesis.optimize.methods import ReGenesisBudget
from tests.fake_server import FakeServer, Fault, fields_reply, last_user_text, output_fields

GARBAGE = "no fields here [[ ## nope"
# (reasoning, answer) of each solve call for "What is 3 plus 3?", in the order the loop makes them
SOLVES = [
    None,                                                  # unparseable: dropped as parse
    ("3 + 3 = 7, so the sum is 7.", "7"),                  # wrong answer
    ("{", "6"),                                            # no reasoning: form
    ("3 + 3 = 5, and one more makes 6.", "6"),             # a false computation: arithmetic
    ("Adding the two numbers together gives the total.", "6"),  # 6 never reached: number_support
    ("3 + 3 = 6.", "6"),                                   # kept
    ("3 + 3 = 6.", "6"),                                   # duplicate
    ("Three and three: 3 + 3 = 6.", "6"),                  # kept (the cap is 2)
    ("We add them: 3 + 3 = 6.", "6"),                      # over the cap
]
BUDGET = ReGenesisBudget(selections=3, singles=6, paths_per_set=1)  # 9 paths: 3 x 4 + 6 x 3 = 30 calls
CONFIG = SynthesisConfig(method="regenesis", regenesis=BUDGET, max_kept=2, hint_pass=False, num_threads=1)


class ScriptedModel:
    """Answers select, adapt and structure plainly and each solve call with the next scripted path."""

    def __init__(self):
        self.solves = iter(SOLVES)

    def __call__(self, body: dict) -> str:
        fields = output_fields(body)
        if "reasoning" not in fields:
            return fields_reply(body, {"selected": "[1, 2]", "adapted_guidelines": "Add the two numbers.",
                                       "reasoning_structure": "1. Add the numbers."})
        if "Respond with a JSON object" in last_user_text(body):  # the retry after a reply that did not parse
            return GARBAGE
        solve = next(self.solves)
        if solve is None:
            return GARBAGE
        reasoning, answer = solve
        return fields_reply(body, {"reasoning": reasoning, "answer": answer})


@pytest.fixture(scope="module")
def scripted_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("funnel")
    data = folder / "plus.jsonl"
    data.write_text(json.dumps({"question": "What is 3 plus 3?", "answer": 6}) + "\n")
    examples = load_task(str(data), answer_type="number")
    with FakeServer(ScriptedModel()) as server:
        lm = resolve_lm("openai/funnel", api_base=server.url, cache=False, num_retries=0)
        synthesize(lm, examples, folder / "out", CONFIG, progress=False)
        calls = len(server.requests)
    report = json.loads((folder / "out" / "report.json").read_text())
    rows = (folder / "out" / "train.jsonl").read_text().splitlines()
    return report, calls, rows


def test_each_stage_drops_what_the_report_counts_and_the_stages_add_up(scripted_run):
    report, calls, rows = scripted_run
    stages = funnel_stages(report)
    names = [name for name, _ in stages]
    assert names == ["generations (model calls)", "samples tried", "parsed paths", "answer matched", "passed form",
                     "passed arithmetic", "passed number_support", "passed choice_support", "distinct", "kept rows"]
    counts = dict(stages)
    assert counts["generations (model calls)"] == report["generations"] == calls == 31  # 30 + one JSON retry
    assert counts["samples tried"] == len(SOLVES) and counts["parsed paths"] == report["candidates"] == 8
    assert counts["kept rows"] == report["kept_rows"] == len(rows) == 2

    drops = {name: before - after for (_, before), (name, after) in zip(stages[1:], stages[2:])}
    reasons = dict(zip(names[2:], ["parse", "answer", "form", "arithmetic", "number_support", "choice_support",
                                   "duplicate", "over_cap"]))
    assert {name: report["dropped"].get(reason, 0) for name, reason in reasons.items()} == drops
    assert drops == {"parsed paths": 1, "answer matched": 1, "passed form": 1, "passed arithmetic": 1,
                     "passed number_support": 1, "passed choice_support": 0, "distinct": 1, "kept rows": 1}


def test_the_table_shows_the_same_counts(scripted_run):
    report, _, _ = scripted_run
    table = funnel_table(report)
    cells = [line.strip("|").split("|") for line in table.splitlines()[2:]]
    assert [(name.strip(), int(count)) for name, count, *_ in cells] == funnel_stages(report)
    assert re.search(r"\| kept rows \| 2 \| 1 \| 22\.2 \|", table)  # 2 of the 9 samples; the cap dropped 1


def test_the_chart_is_a_png_with_a_bar_per_stage(scripted_run, tmp_path):
    report, _, _ = scripted_run
    path = funnel_chart(report, tmp_path / "funnel.png", title="regenesis")
    with Image.open(path) as image:
        assert image.format == "PNG" and image.height > 400
        assert len(image.convert("RGB").getcolors(maxcolors=1_000_000)) > 50
    assert not list(tmp_path.glob(".*.tmp"))


def test_an_unknown_reason_still_adds_up_and_a_report_that_does_not_is_refused(scripted_run):
    report, _, _ = scripted_run
    newer = {**report, "candidates": report["candidates"] + 3, "dropped": {**report["dropped"], "toxicity": 3}}
    stages = funnel_stages(newer)
    assert ("passed toxicity", 4) in stages and stages[-1] == ("kept rows", 2)
    assert [name for name, _ in stages].index("passed toxicity") == [name for name, _ in stages].index("distinct") - 1
    with pytest.raises(ValueError, match="does not add up: 8 parsed paths less 7 dropped leave 1, but kept_rows is 2"):
        funnel_stages({**report, "dropped": {**report["dropped"], "answer": 2}})


def test_the_order_is_the_bootstrap_loops():
    assert funnel_order() == ["answer", "hint_leak", "hint_not_derived", "form", "arithmetic", "number_support",
                              "choice_support", "judge", "duplicate", "over_cap"]


def test_a_failed_problem_counts_in_the_generations_and_in_no_path_stage(tmp_path):
    data = tmp_path / "plus.jsonl"
    data.write_text("".join(json.dumps({"question": f"What is {k} plus {k}?", "answer": 2 * k}) + "\n"
                            for k in (1, 2)))

    second_problem_calls = []

    def responder(body):  # the second problem's first sample answers, its second fails
        if "What is 2 plus 2?" in last_user_text(body):
            second_problem_calls.append(body)
            if len(second_problem_calls) > 1:
                return Fault(status=500)
        return fields_reply(body, {"reasoning": "1 + 1 = 2.", "answer": "2"})

    config = SynthesisConfig(method="cot", generations=2, hint_pass=False, num_threads=1)
    with FakeServer(responder) as server:
        lm = resolve_lm("openai/funnel-failed", api_base=server.url, cache=False, num_retries=0)
        report = synthesize(lm, load_task(str(data), answer_type="number"), tmp_path / "out", config, progress=False)
    assert (report["finished"], report["failed"]) == (1, 1)
    stages = dict(funnel_stages(report))
    assert stages["generations (model calls)"] == report["generations"] == 3  # 2 + the failed problem's first
    assert stages["samples tried"] == 2 and stages["kept rows"] == 1  # the finished problem's two samples
    assert funnel_table(report).endswith("1 problem(s) failed: their calls are in the generations, their paths "
                                         "in no stage.")


def test_the_synthesize_command_prints_the_funnel_and_draws_it_beside_the_rows(tmp_path, capsys):
    from regenesis.cli import main

    data = tmp_path / "plus.jsonl"
    data.write_text(json.dumps({"question": "What is 3 plus 3?", "answer": 6}) + "\n")
    with FakeServer(ScriptedModel()) as server:
        code = main(["synthesize", "--task", str(data), "--answer-type", "number", "--selections", "3", "--singles",
                     "6", "--max-kept", "2", "--no-hint", "--num-threads", "1", "--model", "openai/funnel-cli",
                     "--api-base", server.url, "--out", str(tmp_path / "out")])
    assert code == 0
    printed = capsys.readouterr().out
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert "where the generations went" in printed
    for name, count in funnel_stages(report):
        assert re.search(rf"{re.escape(name)}\s*│\s*{count}\s*│", printed), name
    assert Image.open(tmp_path / "out" / "funnel.png").size[0] > 0
