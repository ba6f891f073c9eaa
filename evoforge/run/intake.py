"""The intake: proposals become stored candidates, pending or at once not evaluated.

Every program a session makes passes here: the model-free proposer's, a model's and
the simplifier's statement deletions. An exact copy of a known program is stored as a
duplicate, a proposal a filter stops (or the proposer rejected) as rejected, and the
rest as pending candidates for the evaluators (:class:`Pending`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from evoforge.candidate import Candidate, Status, normalized_hash
from evoforge.proposers.base import Proposal, Proposer
from evoforge.run.events import Events
from evoforge.run.shared import RunSync
from evoforge.run.simplify import SIMPLIFY, Simplifier
from evoforge.run.state import RunState
from evoforge.storage.base import RunRecord, Storage

__all__ = ["Intake", "Pending"]


@dataclass
class Pending:
    """A stored candidate waiting for an evaluator, and what made it."""

    candidate: Candidate
    parent_fitness: float | None
    proposal: Proposal | None


class Intake:
    """Stores one session's proposals (see the module docstring).

    Args:
        storage: where the run lives.
        run: the run.
        state: the session's view of the run.
        proposer: the proposer; told at once about proposals that are not evaluated.
        events: progress callbacks.
        simplifier: statement deletions of the best program, when due.
        sync: the run's other processes (``--join``), or None.
    """

    def __init__(self, storage: Storage, run: RunRecord, state: RunState, proposer: Proposer,
                 events: Events, simplifier: Simplifier, sync: RunSync | None) -> None:
        self.storage = storage
        self.run = run
        self.state = state
        self.proposer = proposer
        self.events = events
        self.simplifier = simplifier
        self.sync = sync
        self.idle = 0  # proposals in a row that gave nothing to evaluate

    def known(self, code_hash: str) -> bool:
        """Whether any candidate of the run holds this program (any process)."""
        return self.state.holder(code_hash) is not None or (self.sync is not None
                                                            and self.sync.known(code_hash))

    def new_candidate(self, *, island: int, parent_ids: list[int], operator: str, code: str,
                      code_hash: str, proposal: Proposal | None = None,
                      status: Status | None = None, duplicate_of: int | None = None,
                      error: str | None = None) -> Candidate:
        """Store a program: pending (or a duplicate of a known one) unless ``status`` says.

        Raises:
            BudgetFull: a joined run's budget is claimed by now.
        """
        state = self.state
        seq = state.next_seq
        state.next_seq += 1
        if self.sync is not None:
            if status is None:
                return self.sync.new_candidate(self.run, state, island=island,
                                               parent_ids=parent_ids, operator=operator,
                                               code=code, code_hash=code_hash,
                                               proposal=proposal)
            seq = self.storage.claim_seq(self.run.id)
        if status is None:
            duplicate_of = state.holder(code_hash)
            status = Status.DUPLICATE if duplicate_of is not None else Status.PENDING
        usage = proposal.usage() if proposal is not None else {}
        cid = self.storage.add_candidate(
            self.run.id, seq=seq, island=island, parent_ids=parent_ids, operator=operator,
            code=code, code_hash=code_hash, status=status, seed=self.run.seed,
            duplicate_of=duplicate_of, error=error, **usage,
        )
        if status == Status.PENDING:
            state.hashes[code_hash] = cid
        return Candidate(id=cid, seq=seq, island=island, parent_ids=tuple(parent_ids),
                         operator=operator, code=code, code_hash=code_hash, status=status,
                         duplicate_of=duplicate_of)

    def initial(self, code: str) -> Candidate:
        """Store the initial program (seq 0 in a new run)."""
        return self.new_candidate(island=0, parent_ids=[], operator="initial", code=code,
                                  code_hash=normalized_hash(code))

    def simplification(self) -> Pending | bool:
        """The next statement deletion of the best program.

        False when none is due; True when one was made but is a known program.
        """
        step = self.simplifier.next(self.state.best)
        if step is None:
            return False
        base, code = step
        cand = self.new_candidate(island=base.island, parent_ids=[base.id], operator=SIMPLIFY,
                                  code=code, code_hash=normalized_hash(code))
        if cand.status == Status.DUPLICATE:
            self.state.progress.duplicates += 1
            return True
        return Pending(cand, base.fitness, None)

    def select(self, rng: random.Random, ahead: int = 0) -> tuple[int, Candidate,
                                                                  list[Candidate]]:
        """A parent and inspirations from the archive as it is now.

        ``ahead`` counts the requests already in flight, so that concurrent requests
        spread over the islands as consecutive candidates do.
        """
        state = self.state
        island = (state.next_seq + ahead) % state.config.database.num_islands
        parent = state.exhaustion.draw(lambda: state.archive.sample_parent(island, rng), rng)
        return island, parent, state.archive.inspirations(island, parent, rng)

    def propose(self, rng: random.Random) -> Pending | None:
        """Make one proposal now (model-free); None when it was a duplicate or nothing."""
        simplification = self.simplification()
        if simplification is not False:
            return simplification if isinstance(simplification, Pending) else None
        island, parent, inspirations = self.select(rng)
        return self.register(island, parent, self.proposer.propose(parent, inspirations, rng))

    def register(self, island: int, parent: Candidate,
                 proposal: Proposal | None) -> Pending | None:
        """Store a proposal: pending, or at once a duplicate or rejected one (None)."""
        if proposal is None:
            self.idle += 1
            return None
        state = self.state
        state.cost_spent += proposal.cost or 0.0
        state.tokens_spent += proposal.prompt_tokens + proposal.completion_tokens
        code_hash = normalized_hash(proposal.code)
        stopped: tuple[str, int | None] | None = None
        if proposal.rejected is not None:
            stopped = (proposal.rejected, None)
        elif state.holder(code_hash) is None:  # an exact copy is a duplicate, not rejected
            stopped = next((s for s in (f.check(proposal) for f in state.filters) if s), None)
        if stopped is not None:
            self.new_candidate(island=island, parent_ids=proposal.parent_ids,
                               operator=proposal.operator, code=proposal.code,
                               code_hash=code_hash, proposal=proposal,
                               status=Status.REJECTED, duplicate_of=stopped[1],
                               error=stopped[0])
            self._not_evaluated(proposal, parent, rejected=True)
            return None
        cand = self.new_candidate(island=island, parent_ids=proposal.parent_ids,
                                  operator=proposal.operator, code=proposal.code,
                                  code_hash=code_hash, proposal=proposal)
        proposal.candidate_id = cand.id
        if cand.status == Status.DUPLICATE:
            self._not_evaluated(proposal, parent, rejected=False)
            return None
        # idle is reset once a proposal is evaluated (see outcome): a functional
        # duplicate found by the probe gives nothing to evaluate either
        return Pending(cand, parent.fitness, proposal)

    def outcome(self, parent_id: int | None, *, evaluated: bool, wasted: bool) -> None:
        """Count how a proposal ended: idle unless it was evaluated (only an evaluation
        ends a run of idle proposals), and a wasted child or not of ``parent_id``."""
        self.idle = 0 if evaluated else self.idle + 1
        if parent_id is not None:
            self.state.exhaustion.child(parent_id, wasted=wasted)

    def _not_evaluated(self, proposal: Proposal, parent: Candidate, *,
                       rejected: bool) -> None:
        self.outcome(parent.id, evaluated=False, wasted=True)
        p = self.state.progress
        if rejected:
            p.rejected += 1
        else:
            p.duplicates += 1
        self.proposer.feedback(proposal, parent.fitness, None)
        self.events.progress(p)
