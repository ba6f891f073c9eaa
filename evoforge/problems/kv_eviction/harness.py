"""KV-cache eviction, the candidate's side: the decoding loop around ``keep_score``.

Runs in the candidate's process (see evoforge.problem.kit); the evaluator checks
the cache history it returns and scores it against the trace's values, which this
side never gets. Holds nothing the candidate may not see.
"""

from types import SimpleNamespace
from typing import Any

import numpy as np


def _as_scores(raw: object, heads: int, t: int) -> np.ndarray:
    """The policy's return value as float scores of shape (heads, t + 1)."""
    try:
        scores = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"keep_score returned a {type(raw).__name__} at step {t}, "
                         "not an array of numbers") from None
    try:
        return np.broadcast_to(scores, (heads, t + 1))
    except ValueError:
        raise ValueError(f"keep_score returned shape {scores.shape} at step {t}; expected "
                         f"scores broadcastable to (heads, t + 1) = {(heads, t + 1)}") from None


def decode(program: Any, trace_attn: np.ndarray, budget: int, name: str = "") -> np.ndarray:
    """Decode the attention trace with ``program.keep_score`` and a cache of ``budget``
    tokens per head.

    Returns:
        The cache history: ``cache[h, t, j]`` is True when head ``h`` holds
        position ``j`` after step ``t`` (see ``verify_history``).

    Raises:
        ValueError: if the policy raises or returns scores of the wrong shape or NaN.
    """
    policy = program.keep_score
    heads, n = trace_attn.shape[:2]
    history = np.zeros((heads, n, n), dtype=bool)
    kept = np.zeros((heads, n), dtype=bool)
    acc = np.zeros((heads, n))
    pos_all = np.arange(n)
    dist_all = np.arange(n, dtype=np.float64)[::-1].copy()   # dist_all[n-1-t:] = t..0
    pos_all.flags.writeable = False
    dist_all.flags.writeable = False
    state: dict[str, Any] = {}
    rows = np.arange(heads)
    for t in range(n):
        kept[:, t] = True                       # the new token joins the cache
        if t >= budget:
            held = np.where(kept[:, :t + 1], trace_attn[:, t, :t + 1], 0.0)
            attn = held / held.sum(axis=1, keepdims=True)   # what the model computes
        else:
            attn = trace_attn[:, t, :t + 1].copy()           # nothing evicted yet
        acc[:, :t + 1] += attn
        if t >= budget:
            pos = pos_all[:t + 1]
            dist = dist_all[n - 1 - t:]
            try:
                raw = policy(attn, acc[:, :t + 1], pos, dist, budget, state)
            except Exception as exc:
                raise ValueError(f"keep_score raised {type(exc).__name__}: {exc} "
                                 f"(step {t} of {name}, budget {budget})") from exc
            scores = _as_scores(raw, heads, t)
            if np.isnan(scores).any():
                raise ValueError(f"keep_score returned NaN at step {t} of {name} "
                                 f"(budget {budget})")
            cached = kept[:, :t + 1]
            victim = np.argmin(np.where(cached, scores, np.inf), axis=1)
            stale = ~cached[rows, victim]       # every cached score is +inf: evict the oldest
            if stale.any():
                victim[stale] = np.argmax(cached[stale], axis=1)
            kept[rows, victim] = False
        history[:, t, :t + 1] = kept[:, :t + 1]
    return history


def local(policy: Any) -> SimpleNamespace:
    """A stand-in program for calling :func:`decode` on a plain function."""
    return SimpleNamespace(keep_score=policy)
