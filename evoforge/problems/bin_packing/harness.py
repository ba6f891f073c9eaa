"""Online bin packing, the candidate's side: the packing loop around ``priority``.

Runs in the candidate's process (see evoforge.problem.kit); the evaluator checks
the assignment it returns from scratch. Holds nothing the candidate may not see.
"""

from types import SimpleNamespace
from typing import Any

import numpy as np

# Decimals the priority scores are rounded to before argmax, so that float noise
# cannot decide between two bins the program scores equally.
SCORE_DECIMALS = 6


def assign(program: Any, sizes: np.ndarray, capacity: int, name: str = "") -> np.ndarray:
    """Pack ``sizes`` online with ``program.priority``; the bin of each item.

    Bins are numbered in opening order.

    Raises:
        ValueError: if ``priority`` raises, or returns the wrong shape or NaN.
    """
    priority = program.priority
    cap = float(capacity)
    n = len(sizes)
    caps = np.empty(n, dtype=np.float64)  # remaining capacity of each open bin
    assignment = np.empty(n, dtype=np.int64)
    n_open = 0
    for i in range(n):
        item = float(sizes[i])
        fits = np.flatnonzero(caps[:n_open] >= item)
        k = len(fits)
        bins = np.empty(k + 1, dtype=np.float64)
        bins[:k] = caps[fits]
        bins[k] = cap
        try:
            raw = priority(item, bins)
            scores = np.asarray(raw, dtype=np.float64)
        except Exception as exc:
            raise ValueError(
                f"priority raised {type(exc).__name__}: {exc} "
                f"(item {i} of {name}, size {item:g}, {k + 1} bins)"
            ) from exc
        if scores.shape != (k + 1,):
            raise ValueError(
                f"priority returned shape {scores.shape} for {k + 1} bins "
                f"(item {i} of {name}); return one score per bin"
            )
        if np.isnan(scores).any():
            raise ValueError(
                f"priority returned NaN for item {i} of {name} "
                f"(size {item:g}, {k + 1} bins)"
            )
        choice = int(np.argmax(np.round(scores, SCORE_DECIMALS)))
        if choice == k:
            target = n_open
            caps[target] = cap
            n_open += 1
        else:
            target = int(fits[choice])
        caps[target] -= item
        assignment[i] = target
    return assignment


def local(priority: Any) -> SimpleNamespace:
    """A stand-in program for calling :func:`assign` on a plain function."""
    return SimpleNamespace(priority=priority)
