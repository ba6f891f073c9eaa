"""ENAMEL's eff@k estimator and efficiency score (evoforge.measure.enamel)."""

from __future__ import annotations

import itertools
import math
import random
import statistics
from fractions import Fraction

import pytest

from evoforge.measure import (
    eff_at_k,
    eff_at_k_weights,
    enamel_efficiency,
    level_efficiency,
    pass_at_k,
)


def brute_force_eff_at_k(scores: list[float], k: int) -> float:
    """Mean over all k-subsets of the subset's best score."""
    return statistics.fmean(max(subset) for subset in itertools.combinations(scores, k))


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 10])
def test_eff_at_k_equals_brute_force_over_all_subsets(n: int) -> None:
    rng = random.Random(n)
    for _ in range(5):
        scores = [rng.choice([0.0, rng.random()]) for _ in range(n)]
        for k in range(1, n + 1):
            assert eff_at_k(scores, k) == pytest.approx(brute_force_eff_at_k(scores, k), abs=1e-12)


def test_eff_at_k_with_ties_and_known_values() -> None:
    assert eff_at_k([0.5, 0.5, 0.5], 2) == pytest.approx(0.5)
    assert eff_at_k([0.0, 1.0], 1) == pytest.approx(0.5)
    assert eff_at_k([0.0, 1.0], 2) == 1.0
    assert eff_at_k([0.2, 0.4, 0.9], 3) == pytest.approx(0.9)
    assert eff_at_k([0.2, 0.4, 0.9], 1) == pytest.approx(0.5)


def test_weights_are_exact_binomial_ratios_and_sum_to_one() -> None:
    n, k = 12, 4
    weights = eff_at_k_weights(n, k)
    for i, w in enumerate(weights, start=1):
        exact = Fraction(math.comb(i - 1, k - 1), math.comb(n, k))
        assert w == pytest.approx(float(exact), rel=1e-12, abs=1e-300)
    assert math.fsum(weights) == pytest.approx(1.0)


def test_large_n_is_stable() -> None:
    n, k = 20_000, 500
    weights = eff_at_k_weights(n, k)
    assert math.fsum(weights) == pytest.approx(1.0, rel=1e-9)
    for i in (k, n // 2, n - 1, n):
        log_exact = (
            math.lgamma(i)
            - math.lgamma(k)
            - math.lgamma(i - k + 1)
            - (math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1))
        )
        assert weights[i - 1] == pytest.approx(math.exp(log_exact), rel=1e-8)
    rng = random.Random(0)
    scores = [rng.random() for _ in range(n)]
    value = eff_at_k(scores, k)
    assert max(scores) * 0.99 < value <= max(scores)


def test_binary_scores_give_pass_at_k() -> None:
    for n, c in [(10, 0), (10, 3), (10, 10), (7, 2)]:
        scores = [1.0] * c + [0.0] * (n - c)
        for k in range(1, n + 1):
            assert eff_at_k(scores, k) == pytest.approx(pass_at_k(n, c, k))
            exact = 1 - Fraction(math.comb(n - c, k), math.comb(n, k))
            assert pass_at_k(n, c, k) == pytest.approx(float(exact))


def test_eff_at_k_validates() -> None:
    with pytest.raises(ValueError):
        eff_at_k([0.1, 0.2], 3)
    with pytest.raises(ValueError):
        eff_at_k([0.1], 0)
    with pytest.raises(ValueError):
        eff_at_k([], 1)
    with pytest.raises(ValueError):
        eff_at_k([float("nan"), 0.1], 1)
    with pytest.raises(ValueError):
        pass_at_k(3, 4, 1)


def test_level_efficiency_by_hand() -> None:
    # limit 10, reference 2: reference speed scores 1, the limit 0, linear between.
    assert level_efficiency(2, 2, 10) == 1
    assert level_efficiency(6, 2, 10) == 0.5
    assert level_efficiency(10, 2, 10) == 0
    assert level_efficiency(12, 2, 10) == 0
    assert level_efficiency(None, 2, 10) == 0
    assert level_efficiency(math.inf, 2, 10) == 0
    assert level_efficiency(0, 2, 10) == 1.25  # faster than the reference
    with pytest.raises(ValueError):
        level_efficiency(1, 10, 10)


def test_enamel_efficiency_by_hand() -> None:
    refs = [[0.1], [1.0, 2.0], [3.0, 4.0]]  # level maxima R = 0.1, 2, 4
    weights = [0, 1, 3]
    # beta = 2 over weighted levels: T = 2 * 4 = 8
    times = [[0.1], [1.0, 5.0], [6.0, 2.0]]  # level maxima 5 and 6
    expected = (1 * (8 - 5) / (8 - 2) + 3 * (8 - 6) / (8 - 4)) / 4
    assert enamel_efficiency(times, refs, weights, timeout_factor=2) == pytest.approx(expected)
    assert enamel_efficiency(times, refs, weights, timeout=8) == pytest.approx(expected)
    # the reference itself scores 1
    assert enamel_efficiency(refs, refs, weights, timeout_factor=2) == pytest.approx(1.0)


def test_enamel_efficiency_censoring_zeroes_the_level_and_later_ones() -> None:
    refs = [[1.0], [2.0], [4.0]]
    weights = [1, 1, 2]
    timed_out_mid: list[list[float | None]] = [[1.0], [None], []]  # level 3 never ran
    assert enamel_efficiency(timed_out_mid, refs, weights, timeout=8) == pytest.approx(
        (1 * 1.0) / 4
    )
    timed_out_first = [[math.inf], [2.0], [4.0]]
    assert enamel_efficiency(timed_out_first, refs, weights, timeout=8) == 0.0
    # a partly-run level that ends in a timeout is fine
    partial: list[list[float | None]] = [[1.0], [2.0], [3.0, None]]
    assert enamel_efficiency(partial, [[1.0], [2.0], [4.0, 4.0]], weights, timeout=8) == (
        pytest.approx(2 / 4)
    )


def test_enamel_efficiency_validates() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        enamel_efficiency([[1.0]], [[1.0]], [1.0])
    with pytest.raises(ValueError, match="exactly one"):
        enamel_efficiency([[1.0]], [[1.0]], [1.0], timeout=3, timeout_factor=2)
    with pytest.raises(ValueError, match="levels"):
        enamel_efficiency([[1.0]], [[1.0], [2.0]], [1.0, 1.0], timeout=3)
    with pytest.raises(ValueError, match="weights"):
        enamel_efficiency([[1.0]], [[1.0]], [0.0], timeout=3)
    with pytest.raises(ValueError, match="one sample time per reference case"):
        enamel_efficiency([[1.0]], [[1.0, 1.0]], [1.0], timeout=3)
    with pytest.raises(ValueError, match="timeout_factor"):
        enamel_efficiency([[1.0]], [[1.0]], [1.0], timeout_factor=1.0)
