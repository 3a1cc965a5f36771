"""The quality filters: each check on its own, the pipeline, and the calibration on labelled paths."""

import importlib.util
import json
import sys
from pathlib import Path

import dspy
import pytest
from dspy.utils import DummyLM

from regenesis.tasks.example import Example
from regenesis.optimize import filters as filters_package
from regenesis.optimize.filters import pipeline
from regenesis.optimize.filters import (
    ArithmeticFilter,
    ChoiceSupportFilter,
    FilterOptions,
    FormFilter,
    JudgeFilter,
    Verdict,
    build_filters,
    check_path,
    final_answer,
    hint_leak,
    mentions_hint,
    stated_computations,
)

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT.parent / "shared" / "fixtures" / "labelled-paths.jsonl"

NUMBER = Example("n1", "Tom has 16 eggs, eats 3 and bakes with 4. He sells the rest at $2 each. "
                 "How much does he make?", "18", "number")
CHOICE = Example("c1", "Which process returns water to the atmosphere?\nA) condensation\nB) evaporation\n"
                 "C) precipitation\nD) runoff", "B", "letter",
                 choices=("condensation", "evaporation", "precipitation", "runoff"))
YES_NO = Example("y1", "Are you likely to find a crucifix in Karachi?", "no", "yes_no")


def false_statements(text: str) -> list[str]:
    return [s.text for s in stated_computations(text) if not s.holds]


# ---------------------------------------------------------------------------------------------
# Arithmetic


@pytest.mark.parametrize("text", [
    "He has 16 - 3 - 4 = 9 eggs left.",
    "He makes 9 * $2 = $18 every day.",
    "There are 12 x 6 is 72 cookies.",
    "So 12 × 6 = 72 and 72 ÷ 8 = 9.",
    r"He pays \(5 \text{ colors} \times \$2 \text{ per color} = \$10\).",
    r"\[ \frac{3}{4} \times 20 = 15 \]",
    "She spent 20% of $500 = $100 on clothes.",
    r"\[ 80\% \text{ of } 80 = 0.80 \times 80 = 64 \]",
    "Each share is 10 / 3 = 3.33 dollars.",
    "The ratio is 30/120 * 100 = 25%.",
    "Total barrels = 10 acres * 5 tons per acre * 2 barrels per ton = 100 barrels.",
    "2^10 = 1024 and (3 + 4) * 2 = 14.",
    "He has 1,200 - 200 = 1,000 left, which is 2 more than needed.",
    "<<48/2=24>>",
    "He dances for .5*2 = 1 hour per day.",
    "So he used 25 / 1/3 = 75 decorations.",
    "There are 12 x 1 and 1/4 = 15 cups and 2 1/2 * 2 = 5 more.",
    "Her remaining time is 5/5 – 1/5 = 4/5 of the day.",
    "7 minutes x 60 seconds per minute = 420 seconds + 23 seconds = 443 seconds",
    "15 trucks / 90 vehicles * 100% = 16.66% of them",
    r"there are $9\times 10\times 10\times 10\times 10=90,\!000$ numbers",
    r"$\dfrac{30 \times 29 \times 28}{6} = 4{,}060$ ways",
])
def test_true_computations_hold(text):
    statements = stated_computations(text)
    assert statements and all(s.holds for s in statements), statements


@pytest.mark.parametrize("text, false", [
    ("There are 12 x 6 = 70 cookies.", "12 x 6 = 70"),
    ("Total = 10 acres * 5 tons * 2 barrels = 1000 barrels of wine", "10 acres * 5 tons * 2 barrels = 1000"),
    (r"\[ \frac{145}{9} = 16.67 \]", "((145)/(9)) = 16.67"),
    (r"\[ \frac{39}{13} \approx 3.0769 \]", "((39)/(13)) ≈ 3.0769"),
    ("It costs 50 - 150 = -50 dollars.", "50 - 150 = -50"),
    ("That leaves 3 - 99, which is 3 cents.", "3 - 99, which is 3"),
    (r"\[ 109 \times 80 = 8920 \]", "109 * 80 = 8920"),
])
def test_false_computations_are_found(text, false):
    assert false_statements(text) == [false]


@pytest.mark.parametrize("text", [
    "The trip takes 3-4 days.",
    "It was signed on 2023-05-01.",
    "Let x be the number: x + 3 = 5, so x = 2.",
    r"\[ 3x + 8 = 38 \]",
    r"\[ 2(x + 4) + x = 38 \]",
    "1. 5 apples\n2. 3 pears\nStep 3: count them.",
    "- 2 = 4 * Grace's weight",
    "One hour = 60 minutes and 25 grams = 100 g.",
    "We have 2 kg = 2 * 1000 g of flour.",
    "Week 1 + Week 2 = 35 + 35 = 70 hours",
    "One less than 5 is 5-1, and he kept 1/5 which is 90/5 dollars.",
    "He landed at 6:00+18 hours, at 0900-0130.",
    "So 70=(3/2)x-5 gives x.",
    "Tony got twice $1750 which is 2*$1750 = $3500.",
    "the ratio of areas is $1:2^2=1:4$",
    r"so $\sqrt{64 + 36} = 10$ and $f(3) + 1 = 7$",
])
def test_non_computations_are_not_checked(text):
    assert false_statements(text) == []


def test_arithmetic_filter_reports_the_false_statement():
    verdict = ArithmeticFilter().check("12 x 6 = 70\nThe answer is 70.", NUMBER)
    assert not verdict.passed and verdict.reason == "false statement: 12 x 6 = 70"
    kept = ArithmeticFilter().check("16 - 3 - 4 = 9 and 9 * 2 = 18.\nThe answer is 18.", NUMBER)
    assert kept.passed and kept.detail == {"checked": 2}


GSM8K_TRAIN = ROOT.parent / "shared" / "datasets" / "gsm8k" / "train.jsonl"


@pytest.mark.skipif(not GSM8K_TRAIN.is_file(), reason="the shared GSM8K copy is absent")
def test_few_false_alarms_on_human_written_solutions():
    """GSM8K's own solutions are sound but for a few typos ("192*100=$1920") and unit changes
    ("$1 / 2 = 50" cents): among the first 2,000, at most that handful may be flagged."""
    solutions = [json.loads(line)["answer"] for line in GSM8K_TRAIN.read_text(encoding="utf-8").splitlines()[:2000]]
    statements = [stated_computations(solution) for solution in solutions]
    assert sum(map(len, statements)) > 6000
    assert sum(any(not s.holds for s in found) for found in statements) <= 8


def test_text_is_never_executed():
    assert stated_computations("__import__('os').system('false') = 1 + 1 = 3")[-1].holds is False


# ---------------------------------------------------------------------------------------------
# Form


SOUND = "He has 16 - 3 - 4 = 9 eggs.\nHe makes 9 * $2 = $18.\nThe answer is 18."


@pytest.mark.parametrize("path", [
    SOUND,
    "He has 16 - 3 - 4 = 9 eggs and makes 9 * 2 = 18 dollars.\nTherefore, the answer is \\(\\boxed{18}\\).",
    "He makes 9 * 2 = 18 dollars.\nTherefore, the answer is:\n\\[\n\\boxed{18}\n\\]",
    "Eggs left:\n16 - 3 - 4 = 9\nMoney:\n9 * 2 = 18\nThe answer is 18.",
])
def test_form_keeps_a_path_ending_in_its_answer(path):
    assert FormFilter().check(path, NUMBER).passed


@pytest.mark.parametrize("path, reason", [
    ("He makes 18 dollars.", "no final answer on the last line"),
    ("]\n{\nThe answer is 72.", "no reasoning before the answer (0 words or numbers)"),
    ("The answer is 18.\nPlease give the next step.", "no final answer on the last line"),
    ("The answer is 35.\nSo 31 + 35 = 66.\nThe answer is 66.", "answers 66 on the last line but 35 before it"),
    ("He sells 9 eggs at 2 dollars.\nThe answer is 18.\nStep 1: The answer is 18.\nThe answer is 18.",
     "states the final answer 3 times"),
    ("Since the given answer is 18, we work back.\nThe answer is 18.", "trace of the prompt: 'the given answer'"),
    ("I think about the answer. " * 5 + "\nThe answer is 18.",
     "degenerate repetition: 'i think about the answer' 5 times"),
    ("Step 1: Decreased 201 by 4.\n" * 9 + "The answer is 18.", "degenerate repetition: 'decreased N by N' 9 times"),
    # Two hinted paths the embedded model wrote on GSM8K train (problems 10 and 13), which answer
    # matching and the other filters kept: the prompt's JSON scaffolding, echoed.
    ("][121 ]\n\n```\n```\n\nYour output fields are:\n```\n[121]\n```\n\nYour output JSON object is:\n```\n{\n"
     "The answer is 121.", "echoes the prompt's format: 'json object'"),
    ("The answer is }\n{ 35 }\n\nOutput: {\n{ 5 }\n{ 35 }}\n\nOutput: JSON object with 35 fields:\nThe answer is 35.",
     "echoes the prompt's format: 'json object'"),
    ("He pays 10 dollars.\n{ 35 }\n{ 5 }\n[ 35 ]\nThe answer is 35.",
     "mostly stray symbols: 3 of 4 reasoning lines have no word or calculation"),
    ("He has 16 - 3 - 4 = 9 eggs left, and he sells them at 2 dollars each, and\nThe answer is 18.",
     "the reasoning stops mid-sentence: 'and he sells them at 2 dollars each, and'"),
])
def test_form_defects(path, reason):
    verdict = FormFilter().check(path, NUMBER)
    assert not verdict.passed and verdict.reason == reason


def test_a_path_cut_off_by_its_token_budget_is_dropped():
    # A STaR path the embedded model wrote on StrategyQA train, cut where its string bound ended.
    cut = ("A recent study found that Genghis Khan's descendants have a higher percentage of their DNA than "
           "Julius Caesar's descendants. Genghis Khan himself is a male, and\nThe answer is yes.")
    assert FormFilter().check(cut, YES_NO).reason.startswith("the reasoning stops mid-sentence")
    assert FormFilter().check(cut.replace(", and\n", ".\n"), YES_NO).passed


def test_form_length_limit():
    assert FormFilter(max_chars=20).check(SOUND, NUMBER).reason.startswith("too long")


def test_a_four_option_analysis_may_repeat_a_verdict_once_per_wrong_option():
    wrong = {"A": "condensation", "C": "precipitation", "D": "runoff"}
    analysis = "".join(f"{letter}) {choice}\n- This is incorrect.\n\n" for letter, choice in wrong.items())
    assert FormFilter().check(analysis + "The answer is B.", CHOICE).passed
    assert not FormFilter().check(analysis + "This is incorrect.\nThe answer is B.", CHOICE).passed


def test_mentions_hint_is_case_insensitive():
    assert mentions_hint("As the Hint says, it is 18.") == "as the hint"
    assert mentions_hint("It is 18.") is None


def test_final_answer_reads_the_last_line():
    assert final_answer(SOUND, NUMBER) == "18"
    assert final_answer("The answer is B) evaporation.", CHOICE) == "B"
    assert final_answer("The answer is X.", CHOICE) is None


# ---------------------------------------------------------------------------------------------
# Support for choices


SUPPORTED_CHOICE = """Let's look at each option:

A) condensation
- This is incorrect. Condensation turns vapor into droplets, which keeps water in the air as clouds.

B) evaporation
- This is correct. Evaporation turns liquid water from oceans and lakes into vapor that rises.

C) precipitation
- This is incorrect. Precipitation brings water down to the ground.

D) runoff
- This is incorrect. Runoff moves water across land into rivers.

Therefore, the correct answer is B) evaporation.
The answer is B."""


def test_choice_support_keeps_a_reasoned_choice():
    assert ChoiceSupportFilter().check(SUPPORTED_CHOICE, CHOICE).passed


@pytest.mark.parametrize("path, reason", [
    ("The answer is B) evaporation.", "names B without reasons of its own"),
    ("A) condensation\nB) evaporation\nC) precipitation\nD) runoff\n\nThe answer is B) evaporation.",
     "names B without reasons of its own"),
    ("The answer is B) runoff.", "answers B with the words of option D"),
    (SUPPORTED_CHOICE.replace("B) evaporation\n- This is correct.", "B) evaporation\n- This is incorrect."),
     "its own analysis rejects option B"),
    (SUPPORTED_CHOICE.replace("D) runoff\n- This is incorrect.", "D) runoff\n- This is correct."),
     "argues for option D as it does for B"),
    (SUPPORTED_CHOICE.replace("the correct answer is B) evaporation.", "the best process is precipitation."),
     "concludes for option C but answers B"),
    (SUPPORTED_CHOICE.replace("Let's look at each option:", "The answer is D."),
     "answers B but also states D as the answer"),
])
def test_choice_support_defects(path, reason):
    verdict = ChoiceSupportFilter().check(path, CHOICE)
    assert not verdict.passed and verdict.reason == reason


def test_yes_no_needs_reasons_before_the_answer():
    reasoned = ("Karachi is the largest city of Pakistan, where most people are Muslim and few are Christian. "
                "Crucifixes are Christian objects, so they are rare there.\nThe answer is no.")
    assert ChoiceSupportFilter().check(reasoned, YES_NO).passed
    answer_first = "The answer is no. Karachi is not a place where crucifixes are found.\nThe answer is no."
    assert ChoiceSupportFilter().check(answer_first, YES_NO).reason == "says no before giving reasons"
    flipped = reasoned.replace("so they are rare there.", "so yes, one could be there.")
    assert ChoiceSupportFilter().check(flipped, YES_NO).reason == "answers no but also yes"


def test_choice_support_ignores_other_answer_types():
    assert ChoiceSupportFilter().check("The answer is 18.", NUMBER).passed


# ---------------------------------------------------------------------------------------------
# Judge


def test_judge_verdict_and_rationale_become_provenance():
    lm = DummyLM([{"rationale": "It states 12 x 6 = 70, which is false.", "supports_answer": "False"},
                  {"rationale": "Every step follows.", "supports_answer": "True"}])
    judge = JudgeFilter(lm, dspy.ChatAdapter())
    rejected = judge.check("12 x 6 = 70\nThe answer is 70.", NUMBER)
    assert not rejected.passed and rejected.reason == "judge: It states 12 x 6 = 70, which is false."
    assert rejected.detail == {"model": "dummy", "supports_answer": False,
                               "rationale": "It states 12 x 6 = 70, which is false."}
    kept = judge.check(SOUND, NUMBER)
    assert kept.passed and kept.detail["rationale"] == "Every step follows."


def test_an_unreadable_judgement_keeps_nothing():
    verdict = JudgeFilter(DummyLM([{"rationale": "hmm"}] * 3), dspy.ChatAdapter()).check(SOUND, NUMBER)
    assert not verdict.passed and verdict.reason.startswith("judge failed")


def test_judge_sees_question_path_and_gold():
    lm = DummyLM([{"rationale": "ok", "supports_answer": "True"}])
    JudgeFilter(lm, dspy.ChatAdapter()).check(SOUND, NUMBER)
    prompt = lm.history[-1]["messages"][-1]["content"]
    assert NUMBER.question in prompt and "He makes 9 * $2 = $18." in prompt and "18" in prompt


@pytest.mark.model
def test_embedded_model_judges_a_path():
    from regenesis.models import resolve_lm

    verdict = JudgeFilter(resolve_lm("local/smollm2-135m")).check("5 + 6 = 11.\nThe answer is 11.", Example(
        "s1", "Allan brought 5 balloons and Jake 6 more than Allan. How many did Jake bring?", "11", "number"))
    assert verdict.filter == "judge"
    assert isinstance(verdict.detail.get("supports_answer"), bool) or "error" in verdict.detail


# ---------------------------------------------------------------------------------------------
# Building and running


def test_build_filters_follows_the_options(monkeypatch):
    assert [f.name for f in build_filters(FilterOptions())] == ["form", "arithmetic", "number_support",
                                                                "choice_support"]
    assert build_filters(FilterOptions(form=False, arithmetic=False, number_support=False,
                                       choice_support=False)) == []
    monkeypatch.setattr(pipeline, "resolve_lm", lambda spec: dspy.LM(spec, api_key="unused"))
    assert [f.name for f in build_filters(FilterOptions(judge_model="openai/gpt-4o-mini"))][-1] == "judge"


def test_each_check_has_its_own_module_and_paragraph(monkeypatch):
    monkeypatch.setattr(pipeline, "resolve_lm", lambda spec: dspy.LM(spec, api_key="unused"))
    checks = build_filters(FilterOptions(judge_model="openai/gpt-4o-mini"))
    modules = [Path(sys.modules[type(check).__module__].__file__).name for check in checks]
    assert len(set(modules)) == len(checks)
    for check, module in zip(checks, modules):
        assert f"``{check.name}`` (``{module}``" in filters_package.__doc__


class Recording:
    def __init__(self, name, passed):
        self.name, self.passed, self.calls = name, passed, 0

    def check(self, path, example):
        self.calls += 1
        return Verdict(self.name, self.passed, "" if self.passed else "no")


def test_check_path_stops_at_the_first_failure():
    cheap, failing, judge = Recording("form", True), Recording("arithmetic", False), Recording("judge", True)
    verdicts = check_path([cheap, failing, judge], SOUND, NUMBER)
    assert [v.filter for v in verdicts] == ["form", "arithmetic"] and judge.calls == 0
    assert all(v.passed for v in check_path([cheap, judge], SOUND, NUMBER))


# ---------------------------------------------------------------------------------------------
# Calibration on real model-written paths, labelled by hand


def load_benchmark():
    spec = importlib.util.spec_from_file_location("quality_benchmark", ROOT / "benchmarks" / "quality.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


# (kept precision, share of sound paths kept) reached on the fixture, per configuration.
REACHED = {
    "answer matching only": (0.388, 1.0),
    "form": (0.741, 1.0),
    "arithmetic": (0.408, 1.0),
    "number_support": (0.392, 1.0),
    "choice_support": (0.656, 1.0),
    "all together": (0.870, 1.0),
}
MARGIN = 0.02


@pytest.mark.skipif(not FIXTURE.is_file(), reason="the shared fixture of labelled paths is absent")
def test_filters_on_labelled_paths():
    benchmark = load_benchmark()
    rows = benchmark.load_rows(FIXTURE)
    scores = {s.name: s for s in benchmark.score_table(rows)}
    assert set(scores) == set(REACHED)
    for name, (precision, sound_kept) in REACHED.items():
        assert scores[name].precision >= precision - MARGIN, name
        assert scores[name].sound_kept >= sound_kept - MARGIN, name
    arithmetic, repetition = benchmark.detections(rows)
    # The one alarm is a real slip the labels miss (18 - 80 = -52); three of the four misses state no
    # checkable equality (a claimed remainder, a claimed program output) and one equates bare numbers.
    assert (arithmetic.caught, arithmetic.false_alarms) == (12, 1)
    assert repetition.caught == repetition.marked == 7


NUMBER = Example(id="n", question="Natalia sold 48 clips in April and half as many in May. How many in all?",
                 gold="72", answer_type="number")


@pytest.mark.parametrize("path, passed", [
    ("In May she sold 48 / 2 = 24 clips. In all 48 + 24 = 72 clips.\nThe answer is 72.", True),
    ("She sold clips: \\[48 + 24 = 72\\] clips. Therefore, the answer is \\(\\boxed{72}\\).", True),
    ("Natalia sold clips to 48 friends, then half a friend was sold 3 times.\nThe answer is 72.", False),
    ("She sold 48 clips.\nThe answer is 72.\nThe correct answer is 72.", False),
])
def test_number_support_needs_the_answer_in_the_reasoning(path, passed):
    from regenesis.optimize.filters import NumberSupportFilter

    assert NumberSupportFilter().check(path, NUMBER).passed is passed


def test_answer_lines_are_not_reasoning():
    from regenesis.optimize.filters import FormFilter

    verdict = FormFilter().check("The answer is 72\nThe answer is 72.", NUMBER)
    assert not verdict.passed and verdict.reason.startswith("no reasoning before the answer")


# The hint-leak classifier, measured on sentences a hinted path can contain (gold answer 10).
LEAKING = [
    "Add the correct answer of $10 to the total.",
    "We know the answer is 10, so each pen costs 2.",
    "The given answer is 10, so 5 pens cost 10 dollars.",
    "Since the answer is 10, five pens must cost 10 dollars.",
    "We are told that the answer is 10.",
    "Working backwards from the answer of 10, one pen costs 2.",
    "To reach the correct answer 10, multiply 5 by 2.",
    "The expected result is 10 dollars.",
    "This matches the right answer, 10.",
    "The answer was provided as 10, so we check 5 * 2 = 10.",
    "I already know the final answer: it is 10.",
    "Because the answer must be 10.00, the price is 2.",
]
CLEAN = [
    "One pen costs 6 / 3 = 2 dollars, so five cost 5 * 2 = 10 dollars.",
    "The answer is 10.",
    "So the final answer is 10.",
    "Five pens cost 10 dollars in total.",
    "We know that 3 pens cost 6 dollars, so one pen costs 2.",
    "To get the price of 5 pens, multiply 5 by 2 = 10.",
    "Since 6 / 3 = 2, five pens cost 10.",
    "The total for 5 pens is 10 dollars.",
    "Check: 10 / 5 = 2, which is the price of one pen.",
    "Since the answer is 100 only if pens cost 20, that is not our case; 5 * 2 = 10.",
    "The result of 5 * 2 is 10.",
]


def test_the_hint_leak_classifier_catches_answer_references_and_spares_plain_reasoning():
    flagged_leaks = [s for s in LEAKING if hint_leak(s, "10")]
    flagged_clean = [s for s in CLEAN if hint_leak(s, "10")]
    precision = len(flagged_leaks) / max(1, len(flagged_leaks) + len(flagged_clean))
    recall = len(flagged_leaks) / len(LEAKING)
    print(f"hint-leak classifier: precision {precision:.2f}, recall {recall:.2f} "
          f"on {len(LEAKING)} leaking and {len(CLEAN)} clean sentences")
    assert flagged_clean == [] and set(flagged_leaks) == set(LEAKING)


def test_hint_leak_names_the_family_and_is_bounded():
    assert hint_leak("We know the answer is 10.", "10") == "answer said to be known"
    assert hint_leak("Add the correct answer of $10.", "10") == "known answer named"
    assert hint_leak("As the hint says, it is 18.", "18") == "phrase 'as the hint'"
    assert hint_leak("Since the answer is " + "9" * 50_000, "10") is None
