"""EvalPerf-style differential performance score (evoforge.measure.dpe)."""

from __future__ import annotations

import math

import pytest

from evoforge.measure import cluster_costs, dpe, dpe_details

# Slow -> fast with rel_tol 0.1: [10, 9.5] | [5, 4.8] | [1]: cumulative 40, 80, 100 %.
REFS = [5.0, 1.0, 9.5, 4.8, 10.0]


def test_clusters_by_relative_gap() -> None:
    assert cluster_costs(REFS, 0.1) == [[10.0, 9.5], [5.0, 4.8], [1.0]]
    assert cluster_costs(REFS, 0.0) == [[10.0], [9.5], [5.0], [4.8], [1.0]]
    assert cluster_costs(REFS, 0.9) == [[10.0, 9.5, 5.0, 4.8, 1.0]]
    # chaining: each step within 10% joins, even if the ends differ more
    assert cluster_costs([10, 9.2, 8.5, 7.8], 0.1) == [[10, 9.2, 8.5, 7.8]]
    assert cluster_costs([3.0, 3.0], 0.1) == [[3.0, 3.0]]


@pytest.mark.parametrize(
    ("candidate", "score"),
    [
        (12.0, 0.0),  # slower than every reference
        (10.0, 40.0),  # ties the slowest cluster's representative
        (9.7, 40.0),
        (9.5, 40.0),
        (5.0, 80.0),
        (4.9, 80.0),  # inside the middle cluster: credited with all of it
        (3.0, 80.0),
        (1.0, 100.0),
        (0.2, 100.0),
        (None, 0.0),  # failed / timed out
        (math.inf, 0.0),
    ],
)
def test_dpe_hand_cases(candidate: float | None, score: float) -> None:
    assert dpe(candidate, REFS, rel_tol=0.1) == pytest.approx(score)


def test_details_and_normalized_score() -> None:
    details = dpe_details(4.9, REFS, rel_tol=0.1)
    assert details.cluster == 1
    assert details.score == pytest.approx(80.0)
    assert details.normalized == pytest.approx(200 / 3)
    assert details.cumulative == pytest.approx((40.0, 80.0, 100.0))
    assert details.clusters == ((10.0, 9.5), (5.0, 4.8), (1.0,))
    unmatched = dpe_details(11.0, REFS)
    assert (unmatched.cluster, unmatched.score, unmatched.normalized) == (-1, 0.0, 0.0)


def test_without_tolerance_dpe_is_the_share_of_references_matched_or_beaten() -> None:
    refs = [8.0, 4.0, 2.0, 1.0]
    assert dpe(3.0, refs, rel_tol=0.0) == 50.0
    assert dpe(2.0, refs, rel_tol=0.0) == 75.0
    assert dpe(8.0, refs, rel_tol=0.0) == 25.0
    assert dpe(0.5, refs, rel_tol=0.0) == 100.0
    assert dpe(7.0, [7.0], rel_tol=0.0) == 100.0


def test_dpe_validates() -> None:
    with pytest.raises(ValueError):
        dpe(1.0, [])
    with pytest.raises(ValueError):
        dpe(1.0, [1.0, 0.0])
    with pytest.raises(ValueError):
        dpe(1.0, [1.0], rel_tol=-0.1)
    with pytest.raises(ValueError):
        dpe(-1.0, [1.0])
