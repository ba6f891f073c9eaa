"""ENAMEL's efficiency score and its eff@k metric.

Reference: R. Qiu, W. W. Zeng, J. Ezick, C. Lott, H. Tong, "How Efficient is
LLM-Generated Code? A Rigorous & High-Standard Benchmark" (arXiv:2406.06647,
2024; ICLR 2025). Written from the paper's definitions, not from its code.

Efficiency score of one sample (what :func:`enamel_efficiency` computes).
Test cases come in levels ``l = 1..L`` of growing input size, each with a
weight ``w_l`` (the paper gives more weight to harder levels; a level of
weight 0 only checks correctness). Let ``t_lj`` be the sample's time on case
``j`` of level ``l`` (ENAMEL summarises repeats with the Hodges-Lehmann
estimator, :func:`evoforge.measure.stats.hodges_lehmann`) and ``r_lj`` the
expert reference solution's time. Then

* ``T_l = max_j t_lj`` and ``R_l = max_j r_lj`` (the slowest case decides);
* the time limit is ``T = beta * max_l R_l`` over weighted levels, ``beta``
  being the timeout factor (or ``T`` is given directly);
* a level where some case timed out (right-censored: only ``t > T`` is known)
  scores 0, and so does every later level (ENAMEL stops there: larger inputs
  cannot be faster); otherwise level ``l`` scores
  ``f_l = max(0, T - T_l) / (T - R_l)``, which is 1 at the reference's speed,
  0 at the time limit, and above 1 when faster than the reference;
* the sample's score is ``sum_l w_l f_l / sum_l w_l``; an incorrect sample
  scores 0 (the caller decides correctness).

Because censored samples score exactly 0 -- the value any time at or past the
limit would get -- the score is well defined without knowing how long a timed
out run would have taken: that is how it handles right-censoring.

eff@k (what :func:`eff_at_k` computes) is the expected best score among ``k``
samples drawn without replacement from the ``n`` generated. With
``e_(1) <= ... <= e_(n)`` the sorted scores, the unbiased (Rao-Blackwellised)
estimator is ``sum_{i=k}^{n} C(i-1, k-1) / C(n, k) * e_(i)``: ``e_(i)`` is the
maximum of exactly the ``C(i-1, k-1)`` subsets made of item ``i`` and ``k-1``
smaller ones. With 0/1 scores it equals pass@k.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def _finite(values: Sequence[float], what: str) -> list[float]:
    data = [float(v) for v in values]
    if not all(math.isfinite(v) for v in data):
        raise ValueError(f"{what} must be finite numbers")
    return data


def eff_at_k_weights(n: int, k: int) -> list[float]:
    """Weights of the sorted scores in the eff@k estimator.

    ``w_i = C(i-1, k-1) / C(n, k)`` for ``i = 1..n`` (zero for ``i < k``),
    computed without binomials: ``w_n = k / n`` and
    ``w_{i-1} = w_i * (i - k) / (i - 1)``, every factor in ``[0, 1]``, so no
    overflow for any ``n`` and a relative error of a few ulps per step.

    Args:
        n: Number of samples, at least 1.
        k: Draws, ``1 <= k <= n``.

    Returns:
        ``n`` non-negative weights summing to 1, for ascending scores.

    Raises:
        ValueError: If not ``1 <= k <= n``.
    """
    if not 1 <= k <= n:
        raise ValueError(f"need 1 <= k <= n, got k={k}, n={n}")
    weights = [0.0] * n
    weight = k / n
    for i in range(n, k - 1, -1):  # i is 1-based
        weights[i - 1] = weight
        if i > 1:
            weight *= (i - k) / (i - 1)
    return weights


def eff_at_k(scores: Sequence[float], k: int) -> float:
    """Unbiased estimate of eff@k from ``n >= k`` samples' efficiency scores.

    Args:
        scores: One efficiency score per generated sample, normally in
            ``[0, 1]`` with 0 for an incorrect sample (ENAMEL's scores can
            exceed 1 for code faster than the reference; any finite value is
            accepted).
        k: Number of samples drawn, ``1 <= k <= len(scores)``.

    Returns:
        ``sum_i C(i-1, k-1) / C(n, k) * e_(i)`` over the ascending scores.

    Raises:
        ValueError: If ``k`` is out of range or a score is not finite.
    """
    data = sorted(_finite(scores, "scores"))
    weights = eff_at_k_weights(len(data), k)
    return math.fsum(w * e for w, e in zip(weights, data, strict=True))


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from ``c`` correct out of ``n`` samples (Chen et al., 2021).

    ``1 - C(n-c, k) / C(n, k)``, computed as a product of ratios.

    Args:
        n: Samples generated.
        c: Correct samples, ``0 <= c <= n``.
        k: Draws, ``1 <= k <= n``.

    Returns:
        The probability that at least one of ``k`` draws is correct.

    Raises:
        ValueError: If the arguments are out of range.
    """
    if not 1 <= k <= n or not 0 <= c <= n:
        raise ValueError(f"need 1 <= k <= n and 0 <= c <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    miss = 1.0
    for i in range(n - c + 1, n + 1):
        miss *= 1.0 - k / i
    return 1.0 - miss


def level_efficiency(sample_time: float | None, reference_time: float, limit: float) -> float:
    """ENAMEL's score of one level: ``max(0, limit - t) / (limit - reference)``.

    Args:
        sample_time: The sample's time at this level (its slowest case), or
            ``None``/``inf`` when it timed out (right-censored): scores 0.
        reference_time: The reference solution's time at this level.
        limit: The time limit ``T``; must exceed ``reference_time``.

    Returns:
        1 at the reference's speed, 0 at or past the limit, above 1 when
        faster than the reference.

    Raises:
        ValueError: If ``limit <= reference_time`` or a time is negative.
    """
    if not limit > reference_time:
        raise ValueError("the time limit must exceed the reference time")
    if reference_time < 0:
        raise ValueError("times must not be negative")
    if sample_time is None or math.isinf(sample_time):
        return 0.0
    if sample_time < 0 or math.isnan(sample_time):
        raise ValueError("times must not be negative or NaN")
    return max(0.0, limit - sample_time) / (limit - reference_time)


def enamel_efficiency(
    sample_times: Sequence[Sequence[float | None]],
    reference_times: Sequence[Sequence[float]],
    weights: Sequence[float],
    *,
    timeout_factor: float | None = None,
    timeout: float | None = None,
) -> float:
    """Efficiency score of one correct sample, as defined in the module docstring.

    Args:
        sample_times: ``sample_times[l][j]``: the sample's time on case ``j``
            of level ``l``; ``None`` or ``inf`` where it timed out. A level
            may be shorter than the reference's only if it ends in a timeout
            (cases after it were not run); an empty level after a timed-out
            one is fine too.
        reference_times: ``reference_times[l][j]``: the reference solution's
            time on the same cases; every level non-empty.
        weights: ``w_l >= 0`` per level, not all zero.
        timeout_factor: ``beta``: the limit is ``beta * max R_l`` over levels
            with positive weight; must exceed 1.
        timeout: The limit ``T`` in seconds, instead of ``timeout_factor``.

    Returns:
        ``sum_l w_l f_l / sum_l w_l``.

    Raises:
        ValueError: On inconsistent shapes, bad weights, or unless exactly
            one of ``timeout_factor`` and ``timeout`` is given.
    """
    levels = len(reference_times)
    if levels == 0 or len(sample_times) != levels or len(weights) != levels:
        raise ValueError("need the same positive number of levels in every argument")
    w = _finite(weights, "weights")
    if any(x < 0 for x in w) or not sum(w) > 0:
        raise ValueError("weights must be non-negative and not all zero")
    if any(not level for level in reference_times):
        raise ValueError("every level needs at least one reference time")
    refs = [max(_finite(level, "reference times")) for level in reference_times]
    if (timeout_factor is None) == (timeout is None):
        raise ValueError("give exactly one of timeout_factor and timeout")
    if timeout is None:
        assert timeout_factor is not None
        if not timeout_factor > 1:
            raise ValueError("timeout_factor must exceed 1")
        limit = timeout_factor * max(r for r, x in zip(refs, w, strict=True) if x > 0)
    else:
        limit = float(timeout)
    total = 0.0
    censored = False
    for level, (times, ref, weight) in enumerate(zip(sample_times, refs, w, strict=True)):
        if not censored:
            censored = any(t is None or math.isinf(t) for t in times)
            if not censored and len(times) != len(reference_times[level]):
                raise ValueError(f"level {level}: one sample time per reference case needed")
        if censored or weight == 0:
            continue
        slowest = max(float(t) for t in times if t is not None)
        total += weight * level_efficiency(slowest, ref, limit)
    return total / sum(w)


__all__ = [
    "eff_at_k",
    "eff_at_k_weights",
    "enamel_efficiency",
    "level_efficiency",
    "pass_at_k",
]
