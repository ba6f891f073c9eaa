"""Simplification: try the best program with one statement deleted at a time.

It runs in model-free and LLM-driven runs alike (it needs no model, only functional
hashing, to tell that a shorter program behaves the same).
"""

from __future__ import annotations

from evoforge.candidate import Candidate, Status
from evoforge.problem.blocks import BlockError, Template, extract_regions
from evoforge.proposers.mutation.operators import statement_deletions
from evoforge.proposers.mutation.proposer import names_bound_outside

SIMPLIFY = "simplify"


class Simplifier:
    """Proposes statement deletions of the best candidate every ``every`` evaluations.

    Contract: :meth:`next` gives (base, code) while a pass has deletions left; the loop
    stores each as a candidate with operator ``simplify`` and parent ``base``, and calls
    :meth:`observe` with every evaluated candidate. A deletion that keeps the functional
    hash and the fitness becomes the new base (the pass goes on from the shorter program).

    Args:
        template: the problem's template (the regions a deletion may touch).
        every: evaluations between passes; 0 turns simplification off.
        enabled: False when the problem cannot be probed (no functional hash).
    """

    def __init__(self, template: Template, every: int, enabled: bool) -> None:
        self.template = template
        self.every = every if enabled else 0
        self.simplifications = 0
        self._base: Candidate | None = None
        self._queue: list[str] = []
        self._done: set[int] = set()
        self._since = 0

    def next(self, best: Candidate | None) -> tuple[Candidate, str] | None:
        """The next deletion to evaluate, starting a pass on ``best`` if one is due."""
        if (not self._queue and self.every and best is not None and best.seq != 0
                and best.id not in self._done and best.functional_hash is not None
                and self._since >= self.every):
            self._since = 0
            self._start(best)
        if not self._queue or self._base is None:
            return None
        return self._base, self._queue.pop(0)

    def _start(self, base: Candidate) -> None:
        self._done.add(base.id)
        self._base = base
        try:
            regions = extract_regions(self.template, base.code)
        except BlockError:
            self._queue = []
            return
        outside = names_bound_outside(self.template, base.code)
        self._queue = [self.template.render(r)
                       for r in statement_deletions(regions, outside)]

    def observe(self, cand: Candidate) -> None:
        """An evaluated candidate: count it; continue from a deletion that changed nothing."""
        self._since += 1
        base = self._base
        if (base is not None and cand.operator == SIMPLIFY and cand.status == Status.OK
                and cand.functional_hash == base.functional_hash
                and cand.fitness == base.fitness and cand.parent_ids == (base.id,)):
            self.simplifications += 1
            self._start(cand)
