"""Robust and censored statistics (evoforge.measure.stats)."""

from __future__ import annotations

import math
import random
import statistics

import numpy as np
import pytest

from evoforge.measure import CensoredEstimate, censored_median, hodges_lehmann, iqr, mad, quantile


@pytest.mark.parametrize("n", [1, 2, 3, 4, 7, 30])
def test_quantile_matches_numpy_linear(n: int) -> None:
    rng = random.Random(n)
    data = [rng.uniform(0, 10) for _ in range(n)]
    for q in (0, 0.1, 0.25, 0.5, 0.75, 0.9, 1):
        assert quantile(data, q) == pytest.approx(float(np.percentile(data, 100 * q)))
    assert iqr(data) == pytest.approx(float(np.percentile(data, 75) - np.percentile(data, 25)))


def test_mad_and_hodges_lehmann_by_hand() -> None:
    assert mad([1, 2, 3, 4, 100]) == 1
    assert mad([5.0]) == 0
    # Walsh averages of (1, 2, 10): 1, 1.5, 5.5, 2, 6, 10 -> median 3.75
    assert hodges_lehmann([1, 2, 10]) == 3.75
    rng = random.Random(7)
    data = [rng.expovariate(1.0) for _ in range(15)]
    walsh = [(a + b) / 2 for i, a in enumerate(data) for b in data[i:]]
    assert hodges_lehmann(data) == pytest.approx(statistics.median(walsh))


def test_censored_median_cases() -> None:
    assert censored_median([1, 2, 3], [False] * 3) == CensoredEstimate(2, False, 2)
    # one censored value above all exact ones leaves an odd median exact
    assert censored_median([1, 2, 9], [False, False, True]) == CensoredEstimate(2, False, 2)
    # majority censored: the median is only known to be >= the bound
    value, lower, upper = censored_median([1, 9, 9], [False, True, True])
    assert (value, lower, math.isinf(upper)) == (9, True, True)
    # even n, half censored: the median is at least the mean of the middle bounds
    value, lower, upper = censored_median([1, 2, 5, 5], [False, False, True, True])
    assert (value, lower, math.isinf(upper)) == (3.5, True, True)
    # a censored bound below exact values: the median lies between two values
    assert censored_median([1, 3, 2], [False, False, True]) == CensoredEstimate(2, True, 3)


def test_bad_input_is_rejected() -> None:
    with pytest.raises(ValueError):
        quantile([], 0.5)
    with pytest.raises(ValueError):
        quantile([1.0], 1.5)
    with pytest.raises(ValueError):
        mad([float("nan")])
    with pytest.raises(ValueError):
        censored_median([1.0, 2.0], [True])
