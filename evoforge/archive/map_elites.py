"""The archive: islands of MAP-Elites grids.

Each island has its own grid: a map from cell (a tuple of feature bin indices,
see :class:`~evoforge.archive.features.FeatureSpace`) to the best candidate
seen for that cell on that island. A candidate's cell is computed once, when it
is first placed, and is the same on every island it later migrates to, so a
candidate never moves when adaptive feature ranges change.

Ranking: a candidate ranks above another when its fitness is higher, or, for
equal fitness, when its id is lower. All orders below use this ranking, which
makes the archive deterministic; randomness comes only from the ``rng``
arguments.

Data structures and complexity (``N`` occupied cells, ``D`` distinct placed
candidates, ``I`` islands):

* per island, a dict cell -> candidate and a list of rank keys kept sorted;
* for all islands, a list of the rank keys of the distinct placed candidates,
  kept sorted; its head is the best candidate and its first ``archive_size``
  entries are the elites;
* candidate id -> {island: cell}, where each candidate is placed.

``add``/migration of one candidate and each eviction cost ``O(log N)``
comparisons plus an ``O(N)`` memmove of a list of small tuples (microseconds
for thousands of cells). ``sample_parent`` is ``O(log N + I)``; ``inspirations``
is ``O(n + log N)`` expected; ``migrate`` is ``O(I * k * cost of add)`` for ``k``
migrants per island; ``best``/``__len__`` are ``O(1)``; ``elites`` is
``O(archive_size)``; ``cells`` copies one island's grid.
"""

from __future__ import annotations

import math
import random
from bisect import bisect_left, bisect_right, insort

from evoforge.archive.features import FeatureSpace
from evoforge.archive.lexicase import instance_scores, lexicase_select
from evoforge.candidate import Candidate, Status
from evoforge.config import ArchiveConfig

Cell = tuple[int, ...]
_Key = tuple[float, int]  # (-fitness, id): ascending order is best first

# Exploitation is a tournament of this many uniform draws among the island's elites.
_TOURNAMENT_SIZE = 2


def _key(candidate: Candidate) -> _Key:
    assert candidate.fitness is not None
    return (-float(candidate.fitness), candidate.id)


class Archive:
    """Islands of MAP-Elites grids with a global elite list.

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
        self.lexicase_picks = 0
        # stagnation restarts (config.restart_after): the initial program and its cell,
        # the best's id and the evaluation count when it last changed, and per island
        # the count until which it takes no migrants
        self._initial: tuple[Candidate, Cell] | None = None
        self._best_id: int | None = None
        self._best_since = 0
        self._evaluated = 0
        self._sheltered_until = [0] * self.num_islands
        self.restarts = 0
        """Islands reseeded with the initial program so far."""

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

    # ------------------------------------------------------------------ selection

    def sample_parent(self, island: int, rng: random.Random) -> Candidate:
        """Pick the parent of the next proposal for ``island``.

        With probability ``lexicase_ratio`` (once at least two placed candidates
        report per-instance scores): ε-lexicase selection among all of them (see
        :mod:`evoforge.archive.lexicase`). Otherwise, with probability
        ``exploitation_ratio``: a tournament of ``_TOURNAMENT_SIZE`` uniform draws
        among the island's elites (its occupants that are in the global elite
        list, or, if it has none, its best ``ceil(archive_size / num_islands)``
        occupants); with probability ``exploration_ratio``: uniform over the
        island's occupied cells; otherwise uniform over all occupied cells of
        all islands. An empty island falls back to all occupied cells. Cost
        ``O(log N + I)`` (lexicase: ``O(P log P * C)`` for ``P`` candidates with
        ``C`` instance scores).

        Raises:
            LookupError: the archive is empty.
            ValueError: ``island`` is out of range.
        """
        self._check_island(island)
        if self._count == 0:
            raise LookupError("the archive is empty: add the initial program first")
        if (self.config.lexicase_ratio > 0 and len(self._instances) >= 2
                and rng.random() < self.config.lexicase_ratio):
            picked = self._lexicase(rng)
            if picked is not None:
                return picked
        ranked = self._island_ranked[island]
        r = rng.random()
        if not ranked:
            return self._uniform_any(rng)
        if r < self.config.exploitation_ratio:
            pool = self._elite_pool_size(island)
            best = min(rng.randrange(pool) for _ in range(_TOURNAMENT_SIZE))
            return self._by_id[ranked[best][1]]
        if r < self.config.exploitation_ratio + self.config.exploration_ratio:
            return self._by_id[ranked[rng.randrange(len(ranked))][1]]
        return self._uniform_any(rng)

    def _lexicase(self, rng: random.Random) -> Candidate | None:
        """ε-lexicase over every placed candidate that reports per-instance scores."""
        width = len(next(iter(self._instances.values())))
        ids = [cid for cid, row in self._instances.items() if len(row) == width]
        if len(ids) < 2:
            return None
        self.lexicase_picks += 1
        return lexicase_select([self._by_id[cid] for cid in ids],
                               [self._instances[cid] for cid in ids], rng)

    def _elite_pool_size(self, island: int) -> int:
        """How many of the island's best occupants count as its elites (at least 1)."""
        ranked = self._island_ranked[island]
        cutoff = self._ranked[min(self.config.archive_size, len(self._ranked)) - 1]
        pool = bisect_right(ranked, cutoff)
        if pool == 0:
            pool = math.ceil(self.config.archive_size / self.num_islands)
        return max(1, min(pool, len(ranked)))

    def _uniform_any(self, rng: random.Random) -> Candidate:
        """Uniform over all occupied cells of all islands."""
        index = rng.randrange(self._count)
        for ranked in self._island_ranked:
            if index < len(ranked):
                return self._by_id[ranked[index][1]]
            index -= len(ranked)
        raise AssertionError("occupied-cell count out of sync")  # pragma: no cover

    def inspirations(
        self, island: int, parent: Candidate, rng: random.Random, n: int | None = None
    ) -> list[Candidate]:
        """Up to ``n`` distinct candidates, none of them the parent, to inspire a proposal.

        First the island's best; then alternately a uniform pick among the
        island's other cells and a uniform pick from another island; if random
        picks keep hitting candidates already chosen, the rest is filled with
        the best remaining candidates of all islands.

        Args:
            island: the island the proposal is for.
            parent: the parent (never returned; matched by id).
            rng: the source of randomness.
            n: how many; default ``config.num_inspirations``.

        Returns:
            At most ``n`` candidates (fewer when the archive has fewer others).
        """
        self._check_island(island)
        n = self.config.num_inspirations if n is None else n
        chosen: list[Candidate] = []
        seen = {parent.id}
        if n <= 0 or self._count == 0:
            return chosen

        def take(key: _Key) -> None:
            if key[1] not in seen and len(chosen) < n:
                seen.add(key[1])
                chosen.append(self._by_id[key[1]])

        own = self._island_ranked[island]
        for key in own[:2]:  # the best, or the runner-up when the best is the parent
            if key[1] not in seen:
                take(key)
                break
        others = [i for i in range(self.num_islands) if i != island and self._island_ranked[i]]
        attempts = 0
        while len(chosen) < n and attempts < 4 * n:
            attempts += 1
            if others and (attempts % 2 == 0 or not own):
                ranked = self._island_ranked[others[rng.randrange(len(others))]]
            elif own:
                ranked = own
            else:
                break
            take(ranked[rng.randrange(len(ranked))])
        for key in self._ranked:
            if len(chosen) >= n:
                break
            take(key)
        return chosen

    # ------------------------------------------------------------------ migration

    def migrate(self, rng: random.Random) -> int:
        """Ring migration: island ``i`` sends its best to island ``(i + 1) % num_islands``.

        Each non-empty island sends its top ``ceil(migration_rate * occupied)``
        candidates (at least 1), chosen before any is moved, so a migrant
        travels one island per round. Each competes on the destination for the
        cell it holds on its home island, like any insertion; the same
        candidate object is stored. Capacity is enforced afterwards.

        Args:
            rng: accepted for a uniform interface; migration is deterministic.

        Returns:
            How many placements were made.
        """
        del rng
        if self.num_islands < 2:
            return 0
        waves: list[list[tuple[Candidate, Cell]]] = []
        for island, ranked in enumerate(self._island_ranked):
            k = max(1, math.ceil(self.config.migration_rate * len(ranked))) if ranked else 0
            wave = []
            for key in ranked[:k]:
                candidate = self._by_id[key[1]]
                wave.append((candidate, self._where[candidate.id][island]))
            waves.append(wave)
        placed = 0
        for island, wave in enumerate(waves):
            dest = (island + 1) % self.num_islands
            if self._evaluated < self._sheltered_until[dest]:
                continue  # a reseeded island grows its own lineage first
            for candidate, cell in wave:
                placed += self._place(candidate, dest, cell)
        self._enforce_capacity()
        return placed

    def on_evaluated(self, count: int, rng: random.Random) -> int:
        """Hook the loop calls after each finished evaluation.

        Args:
            count: evaluations finished so far in the run.
            rng: passed on to :meth:`migrate`.

        With ``config.restart_after`` set, also reseeds one island (see
        :meth:`restart`) once that many evaluations brought no new best, and
        again after as many more.

        Returns:
            How many candidates migrated (0 when it was not time to migrate).
        """
        self._evaluated = count
        best = self._ranked[0][1] if self._ranked else None
        if best != self._best_id:
            self._best_id, self._best_since = best, count
        elif (self.config.restart_after and self.num_islands > 1
              and count - self._best_since >= self.config.restart_after):
            island = self._stalest_island()
            if island is not None:
                self.restart(island)
            self._best_since = count
        if self.num_islands > 1 and count > 0 and count % self.config.migration_interval == 0:
            return self.migrate(rng)
        return 0

    def _stalest_island(self) -> int | None:
        """The island whose best ranks lowest, among those not holding the overall best."""
        if not self._ranked:
            return None
        holders = set(self._where.get(self._ranked[0][1], {}))
        options = [(ranked[0] if ranked else (math.inf, -1), island)
                   for island, ranked in enumerate(self._island_ranked)
                   if island not in holders]
        return max(options)[1] if options else None

    def restart(self, island: int) -> None:
        """Empty ``island`` and reseed it with the initial program.

        The island then takes no migrants for ``config.restart_after``
        evaluations, so its new lineage is not replaced at once by the others'
        bests. Candidates removed here stay placed on the other islands they
        are on. Nothing happens before :meth:`add_initial`.

        Raises:
            ValueError: ``island`` is out of range.
        """
        self._check_island(island)
        if self._initial is None:
            return
        for key in list(self._island_ranked[island]):
            self._remove(self._by_id[key[1]], island)
        initial, cell = self._initial
        self._place(initial, island, cell)
        self._enforce_capacity()
        self._sheltered_until[island] = self._evaluated + self.config.restart_after
        self.restarts += 1

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
