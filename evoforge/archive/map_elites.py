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
from bisect import bisect_right

from evoforge.archive.features import FeatureSpace
from evoforge.archive.grids import Cell, IslandGrids, _Key
from evoforge.archive.lexicase import lexicase_select
from evoforge.candidate import Candidate
from evoforge.config import ArchiveConfig

__all__ = ["Archive", "Cell"]

# Exploitation is a tournament of this many uniform draws among the island's elites.
_TOURNAMENT_SIZE = 2


class Archive(IslandGrids):
    """Islands of MAP-Elites grids (:class:`IslandGrids`) and the search over them.

    Args:
        config: the archive configuration.
        feature_space: bins candidate features into cells.
        maximize: the direction of the objective, for per-instance scores.
    """

    def __init__(self, config: ArchiveConfig, feature_space: FeatureSpace,
                 maximize: bool = True) -> None:
        super().__init__(config, feature_space, maximize)
        self.lexicase_picks = 0
        # stagnation restarts (config.restart_after): the best's id and the evaluation
        # count when it last changed, and per island the count until which it takes
        # no migrants
        self._best_id: int | None = None
        self._best_since = 0
        self._evaluated = 0
        self._sheltered_until = [0] * self.num_islands
        self.restarts = 0
        """Islands reseeded with the initial program so far."""

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
