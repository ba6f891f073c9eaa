"""New structures waiting for their constants to be tuned (``mutation.fresh_tuning``).

A structural edit that adds numeric literals (a threshold band on the gap, say) makes a
program whose literals nobody fitted: it usually scores below the run's best, so the
archive seldom picks it as a parent, and constant tuning, drawn for parents the archive
picks, seldom reaches it. In bin_packing runs that stayed at best fit, band programs were
in the population from early on but their bounds were never moved. Here such children
wait, the best :data:`KEPT` of them, and each gets a few tuning proposals of its own; a
tuned child that beats the structure it came from (and is still below the best) waits in
turn, so a promising structure is climbed for as long as it improves.

A tuning proposal is a compass step: it moves one of the literals the edit added (the
others keep their fitted values) by one of :data:`FACTORS`, the literals in turn. A
random move of every literal at once, as ``tune`` makes, seldom lands in a narrow good
region: bin packing's band beats best fit only with its lower bound near 5 % of the
capacity, and a band made at 10 % needs that one bound halved.

The initial program's constants were never fitted either: a run sweeps them once
(``mutation.initial_sweep``), each literal halved and then doubled (a 0 set to -1 and
then 1), before the next. A switch such as circle_packing's ``RELAX_ROUNDS = 0`` is one
such literal: ``tune`` moves every literal at once, so it turned the switch on in 22 of
2,317 candidates of one run, and in the same step moved the descent's step size
six-fold.
"""

from __future__ import annotations

import difflib
import math
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from evoforge.candidate import Candidate
from evoforge.proposers.base import Proposal
from evoforge.proposers.mutation.operators import numeric_literals, with_numeric_literals

STRUCTURAL = ("expr_replace", "operator_swap", "crossover", "stmt_delete", "stmt_duplicate",
              "stmt_swap")
"""Operators that change a program's structure (the others move its constants)."""
SHARE = 0.2
"""Share of the proposals that tune a waiting structure."""
KEPT = 8
"""Structures waiting at most; the best by fitness are kept."""
FACTORS = (0.5, 2.0, 0.8, 1.25)
"""What a compass step multiplies a literal by, in turn (halve and double first)."""
ZERO_STEP = 0.05
"""A literal 0 moves by this much instead (down for a factor below 1, else up)."""
SWEEP_FACTORS = (0.5, 2.0)
"""The initial program's sweep: each literal halved, then doubled."""


@dataclass
class Waiting:
    """A structure waiting for compass steps."""

    fitness: float
    candidate_id: int
    code: str
    tunes_left: int
    literals: list[int]
    """Positions (in :func:`numeric_literals` order) of the literals to move."""
    moves: int = 0
    """Compass steps taken so far."""
    literal_major: bool = False
    """The initial sweep: each literal by every one of :data:`SWEEP_FACTORS` before the
    next literal; else every literal by one of :data:`FACTORS` before the next factor."""

    def step_at(self, move: int) -> tuple[int, float]:
        """The literal position and the factor of compass step number ``move``."""
        n = len(self.literals)
        if self.literal_major:
            k = len(SWEEP_FACTORS)
            return self.literals[(move // k) % n], SWEEP_FACTORS[move % k]
        return self.literals[move % n], FACTORS[(move // n) % len(FACTORS)]


def new_literal_positions(before: list[int | float], after: list[int | float]) -> list[int]:
    """Positions in ``after`` of the literals an edit added to ``before`` (or changed)."""
    matcher = difflib.SequenceMatcher(a=before, b=after, autojunk=False)
    return [j for tag, _, _, j1, j2 in matcher.get_opcodes() if tag in ("insert", "replace")
            for j in range(j1, j2)]


def compass_step(value: int | float, factor: float) -> int | float:
    """``value`` times ``factor`` (6 significant digits; an int stays an int and moves)."""
    if value == 0:
        sign = -1 if factor < 1 else 1
        return sign if isinstance(value, int) else sign * ZERO_STEP
    if isinstance(value, int):
        step = int(round(value * factor))
        return step if step != value else value + (1 if (factor > 1) == (value > 0) else -1)
    return float(f"{value * factor:.6g}")


class FreshStructures:
    """The structures waiting for tuning, and the tuning proposals made for them.

    Args:
        tunes: ``tune`` proposals per structure (0: nothing waits).
    """

    def __init__(self, tunes: int, sweep: int = 0) -> None:
        self.tunes = tunes
        self.sweep_literals = sweep
        self.waiting: list[Waiting] = []
        self.proposals = 0
        """Tuning proposals made for waiting structures."""
        self.swept = sweep <= 0
        """True once the initial program was queued for its sweep (or none is asked)."""

    def sweep_initial(self, parent: Candidate, regions_of: Callable[[str], list[str]],
                      rng: random.Random) -> None:
        """Queue ``parent`` for its sweep when it is the initial program, scored, and no
        sweep was queued yet.

        At most ``sweep`` of its literals are stepped, drawn at random when it has more;
        each is halved and doubled (:data:`SWEEP_FACTORS`) before the next, in program
        order.
        """
        if self.swept or parent.operator != "initial" or parent.fitness is None:
            return
        self.swept = True
        try:
            positions = list(range(len(numeric_literals(regions_of(parent.code)))))
        except ValueError:  # no evolve blocks: nothing to sweep
            return
        if len(positions) > self.sweep_literals:
            positions = sorted(rng.sample(positions, self.sweep_literals))
        if positions and math.isfinite(parent.fitness):
            self.waiting.append(Waiting(float(parent.fitness), parent.id, parent.code,
                                        len(positions) * len(SWEEP_FACTORS), positions,
                                        literal_major=True))

    def next_step(self, rng: random.Random, regions_of: Callable[[str], list[str]]
                  ) -> tuple[Waiting, list[str]] | None:
        """For :data:`SHARE` of the calls, a compass step of the best waiting structure.

        Args:
            rng: the proposer's random source.
            regions_of: maps a program to its evolve-block regions (raises on a
                program without them).

        Returns:
            The structure and its regions after the step; or None.
        """
        if not self.waiting or rng.random() >= SHARE:
            return None
        entry = max(self.waiting, key=lambda e: e.fitness)
        try:
            regions = regions_of(entry.code)
        except ValueError:
            self.waiting.remove(entry)
            return None
        values = numeric_literals(regions)
        stepped: list[str] | None = None
        while entry.tunes_left > 0 and stepped is None:
            entry.tunes_left -= 1
            literal, factor = entry.step_at(entry.moves)
            entry.moves += 1
            if literal >= len(values):
                continue
            moved = list(values)
            moved[literal] = compass_step(values[literal], factor)
            stepped = with_numeric_literals(regions, moved)
        if entry.tunes_left <= 0:
            self.waiting.remove(entry)
        return None if stepped is None else (entry, stepped)

    def made(self, proposal: Proposal, structure: Waiting) -> None:
        """Mark ``proposal`` as a compass step of the waiting ``structure``."""
        self.proposals += 1
        proposal.meta.update(fresh_fitness=structure.fitness,
                             fresh_literals=list(structure.literals))

    @staticmethod
    def mark(operator: str, before: list[str], after: list[str],
             meta: dict[str, Any]) -> None:
        """Note in a proposal's ``meta`` the positions of the literals a structural edit
        added (regions ``before`` made ``after``); counted for structural edits only."""
        if operator not in STRUCTURAL:
            return
        old, new = numeric_literals(before), numeric_literals(after)
        if len(new) > len(old):
            meta["new_literals"] = new_literal_positions(old, new)

    def observe(self, proposal: Proposal, parent_fitness: float | None,
                child_fitness: float | None, best: float | None) -> None:
        """Queue the child when it is a new structure, or a tuned one that beat its
        structure, scored below ``best``."""
        if (self.tunes <= 0 or proposal.candidate_id is None or child_fitness is None
                or not math.isfinite(child_fitness) or best is None
                or child_fitness >= best):
            return
        if proposal.operator in STRUCTURAL:
            literals = proposal.meta.get("new_literals")
        elif parent_fitness is not None and child_fitness > parent_fitness:
            literals = proposal.meta.get("fresh_literals")  # a step that climbed
        else:
            literals = None
        if not isinstance(literals, list) or not literals:
            return
        self.waiting.append(Waiting(float(child_fitness), proposal.candidate_id,
                                     proposal.code, self.tunes, [int(i) for i in literals]))
        structures = [e for e in self.waiting if not e.literal_major]  # the sweep stays
        if len(structures) > KEPT:
            self.waiting.remove(min(structures, key=lambda e: e.fitness))

    def stats(self) -> dict[str, Any]:
        """Tuning proposals made, structures waiting (``queue``: what they are, for a
        resumed run), and whether the initial program was queued for its sweep."""
        return {"proposals": self.proposals, "waiting": len(self.waiting),
                "swept": self.swept,
                "queue": [asdict(e) for e in self.waiting]}

    def load_stats(self, stats: dict[str, Any]) -> None:
        """Restore what :meth:`stats` returned (entries that do not read are left out)."""
        self.proposals = max(int(stats.get("proposals", 0)), 0)
        self.swept = self.swept or stats.get("swept") is True
        self.waiting = []
        for entry in stats.get("queue") or []:
            try:
                self.waiting.append(Waiting(
                    float(entry["fitness"]), int(entry["candidate_id"]), str(entry["code"]),
                    int(entry["tunes_left"]), [int(i) for i in entry["literals"]],
                    int(entry.get("moves", 0)), bool(entry.get("literal_major", False))))
            except (KeyError, TypeError, ValueError):
                continue
