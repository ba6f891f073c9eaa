"""The proposer plug point: where candidate programs come from."""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from evoforge.candidate import Candidate
from evoforge.problem.blocks import Template


@dataclass
class Proposal:
    """A new program proposed from one or more parents.

    Attributes:
        code: the full program text (fixed parts untouched).
        operator: name of what produced it, the bandit arm it is credited to.
        parent_ids: ids of the candidates it was derived from, main parent first.
        meta: proposer-specific data handed back in :meth:`Proposer.feedback`.
        model: the model that wrote it (LLM proposals).
        prompt_tokens: prompt tokens spent on it.
        completion_tokens: completion tokens spent on it.
        cost: dollars spent on it (None: unknown or free).
        rejected: why it cannot be evaluated (a reply that did not apply); ``code`` is
            then the parent's, and the proposal is stored as rejected.
        candidate_id: the id of the candidate the loop stored for it (set by the loop,
            so that :meth:`Proposer.feedback` can name the child).
    """

    code: str
    operator: str
    parent_ids: list[int]
    meta: dict[str, Any] = field(default_factory=dict)
    model: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float | None = None
    rejected: str | None = None
    candidate_id: int | None = None

    def usage(self) -> dict[str, Any]:
        """The model-usage columns stored with the candidate."""
        return {"model": self.model, "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens, "cost": self.cost}


class ProposalFilter(ABC):
    """A check a proposer declares for its proposals (see :attr:`Proposer.filters`).

    Contract:
        * :meth:`check` says why a proposal is not worth evaluating, with the id of the
          candidate it resembles, or None; it never changes the proposal.
        * :meth:`remember` is called once for every evaluated candidate (and for each on
          resume), so that later checks compare against it.
    """

    @abstractmethod
    def check(self, proposal: Proposal) -> tuple[str, int | None] | None:
        """(reason, id of the candidate it resembles) when ``proposal`` is stopped."""

    @abstractmethod
    def remember(self, candidate_id: int, code: str) -> None:
        """An evaluated candidate, for later checks."""


class Proposer(ABC):
    """Makes new programs from archived ones.

    Contract:
        * :meth:`propose` returns a :class:`Proposal` whose ``code`` is
          ``template.render(new_regions)`` for some regions, so text outside the
          evolve regions is kept byte for byte; or None when it cannot propose
          from this parent (the loop then picks another parent).
        * It draws randomness only from the ``rng`` it is given, so a run is
          reproducible from its seed.
        * :meth:`feedback` is called once per proposal that was evaluated or
          found duplicate, with the outcome; proposers learn from it.
        * :meth:`stats` / :meth:`load_stats` save and restore what it learned,
          as a JSON-able dict, so that ``resume`` continues where it stopped.
    """

    asynchronous = False
    """True for proposers whose :meth:`propose_async` waits (LLMs): the loop then runs
    proposals concurrently, like evaluations."""

    filters: Sequence[ProposalFilter] = ()
    """Checks the loop applies to each proposal before it is evaluated (the LLM
    proposer's novelty gate); a proposal a filter stops is stored as rejected."""

    def __init__(self, template: Template) -> None:
        self.template = template

    async def propose_async(
        self, parent: Candidate, inspirations: list[Candidate], rng: random.Random
    ) -> Proposal | None:
        """Like :meth:`propose`, for proposers that wait on I/O (default: propose)."""
        return self.propose(parent, inspirations, rng)

    @abstractmethod
    def propose(
        self, parent: Candidate, inspirations: list[Candidate], rng: random.Random
    ) -> Proposal | None:
        """Derive a new program from ``parent`` (and maybe ``inspirations``)."""

    def feedback(  # noqa: B027 - an optional hook, empty on purpose
        self, proposal: Proposal, parent_fitness: float | None, child_fitness: float | None,
        error: str | None = None,
    ) -> None:
        """Learn from an outcome; ``child_fitness`` is None when it failed (``error`` says
        why, when it was evaluated)."""

    def stats(self) -> dict[str, Any]:
        """JSON-able statistics (for example per-operator counts)."""
        return {}

    def load_stats(self, stats: dict[str, Any]) -> None:  # noqa: B027 - optional hook
        """Restore what :meth:`stats` returned."""
