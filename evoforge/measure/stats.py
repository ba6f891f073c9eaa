"""Robust and right-censored summary statistics of timing samples.

Pure functions over plain sequences of floats, used by :class:`Measurement` and
the noise script; none of them measures anything.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import NamedTuple

#: Factor that makes the MAD a consistent estimator of the standard deviation
#: of a normal distribution (1 / Phi^-1(3/4)).
MAD_TO_SIGMA = 1.482602218505602


class CensoredEstimate(NamedTuple):
    """A statistic computed from samples some of which are right-censored.

    Attributes:
        value: The estimate when ``is_lower_bound`` is false; otherwise the
            largest value the statistic is known to be at least (for a timed
            out measurement this is the timeout).
        is_lower_bound: True when censoring leaves the statistic undetermined,
            so that only ``value <= statistic <= upper`` is known.
        upper: The smallest value the statistic is known to be at most;
            ``math.inf`` when it is unbounded, equal to ``value`` when exact.
    """

    value: float
    is_lower_bound: bool
    upper: float


def _require(values: Sequence[float]) -> list[float]:
    data = [float(v) for v in values]
    if not data:
        raise ValueError("need at least one value")
    if any(math.isnan(v) for v in data):
        raise ValueError("values must not be NaN")
    return data


def quantile(values: Sequence[float], q: float) -> float:
    """The ``q``-quantile by linear interpolation between order statistics.

    This is Hyndman and Fan's type 7 definition (NumPy's default and
    ``statistics.quantiles(method="inclusive")``): the sorted values sit at
    positions ``0 .. n-1`` and the quantile is read at position ``q * (n - 1)``.

    Args:
        values: One or more numbers.
        q: Probability in ``[0, 1]``.

    Returns:
        The interpolated quantile.

    Raises:
        ValueError: If ``values`` is empty or ``q`` is outside ``[0, 1]``.
    """
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"q must be in [0, 1], got {q}")
    data = sorted(_require(values))
    position = q * (len(data) - 1)
    lower = math.floor(position)
    upper = min(lower + 1, len(data) - 1)
    return data[lower] + (data[upper] - data[lower]) * (position - lower)


def iqr(values: Sequence[float]) -> float:
    """Interquartile range, the 0.75 quantile minus the 0.25 quantile.

    Args:
        values: One or more numbers.

    Returns:
        The IQR (0 for a single value).
    """
    return quantile(values, 0.75) - quantile(values, 0.25)


def mad(values: Sequence[float]) -> float:
    """Median absolute deviation from the median (unscaled).

    Multiply by :data:`MAD_TO_SIGMA` to estimate a normal standard deviation.

    Args:
        values: One or more numbers.

    Returns:
        ``median(|x - median(x)|)``.
    """
    data = _require(values)
    center = statistics.median(data)
    return statistics.median(abs(v - center) for v in data)


def hodges_lehmann(values: Sequence[float]) -> float:
    """Hodges-Lehmann location estimate: the median of all Walsh averages.

    The Walsh averages are ``(x_i + x_j) / 2`` for every ``i <= j`` (each value
    paired with itself included). The estimate is as robust to outliers as the
    median (breakdown point about 29%) but less noisy for near-symmetric data;
    ENAMEL uses it to summarise repeated timings of one test case. Costs
    ``O(n^2)`` time and memory, fine for the tens of repeats timings use.

    Args:
        values: One or more numbers.

    Returns:
        The estimate.
    """
    data = _require(values)
    walsh = [(data[i] + data[j]) / 2.0 for i in range(len(data)) for j in range(i, len(data))]
    return statistics.median(walsh)


def censored_median(values: Sequence[float], censored: Sequence[bool]) -> CensoredEstimate:
    """Median of samples some of which are only known from below.

    A censored sample ``v`` means "the true value is at least ``v``". Order
    statistics only grow when a sample grows, so the true median lies between
    the median computed with every censored sample at its bound and the median
    computed with every censored sample at infinity. When the two agree the
    median is exact (for example, fewer than half the samples are censored and
    every censored bound is above every exact sample, as with a timeout);
    otherwise the lower one is reported and flagged.

    Args:
        values: Exact values, or lower bounds where ``censored`` is true.
        censored: One flag per value.

    Returns:
        The median, or its lower bound with ``is_lower_bound`` set.

    Raises:
        ValueError: If the lengths differ or there are no values.
    """
    data = _require(values)
    if len(censored) != len(data):
        raise ValueError("need one censored flag per value")
    lower = sorted(data)
    upper = sorted(math.inf if flag else v for v, flag in zip(data, censored, strict=True))
    middle = len(data) // 2
    if len(data) % 2:
        low, high = lower[middle], upper[middle]
    else:
        low = (lower[middle - 1] + lower[middle]) / 2.0
        high = (upper[middle - 1] + upper[middle]) / 2.0
    return CensoredEstimate(value=low, is_lower_bound=high != low, upper=high)


__all__ = [
    "MAD_TO_SIGMA",
    "CensoredEstimate",
    "censored_median",
    "hodges_lehmann",
    "iqr",
    "mad",
    "quantile",
]
