"""New structures waiting for their constants to be tuned (``mutation.fresh_tuning``).

A structural edit that adds numeric literals (a threshold band on the gap, say) makes a
program whose literals nobody fitted: it usually scores below the run's best, so the
archive seldom picks it as a parent, and constant tuning, drawn for parents the archive
picks, seldom reaches it. In bin_packing runs that stayed at best fit, band programs were
in the population from early on but their bounds were never moved. Here such children
wait, the best :data:`KEPT` of them, and each gets a few ``tune`` proposals of its own; a
tuned child that beats the structure it came from (and is still below the best) waits in
turn, so a promising structure is climbed for as long as it improves.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

from evoforge.candidate import Candidate, normalized_hash
from evoforge.proposers.base import Proposal
from evoforge.proposers.mutation.operators import numeric_literals

STRUCTURAL = ("expr_replace", "operator_swap", "crossover", "stmt_delete", "stmt_duplicate",
              "stmt_swap")
"""Operators that change a program's structure (the others move its constants)."""
SHARE = 0.2
"""Share of the proposals that tune a waiting structure."""
KEPT = 8
"""Structures waiting at most; the best by fitness are kept."""


@dataclass
class _Waiting:
    fitness: float
    candidate_id: int
    code: str
    tunes_left: int


class FreshStructures:
    """The structures waiting for tuning, and the tuning proposals made for them.

    Args:
        tunes: ``tune`` proposals per structure (0: nothing waits).
    """

    def __init__(self, tunes: int) -> None:
        self.tunes = tunes
        self.waiting: list[_Waiting] = []
        self.proposals = 0
        """Tuning proposals made for waiting structures."""

    def next_parent(self, rng: random.Random) -> Candidate | None:
        """The structure to tune now (the best waiting), for :data:`SHARE` of the calls."""
        if not self.waiting or rng.random() >= SHARE:
            return None
        entry = max(self.waiting, key=lambda e: e.fitness)
        entry.tunes_left -= 1
        if entry.tunes_left <= 0:
            self.waiting.remove(entry)
        return Candidate(id=entry.candidate_id, seq=entry.candidate_id, island=0,
                         parent_ids=(), operator="fresh", code=entry.code,
                         code_hash=normalized_hash(entry.code), fitness=entry.fitness)

    def made(self, proposal: Proposal, parent: Candidate) -> None:
        """Mark ``proposal`` as a tuning of the waiting ``parent``."""
        self.proposals += 1
        proposal.meta["fresh_fitness"] = parent.fitness

    @staticmethod
    def mark(operator: str, before: list[str], after: list[str],
             meta: dict[str, Any]) -> None:
        """Note in a proposal's ``meta`` a structural edit that added literals (regions
        ``before`` made ``after``); the literals are counted for structural edits only."""
        if operator in STRUCTURAL and len(numeric_literals(after)) > len(
                numeric_literals(before)):
            meta["adds_literals"] = True

    def observe(self, proposal: Proposal, parent_fitness: float | None,
                child_fitness: float | None, best: float | None) -> None:
        """Queue the child when it is a new structure, or a tuned one that beat its
        structure, scored below ``best``."""
        if (self.tunes <= 0 or proposal.candidate_id is None or child_fitness is None
                or not math.isfinite(child_fitness) or best is None
                or child_fitness >= best):
            return
        new = proposal.operator in STRUCTURAL and proposal.meta.get("adds_literals")
        better = ("fresh_fitness" in proposal.meta and parent_fitness is not None
                  and child_fitness > parent_fitness)
        if not (new or better):
            return
        self.waiting.append(_Waiting(float(child_fitness), proposal.candidate_id,
                                     proposal.code, self.tunes))
        if len(self.waiting) > KEPT:
            self.waiting.remove(min(self.waiting, key=lambda e: e.fitness))

    def stats(self) -> dict[str, int]:
        """Tuning proposals made and structures waiting."""
        return {"proposals": self.proposals, "waiting": len(self.waiting)}
