"""Tests of the archive: islands of MAP-Elites grids."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest

from evoforge.archive import Archive, FeatureSpace
from evoforge.candidate import Candidate, Status, normalized_hash
from evoforge.config import ArchiveConfig, FeatureConfig

INITIAL = "def solve(x):\n    return x\n"


def make_config(**overrides: Any) -> ArchiveConfig:
    """A config with one metric feature ``a`` binned 1 per unit over [0, 10)."""
    values: dict[str, Any] = {
        "num_islands": 3,
        "population_size": 1000,
        "archive_size": 100,
        "feature_dimensions": [FeatureConfig(name="a", bins=10, min=0.0, max=10.0)],
    }
    values.update(overrides)
    return ArchiveConfig(**values)


def make_archive(**overrides: Any) -> Archive:
    config = make_config(**overrides)
    return Archive(config, FeatureSpace(config, INITIAL))


def cand(cid: int, fitness: float, a: float = 0.0, island: int = 0) -> Candidate:
    code = f"def solve(x):\n    return x + {cid}\n"
    return Candidate(
        id=cid,
        seq=cid,
        island=island,
        parent_ids=(),
        operator="test",
        code=code,
        code_hash=normalized_hash(code),
        status=Status.OK,
        score=fitness,
        fitness=fitness,
        metrics={"a": a, "score": fitness},
        features={"a": a},
    )


def best_id(archive: Archive) -> int | None:
    best = archive.best()
    return None if best is None else best.id


def fill(archive: Archive, count: int, islands: int, seed: int = 0) -> list[Candidate]:
    rng = random.Random(seed)
    out = []
    for i in range(count):
        c = cand(i + 1, rng.random(), a=rng.randrange(10), island=i % islands)
        archive.add(c)
        out.append(c)
    return out


# ---------------------------------------------------------------------- insertion


def test_insertion_rules() -> None:
    archive = make_archive()
    assert archive.add(cand(1, 0.5, a=3))
    assert archive.cells(0) == {(3,): cand(1, 0.5, a=3)}
    # worse and equal are rejected, the incumbent stays
    assert not archive.add(cand(2, 0.4, a=3))
    assert not archive.add(cand(3, 0.5, a=3.5))
    assert archive.cells(0)[(3,)].id == 1
    # strictly better replaces
    assert archive.add(cand(4, 0.6, a=3.9))
    assert archive.cells(0)[(3,)].id == 4
    assert len(archive) == 1
    assert cand(1, 0.5) not in archive
    assert archive.islands_of(1) == {}
    # adding the same candidate again is a no-op
    assert not archive.add(cand(4, 0.6, a=3.9))
    assert len(archive) == 1


def test_cells_are_separated_by_features() -> None:
    archive = make_archive()
    assert archive.add(cand(1, 0.9, a=1))
    assert archive.add(cand(2, 0.1, a=2))
    assert archive.add(cand(3, 0.5, a=9.5))
    assert not archive.add(cand(4, 0.5, a=42))  # clipped into the last bin: a tie, rejected
    assert set(archive.cells(0)) == {(1,), (2,), (9,)}
    assert archive.cells(0)[(9,)].id == 3
    assert len(archive) == 3


def test_islands_are_separate() -> None:
    archive = make_archive()
    assert archive.add(cand(1, 0.5, a=3, island=0))
    assert archive.add(cand(2, 0.1, a=3, island=1))  # same cell, other island
    assert archive.cells(0)[(3,)].id == 1
    assert archive.cells(1)[(3,)].id == 2
    assert archive.cells(2) == {}
    assert archive.island_sizes() == [1, 1, 0]
    assert len(archive) == 2


def test_add_rejects_invalid_candidates() -> None:
    archive = make_archive()
    with pytest.raises(ValueError, match="island"):
        archive.add(cand(1, 0.5, island=3))
    failed = Candidate(
        id=2, seq=2, island=0, parent_ids=(), operator="t", code="x", code_hash="h",
        status=Status.FAILED,
    )
    with pytest.raises(ValueError, match="status"):
        archive.add(failed)
    with pytest.raises(ValueError, match="fitness"):
        archive.add(cand(3, float("nan")))
    no_features = Candidate(
        id=4, seq=4, island=0, parent_ids=(), operator="t", code="x", code_hash="h",
        status=Status.OK, fitness=1.0,
    )
    with pytest.raises(KeyError, match="'a'"):
        archive.add(no_features)
    assert len(archive) == 0


def test_add_initial_fills_every_island() -> None:
    archive = make_archive(num_islands=4)
    initial = cand(0, 0.1, a=5)
    archive.add_initial(initial)
    assert archive.island_sizes() == [1, 1, 1, 1]
    assert all(archive.cells(i) == {(5,): initial} for i in range(4))
    assert archive.islands_of(0) == {i: (5,) for i in range(4)}
    assert archive.best() is initial
    assert archive.elites() == [initial]
    assert len(archive) == 4


def test_adaptive_cells_stay_put() -> None:
    config = make_config(num_islands=2, feature_dimensions=[FeatureConfig(name="m", bins=4)])
    archive = Archive(config, FeatureSpace(config, INITIAL))

    def with_m(c: Candidate, m: float) -> Candidate:
        return Candidate(**{**c.__dict__, "features": {"m": m}})

    first = with_m(cand(1, 0.5), 10.0)
    assert archive.add(first)
    assert archive.islands_of(1) == {0: (0,)}
    # the range widens to [0, 10]; 10.0 now bins to the last cell ...
    assert archive.add(with_m(cand(2, 0.4), 0.0)) is False  # same cell (0,), worse
    assert archive.feature_space.range("m") == (0.0, 10.0)
    assert archive.feature_space.cell({"m": 10.0}) == (3,)
    # ... but the placed candidate stays where it was placed, also when it migrates
    assert archive.islands_of(1) == {0: (0,)}
    archive.migrate(random.Random(0))
    assert archive.islands_of(1) == {0: (0,), 1: (0,)}
    third = with_m(cand(3, 0.1), 10.0)
    assert archive.add(third)
    assert archive.cells(0) == {(0,): first, (3,): third}


# ---------------------------------------------------------------------- capacity & elites


def test_population_size_evicts_the_worst_never_the_best() -> None:
    archive = make_archive(num_islands=2, population_size=3)
    archive.add(cand(1, 0.9, a=1, island=0))
    archive.add(cand(2, 0.2, a=2, island=0))
    archive.add(cand(3, 0.5, a=3, island=1))
    assert len(archive) == 3
    assert archive.add(cand(4, 0.7, a=4, island=1))
    assert len(archive) == 3
    assert 2 not in {c.id for c in archive.elites()}
    assert best_id(archive) == 1
    # a newcomer worse than everything is evicted at once
    assert not archive.add(cand(5, 0.1, a=5, island=0))
    assert len(archive) == 3
    assert {c.id for c in archive.elites()} == {1, 3, 4}


def test_capacity_keeps_the_best_even_when_it_is_alone() -> None:
    archive = make_archive(num_islands=4, population_size=2)
    initial = cand(0, 0.3, a=5)
    archive.add_initial(initial)
    assert len(archive) == 2
    assert archive.best() is initial
    archive.add(cand(1, 0.1, a=1, island=0))
    assert len(archive) == 2
    assert archive.best() is initial


def test_capacity_under_many_insertions() -> None:
    archive = make_archive(num_islands=3, population_size=7)
    cands = fill(archive, 200, islands=3, seed=1)
    assert len(archive) == 7 == sum(archive.island_sizes())
    best = max(cands, key=lambda c: (c.fitness, -c.id))
    assert archive.best() is best
    assert any(best is c for c in archive.cells(best.island).values())


def test_elites_ordering_and_size() -> None:
    archive = make_archive(archive_size=3)
    archive.add(cand(5, 0.5, a=1))
    archive.add(cand(2, 0.9, a=2))
    archive.add(cand(7, 0.7, a=3))
    archive.add(cand(1, 0.7, a=4))  # same fitness as 7, lower id first
    archive.add(cand(3, 0.1, a=5))
    assert [c.id for c in archive.elites()] == [2, 1, 7]
    archive.add(cand(9, 1.0, a=3))  # replaces 7 in its cell
    assert [c.id for c in archive.elites()] == [9, 2, 1]
    assert best_id(archive) == 9


def test_empty_archive() -> None:
    archive = make_archive()
    assert archive.best() is None
    assert len(archive) == 0
    assert archive.elites() == []
    with pytest.raises(LookupError):
        archive.sample_parent(0, random.Random(0))
    assert archive.inspirations(0, cand(1, 0.5), random.Random(0)) == []
    assert archive.migrate(random.Random(0)) == 0


# ---------------------------------------------------------------------- selection


def test_sample_parent_mostly_from_its_island() -> None:
    archive = make_archive(num_islands=3, exploitation_ratio=0.6, exploration_ratio=0.3)
    fill(archive, 60, islands=3)
    rng = random.Random(7)
    islands = Counter(archive.sample_parent(1, rng).island for _ in range(2000))
    # 90% from island 1 plus a third of the remaining 10%
    assert islands[1] / 2000 > 0.85
    assert islands[0] > 0 and islands[2] > 0


def test_sample_parent_is_deterministic() -> None:
    def picks(seed: int) -> list[int]:
        archive = make_archive()
        fill(archive, 40, islands=3)
        rng = random.Random(seed)
        return [archive.sample_parent(i % 3, rng).id for i in range(200)]

    assert picks(3) == picks(3)
    assert picks(3) != picks(4)


def test_full_exploitation_picks_only_strong_candidates() -> None:
    archive = make_archive(
        num_islands=1, archive_size=3, exploitation_ratio=1.0, exploration_ratio=0.0
    )
    for i in range(10):
        archive.add(cand(i + 1, float(i), a=i))
    rng = random.Random(0)
    picked = Counter(archive.sample_parent(0, rng).id for _ in range(500))
    assert set(picked) <= {10, 9, 8}
    assert picked[10] > picked[8]


def test_exploitation_on_island_without_global_elites() -> None:
    archive = make_archive(
        num_islands=2, archive_size=2, exploitation_ratio=1.0, exploration_ratio=0.0
    )
    for i in range(5):
        archive.add(cand(i + 1, 10.0 + i, a=i, island=0))
    for i in range(5):
        archive.add(cand(i + 11, float(i), a=i, island=1))
    rng = random.Random(0)
    picked = {archive.sample_parent(1, rng).id for _ in range(300)}
    assert picked <= {15}  # ceil(2 / 2) = 1 best of island 1


def test_full_exploration_is_uniform_over_the_island() -> None:
    archive = make_archive(num_islands=2, exploitation_ratio=0.0, exploration_ratio=1.0)
    for i in range(4):
        archive.add(cand(i + 1, float(i), a=i, island=0))
    archive.add(cand(99, 100.0, a=0, island=1))
    rng = random.Random(1)
    picked = Counter(archive.sample_parent(0, rng).id for _ in range(4000))
    assert set(picked) == {1, 2, 3, 4}
    assert min(picked.values()) > 800


def test_empty_island_falls_back_to_any_occupied_cell() -> None:
    archive = make_archive(num_islands=3)
    archive.add(cand(1, 0.5, a=1, island=0))
    rng = random.Random(0)
    assert {archive.sample_parent(2, rng).id for _ in range(20)} == {1}
    with pytest.raises(ValueError):
        archive.sample_parent(3, rng)


def test_inspirations_exclude_parent_and_are_distinct() -> None:
    archive = make_archive(num_islands=3, num_inspirations=4)
    fill(archive, 30, islands=3)
    rng = random.Random(5)
    for island in range(3):
        for _ in range(50):
            parent = archive.sample_parent(island, rng)
            got = archive.inspirations(island, parent, rng)
            ids = [c.id for c in got]
            assert len(ids) == 4
            assert parent.id not in ids
            assert len(set(ids)) == len(ids)
    # the island's best comes first (unless it is the parent)
    best0 = archive.island_ranking(0)[0]
    other = archive.island_ranking(0)[-1]
    assert archive.inspirations(0, other, rng)[0] is best0
    assert archive.inspirations(0, best0, rng)[0] is archive.island_ranking(0)[1]
    assert archive.inspirations(0, other, rng, n=0) == []
    assert len(archive.inspirations(0, other, rng, n=2)) == 2


def test_inspirations_when_few_candidates() -> None:
    archive = make_archive(num_islands=2, num_inspirations=5)
    a, b = cand(1, 0.5, a=1, island=0), cand(2, 0.6, a=2, island=1)
    archive.add(a)
    archive.add(b)
    assert archive.inspirations(0, a, random.Random(0)) == [b]
    assert archive.inspirations(1, a, random.Random(0)) == [b]
    archive.add_initial(cand(0, 0.1, a=5))
    got = archive.inspirations(0, a, random.Random(0))
    assert sorted(c.id for c in got) == [0, 2]


def test_inspirations_are_deterministic() -> None:
    def run(seed: int) -> list[list[int]]:
        archive = make_archive()
        fill(archive, 40, islands=3)
        rng = random.Random(seed)
        return [
            [c.id for c in archive.inspirations(i % 3, archive.sample_parent(i % 3, rng), rng)]
            for i in range(50)
        ]

    assert run(2) == run(2)


# ---------------------------------------------------------------------- migration


def test_ring_migration_moves_best_to_next_island_only() -> None:
    archive = make_archive(num_islands=3, migration_rate=0.0)
    archive.add(cand(1, 0.9, a=1, island=0))
    archive.add(cand(2, 0.1, a=2, island=0))
    archive.add(cand(3, 0.8, a=3, island=1))
    archive.add(cand(4, 0.7, a=4, island=2))
    placed = archive.migrate(random.Random(0))
    assert placed == 3
    # island 0's best (only, rate 0 -> at least 1) went to island 1, not island 2
    assert archive.islands_of(1) == {0: (1,), 1: (1,)}
    assert archive.islands_of(2) == {0: (2,)}
    assert archive.islands_of(3) == {1: (3,), 2: (3,)}
    # the wrap-around: island 2 sends to island 0
    assert archive.islands_of(4) == {2: (4,), 0: (4,)}
    # the same objects are stored, ids unchanged
    assert archive.cells(1)[(1,)] is archive.cells(0)[(1,)]
    assert len(archive) == 7
    assert len(archive.elites()) == 4


def test_migration_rate_and_competition() -> None:
    archive = make_archive(num_islands=2, migration_rate=0.5)
    for i in range(4):
        archive.add(cand(i + 1, 1.0 + i, a=i, island=0))
    archive.add(cand(10, 100.0, a=3, island=1))  # holds cell (3,) on island 1
    placed = archive.migrate(random.Random(0))
    # island 0 sends its top 2 (ids 4 and 3); id 4 loses cell (3,) to id 10.
    # island 1 sends id 10 to island 0, where it beats id 4 in cell (3,).
    assert placed == 2
    assert archive.cells(1) == {(3,): archive.cells(1)[(3,)], (2,): cand(3, 3.0, a=2)}
    assert archive.cells(1)[(3,)].id == 10
    assert archive.cells(0)[(3,)].id == 10
    assert 4 not in {c.id for c in archive.elites()}


def test_migration_is_one_hop_per_round() -> None:
    archive = make_archive(num_islands=3)
    archive.add(cand(1, 0.9, a=1, island=0))
    archive.migrate(random.Random(0))
    assert archive.islands_of(1) == {0: (1,), 1: (1,)}
    archive.migrate(random.Random(0))
    assert set(archive.islands_of(1)) == {0, 1, 2}
    # nothing new to place: every island already holds the candidate
    assert archive.migrate(random.Random(0)) == 0


def test_on_evaluated_migrates_on_the_interval() -> None:
    archive = make_archive(num_islands=2, migration_interval=5)
    archive.add(cand(1, 0.9, a=1, island=0))
    archive.add(cand(2, 0.8, a=2, island=1))
    rng = random.Random(0)
    assert [archive.on_evaluated(n, rng) for n in range(1, 5)] == [0, 0, 0, 0]
    assert archive.island_sizes() == [1, 1]
    assert archive.on_evaluated(5, rng) == 2
    assert archive.island_sizes() == [2, 2]
    assert archive.on_evaluated(6, rng) == 0


def test_on_evaluated_with_one_island_never_migrates() -> None:
    archive = make_archive(num_islands=1, migration_interval=1)
    archive.add(cand(1, 0.9, a=1))
    assert archive.on_evaluated(1, random.Random(0)) == 0
    assert archive.migrate(random.Random(0)) == 0
    assert len(archive) == 1


def test_migration_respects_population_size() -> None:
    archive = make_archive(num_islands=2, population_size=4, migration_rate=1.0)
    for i in range(2):
        archive.add(cand(i + 1, 1.0 + i, a=i, island=0))
        archive.add(cand(i + 11, 5.0 + i, a=i + 5, island=1))
    archive.migrate(random.Random(0))
    assert len(archive) == 4
    assert best_id(archive) == 12


def test_indexes_stay_consistent_under_random_operations() -> None:
    archive = make_archive(num_islands=4, population_size=25, archive_size=10)
    rng = random.Random(11)
    added: list[Candidate] = []
    for n in range(1, 400):
        c = cand(n, round(rng.random(), 2), a=rng.randrange(10), island=rng.randrange(4))
        archive.add(c)
        added.append(c)
        archive.on_evaluated(n, rng)
        archive.sample_parent(rng.randrange(4), rng)
    cells = [archive.cells(i) for i in range(4)]
    assert len(archive) == sum(len(g) for g in cells) <= 25
    placed = {c.id: c for g in cells for c in g.values()}
    ranked = sorted(placed.values(), key=lambda c: (-c.fitness, c.id))  # type: ignore[operator]
    assert archive.elites() == ranked[:10]
    best = min(added, key=lambda c: (-c.fitness, c.id))  # type: ignore[operator]
    assert archive.best() is best
    for island, grid in enumerate(cells):
        assert archive.island_ranking(island) == sorted(
            grid.values(), key=lambda c: (-c.fitness, c.id)  # type: ignore[operator]
        )
        for cell, c in grid.items():
            assert archive.islands_of(c.id)[island] == cell


def _initial_candidate() -> Candidate:
    return Candidate(id=0, seq=0, island=0, parent_ids=(), operator="initial", code=INITIAL,
                     code_hash=normalized_hash(INITIAL), status=Status.OK, score=0.0,
                     fitness=0.0, metrics={"a": 0.0}, features={"a": 0.0})


def test_a_stalled_archive_reseeds_its_worst_island() -> None:
    archive = make_archive(restart_after=5, migration_interval=1000, migration_rate=1.0)
    rng = random.Random(0)
    archive.add_initial(_initial_candidate())
    archive.add(cand(1, 9.0, a=1, island=0))  # the best, on island 0
    archive.add(cand(2, 5.0, a=2, island=1))
    archive.add(cand(3, 2.0, a=3, island=2))  # island 2 has the worst best
    archive.on_evaluated(1, rng)  # the best is seen: the stall count starts
    for count in range(2, 6):
        archive.add(cand(10 + count, 1.0, a=4 + count, island=1))  # nothing better
        archive.on_evaluated(count, rng)
    assert archive.restarts == 0
    archive.on_evaluated(6, rng)
    assert archive.restarts == 1
    assert [c.id for c in archive.island_ranking(2)] == [0]  # only the initial program
    assert 3 not in archive  # it lived on island 2 only
    assert best_id(archive) == 1 and archive.islands_of(2) == {1: (2,)}  # others untouched
    # sheltered: no migrants for 5 evaluations
    archive.migrate(rng)
    assert [c.id for c in archive.island_ranking(2)] == [0]
    archive.add(cand(20, 10.0, a=9, island=1))  # a new best ...
    archive.on_evaluated(8, rng)
    archive.on_evaluated(11, rng)  # ... so no restart yet, and the shelter is over
    assert archive.restarts == 1
    archive.migrate(rng)
    assert 20 in [c.id for c in archive.island_ranking(2)]


def test_restart_off_with_zero_and_a_new_best_resets_the_count() -> None:
    archive = make_archive(restart_after=0, migration_interval=1000)
    rng = random.Random(0)
    archive.add_initial(_initial_candidate())
    for count in range(1, 200):
        archive.on_evaluated(count, rng)
    assert archive.restarts == 0
    archive = make_archive(restart_after=3, migration_interval=1000)
    archive.add_initial(_initial_candidate())
    for count in range(1, 20):
        archive.add(cand(count, float(count), a=count % 10, island=count % 3))
        archive.on_evaluated(count, rng)  # a new best every time
    assert archive.restarts == 0
