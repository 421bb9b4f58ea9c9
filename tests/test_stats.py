"""Seed statistics: summaries and the Welch comparison agree with scipy and with known cases."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from rig.stats import ratio_to_reference, summarize, welch_compare


def test_summary_uses_the_sample_std() -> None:
    summary = summarize([0.04, 0.05, 0.06])
    assert summary.n == 3 and summary.mean == pytest.approx(0.05)
    assert summary.std == pytest.approx(0.01) and summary.standard_error == pytest.approx(0.01 / np.sqrt(3))
    assert summarize([0.3]).std == 0.0


def test_welch_matches_scipy_and_its_interval_matches_its_p_value() -> None:
    rng = np.random.default_rng(0)
    first, second = rng.normal(0.05, 0.01, size=5), rng.normal(0.08, 0.02, size=6)
    result = welch_compare(first, second)
    reference = stats.ttest_ind(first, second, equal_var=False)
    assert result.t == pytest.approx(reference.statistic) and result.p_value == pytest.approx(
        reference.pvalue
    )
    assert result.difference == pytest.approx(first.mean() - second.mean())
    assert result.low < result.difference < result.high
    # A 95% interval excludes 0 exactly when p < 0.05; at confidence 1 - p, 0 sits on its edge.
    assert (result.high < 0 or result.low > 0) == (result.p_value < 0.05)
    edge = welch_compare(first, second, confidence=1 - result.p_value)
    assert min(abs(edge.low), abs(edge.high)) == pytest.approx(0.0, abs=1e-9)


def test_welch_finds_no_difference_between_identical_samples() -> None:
    values = [0.05, 0.06, 0.07, 0.055, 0.065]
    result = welch_compare(values, values)
    assert result.difference == 0.0 and result.p_value == pytest.approx(1.0)
    assert result.low == pytest.approx(-result.high)
    assert "Welch t = 0.00" in result.describe(" m")


@pytest.mark.parametrize(
    "first, second, message",
    [
        ([0.1], [0.2, 0.3], "at least two seeds"),
        ([0.1, 0.1], [0.2, 0.2], "zero variance"),
        ([0.1, float("nan")], [0.2, 0.3], "finite"),
        ([], [0.2, 0.3], "non-empty"),
    ],
)
def test_welch_refuses_what_it_cannot_test(first: list[float], second: list[float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        welch_compare(first, second)


def test_ratio_to_a_fixed_reference_is_the_one_sample_t_interval_scaled() -> None:
    values = [0.05, 0.04, 0.07, 0.06, 0.03]
    result = ratio_to_reference(values, 0.4)
    low, high = stats.t.interval(0.95, len(values) - 1, loc=np.mean(values), scale=stats.sem(values))
    assert result.ratio == pytest.approx(np.mean(values) / 0.4)
    assert (result.low, result.high) == pytest.approx((low / 0.4, high / 0.4))
    assert result.describe() == f"0.12x, 95% CI [{low / 0.4:.2f}, {high / 0.4:.2f}]x"
    # a negative reference keeps the interval ordered
    flipped = ratio_to_reference(values, -0.4)
    assert flipped.low < flipped.ratio < flipped.high


def test_ratio_refuses_a_zero_reference_and_a_single_seed() -> None:
    with pytest.raises(ValueError, match="other than zero"):
        ratio_to_reference([0.1, 0.2], 0.0)
    with pytest.raises(ValueError, match="two seeds"):
        ratio_to_reference([0.1], 0.5)
