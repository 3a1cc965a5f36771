"""Paired statistics against hand-computed cases and simulations whose true difference is known."""

import json
import math

import numpy as np
import pytest

from regenesis.tasks.example import Example
from regenesis.evals.paired import (
    Z_ALPHA, Z_POWER, MisalignedItems, PairedTable, compare_domain, compare_runs, compare_task, mcnemar_exact,
    minimum_detectable_effect, outcomes_of, pair, paired_table, raw_outcomes)


def _simulated_table(rng, n, only_baseline, only_other, task="sim"):
    """n items whose outcome pairs are drawn with the given discordant probabilities."""
    kinds = rng.choice(3, size=n, p=[only_baseline, only_other, 1 - only_baseline - only_other])
    return PairedTable(task, n, int(np.sum(kinds == 0)), int(np.sum(kinds == 1)))


def test_mcnemar_exact_matches_hand_computed_tables():
    # b=8, c=2: P(X <= 2) for X ~ Bin(10, 1/2) is (1 + 10 + 45) / 1024, doubled
    assert mcnemar_exact(8, 2) == pytest.approx(2 * 56 / 1024) == pytest.approx(0.109375)
    assert mcnemar_exact(2, 8) == mcnemar_exact(8, 2)
    assert mcnemar_exact(0, 6) == pytest.approx(2 / 64)
    assert mcnemar_exact(5, 5) == 1.0
    assert mcnemar_exact(0, 0) == 1.0


def test_pair_counts_discordant_items_and_skips_model_errors():
    baseline = {"a": True, "b": True, "c": False, "d": False, "e": None, "f": True}
    other = {"a": True, "b": False, "c": True, "d": True, "e": True, "f": None}
    table = pair("t", baseline, other)
    assert (table.n, table.b, table.c, table.skipped) == (4, 1, 2, 2)
    assert table.delta == pytest.approx(0.25)


def test_identical_methods_give_no_difference():
    outcomes = {f"t/test/{i}": i % 3 == 0 for i in range(30)}
    comparison = compare_task(pair("t", outcomes, dict(outcomes)))
    assert (comparison.delta, comparison.ci_low, comparison.ci_high, comparison.p_value) == (0, 0, 0, 1.0)
    assert not comparison.holds


def test_misaligned_items_are_refused_by_name():
    with pytest.raises(MisalignedItems, match=r"gsm8k: .*not evaluated on the same items.*1 only in the baseline"):
        pair("gsm8k", {"x": True, "y": False}, {"y": True, "z": True})


def test_bootstrap_interval_contains_the_true_difference_in_a_simulated_case():
    rng = np.random.default_rng(7)
    table = _simulated_table(rng, 400, only_baseline=0.10, only_other=0.20)  # true Δ = +10 points
    comparison = compare_task(table, seed=1)
    assert comparison.ci_low < 10 < comparison.ci_high
    assert comparison.holds  # 400 items detect 10 points at this discordance


def test_bootstrap_interval_covers_the_true_difference_about_95_percent_of_the_time():
    rng = np.random.default_rng(11)
    covered = 0
    for trial in range(300):
        comparison = compare_task(_simulated_table(rng, 150, 0.12, 0.18), resamples=2000, seed=trial)
        covered += comparison.ci_low <= 6 <= comparison.ci_high
    assert 0.90 <= covered / 300 <= 0.99


def test_holds_needs_both_the_exact_test_and_the_interval():
    few = compare_task(PairedTable("t", 40, 0, 4))  # bootstrap excludes 0, exact p = 0.125
    assert few.ci_low > 0 and few.p_value == pytest.approx(0.125) and not few.holds
    many = compare_task(PairedTable("t", 40, 0, 8))
    assert many.p_value == pytest.approx(2 / 256) and many.holds


def test_domain_average_is_the_mean_of_task_changes_and_its_test_agrees_with_mcnemar_for_one_task():
    tables = [PairedTable("a", 40, 2, 8), PairedTable("b", 100, 10, 10)]
    domain = compare_domain("in-domain average", tables)
    assert domain.delta == pytest.approx((6 / 40 * 100 + 0) / 2)
    assert domain.test == "sign_flip" and (domain.b, domain.c, domain.n) == (12, 18, 140)
    single = compare_domain("one", [PairedTable("a", 60, 4, 13)], resamples=20_000)
    assert single.p_value == pytest.approx(mcnemar_exact(4, 13), abs=0.01)


def test_domain_interval_contains_the_true_macro_difference():
    rng = np.random.default_rng(3)
    tables = [_simulated_table(rng, 300, 0.10, 0.25, "a"), _simulated_table(rng, 300, 0.15, 0.15, "b")]
    domain = compare_domain("in", tables)
    assert domain.ci_low < 7.5 < domain.ci_high  # true changes +15 and 0 points


def test_minimum_detectable_effect_solves_the_mcnemar_sample_size_formula():
    delta = minimum_detectable_effect([PairedTable("t", 100, 15, 15)])
    psi = 0.3
    needed = (Z_ALPHA * math.sqrt(psi) + Z_POWER * math.sqrt(psi - delta ** 2)) ** 2 / delta ** 2
    assert needed == pytest.approx(100, rel=1e-6)
    assert minimum_detectable_effect([PairedTable("t", 400, 60, 60)]) < delta
    assert minimum_detectable_effect([PairedTable("t", 3, 1, 1)]) == math.inf


def test_a_difference_of_the_minimum_detectable_size_is_detected_about_80_percent_of_the_time():
    n, psi = 200, 0.3
    delta = minimum_detectable_effect([PairedTable("t", n, 30, 30)])
    rng = np.random.default_rng(5)
    detected = sum(mcnemar_exact(t.b, t.c) < 0.05 for t in
                   (_simulated_table(rng, n, (psi - delta) / 2, (psi + delta) / 2) for _ in range(400)))
    assert 0.70 <= detected / 400 <= 0.90


def test_outcomes_come_from_the_last_record_and_errors_are_not_answers():
    records = [{"id": "a", "correct": False, "error": None}, {"id": "a", "correct": True, "error": None},
               {"id": "b", "correct": False, "error": "Timeout: slow"}]
    assert outcomes_of(records) == {"a": True, "b": None}


def test_raw_outcomes_rederive_the_verdict_from_the_stored_output(tmp_path):
    example = Example(id="t/test/0", question="What is 9 + 9?", gold="18", answer_type="number", task="t")
    record = {"id": example.id, "task": "t", "question": example.question, "output": "9 + 9 = 17. The answer is 17.",
              "error": None, "error_kind": None, "finish_reason": "stop", "correct": True}
    (tmp_path / "t.jsonl").write_text(json.dumps(record) + "\n", encoding="utf-8")
    assert raw_outcomes(tmp_path, "t", [example]) == {"t/test/0": False}


def _outcomes(pattern):
    """{item id: correct} from a string of 1/0."""
    return {f"i{k}": flag == "1" for k, flag in enumerate(pattern)}


def test_compare_runs_pools_a_family_once_in_its_domain_average():
    baseline = {"wordmath-l1": _outcomes("0000011111"), "bbh/a": _outcomes("0000"), "bbh/b": _outcomes("000000"),
                "svamp": _outcomes("0011")}
    other = {"wordmath-l1": _outcomes("1111011111"), "bbh/a": _outcomes("1100"), "bbh/b": _outcomes("000000"),
             "svamp": _outcomes("0011")}
    domains = {"wordmath-l1": "in", "bbh/a": "out", "bbh/b": "out", "svamp": "out"}
    result = compare_runs(baseline, other, domains, labels=("base", "regenesis"))
    assert list(result.tasks) == ["wordmath-l1", "bbh", "bbh/a", "bbh/b", "svamp"]
    assert (result.tasks["bbh"].n, result.tasks["bbh"].c) == (10, 2)
    assert result.averages["in"].delta == pytest.approx(40.0)
    assert result.averages["out"].delta == pytest.approx((20.0 + 0.0) / 2)  # bbh pooled (2 of 10), svamp 0


def test_compare_runs_refuses_different_tasks():
    with pytest.raises(MisalignedItems, match="different tasks"):
        compare_runs({"a": _outcomes("1")}, {"b": _outcomes("1")}, {})


def test_paired_table_marks_only_the_differences_that_hold():
    baseline = {"big": _outcomes("0" * 40), "small": _outcomes("0" * 40)}
    other = {"big": _outcomes("1" * 10 + "0" * 30), "small": _outcomes("1" * 2 + "0" * 38)}
    result = compare_runs(baseline, other, {"big": "in", "small": "in"}, labels=("base", "star"))
    table = paired_table([result], {"in": "in-domain average"})
    rows = {line.split(" | ")[0].strip("| "): line for line in table.splitlines() if line.startswith("| ")}
    assert "Δ star − base (pts)" in rows["task"]
    assert "+25.0" in rows["big"] and "✓" in rows["big"]
    assert "+5.0" in rows["small"] and "✓" not in rows["small"]
    assert "in-domain average" in rows
