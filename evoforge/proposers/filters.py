"""Proposal filters proposers declare: checks made before a proposal is evaluated."""

from __future__ import annotations

from typing import Protocol

from evoforge.proposers.base import Proposal, ProposalFilter


class _Gate(Protocol):
    def add(self, candidate_id: int, code: str) -> None: ...

    def check(self, code: str) -> tuple[int, float] | None: ...


class NoveltyFilter(ProposalFilter):
    """Stops a model's program that nearly copies an evaluated one.

    Only proposals a model wrote (``proposal.model`` set) are checked: model-free
    operators make small edits on purpose, and exact copies are caught by the code hash.

    Args:
        gate: remembers programs and finds near-twins
            (:class:`evoforge.proposers.llm.novelty.NoveltyGate`).
    """

    def __init__(self, gate: _Gate) -> None:
        self.gate = gate

    def check(self, proposal: Proposal) -> tuple[str, int | None] | None:
        """``novelty: S similar to candidate N`` for a near-twin, else None."""
        if proposal.model is None:
            return None
        twin = self.gate.check(proposal.code)
        if twin is None:
            return None
        twin_id, similarity = twin
        return f"novelty: {similarity:.3f} similar to candidate {twin_id}", twin_id

    def remember(self, candidate_id: int, code: str) -> None:
        """Add an evaluated program to the gate."""
        self.gate.add(candidate_id, code)
