"""The A/B split, the two-proportion z-test and the sample-size formula, checked against
published worked examples."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from apps.orchestrator.prompts.stats import (
    arm_is_variant,
    arm_position,
    percentile,
    two_proportion_sample_size,
    two_proportion_z_test,
)

ROOT = Path(__file__).resolve().parents[3]


def variant_ids(experiment_id: int, split: float, ticket_ids: range) -> list[int]:
    return [
        ticket_id
        for ticket_id in ticket_ids
        if arm_is_variant(experiment_id=experiment_id, ticket_id=ticket_id, split=split)
    ]


def test_the_same_ticket_gets_the_same_arm_in_another_process_with_another_hash_seed():
    here = variant_ids(7, 0.5, range(1, 501))
    script = (
        "import json; from apps.orchestrator.prompts.stats import arm_is_variant; "
        "print(json.dumps([t for t in range(1, 501) "
        "if arm_is_variant(experiment_id=7, ticket_id=t, split=0.5)]))"
    )
    for seed in ("1", "12345"):
        # Python's own hash() of a string differs per process under another PYTHONHASHSEED.
        env = {**os.environ, "PYTHONHASHSEED": seed}
        output = subprocess.run(
            [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, check=True
        ).stdout
        assert json.loads(output) == here
    assert variant_ids(7, 0.5, range(1, 501)) == here  # and across calls


@pytest.mark.parametrize("split", [0.5, 0.1, 0.3])
def test_the_split_of_10000_tickets_is_within_binomial_tolerance(split):
    n = 10_000
    count = len(variant_ids(3, split, range(1, n + 1)))
    # 4 standard deviations of Binomial(n, split): a false alarm once in ~16,000 runs.
    tolerance = 4 * math.sqrt(n * split * (1 - split))
    assert abs(count - n * split) <= tolerance


def test_a_new_experiment_reshuffles_tickets_and_a_larger_split_only_adds_tickets():
    first = set(variant_ids(1, 0.5, range(1, 2001)))
    second = set(variant_ids(2, 0.5, range(1, 2001)))
    overlap = len(first & second) / len(first)
    assert 0.4 < overlap < 0.6  # independent arms: about half the variant tickets overlap
    assert set(variant_ids(1, 0.2, range(1, 2001))) <= first
    assert all(0 <= arm_position(experiment_id=1, ticket_id=t) < 1 for t in range(1, 2001))


def test_z_test_matches_the_worked_example_of_illowsky_and_dean():
    """Illowsky & Dean, Collaborative Statistics (Connexions m17043, "Comparing Two Independent
    Population Proportions"; also OpenStax Introductory Statistics): medication A, 20 of 200
    adults still had hives; medication B, 12 of 200. Pooled proportion 32/400 = 0.08,
    p'A - p'B = 0.04, standard error sqrt(0.08 * 0.92 * (1/200 + 1/200)) = 0.027129;
    z = 1.4744 (TI-83/84 2-PropZTest), two-sided p-value = 0.1404."""
    test = two_proportion_z_test(successes1=12, n1=200, successes2=20, n2=200)
    assert test.difference == pytest.approx(0.04)
    assert test.z == pytest.approx(1.4744, abs=5e-5)
    assert test.p_value == pytest.approx(0.1404, abs=5e-5)
    assert not test.significant(0.01)
    swapped = two_proportion_z_test(successes1=20, n1=200, successes2=12, n2=200)
    assert (swapped.z, swapped.p_value) == pytest.approx((-test.z, test.p_value))


def test_z_test_without_any_variation_finds_no_difference():
    test = two_proportion_z_test(successes1=0, n1=40, successes2=0, n2=60)
    assert (test.z, test.p_value) == (0.0, 1.0)
    with pytest.raises(ValueError, match="at least one observation"):
        two_proportion_z_test(successes1=1, n1=0, successes2=0, n2=5)


def test_sample_size_matches_the_jmp_worked_example():
    """JMP 13.2 documentation, DOE > Sample Size and Power > Two Sample Proportions: alpha 0.05,
    proportions 0.08 and 0.06, two-sided, power 0.8 -> a sample size of 2554 per group
    (2553.63 rounded up)."""
    n = two_proportion_sample_size(p1=0.08, p2=0.06, alpha=0.05, power=0.8)
    assert n is not None
    assert n == pytest.approx(2553.63, abs=0.01)
    assert math.ceil(n) == 2554


def test_sample_size_with_continuity_correction_matches_zar_example_24_26():
    """Zar, Biostatistical Analysis (1999), Example 24.26 as reproduced in the UNISTAT manual
    (6.7.6.1 Sample Size for Two Proportions): p1 0.45, p2 0.25, power 0.9, two-tailed alpha
    0.05, equal groups -> estimated sample size 127.2343 (Fleiss's continuity correction of
    the 117.43 the plain formula gives)."""
    corrected = two_proportion_sample_size(p1=0.45, p2=0.25, power=0.9, continuity_correction=True)
    assert corrected == pytest.approx(127.2343, abs=5e-5)
    plain = two_proportion_sample_size(p1=0.45, p2=0.25, power=0.9)
    assert plain == pytest.approx(117.4307, abs=5e-4)


def test_no_sample_detects_a_difference_of_zero():
    assert two_proportion_sample_size(p1=0.3, p2=0.3) is None


def test_percentile_is_the_nearest_rank_one():
    assert percentile([], 0.5) is None
    assert percentile([5.0, 1.0, 3.0], 0.5) == 3.0
    assert percentile([float(v) for v in range(1, 101)], 0.95) == 95.0
