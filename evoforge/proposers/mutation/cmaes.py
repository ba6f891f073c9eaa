"""CMA-ES tuning of an elite's numeric constants (the ``cmaes`` operator).

One evolution strategy at a time: it starts on the parent the operator is first
drawn for when that parent is an elite (its fitness is the best the tuner has been
told of, see :meth:`CMATuner.observe`) with at least one numeric literal, and
was not tuned before; asks the ``cma`` package
for a generation of constant vectors, hands them out one proposal each, and tells
the strategy the fitness of each child as its evaluation comes back (a failed
child counts as worse than all others). After :attr:`CMATuner.max_generations`
generations, or when the strategy reports convergence (``cma`` also stops after a
generation in which every child scored the same: a plateau), the next draw starts a
new strategy on its parent. On bin_packing, strategies on any sampled parent made 91
proposals and no improvement in 1,000 evaluations: hence elites only, each once.
Constants are searched as relative offsets,
``value = start + z * max(|start|, 0.1)``, so one step size fits literals of any
scale; integers stay integers. The state is not stored with the run: a resumed
run starts a fresh strategy.

``cma`` is a dependency of evoforge; the operator does not apply if it is missing.
"""

from __future__ import annotations

import math
import random
import warnings
from dataclasses import dataclass, field
from typing import Any

from evoforge.candidate import Candidate
from evoforge.proposers.mutation.operators import (
    literal_scale,
    numeric_literals,
    with_numeric_literals,
)

SIGMA0 = 0.3
"""Initial step size, relative to each literal's magnitude."""
MAX_DRAWS = 50
"""Solutions tried per call before giving up (integer literals may round to the base)."""
MAX_TUNED = 10_000
"""Base programs remembered as tuned at most; the oldest are forgotten first."""
FAILED = 1e12
"""What a failed or lost child counts as (CMA-ES minimises; only ranks matter)."""


@dataclass
class _Strategy:
    base_id: int
    base_fitness: float
    regions: list[str]
    start: list[int | float]
    es: Any
    generation: int = 0
    queue: list[int] = field(default_factory=list)
    solutions: list[Any] = field(default_factory=list)
    values: dict[int, float] = field(default_factory=dict)

    def value_of(self, z: Any) -> list[int | float]:
        out: list[int | float] = []
        for start, step in zip(self.start, z, strict=True):
            moved = start + float(step) * literal_scale(start)
            if isinstance(start, int):
                out.append(int(round(moved)) if math.isfinite(moved) else start)
            else:
                out.append(float(f"{moved:.6g}") if math.isfinite(moved) else start)
        return out


class CMATuner:
    """Runs CMA-ES over the numeric literals of one elite at a time.

    Args:
        max_generations: generations before a strategy gives way to a new one.
    """

    def __init__(self, max_generations: int = 15) -> None:
        self.max_generations = max_generations
        self.strategy: _Strategy | None = None
        self.generations = 0
        """Generations told to CMA-ES so far, all strategies together."""
        self.strategies = 0
        """Strategies started so far."""
        self.best_seen: float | None = None
        """The best fitness told to :meth:`observe`; only such elites are tuned."""
        self.tuned: dict[str, None] = {}
        """Codes of the base programs tuned so far (an ordered set)."""

    def observe(self, fitness: float | None) -> None:
        """Learn the fitness of any evaluated program (to know which parents are elites)."""
        if fitness is not None and math.isfinite(fitness) and (
                self.best_seen is None or fitness > self.best_seen):
            self.best_seen = float(fitness)

    def propose(self, parent: Candidate, regions: list[str],
                rng: random.Random) -> tuple[list[str], dict[str, Any], int] | None:
        """The next constant vector as new regions, with its meta and the base program's id.

        Returns:
            None when this operator cannot propose now (no literals, ``cma`` missing,
            or every solution of the current generation is still being evaluated).
        """
        for _ in range(MAX_DRAWS):
            current = self.strategy
            if current is None or self._finished(current):
                if current is not None and current.base_id == parent.id:
                    return None  # this parent's constants were just tuned
                current = self._start(parent, regions, rng)
                if current is None:
                    return None
            if not current.queue:
                return None  # waiting for this generation's evaluations
            index = current.queue.pop(0)
            values = current.value_of(current.solutions[index])
            new = with_numeric_literals(current.regions, values)
            meta = {"cma_strategy": self.strategies, "cma_generation": current.generation,
                    "cma_index": index, "base_fitness": current.base_fitness}
            if new is not None:
                return new, meta, current.base_id
            self.tell(meta, current.base_fitness)  # rounded back to the base program
        return None

    def _finished(self, strategy: _Strategy) -> bool:
        if strategy.queue or len(strategy.values) < len(strategy.solutions):
            return False  # a generation is still out
        return strategy.generation >= self.max_generations or bool(strategy.es.stop())

    def _start(self, parent: Candidate, regions: list[str],
               rng: random.Random) -> _Strategy | None:
        try:
            with warnings.catch_warnings():
                # without matplotlib, cma warns at import that its plots are off;
                # evoforge never plots through it
                warnings.filterwarnings("ignore", message=".*matplotlib", category=UserWarning)
                import cma  # lazily: only this operator needs it
        except ImportError:
            return None
        start = numeric_literals(regions)
        if not start or parent.fitness is None or parent.code in self.tuned:
            return None
        if self.best_seen is not None and parent.fitness < self.best_seen:
            return None  # not an elite: its constants are not worth a strategy
        self.tuned[parent.code] = None
        while len(self.tuned) > MAX_TUNED:
            del self.tuned[next(iter(self.tuned))]
        es = cma.CMAEvolutionStrategy([0.0] * len(start), SIGMA0,
                                      {"seed": rng.randrange(1, 2**31), "verbose": -9})
        self.strategies += 1
        self.strategy = _Strategy(base_id=parent.id, base_fitness=float(parent.fitness),
                                  regions=list(regions), start=start, es=es)
        self._ask(self.strategy)
        return self.strategy

    @staticmethod
    def _ask(strategy: _Strategy) -> None:
        strategy.solutions = strategy.es.ask()
        strategy.values = {}
        strategy.queue = list(range(len(strategy.solutions)))

    def tell(self, meta: dict[str, Any], fitness: float | None) -> None:
        """Record a child's fitness (None: failed); a full generation is told to CMA-ES."""
        current = self.strategy
        if (current is None or meta.get("cma_strategy") != self.strategies
                or meta.get("cma_generation") != current.generation):
            return  # a child of a strategy or generation that is gone
        index = meta.get("cma_index")
        if not isinstance(index, int) or index in current.values:
            return
        current.values[index] = FAILED if fitness is None else -float(fitness)
        if len(current.values) == len(current.solutions):
            current.es.tell(current.solutions,
                            [current.values[i] for i in range(len(current.solutions))])
            current.generation += 1
            self.generations += 1
            if not self._finished(current):
                self._ask(current)
