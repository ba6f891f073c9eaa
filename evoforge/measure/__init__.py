"""Measurement kit for problems whose score is speed.

``measure`` runs a callable with warm-up and repeats and reports CPU-time
statistics; timings are in seconds of CPU time of the calling process
(``time.process_time``), which other load on the machine disturbs less than
wall-clock time.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Measurement:
    """CPU-time statistics of repeated calls.

    Attributes:
        samples: CPU seconds of each measured call (warm-up excluded).
        result: what the last call returned.
    """

    samples: tuple[float, ...]
    result: Any = None

    @property
    def median(self) -> float:
        """Median CPU seconds."""
        return statistics.median(self.samples)

    @property
    def minimum(self) -> float:
        """Fastest call (min-of-k)."""
        return min(self.samples)

    @property
    def mean(self) -> float:
        """Mean CPU seconds."""
        return statistics.fmean(self.samples)

    @property
    def stdev(self) -> float:
        """Sample standard deviation (0 for one sample)."""
        return statistics.stdev(self.samples) if len(self.samples) > 1 else 0.0

    @property
    def cv(self) -> float:
        """Coefficient of variation, stdev / mean."""
        return self.stdev / self.mean if self.mean > 0 else 0.0


def measure(fn: Callable[..., Any], *args: Any, warmup: int = 1, repeats: int = 5,
            **kwargs: Any) -> Measurement:
    """Call ``fn(*args, **kwargs)`` ``warmup`` times unmeasured, then ``repeats`` times.

    Returns:
        The CPU seconds of each measured call and the last result.
    """
    if repeats < 1:
        raise ValueError("repeats must be at least 1")
    result = None
    for _ in range(warmup):
        result = fn(*args, **kwargs)
    samples = []
    for _ in range(repeats):
        start = time.process_time()
        result = fn(*args, **kwargs)
        samples.append(time.process_time() - start)
    return Measurement(samples=tuple(samples), result=result)


__all__ = ["Measurement", "measure"]
