"""The matcher audit's comparison with the field's reference extractors (lm-eval-harness, Math-Verify).

Hand-computed cases: a ``#### 42`` answer that lm-eval's strict rule, its flexible rule and ours all
accept; an answer only the flexible rule and ours read; ``\\frac{1}{2}`` against ``0.5`` under
Math-Verify and ours; and the agreement, precision and recall the benchmark counts from them.
Skipped unless the ``audit`` extra is installed.
"""

from __future__ import annotations

import pytest

pytest.importorskip("lm_eval")
pytest.importorskip("math_verify")

from regenesis.tasks.example import Example  # noqa: E402
from tests.benchmark_scripts import load_benchmark  # noqa: E402

audit = load_benchmark("matcher_audit")
references = audit.reference_extractors

GSM8K = Example(id="gsm8k/hand/0", question="How many?", gold="42", answer_type="number", task="gsm8k")
HALF = Example(id="math/hand/0", question="Half of one?", gold="\\frac{1}{2}", answer_type="math", task="math")


def test_a_gsm8k_hash_line_is_read_alike_by_strict_flexible_and_ours():
    rules = references.gsm8k_rules()
    text = "She buys 6 packs of 7.\n#### 42"
    assert rules["strict-match"](text, GSM8K) == references.Verdict("42", True)
    assert rules["flexible-extract"](text, GSM8K).correct
    assert references.ours(text, GSM8K) == references.Verdict("42", True)


def test_an_answer_line_is_read_by_flexible_and_ours_but_not_by_strict():
    rules = references.gsm8k_rules()
    text = "6 packs of 7 make 42.\nThe answer is 42."
    assert rules["strict-match"](text, GSM8K) == references.Verdict(None, False)
    assert rules["flexible-extract"](text, GSM8K).correct
    assert references.ours(text, GSM8K).correct


def test_lm_eval_rules_come_from_its_installed_gsm8k_task():
    rules = references.gsm8k_rules()
    assert rules["strict-match"].filter.regex_pattern == "#### (\\-?[0-9\\.\\,]+)"
    assert rules["flexible-extract"].filter.group_select == -1
    assert rules["strict-match"].match_settings["ignore_case"] is True


def test_math_verify_and_ours_take_a_decimal_for_the_fraction_and_reject_another_value():
    assert references.math_verify("The answer is $0.5$.", HALF).correct
    assert references.ours("The answer is $0.5$.", HALF).correct
    assert not references.math_verify("The answer is $\\boxed{\\frac{1}{3}}$.", HALF).correct
    assert not references.ours("The answer is $\\boxed{\\frac{1}{3}}$.", HALF).correct


def test_the_benchmark_counts_agreement_precision_and_recall_by_hand():
    texts = [audit.AuditedText("writings", "Total:\n#### 42", GSM8K, True),
             audit.AuditedText("writings", "The answer is 42.", GSM8K, True),
             audit.AuditedText("writings", "Total:\n#### 41", GSM8K, False),
             audit.AuditedText("model outputs", "I am not sure.", GSM8K, None)]
    readings = audit.read_all("gsm8k", texts)
    assert readings.disagreements("lm-eval strict-match") == [1]
    assert readings.disagreements("lm-eval flexible-extract") == []
    assert readings.confusion("lm-eval strict-match") == (1, 0, 1)  # precision 1/1, recall 1/2
    assert readings.confusion("ours") == (2, 0, 0)
    assert readings.accepts("ours", "model outputs") == 0


def test_math_gold_solutions_give_a_true_text_and_one_ending_in_a_different_answer():
    solution = "So $x = \\frac{1}{2}$, and the answer is $\\boxed{\\frac{1}{2}}$."
    examples = [Example(id=f"math/hand/{index}", question="?", gold=gold, answer_type="math", task="math",
                        meta={"solution": solution.replace("\\frac{1}{2}", gold)})
                for index, gold in enumerate(["\\frac{1}{2}", "7"])]
    texts = audit.gold_solution_texts(examples)
    assert [(item.text, item.truth) for item in texts[:2]] == [
        (solution, True), ("So $x = \\frac{1}{2}$, and the answer is $\\boxed{7}$.", False)]
    readings = audit.read_all("math", texts)
    assert readings.confusion("Math-Verify") == readings.confusion("ours") == (2, 0, 0)


def test_math_verify_with_its_timeouts_refuses_to_run_in_a_worker_thread():
    outcome, _ = references.in_worker_thread(lambda: references.math_verify("$\\frac{1}{2}$", HALF), 60)
    assert outcome.startswith("raised ValueError") and "threaded environment" in outcome


def test_a_missing_outputs_folder_is_one_line_and_exit_2(tmp_path, capsys):
    assert audit.main(["--reference", "--outputs", str(tmp_path / "absent")]) == 2
    assert capsys.readouterr().err.startswith("--outputs: ")
