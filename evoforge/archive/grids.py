"""The islands' grids: where each placed candidate is, its rank, and the elites.

:class:`IslandGrids` keeps the data structures and invariants stated in
:mod:`evoforge.archive.map_elites` (cells, rank keys, per-island and global
orders, capacity); :class:`~evoforge.archive.map_elites.Archive` adds the search
policy over them: parent selection, inspirations, migration and restarts.
"""

from __future__ import annotations

import math
from bisect import bisect_left, insort

from evoforge.archive.features import FeatureSpace
from evoforge.archive.lexicase import instance_scores
from evoforge.candidate import Candidate, Status
from evoforge.config import ArchiveConfig

Cell = tuple[int, ...]
_Key = tuple[float, int]  # (-fitness, id): ascending order is best first


def _key(candidate: Candidate) -> _Key:
    assert candidate.fitness is not None
    return (-float(candidate.fitness), candidate.id)


class IslandGrids:
    """Islands of MAP-Elites grids with a global elite list (no search policy).

    Args:
        config: the archive configuration.
        feature_space: bins candidate features into cells.
        maximize: the direction of the objective, for per-instance scores.
    """

    def __init__(self, config: ArchiveConfig, feature_space: FeatureSpace,
                 maximize: bool = True) -> None:
        self.config = config
        self.feature_space = feature_space
        self.num_islands = config.num_islands
        self._grids: list[dict[Cell, Candidate]] = [{} for _ in range(self.num_islands)]
        self._island_ranked: list[list[_Key]] = [[] for _ in range(self.num_islands)]
        self._ranked: list[_Key] = []  # distinct placed candidates
        self._by_id: dict[int, Candidate] = {}
        self._where: dict[int, dict[int, Cell]] = {}
        self._count = 0
        self.maximize = maximize
        # per-instance scores (higher is better) of placed candidates that report them
        self._instances: dict[int, list[float]] = {}
        # the initial program and its cell (a restart reseeds an island with it)
        self._initial: tuple[Candidate, Cell] | None = None

    # ------------------------------------------------------------------ insertion

    def add(self, candidate: Candidate) -> bool:
        """Insert an evaluated candidate into the grid of its island.

        It takes the cell ``feature_space.cell(candidate.features)`` if that
        cell is empty or if its fitness is strictly greater than the occupant's
        (ties keep the incumbent). Then, while more than ``population_size``
        cells are occupied, the worst occupant is evicted (never the last
        placement of the best candidate).

        Args:
            candidate: status ok, with a fitness, features and an island in
                ``[0, num_islands)``.

        Returns:
            True if the candidate holds the cell after the call (False when it
            lost the competition, was already there, or was evicted at once).

        Raises:
            ValueError: the candidate is not ok, has no (or a NaN) fitness, or
                its island is out of range.
            KeyError: its features lack one of the feature dimensions.
        """
        self._check(candidate)
        self._check_island(candidate.island)
        placed = self._place(candidate, candidate.island, self._cell_of(candidate))
        self._enforce_capacity()
        return placed and candidate.island in self._where.get(candidate.id, {})

    def add_initial(self, candidate: Candidate) -> None:
        """Place the initial program in every island (same cell in each).

        Raises:
            ValueError: see :meth:`add`.
            KeyError: see :meth:`add`.
        """
        self._check(candidate)
        cell = self._cell_of(candidate)
        self._initial = (candidate, cell)
        for island in range(self.num_islands):
            self._place(candidate, island, cell)
        self._enforce_capacity()

    @staticmethod
    def _check(candidate: Candidate) -> None:
        if candidate.status != Status.OK:
            raise ValueError(
                f"candidate {candidate.id} has status '{candidate.status}'; "
                "only ok candidates enter the archive"
            )
        if candidate.fitness is None or math.isnan(candidate.fitness):
            raise ValueError(f"candidate {candidate.id} has no fitness ({candidate.fitness})")

    def _check_island(self, island: int) -> None:
        if not 0 <= island < self.num_islands:
            raise ValueError(f"island {island} is out of range [0, {self.num_islands})")

    def _cell_of(self, candidate: Candidate) -> Cell:
        """The candidate's cell: where it already is, else from its features."""
        placed = self._where.get(candidate.id)
        if placed:
            return next(iter(placed.values()))
        self.feature_space.observe(candidate.features)
        return self.feature_space.cell(candidate.features)

    def _place(self, candidate: Candidate, island: int, cell: Cell) -> bool:
        """Let ``candidate`` compete for ``cell`` of ``island``; True if it took it."""
        grid = self._grids[island]
        incumbent = grid.get(cell)
        if incumbent is not None:
            if incumbent.id == candidate.id:
                return False
            assert incumbent.fitness is not None and candidate.fitness is not None
            if not candidate.fitness > incumbent.fitness:
                return False
            self._remove(incumbent, island)
        key = _key(candidate)
        grid[cell] = candidate
        insort(self._island_ranked[island], key)
        where = self._where.get(candidate.id)
        if where is None:
            where = self._where[candidate.id] = {}
            self._by_id[candidate.id] = candidate
            insort(self._ranked, key)
            scores = instance_scores(candidate, self.maximize)
            if scores is not None:
                self._instances[candidate.id] = scores
        where[island] = cell
        self._count += 1
        return True

    def _remove(self, candidate: Candidate, island: int) -> None:
        """Remove the placement of ``candidate`` on ``island``."""
        where = self._where[candidate.id]
        cell = where.pop(island)
        del self._grids[island][cell]
        key = _key(candidate)
        _delete(self._island_ranked[island], key)
        if not where:
            del self._where[candidate.id]
            del self._by_id[candidate.id]
            self._instances.pop(candidate.id, None)
            _delete(self._ranked, key)
        self._count -= 1

    def _enforce_capacity(self) -> None:
        """Evict the worst placements until at most ``population_size`` cells are occupied.

        The victim is the worst-ranked placed candidate, removed from the
        island (of those it is on) with the most occupied cells, ties to the
        higher island index. The best candidate loses only extra copies: its
        last placement is never evicted.
        """
        while self._count > self.config.population_size:
            victim: Candidate | None = None
            for key in reversed(self._ranked):
                candidate = self._by_id[key[1]]
                if key != self._ranked[0] or len(self._where[candidate.id]) > 1:
                    victim = candidate
                    break
            if victim is None:
                return
            islands = self._where[victim.id]
            island = max(islands, key=lambda i: (len(self._grids[i]), i))
            self._remove(victim, island)

    # ------------------------------------------------------------------ queries

    def best(self) -> Candidate | None:
        """The best placed candidate, or None when the archive is empty."""
        return self._by_id[self._ranked[0][1]] if self._ranked else None

    def __len__(self) -> int:
        """Occupied cells, all islands together."""
        return self._count

    def __contains__(self, candidate: object) -> bool:
        """True when the candidate (matched by id) is placed on some island."""
        return isinstance(candidate, Candidate) and candidate.id in self._where

    def island_sizes(self) -> list[int]:
        """Occupied cells per island."""
        return [len(grid) for grid in self._grids]

    def cells(self, island: int) -> dict[Cell, Candidate]:
        """A copy of the grid of ``island``: cell -> occupant."""
        self._check_island(island)
        return dict(self._grids[island])

    def islands_of(self, candidate_id: int) -> dict[int, Cell]:
        """Where a candidate is placed: island -> cell (empty if nowhere)."""
        return dict(self._where.get(candidate_id, {}))

    def elites(self) -> list[Candidate]:
        """The best ``archive_size`` distinct placed candidates, best first."""
        return [self._by_id[key[1]] for key in self._ranked[: self.config.archive_size]]

    def island_ranking(self, island: int) -> list[Candidate]:
        """The occupants of ``island``, best first."""
        self._check_island(island)
        return [self._by_id[key[1]] for key in self._island_ranked[island]]


def _delete(keys: list[_Key], key: _Key) -> None:
    """Remove ``key`` from the sorted list ``keys``."""
    i = bisect_left(keys, key)
    if i == len(keys) or keys[i] != key:
        raise AssertionError(f"archive index out of sync: {key} missing")  # pragma: no cover
    del keys[i]
