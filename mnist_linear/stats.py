"""Summaries across seeds: mean, standard deviation, Student-t confidence intervals."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import stats


class Summary(NamedTuple):
    """Mean, sample standard deviation and 95% Student-t interval of a metric over n seeds."""

    mean: float
    std: float  # sample standard deviation (ddof=1); 0 for a single value
    ci_low: float  # 95% Student-t interval for the mean; nan for a single value
    ci_high: float
    n: int


def summarize(values, confidence: float = 0.95) -> Summary:
    """Mean ± std and the Student-t interval of finite `values` `(n,)` (float64, the metric's units).

    Raises ValueError for an empty or non-1-d array, or for inf or nan (leave
    failed runs out, `results.per_seed` does).
    """
    values = np.asarray(values, np.float64)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"summarize needs a non-empty 1-d array, got shape {values.shape}.")
    if not np.isfinite(values).all():
        raise ValueError("summarize got inf or nan; leave failed runs out and report them instead.")
    n = values.size
    mean = float(values.mean())
    if n == 1:
        return Summary(mean, 0.0, float("nan"), float("nan"), 1)
    std = float(values.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * std / np.sqrt(n)
    return Summary(mean, std, mean - half, mean + half, n)


def welch_t_test(a, b) -> float:
    """Two-sided p-value of Welch's t-test that `a` and `b` `(n,)` have equal means (scipy's
    `ttest_ind(equal_var=False)`); nan when either has fewer than 2 values."""
    return float(stats.ttest_ind(np.asarray(a), np.asarray(b), equal_var=False).pvalue)
