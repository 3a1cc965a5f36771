"""Hostile model output: every reader and checker returns, in bounded time, and the path is rejected
with a named reason, never a crash or a stall.

Each call runs in a thread that must return within ``STALL_SECONDS``: a stall detector, not a
speed target (``benchmarks/hostile.py`` prints the times).
"""

import json
import re
import threading

import pytest

from regenesis.answers import latex, latex_sympy
from regenesis.tasks.example import Example
from regenesis.tasks import load_task
from regenesis.answers import answers_equal, extract_answer, final_answer_spans, is_correct
from regenesis.optimize.filters import (
    ArithmeticFilter,
    ChoiceSupportFilter,
    FilterOptions,
    FormFilter,
    JudgeFilter,
    NumberSupportFilter,
    build_filters,
    check_path,
    derives_answer,
    hostile_shape,
    mentions_hint,
    power_bombs,
    stated_computations,
)
from regenesis.models import resolve_lm
from regenesis.optimize.bootstrap import synthesize
from regenesis.optimize.config import SynthesisConfig
from tests.fake_server import FakeServer, fields_reply, last_user_text

STALL_SECONDS = 20.0
SOUND = "He has 16 - 3 - 4 = 9 eggs left.\nHe sells them at $2 each: 9 * 2 = 18 dollars.\nThe answer is 18."
FAKE_KEY = "sk-test-0123456789abcdefABCDEF0123"

# (name, model output, why the default filters reject it, why they reject it when the form filter
# allows any length): each reason is the start of the failed verdict's ``reason``.
HOSTILE_OUTPUTS = [
    ("250 nested parentheses",
     "He adds it up: " + "(" * 250 + "16 - 3" + ")" * 250 + " = 13 eggs.\n" + SOUND,
     "nested 250 levels deep", "nested 250 levels deep"),
    ("10,000 nested parentheses and braces",
     "So " + "(" * 10_000 + "{" * 10_000 + "1" + "}" * 10_000 + ")" * 10_000 + " = 1.\n" + SOUND,
     "too long:", "too long to check:"),
    ("boxed (1/2)^{10^{10}}",
     "Halving it ten billion times leaves the share.\nThe answer is $\\boxed{(1/2)^{10^{10}}}$.",
     "power bomb:", "power bomb:"),
    ("power tower 2^2^2^2^2^2",
     "The count doubles at every level: 2^{2^{2^{2^{2^{2}}}}} ways.\n" + SOUND,
     "power bomb:", "power bomb:"),
    ("10^{10^{10}} as a number answer",
     "There are that many grains of sand, and more.\nThe answer is 10^{10^{10}}.",
     "power bomb:", "power bomb:"),
    ("100k spaces then not",
     "He sells 9 * 2 = 18 dollars of eggs.\nThe answer is" + " " * 100_000 + "not 18",
     "too long:", "too long to check:"),
    ("150,000-character output",
     ("He has 16 - 3 - 4 = 9 eggs left. " * 4_546)[:150_000] + "\nThe answer is 18.",
     "too long:", "too long to check:"),
    ("rich markup [bold]x[/bold]",
     "[bold]He has 16 - 3 - 4 = 9 eggs left.[/bold]\nHe sells them at $2 each: 9 * 2 = 18 dollars.\nThe answer is 18.",
     "console markup:", "console markup:"),
    ("rich markup [/]",
     "He has 16 - 3 - 4 = 9 eggs left.[/]\nHe sells them at $2 each: 9 * 2 = 18 dollars.\nThe answer is 18.",
     "console markup:", "console markup:"),
    ("ANSI escapes",
     "\x1b[31mHe has 16 - 3 - 4 = 9 eggs left.\x1b[0m\nHe sells them at $2 each: 9 * 2 = 18 dollars.\n"
     "The answer is 18.",
     "control character:", "control character:"),
    ("echoed fake key",
     f"Using the key {FAKE_KEY}, he has 16 - 3 - 4 = 9 eggs left.\n"
     "He sells them at $2 each: 9 * 2 = 18 dollars.\nThe answer is 18.",
     "holds a secret:", "holds a secret:"),
]
IDS = [name for name, *_ in HOSTILE_OUTPUTS]

NLI = ("entailment", "neutral", "contradiction")
EXAMPLES = [
    Example("n", "Tom has 16 eggs, eats 3 and bakes with 4. He sells the rest at $2 each. How much?", "18", "number"),
    Example("l", "Which one?\nA) condensation\nB) evaporation", "B", "letter", choices=("condensation", "evaporation")),
    Example("y", "Is it raining?", "no", "yes_no"),
    Example("t", "Premise and hypothesis.", "neutral", "label", labels=NLI),
    Example("m", "What is half of one?", "\\frac{1}{2}", "math"),
    Example("x", "Name the colour.", "blue", "text"),
]
NUMBER = EXAMPLES[0]


def finishes(call, *args):
    """``call(*args)`` run in a thread; the test fails if it has not returned after ``STALL_SECONDS``."""
    outcome = {}

    def run():
        try:
            outcome["value"] = call(*args)
        except BaseException as error:  # handed to the test thread below
            outcome["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(STALL_SECONDS)
    assert not thread.is_alive(), f"{getattr(call, '__name__', call)} still running after {STALL_SECONDS} s"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def test_the_sound_path_passes_every_filter():
    """The hostile paths are this path plus the hostile part: what rejects them is that part."""
    assert all(verdict.passed for verdict in check_path(build_filters(FilterOptions()), SOUND, NUMBER))


@pytest.mark.parametrize("text", [text for _, text, *_ in HOSTILE_OUTPUTS], ids=IDS)
def test_readers_return_on_hostile_output(text):
    for example in EXAMPLES:
        answer = finishes(extract_answer, text, example.answer_type, example.choices, example.labels)
        assert answer is None or isinstance(answer, str)
        assert finishes(is_correct, text, example) in (True, False)
        assert finishes(answers_equal, text, example.gold, example.answer_type) in (True, False)
        assert finishes(answers_equal, example.gold, text, example.answer_type) is False
    assert isinstance(finishes(final_answer_spans, text), list)


@pytest.mark.parametrize("text, reason", [(text, reason) for _, text, reason, _ in HOSTILE_OUTPUTS], ids=IDS)
def test_check_path_rejects_hostile_output_with_its_reason(text, reason):
    for example in EXAMPLES:
        verdicts = finishes(check_path, build_filters(FilterOptions()), text, example)
        assert [(v.filter, v.passed) for v in verdicts] == [("form", False)]
        assert verdicts[0].reason.startswith(reason), verdicts[0].reason


@pytest.mark.parametrize("text, reason", [(text, reason) for _, text, _, reason in HOSTILE_OUTPUTS], ids=IDS)
def test_every_filter_returns_on_hostile_output(text, reason):
    """Each filter on its own (not through check_path, so that an exception would surface)."""
    lenient_form = FormFilter(max_chars=10**6)
    assert finishes(lenient_form.check, text, NUMBER).reason.startswith(reason)
    for path_filter in (ArithmeticFilter(), NumberSupportFilter(), ChoiceSupportFilter()):
        for example in EXAMPLES:
            verdict = finishes(path_filter.check, text, example)
            assert verdict.filter == path_filter.name
    assert isinstance(finishes(stated_computations, text), list)
    assert finishes(derives_answer, text, NUMBER) in (True, False)
    assert finishes(mentions_hint, text) is None


def test_a_long_path_fails_every_filter_that_cannot_read_it():
    """Also the judge, which would send it to a model: the server sees no request."""
    text = SOUND + " " * 25_000
    with FakeServer(lambda body: fields_reply(body, {"supports_answer": "True"})) as server:
        judge = JudgeFilter(resolve_lm("openai/judge", api_base=server.url, num_retries=0))
        for path_filter in (ArithmeticFilter(), NumberSupportFilter(), ChoiceSupportFilter(), judge):
            verdict = path_filter.check(text, NUMBER if path_filter.name != "choice_support" else EXAMPLES[2])
            assert not verdict.passed and verdict.reason.startswith("too long to check: 25"), path_filter.name
        assert judge.check(SOUND, NUMBER).passed and len(server.requests) == 1
    assert stated_computations(text) == [] and not derives_answer(text, NUMBER)


def test_deep_nesting_is_unparsed_not_an_error():
    """250 and 5,000 levels: the arithmetic check reads nothing there (it raised RecursionError)."""
    for depth in (250, 5_000):
        text = "(" * depth + "2 + 2" + ")" * depth + " = 5 apples."
        assert stated_computations(text) == []
    assert [s.text for s in stated_computations("((((2 + 2)))) = 5 apples.") if not s.holds] == ["((((2 + 2)))) = 5"]


def test_power_bombs_are_found_and_small_powers_are_not():
    assert power_bombs("2^{2^{2^{2^{2^{2}}}}}") and power_bombs("(1/2)^{10^{10}}") and power_bombs("x^{10^{10}}")
    assert power_bombs("\\boxed{10^{5000}}")
    assert power_bombs("2^10 = 1024, 10^{6} people, (1/2)^{3} = 0.125, 2^{2^{3}} = 256, e^{-x^2}") == []
    assert [s.holds for s in stated_computations("2^{2^{3}} = 256 and 2^10 = 1024")] == [True, True]


def test_hostile_shapes_spare_ordinary_brackets_and_math():
    for text in ("x is in [0, 1] and a[i] = 3 for (a, b].", "\\[ x = \\frac{1}{2} \\]", "[A] is wrong, [1] says so.",
                 "((1 + (2 + 3)) * 4) = 24", "The risk is 1 in 10^{6}.", "Use the skeleton key.",
                 "Tabs\tand\r\nnewlines are fine.",
                 "Dyck input: " + "[ { ( " * 7 + "\nStack so far: " + "[ { ( " * 7):  # Dyck: 21 deep, unclosed
        assert hostile_shape(text) == "", text


def test_rich_markup_of_every_kind_is_found():
    for markup in ("[bold red]x", "[/]", "x[/bold]", "[link=https://example.com]here", "[on blue]x", "[#ff0000]x"):
        assert hostile_shape(f"He has 9 eggs {markup} left.").startswith("console markup:"), markup


def test_a_secret_is_found_by_its_shape_or_because_it_was_registered_and_never_echoed():
    registered = "hunter2-registered-hostile-key"  # no key shape: found because resolve_lm registered it
    resolve_lm("openai/some-model", api_base="http://127.0.0.1:9/v1", api_key=registered)
    for key in (FAKE_KEY, registered):
        reason = FormFilter().check(SOUND.replace("eggs left", f"eggs left ({key})"), NUMBER).reason
        assert reason.startswith("holds a secret:") and key[4:] not in reason


class RaisingFilter:
    """A user's filter with a bug: check_path must fail the path, not the run."""

    name = "buggy"

    def check(self, path, example):
        return {}["missing"]


def test_a_filter_that_raises_fails_the_path_with_checker_error():
    verdicts = check_path([FormFilter(), RaisingFilter(), ArithmeticFilter()], SOUND, NUMBER)
    assert [(v.filter, v.passed, v.reason) for v in verdicts] == [
        ("form", True, ""), ("buggy", False, "checker_error: KeyError")]


@pytest.mark.parametrize("spaces", [1_000, 20_000])
def test_whitespace_runs_are_read_in_linear_time(spaces):
    """"not" and "option" before a long run of blanks: the patterns behind them backtracked (cubic, quadratic)."""
    blanks = " " * spaces
    for text in ("The answer is not" + blanks + "x 5", "option" + blanks + "x", "answer is" + blanks + "x"):
        for example in EXAMPLES:
            finishes(extract_answer, text, example.answer_type, example.choices, example.labels)
        finishes(ChoiceSupportFilter().check, text, EXAMPLES[2])
    assert extract_answer("The answer is not 20 but 18.", "number") == "18"
    assert extract_answer("The answer is not" + " " * 1_000 + "20, 18", "number") == "18"


@pytest.mark.parametrize("bomb", [
    "(1/2)^{10^{10}}", "(1/2)^{10^{100}}", "2^{2^{2^{2^{2^{2}}}}}", "10^{10^{10}}", "\\exp{\\exp{\\exp{10}}}",
    "\\sin{(x^{1000})^{1000}}", "2^{2^{1000x}}", "(10^{1999}+7)^{1/999}", "9^{900}" * 30, "-" * 200 + "1",
    "(" * 100 + "1" + ")" * 100,
])
def test_latex_bombs_are_not_comparable_and_never_evaluated(bomb):
    """Refused by the parser's bounds before sympy computes: no sympy value comes back for them."""
    assert latex_sympy.to_sympy(latex.normalize_latex(bomb)) is None
    assert answers_equal(bomb, bomb, "math") and not finishes(answers_equal, bomb, "1", "math")


def test_latex_within_the_bounds_still_compares():
    for left, right in (("2^{10}", "1024"), ("(1/2)^{3}", "\\frac{1}{8}"), ("\\sqrt{8}", "2\\sqrt{2}"),
                        ("x^2+2x+1", "(x+1)^2"), ("2^{n}", "2^n"), ("e^{x} e^{x}", "e^{2x}"), ("\\sin{\\pi}", "0")):
        assert answers_equal(left, right, "math"), (left, right)
    assert not answers_equal("\\sqrt{x^2}", "x", "math")  # a negative sample point tells them apart


def test_synthesize_drops_hostile_paths_and_finishes_also_when_run_again(tmp_path):
    """Through DSPy's own client and a local server: each problem's only path is hostile. The run
    finishes, every problem is done with no row and its path counted under "form"; the rerun (which
    replays the cached replies, as a resumed run does) finishes too."""
    cases = [(name, text) for name, text, *_ in HOSTILE_OUTPUTS if len(text) < 50_000]
    problems = tmp_path / "problems.jsonl"
    problems.write_text("".join(json.dumps({"question": f"Problem {k}: what is 9 plus 9?", "answer": 18}) + "\n"
                                for k in range(len(cases))))

    def responder(body):
        k = int(re.search(r"Problem (\d+):", last_user_text(body)).group(1))
        return fields_reply(body, {"reasoning": cases[k][1], "answer": "18"})

    examples = load_task(str(problems), answer_type="number")
    config = SynthesisConfig(method="cot", generations=1, num_threads=1, hint_pass=False)
    with FakeServer(responder) as server:
        lm = resolve_lm("openai/hostile", api_base=server.url, num_retries=0)
        for _ in range(2):
            report = finishes(lambda: synthesize(lm, examples, tmp_path / "out", config, progress=False))
            assert (report["finished"], report["failed"], report["kept_rows"]) == (len(cases), 0, 0)
    assert report["dropped"] == {"form": len(cases)}
