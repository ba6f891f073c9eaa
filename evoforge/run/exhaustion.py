"""Parents whose neighbourhood is used up: most of their recent children were waste.

On a piecewise-constant objective (bin_packing's bin chosen, say) an elite can keep
being drawn long after almost every edit of it behaves like a program already seen: its
children come back as functional duplicates, one probe each, and the elite keeps the
selection pressure it earned with its fitness. :class:`Exhaustion` remembers, per parent,
whether each of its last children was wasted (a duplicate, rejected, failed or timed
out) and lets :meth:`~evoforge.run.intake.Intake.select` draw such a parent less often.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from evoforge.candidate import Candidate

__all__ = ["Exhaustion"]

MIN_CHILDREN = 8
"""Outcomes a parent needs before its share of wasted children counts (at most the window)."""

FLOOR = 0.05
"""The lowest probability of keeping a drawn parent: none is ruled out."""

MAX_DRAWS = 4
"""Draws per selection; the last one is kept whatever its share."""


class Exhaustion:
    """Per-parent shares of wasted children, and parent draws that avoid high ones.

    Args:
        power: a drawn parent is kept with probability ``(1 - share) ** power``, at least
            :data:`FLOOR`, else drawn again; 0 keeps every parent.
        window: how many of a parent's most recent children its share covers.
    """

    def __init__(self, power: float, window: int) -> None:
        self.power = power
        self.window = window
        # parent id -> (the last outcomes as bits, newest lowest, 1 = wasted; how many):
        # two small ints per parent, where a deque each would cost a run of a million
        # candidates most of a gigabyte
        self._children: dict[int, tuple[int, int]] = {}
        self._mask = (1 << window) - 1
        self.redrawn = 0  # draws given up because of their parent's share

    def child(self, parent_id: int, wasted: bool) -> None:
        """Record one child's outcome for its parent."""
        if self.power <= 0:
            return
        bits, count = self._children.get(parent_id, (0, 0))
        self._children[parent_id] = (((bits << 1) | wasted) & self._mask,
                                     min(count + 1, self.window))

    def share(self, parent_id: int) -> float | None:
        """The parent's share of wasted children among its recent ones, or None (too few)."""
        bits, count = self._children.get(parent_id, (0, 0))
        if count < min(MIN_CHILDREN, self.window):
            return None
        return bits.bit_count() / count

    def draw(self, sample: Callable[[], Candidate], rng: random.Random) -> Candidate:
        """A parent from ``sample``, drawn again (up to :data:`MAX_DRAWS`) when used up."""
        parent = sample()
        if self.power <= 0:
            return parent
        for _ in range(MAX_DRAWS - 1):
            share = self.share(parent.id)
            if share is None or rng.random() < max((1.0 - share) ** self.power, FLOOR):
                return parent
            self.redrawn += 1
            parent = sample()
        return parent
