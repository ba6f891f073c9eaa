"""Differential performance evaluation (DPE) against reference solutions.

Reference: J. Liu, S. Xie, J. Wang, Y. Wei, Y. Ding, L. Zhang, "Evaluating
Language Models for Efficient Code Generation" (COLM 2024; EvalPerf). Written
from the paper's description, not from its code.

The idea: a task comes with many reference solutions of different
efficiency, each profiled on one performance-exercising input (EvalPerf uses
CPU instruction counts; any cost where lower is better works, e.g. seconds
from :func:`evoforge.measure.measure` or counts from
:func:`evoforge.measure.measure_instructions`). A candidate's DPE is the
percentage of reference solutions it matches or beats, where "matches"
tolerates measurement noise by comparing against *clusters* of references
whose costs are indistinguishable.

The definition implemented here, exactly:

1. Sort the reference costs from slowest to fastest, ``c_1 >= ... >= c_m``.
2. Cluster them by gaps: walking down the list, ``c_{i+1}`` starts a new
   cluster when it is more than ``rel_tol`` faster than ``c_i`` in relative
   terms, ``(c_i - c_{i+1}) / c_i > rel_tol``; otherwise it joins ``c_i``'s
   cluster. (EvalPerf adds a term that widens the gap for small costs; this
   implementation uses the plain relative gap.)
3. Each cluster is represented by its slowest member; cluster ``g`` (0-based,
   slow to fast) carries the cumulative score ``S_g = 100 * (number of
   references in clusters 0..g) / m``.
4. The candidate with cost ``x`` matches the fastest cluster whose
   representative it matches or beats, ``x <= slowest member``; its DPE is that
   cluster's ``S_g``, or 0 when it is slower than every reference (and when it
   failed or timed out: pass ``None`` or ``inf``).

So DPE is in ``[0, 100]``; 100 means "as fast as the fastest cluster of
references". :func:`dpe_details` also reports the normalised variant
``100 * (g + 1) / number of clusters`` that weighs clusters equally.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

#: Default relative gap that separates two clusters of reference costs.
DEFAULT_REL_TOL = 0.1


def cluster_costs(costs: Sequence[float], rel_tol: float = DEFAULT_REL_TOL) -> list[list[float]]:
    """Group costs into clusters separated by relative gaps above ``rel_tol``.

    Args:
        costs: Positive, finite reference costs in any order.
        rel_tol: Relative gap (``>= 0``) above which a new cluster starts.

    Returns:
        Clusters from slowest to fastest, each sorted slowest first.

    Raises:
        ValueError: If ``costs`` is empty, a cost is not positive and finite,
            or ``rel_tol`` is negative.
    """
    if rel_tol < 0 or math.isnan(rel_tol):
        raise ValueError("rel_tol must be non-negative")
    data = sorted((float(c) for c in costs), reverse=True)
    if not data:
        raise ValueError("need at least one reference cost")
    if not all(math.isfinite(c) and c > 0 for c in data):
        raise ValueError("reference costs must be positive and finite")
    clusters = [[data[0]]]
    for previous, current in zip(data, data[1:], strict=False):
        if (previous - current) / previous > rel_tol:
            clusters.append([current])
        else:
            clusters[-1].append(current)
    return clusters


@dataclass(frozen=True)
class DPEResult:
    """A candidate's place among clustered reference solutions.

    Attributes:
        score: DPE in ``[0, 100]``: percentage of references matched or beaten.
        normalized: ``100 * (cluster + 1) / len(clusters)``, 0 when unmatched.
        cluster: Index (slow to fast) of the matched cluster, -1 when the
            candidate is slower than every reference or failed.
        clusters: The reference clusters, slow to fast.
        cumulative: ``S_g`` for each cluster.
    """

    score: float
    normalized: float
    cluster: int
    clusters: tuple[tuple[float, ...], ...]
    cumulative: tuple[float, ...]


def dpe_details(
    candidate_cost: float | None,
    reference_costs: Sequence[float],
    rel_tol: float = DEFAULT_REL_TOL,
) -> DPEResult:
    """DPE with the clustering behind it (definition in the module docstring).

    Args:
        candidate_cost: The candidate's cost; ``None`` or ``inf`` for a
            failed or timed-out candidate.
        reference_costs: The reference solutions' costs, any order.
        rel_tol: Relative gap separating clusters.

    Returns:
        Score, normalised score, matched cluster and the clusters.

    Raises:
        ValueError: On invalid costs or ``rel_tol``.
    """
    clusters = cluster_costs(reference_costs, rel_tol)
    total = sum(len(c) for c in clusters)
    cumulative: list[float] = []
    seen = 0
    for cluster in clusters:
        seen += len(cluster)
        cumulative.append(100.0 * seen / total)
    matched = -1
    if candidate_cost is not None:
        x = float(candidate_cost)
        if math.isnan(x) or x < 0:
            raise ValueError("candidate cost must be non-negative")
        for index, cluster in enumerate(clusters):
            if x <= cluster[0]:
                matched = index
    score = cumulative[matched] if matched >= 0 else 0.0
    normalized = 100.0 * (matched + 1) / len(clusters)
    return DPEResult(
        score=score,
        normalized=normalized,
        cluster=matched,
        clusters=tuple(tuple(c) for c in clusters),
        cumulative=tuple(cumulative),
    )


def dpe(
    candidate_time: float | None,
    reference_times: Sequence[float],
    rel_tol: float = DEFAULT_REL_TOL,
) -> float:
    """Differential performance score of a candidate, in ``[0, 100]``.

    Percentage of reference solutions whose cluster the candidate matches or
    beats; see the module docstring for the exact definition.

    Args:
        candidate_time: The candidate's time (or instruction count); ``None``
            or ``inf`` when it failed or timed out (scores 0).
        reference_times: The reference solutions' times, any order.
        rel_tol: Relative gap separating clusters of indistinguishable
            references (0.1: references within 10% of their slower
            neighbour are one cluster).

    Returns:
        The DPE score.
    """
    return dpe_details(candidate_time, reference_times, rel_tol).score


__all__ = ["DEFAULT_REL_TOL", "DPEResult", "cluster_costs", "dpe", "dpe_details"]
