"""A proposer that proposes given evolve-region bodies in order: for tests and demos."""

from __future__ import annotations

import random

from evoforge.candidate import Candidate
from evoforge.problem.blocks import Template
from evoforge.proposers.base import Proposal, Proposer


class ScriptedProposer(Proposer):
    """Proposes ``template.render([body])`` for each body in order, then nothing.

    Every proposal names the sampled parent as its parent; ``feedbacks`` records
    ``(parent_fitness, child_fitness, error)`` for each outcome the loop reports.

    Args:
        template: the problem's template (one evolve region).
        bodies: the region texts to propose, in order.
        operator: the operator name stored with each proposal.
    """

    def __init__(self, template: Template, bodies: list[str], operator: str = "scripted") -> None:
        super().__init__(template)
        self.bodies = list(bodies)
        self.operator = operator
        self.feedbacks: list[tuple[float | None, float | None, str | None]] = []
        self.child_ids: list[int | None] = []
        """The candidate id the loop gave each proposal heard of in :meth:`feedback`."""

    def propose(self, parent: Candidate, inspirations: list[Candidate],
                rng: random.Random) -> Proposal | None:
        """The next scripted program, or None when the script is used up."""
        if not self.bodies:
            return None
        return Proposal(code=self.template.render([self.bodies.pop(0)]),
                        operator=self.operator, parent_ids=[parent.id])

    def feedback(self, proposal: Proposal, parent_fitness: float | None,
                 child_fitness: float | None, error: str | None = None) -> None:
        """Record the outcome."""
        self.feedbacks.append((parent_fitness, child_fitness, error))
        self.child_ids.append(proposal.candidate_id)
