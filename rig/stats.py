"""Statistics for claims about seeds: summaries and the Welch comparison of two methods.

A method's result is one number per seed (e.g. its final puck distance averaged over the evaluation
goals). Two methods are compared on those per-seed numbers with Welch's t-test, which does not assume
equal variances, and a confidence interval for the difference of their means.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class SeedSummary:
    """Mean and spread of one method's per-seed results."""

    n: int
    mean: float
    std: float
    """sample standard deviation (ddof=1); 0 for a single seed"""

    @property
    def standard_error(self) -> float:
        return self.std / math.sqrt(self.n)


def summarize(values: Sequence[float]) -> SeedSummary:
    array = _finite(values, "values")
    std = float(array.std(ddof=1)) if len(array) > 1 else 0.0
    return SeedSummary(len(array), float(array.mean()), std)


@dataclass(frozen=True)
class Comparison:
    """``first`` minus ``second``: the difference of means, its confidence interval and Welch's test."""

    first: SeedSummary
    second: SeedSummary
    difference: float
    low: float
    high: float
    confidence: float
    t: float
    dof: float
    p_value: float
    """two-sided"""

    def describe(self, unit: str = "") -> str:
        percent = round(self.confidence * 100)
        return (
            f"difference {self.difference:+.4f}{unit}, "
            f"{percent}% CI [{self.low:+.4f}, {self.high:+.4f}]{unit}, "
            f"Welch t = {self.t:.2f} (dof {self.dof:.1f}), two-sided p = {self.p_value:.3g}"
        )


def welch_compare(first: Sequence[float], second: Sequence[float], confidence: float = 0.95) -> Comparison:
    """Welch's t-test and CI for mean(first) - mean(second); each needs at least two seeds."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    a, b = summarize(first), summarize(second)
    if a.n < 2 or b.n < 2:
        raise ValueError(f"Welch's test needs at least two seeds per method, got {a.n} and {b.n}")
    var_a, var_b = a.std**2 / a.n, b.std**2 / b.n
    difference = a.mean - b.mean
    spread = math.sqrt(var_a + var_b)
    if spread == 0.0:
        raise ValueError("both methods have zero variance across seeds; there is nothing to test")
    # Welch-Satterthwaite degrees of freedom.
    dof = (var_a + var_b) ** 2 / (var_a**2 / (a.n - 1) + var_b**2 / (b.n - 1))
    t = difference / spread
    p_value = float(2.0 * stats.t.sf(abs(t), dof))
    margin = float(stats.t.ppf(0.5 + confidence / 2.0, dof)) * spread
    return Comparison(a, b, difference, difference - margin, difference + margin, confidence, t, dof, p_value)


@dataclass(frozen=True)
class Ratio:
    """Seeds' mean over a fixed reference value, with a t confidence interval over the seeds."""

    summary: SeedSummary
    reference: float
    ratio: float
    low: float
    high: float
    confidence: float

    def describe(self) -> str:
        percent = round(self.confidence * 100)
        return f"{self.ratio:.2f}x, {percent}% CI [{self.low:.2f}, {self.high:.2f}]x"


def ratio_to_reference(values: Sequence[float], reference: float, confidence: float = 0.95) -> Ratio:
    """mean(values) / reference, with the t interval of the seeds' mean divided by the reference.

    For a baseline whose result does not vary with the seed of the method it is compared with, such as a
    random policy evaluated on the same seeded goals in every run: its value is a constant, and the
    interval is the method's spread over seeds alone. Needs two seeds and a reference other than zero.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if not math.isfinite(reference) or reference == 0.0:
        raise ValueError(f"a ratio needs a finite reference other than zero, got {reference}")
    summary = summarize(values)
    if summary.n < 2:
        raise ValueError(f"a confidence interval needs at least two seeds, got {summary.n}")
    margin = float(stats.t.ppf(0.5 + confidence / 2.0, summary.n - 1)) * summary.standard_error
    bounds = sorted(((summary.mean - margin) / reference, (summary.mean + margin) / reference))
    return Ratio(summary, reference, summary.mean / reference, bounds[0], bounds[1], confidence)


def _finite(values: Sequence[float], what: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1 or len(array) == 0:
        raise ValueError(f"{what} must be a non-empty 1-D sequence, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{what} must be finite, got {array.tolist()}")
    return array
