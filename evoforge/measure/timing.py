"""Repeated timing of a callable, with timeouts, a budget and robust statistics.

Timings are seconds on a chosen clock: ``"cpu"`` (the default,
``cpu_time`` (``getrusage``): CPU time of this process, all its threads, user plus
system) or ``"wall"`` (``time.perf_counter``). CPU time is disturbed less by
other load on the machine, but it does not count time spent sleeping or
waiting for I/O or for other processes, and it counts every thread of a
multi-threaded library (BLAS) -- pick ``"wall"`` when either matters.

Censoring. With ``timeout`` a call whose time exceeds it is recorded as
right-censored: the sample stores ``timeout`` itself and only "took at least
``timeout``" is assumed of it, so results are the same whether a slow call was
allowed to finish or would have been killed. The check is made after the call
returns: ``measure`` cannot interrupt a running call, so a call that hangs
hangs ``measure`` too. Bound that with the framework's process-level timeout
(the evaluator subprocess is killed when it overruns), never with this
function. ``budget`` caps the total time spent on the measured repeats;
repeats not started because the budget ran out are *skipped* and count as
censored as well (see :attr:`Measurement.censored_median`).
"""

from __future__ import annotations

import math
import resource
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from evoforge.measure.stats import (
    MAD_TO_SIGMA,
    CensoredEstimate,
    censored_median,
    hodges_lehmann,
    iqr,
    mad,
    quantile,
)

ClockName = Literal["cpu", "wall"]

def cpu_time() -> float:
    """CPU seconds of this process, all threads, user plus system.

    ``getrusage`` rather than ``time.process_time``: where a CPU-time limit
    (RLIMIT_CPU) is set, as in evoforge's evaluation workers, the kernel answers
    ``process_time`` only in scheduler ticks (about 4 ms), too coarse to time
    short calls; ``getrusage`` stays at microsecond resolution.
    """
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


#: The named clocks ``measure`` accepts.
CLOCKS: dict[str, Callable[[], float]] = {
    "cpu": cpu_time,
    "wall": time.perf_counter,
}


def resolve_clock(clock: str | Callable[[], float]) -> tuple[str, Callable[[], float]]:
    """Turn a clock name or a clock function into ``(name, function)``.

    Args:
        clock: ``"cpu"``, ``"wall"``, or any function returning seconds (a fake
            clock in tests); a function is named ``"custom"``.

    Returns:
        The clock's name and the function to read it.

    Raises:
        ValueError: For an unknown name.
    """
    if isinstance(clock, str):
        try:
            return clock, CLOCKS[clock]
        except KeyError:
            raise ValueError(
                f"unknown clock {clock!r}; expected one of {sorted(CLOCKS)} or a callable"
            ) from None
    if not callable(clock):
        raise TypeError("clock must be a clock name or a callable returning seconds")
    return "custom", clock


@dataclass(frozen=True)
class Measurement:
    """Timing statistics of repeated calls.

    Attributes:
        samples: Seconds of each measured call (warm-up excluded), in call
            order; a censored call holds ``timeout``, its lower bound.
        result: What the last call returned.
        censored_mask: One flag per sample, true where the call exceeded
            ``timeout``; empty means no sample is censored.
        skipped: Repeats not run because ``budget`` ran out or
            ``stop_on_timeout`` stopped the loop; they count as censored.
        timeout: The per-call timeout used, if any.
        clock: Name of the clock: ``"cpu"``, ``"wall"`` or ``"custom"``.

    All spread statistics (``median``, ``iqr``, ``mad``, ``cv``, ...) are
    computed over ``samples`` as stored, i.e. with censored calls at their
    bound; they ignore skipped repeats. Use :attr:`censored_median` when
    censoring matters.
    """

    samples: tuple[float, ...]
    result: Any = None
    censored_mask: tuple[bool, ...] = ()
    skipped: int = 0
    timeout: float | None = None
    clock: str = "cpu"

    def __post_init__(self) -> None:
        """Check that the fields agree with one another."""
        if self.censored_mask and len(self.censored_mask) != len(self.samples):
            raise ValueError("censored_mask needs one flag per sample")
        if self.skipped < 0:
            raise ValueError("skipped must not be negative")

    @property
    def censored_flags(self) -> tuple[bool, ...]:
        """One censored flag per sample (all false when ``censored_mask`` is empty)."""
        return self.censored_mask or (False,) * len(self.samples)

    @property
    def repeats(self) -> int:
        """Repeats asked for: samples taken plus repeats skipped."""
        return len(self.samples) + self.skipped

    @property
    def censored(self) -> int:
        """Number of censored repeats: calls over ``timeout`` plus skipped repeats."""
        return sum(self.censored_flags) + self.skipped

    @property
    def median(self) -> float:
        """Median seconds per call."""
        return statistics.median(self.samples)

    @property
    def minimum(self) -> float:
        """Fastest call (min-of-k over the k measured repeats)."""
        return min(self.samples)

    @property
    def maximum(self) -> float:
        """Slowest call."""
        return max(self.samples)

    @property
    def mean(self) -> float:
        """Mean seconds per call."""
        return statistics.fmean(self.samples)

    @property
    def stdev(self) -> float:
        """Sample standard deviation (0 for one sample)."""
        return statistics.stdev(self.samples) if len(self.samples) > 1 else 0.0

    @property
    def cv(self) -> float:
        """Coefficient of variation, stdev / mean (0 when the mean is 0)."""
        return self.stdev / self.mean if self.mean > 0 else 0.0

    @property
    def q1(self) -> float:
        """First quartile (type-7 interpolation)."""
        return quantile(self.samples, 0.25)

    @property
    def q3(self) -> float:
        """Third quartile (type-7 interpolation)."""
        return quantile(self.samples, 0.75)

    @property
    def iqr(self) -> float:
        """Interquartile range, ``q3 - q1``."""
        return iqr(self.samples)

    @property
    def mad(self) -> float:
        """Median absolute deviation from the median (unscaled)."""
        return mad(self.samples)

    @property
    def robust_cv(self) -> float:
        """Outlier-resistant CV: ``1.4826 * MAD / median`` (0 when the median is 0).

        Equals the ordinary CV for normal noise, but a few slow outliers
        (a context switch, a page-cache miss) barely move it.
        """
        return MAD_TO_SIGMA * self.mad / self.median if self.median > 0 else 0.0

    @property
    def hodges_lehmann(self) -> float:
        """Hodges-Lehmann location estimate of the samples (what ENAMEL uses)."""
        return hodges_lehmann(self.samples)

    @property
    def censored_median(self) -> CensoredEstimate:
        """Median that accounts for right-censored repeats.

        Censored calls count as "at least ``timeout``"; skipped repeats count
        as "at least as slow as the slowest measured call" (the budget ran out
        because calls were slow; a pragmatic assumption, not a bound). If
        enough repeats are censored that the median falls among them -- e.g.
        more than half timed out -- the result is the lower bound (the timeout)
        with ``is_lower_bound`` set; otherwise it is the exact median of all
        repeats, and equals :attr:`median` when nothing was skipped.
        """
        bound = self.maximum
        values = list(self.samples) + [bound] * self.skipped
        flags = list(self.censored_flags) + [True] * self.skipped
        return censored_median(values, flags)

    @property
    def timed_out(self) -> bool:
        """True when censoring leaves the median undetermined (see ``censored_median``)."""
        return self.censored_median.is_lower_bound

    def summary(self) -> dict[str, float | int | bool | str | None]:
        """The main statistics as a flat, JSON-ready dict.

        Returns:
            Keys ``clock``, ``n``, ``censored``, ``skipped``, ``timeout``,
            ``median``, ``censored_median``, ``median_is_lower_bound``,
            ``min``, ``mean``, ``stdev``, ``cv``, ``iqr``, ``mad``,
            ``robust_cv``.
        """
        estimate = self.censored_median
        return {
            "clock": self.clock,
            "n": len(self.samples),
            "censored": self.censored,
            "skipped": self.skipped,
            "timeout": self.timeout,
            "median": self.median,
            "censored_median": estimate.value,
            "median_is_lower_bound": estimate.is_lower_bound,
            "min": self.minimum,
            "mean": self.mean,
            "stdev": self.stdev,
            "cv": self.cv,
            "iqr": self.iqr,
            "mad": self.mad,
            "robust_cv": self.robust_cv,
        }


def measure(
    fn: Callable[..., Any],
    *args: Any,
    warmup: int = 1,
    repeats: int = 5,
    timeout: float | None = None,
    budget: float | None = None,
    clock: ClockName | Callable[[], float] = "cpu",
    stop_on_timeout: bool = False,
    **kwargs: Any,
) -> Measurement:
    """Call ``fn(*args, **kwargs)`` ``warmup`` times unmeasured, then ``repeats`` times.

    The keyword names of this function (``warmup``, ``repeats``, ``timeout``,
    ``budget``, ``clock``, ``stop_on_timeout``) are not passed on to ``fn``;
    wrap ``fn`` in :func:`functools.partial` to give it arguments with those
    names.

    Args:
        fn: The callable to time.
        *args: Positional arguments for ``fn``.
        warmup: Unmeasured calls first (caches, lazy imports, JIT).
        repeats: Measured calls wanted; at least 1.
        timeout: Seconds per call; a call taking longer is recorded as
            censored at ``timeout``. Checked after the call returns -- a hung
            call is not interrupted (see the module docstring).
        budget: Seconds (on ``clock``) for all measured repeats together;
            once that much has elapsed since the first measured call started,
            remaining repeats are skipped and counted as censored. The first
            measured call always runs; warm-up does not count.
        clock: ``"cpu"`` (:func:`cpu_time`), ``"wall"``
            (``time.perf_counter``) or a function returning seconds.
        stop_on_timeout: Skip the remaining repeats after the first censored
            call (a call that timed out once will likely do it again).
        **kwargs: Keyword arguments for ``fn``.

    Returns:
        The seconds of each measured call, censoring flags and the last result.

    Raises:
        ValueError: If ``repeats < 1`` or ``timeout``/``budget`` is not positive.
    """
    if repeats < 1:
        raise ValueError("repeats must be at least 1")
    if timeout is not None and not timeout > 0:
        raise ValueError("timeout must be positive")
    if budget is not None and not budget > 0:
        raise ValueError("budget must be positive")
    name, now = resolve_clock(clock)
    result = None
    for _ in range(warmup):
        result = fn(*args, **kwargs)
    samples: list[float] = []
    flags: list[bool] = []
    first_start = math.nan
    for index in range(repeats):
        if index and budget is not None and now() - first_start >= budget:
            break
        if stop_on_timeout and flags and flags[-1]:
            break
        start = now()
        if not index:
            first_start = start
        result = fn(*args, **kwargs)
        elapsed = now() - start
        if timeout is not None and elapsed > timeout:
            samples.append(float(timeout))
            flags.append(True)
        else:
            samples.append(elapsed)
            flags.append(False)
    return Measurement(
        samples=tuple(samples),
        result=result,
        censored_mask=tuple(flags) if any(flags) else (),
        skipped=repeats - len(samples),
        timeout=timeout,
        clock=name,
    )


__all__ = ["CLOCKS", "ClockName", "Measurement", "measure", "resolve_clock"]
