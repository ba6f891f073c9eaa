"""ε-lexicase selection and its use by the archive."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from evoforge.archive import Archive, FeatureSpace
from evoforge.archive.lexicase import epsilons, instance_scores, lexicase_select
from evoforge.candidate import Candidate, Status
from evoforge.config import ArchiveConfig


def _cand(cid: int, fitness: float, scores: list[float] | None, island: int = 0) -> Candidate:
    return Candidate(id=cid, seq=cid, island=island, parent_ids=(), operator="x",
                     code=f"x = {cid}\n" + "y = 1\n" * cid, code_hash=str(cid),
                     status=Status.OK, score=fitness, fitness=fitness,
                     features={"code_size": float(cid), "diversity": float(cid)},
                     artifacts={} if scores is None else {"instance_scores": scores})


def test_specialists_are_selected_despite_a_worse_mean() -> None:
    # a: best mean; b and c: each the best on one instance
    pool = [_cand(1, 0.0, None), _cand(2, -1.0, None), _cand(3, -1.0, None)]
    scores = [[5.0, 5.0, 5.0], [9.0, 0.0, 0.0], [0.0, 0.0, 9.0]]
    rng = random.Random(0)
    picks = Counter(lexicase_select(pool, scores, rng, eps=[0.0, 0.0, 0.0]).id
                    for _ in range(600))
    assert set(picks) == {1, 2, 3}
    # instance 1 decides for a 1/3 of the time, otherwise b or c wins where they lead
    assert picks[2] > 100 and picks[3] > 100


def test_a_dominated_candidate_is_never_selected() -> None:
    pool = [_cand(1, 0.0, None), _cand(2, -1.0, None)]
    scores = [[2.0, 2.0], [1.0, 1.0]]
    rng = random.Random(1)
    assert {lexicase_select(pool, scores, rng).id for _ in range(100)} == {1}


def test_epsilon_is_the_median_absolute_deviation() -> None:
    assert epsilons([[1.0], [2.0], [4.0]]) == [1.0]
    with pytest.raises(ValueError):
        lexicase_select([_cand(1, 0.0, None)], [[1.0], [2.0]], random.Random(0))


def test_instance_scores_are_read_and_oriented() -> None:
    assert instance_scores(_cand(1, 0.0, [1.0, 2.0]), maximize=False) == [-1.0, -2.0]
    assert instance_scores(_cand(1, 0.0, None)) is None
    assert instance_scores(_cand(1, 0.0, [1.0, float("nan")])) is None
    bad = _cand(1, 0.0, None)
    bad.artifacts["instance_scores"] = "1,2"
    assert instance_scores(bad) is None


def _archive(ratio: float) -> Archive:
    config = ArchiveConfig(num_islands=1, lexicase_ratio=ratio, exploitation_ratio=1.0,
                           exploration_ratio=0.0)
    return Archive(config, FeatureSpace(config, "x = 0\n"))


def test_archive_picks_specialists_only_with_lexicase() -> None:
    best = _cand(1, 0.0, [5.0, 5.0])
    specialist = _cand(2, -3.0, [20.0, -11.0])
    runner_up = _cand(3, -1.0, [0.0, 0.0])
    picks: dict[float, Counter[int]] = {}
    for ratio in (0.0, 1.0):
        archive = _archive(ratio)
        for cand in (best, specialist, runner_up):
            archive.add(cand)
        rng = random.Random(2)
        picks[ratio] = Counter(archive.sample_parent(0, rng).id for _ in range(400))
    assert picks[1.0][2] > 50  # the specialist leads on instance 0 half of the time
    assert picks[0.0][2] < picks[1.0][2]
