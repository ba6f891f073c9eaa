"""ε-lexicase parent selection over per-instance scores.

An evaluator that scores many instances reports one score per instance as
``artifacts["instance_scores"]`` (a list of floats in a fixed order, higher is
better when the objective is maximised). Lexicase selection filters the pool
instance by instance, in a random order, keeping only the candidates that are
best (within ε) on the current instance, so a program that is the best on a few
instances is chosen now and then even when its mean is not the best.

ε per instance is the median absolute deviation of the pool's scores on it
(La Cava et al.'s automatic ε), so near-ties on noisy or continuous scores do not
decide alone.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

from evoforge.candidate import Candidate

INSTANCE_SCORES = "instance_scores"
"""The artifact key an evaluator reports its per-instance scores under."""


def instance_scores(candidate: Candidate, maximize: bool = True) -> list[float] | None:
    """The candidate's per-instance scores, oriented so that higher is better.

    Returns:
        The scores, or None when the candidate has none, or they are not a
        non-empty list of finite numbers.
    """
    raw = candidate.artifacts.get(INSTANCE_SCORES) if candidate.artifacts else None
    if not isinstance(raw, list) or not raw:
        return None
    values: list[float] = []
    for value in raw:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        number = float(value)
        if not math.isfinite(number):
            return None
        values.append(number if maximize else -number)
    return values


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    n = len(ordered)
    mid = n // 2
    return ordered[mid] if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def epsilons(scores: Sequence[Sequence[float]]) -> list[float]:
    """Per instance: the median absolute deviation of the scores on it."""
    out: list[float] = []
    for case in range(len(scores[0])):
        column = [row[case] for row in scores]
        centre = _median(column)
        out.append(_median([abs(v - centre) for v in column]))
    return out


def lexicase_select(pool: Sequence[Candidate], scores: Sequence[Sequence[float]],
                    rng: random.Random, eps: Sequence[float] | None = None) -> Candidate:
    """Pick one candidate of ``pool`` by ε-lexicase selection.

    Args:
        pool: the candidates (at least one).
        scores: ``scores[i]`` are the per-instance scores of ``pool[i]``, all of
            the same length, higher is better.
        rng: the only source of randomness.
        eps: the ε per instance; default :func:`epsilons` of ``scores``.

    Returns:
        The selected candidate.

    Raises:
        ValueError: for an empty pool or rows of different lengths.
    """
    if not pool or len(pool) != len(scores):
        raise ValueError("lexicase needs one score row per candidate, and at least one")
    n_cases = len(scores[0])
    if any(len(row) != n_cases for row in scores):
        raise ValueError("lexicase needs the same number of instance scores for every candidate")
    if eps is None:
        eps = epsilons(scores)
    alive = list(range(len(pool)))
    cases = list(range(n_cases))
    rng.shuffle(cases)
    for case in cases:
        if len(alive) == 1:
            break
        best = max(scores[i][case] for i in alive)
        alive = [i for i in alive if scores[i][case] >= best - eps[case]]
    return pool[alive[rng.randrange(len(alive))]]
