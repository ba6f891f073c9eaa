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
# Items between two sweeps of the bins that can take no more items.
COMPACT_EVERY = 64


def assign(program: Any, sizes: np.ndarray, capacity: int, name: str = "") -> np.ndarray:
    """Pack ``sizes`` online with ``program.priority``; the bin of each item.

    Bins are numbered in opening order.

    Raises:
        ValueError: if ``priority`` raises, or returns the wrong shape or NaN.
    """
    priority = program.priority
    cap = float(capacity)
    n = len(sizes)
    items = np.asarray(sizes, dtype=np.float64)
    # later[i]: the smallest item from i on. A bin with less room than that can take
    # no more items, so it is dropped from the scan (about half the open bins on the
    # Weibull instances): what ``priority`` sees is unchanged, the loop twice as fast.
    later = np.full(n + 1, np.inf)
    if n:
        later[:n] = np.minimum.accumulate(items[::-1])[::-1]
    room = np.empty(n, dtype=np.float64)  # remaining capacity of each live bin ...
    ids = np.empty(n, dtype=np.int64)  # ... and its number, in opening order
    assignment = np.empty(n, dtype=np.int64)
    n_live = n_open = 0
    for i, item in enumerate(items.tolist()):
        if i % COMPACT_EVERY == 0 and n_live:
            keep = (room[:n_live] >= later[i]).nonzero()[0]
            n_live = keep.size
            room[:n_live] = room[keep]
            ids[:n_live] = ids[keep]
        live = room[:n_live]
        fits = (live >= item).nonzero()[0]
        k = fits.size
        bins = np.empty(k + 1, dtype=np.float64)
        bins[:k] = live[fits]
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
        rounded = scores.round(SCORE_DECIMALS)
        choice = int(rounded.argmax())
        if rounded[choice] != rounded[choice]:  # argmax stops at the first NaN
            raise ValueError(
                f"priority returned NaN for item {i} of {name} "
                f"(size {item:g}, {k + 1} bins)"
            )
        if choice == k:
            room[n_live] = cap - item
            ids[n_live] = n_open
            assignment[i] = n_open
            n_live += 1
            n_open += 1
        else:
            pos = fits[choice]
            room[pos] -= item
            assignment[i] = ids[pos]
    return assignment


def local(priority: Any) -> SimpleNamespace:
    """A stand-in program for calling :func:`assign` on a plain function."""
    return SimpleNamespace(priority=priority)
