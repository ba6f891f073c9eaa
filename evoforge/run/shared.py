"""Many processes on one run (``evoforge run --join``): what they share through storage.

Each joined process keeps its own archive and proposer, and :class:`RunSync` keeps
them in step through the storage primitives (see :class:`evoforge.storage.base.Storage`):

* proposals go through ``add_proposal``: a fresh seq, duplicates recognised across
  processes, and one evaluation of the budget claimed atomically (budget 90 ends with
  exactly 90 evaluations, whatever the number of processes);
* every ~1 s the loop reads the others' finished candidates (``candidates_since``
  with a cursor) into its archive, duplicate hashes and progress counters;
* bandit statistics merge by replay: each process rewards its bandit for every
  finished candidate of the run, its own through ``feedback`` and the others' here
  (1.0 when the child beat its first parent), so every bandit learns from all results;
* a heartbeat holds a lease on the process's pending candidates; when a process dies
  (SIGKILL) its lease expires and a live one takes them over with ``claim_orphans``
  (or a later ``resume`` re-runs them).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from evoforge.candidate import Candidate, Status, normalized_hash
from evoforge.proposers.base import Proposal
from evoforge.storage.base import RunRecord, Storage, StoredProposal

if TYPE_CHECKING:
    from evoforge.run.controller import Evolution
    from evoforge.run.state import RunState

__all__ = ["LEASE_SECONDS", "POLL_SECONDS", "BudgetFull", "RunSync"]

LEASE_SECONDS = 10.0
POLL_SECONDS = 1.0
# a process whose budget is claimed waits this long, at most, for pending
# candidates that make no progress (others finishing them, or orphans to take over)
STALL_SECONDS = 3 * LEASE_SECONDS


class BudgetFull(Exception):
    """Every evaluation of the run's budget is claimed (by this or another process)."""


class RunSync:
    """One process's share of a joined run: claims, polling, heartbeat, orphans.

    Args:
        storage: the shared storage.
        run: the joined run.
        lease_seconds: how long a heartbeat holds this process's pending candidates.
        poll_seconds: how often the others' results are read.
    """

    def __init__(self, storage: Storage, run: RunRecord, *,
                 lease_seconds: float = LEASE_SECONDS,
                 poll_seconds: float = POLL_SECONDS) -> None:
        self.storage = storage
        self.run = run
        self.owner = uuid.uuid4().hex
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds
        self.cursor = 0
        self.full = False  # the budget is claimed: propose nothing more
        self.mine: set[int] = set()  # candidates this process finished
        self.fitness: dict[int, float | None] = {}  # finished ids -> fitness (rewards)
        self._last_poll = 0.0
        self._last_beat = 0.0
        self._stall_since: float | None = None
        self._pending_seen = -1

    # ----------------------------------------------------------- claims
    def propose(self, **fields: Any) -> StoredProposal:
        """Store a proposal with ``add_proposal``; BudgetFull when none is left."""
        self.beat()
        stored = self.storage.add_proposal(self.run.id, owner=self.owner,
                                           budget=self.run.budget, **fields)
        if stored is None:
            self.full = True
            raise BudgetFull
        return stored

    def new_candidate(self, run: RunRecord, state: RunState, *, island: int,
                      parent_ids: list[int], operator: str, code: str, code_hash: str,
                      proposal: Proposal | None) -> Candidate:
        """Store a proposal (see :meth:`propose`) as its candidate."""
        usage = proposal.usage() if proposal is not None else {}
        stored = self.propose(island=island, parent_ids=parent_ids, operator=operator,
                              code=code, code_hash=code_hash, seed=run.seed, **usage)
        state.next_seq = max(state.next_seq, stored.seq + 1)
        return joined_candidate(stored, Candidate(
            id=0, seq=0, island=island, parent_ids=tuple(parent_ids), operator=operator,
            code=code, code_hash=code_hash, status=Status.PENDING))

    def known(self, code_hash: str) -> bool:
        """Whether any process stored this program (an index lookup)."""
        return self.storage.find_code_hash(self.run.id, code_hash) is not None

    def find_functional(self, functional_hash: str) -> int | None:
        """The first evaluated candidate, from any process, with this behaviour."""
        return self.storage.find_functional_hash(self.run.id, functional_hash)

    def beat(self, force: bool = False) -> None:
        """Renew the lease when a third of it has passed."""
        now = time.monotonic()
        if force or now - self._last_beat > self.lease_seconds / 3:
            self.storage.heartbeat(self.run.id, self.owner, self.lease_seconds)
            self._last_beat = now

    def orphans(self) -> list[Candidate]:
        """Pending candidates of dead processes, now this process's."""
        self.beat()
        return self.storage.claim_orphans(self.run.id, self.owner)

    def close(self) -> None:
        """End the lease: what this process left pending is anyone's at once."""
        self.storage.release_owner(self.owner)

    # ---------------------------------------------------------- polling
    def poll(self, evo: Evolution, force: bool = False) -> int:
        """Read the others' finished candidates into ``evo``; how many were new."""
        now = time.monotonic()
        if not force and now - self._last_poll < self.poll_seconds:
            return 0
        self._last_poll = now
        self.beat()
        new = 0
        while True:
            batch = self.storage.candidates_since(self.run.id, self.cursor, limit=1000)
            self.cursor = batch.cursor
            for cand in batch.candidates:
                if cand.id not in self.mine:
                    absorb(evo, cand)
                    new += 1
            if len(batch.candidates) < 1000:
                return new

    async def wait(self, evo: Evolution) -> bool:
        """Nothing runs here: wait for the others (True) or end the session (False).

        Before the budget is claimed: wait for results (the initial program evaluated
        by another process). After: wait while the run has pending candidates, taking
        over orphans, until none is left or nothing moves for ``STALL_SECONDS``.
        """
        if evo.stop_reason is not None:
            return False
        if self.full:
            pending = self.storage.counts(self.run.id).get(Status.PENDING, 0)
            if pending != self._pending_seen:
                self._pending_seen, self._stall_since = pending, time.monotonic()
            stalled = (self._stall_since is not None
                       and time.monotonic() - self._stall_since > STALL_SECONDS)
            if pending == 0 or stalled:
                self.poll(evo, force=True)
                evo.stop_reason = "budget"  # every evaluation of the budget is claimed
                return False
            taken = self.orphans()
            if taken:
                evo.state.requeue.extend(taken)
                return True
        await asyncio.sleep(self.poll_seconds / 4)
        self.poll(evo)
        return True

    # ---------------------------------------------------------- restore
    def restore(self, evo: Evolution) -> None:
        """Start a joined session: the initial program once, orphans, all results."""
        self.beat(force=True)
        state = evo.state
        state.next_seq = self.storage.next_seq(self.run.id)
        state.read_usage(self.storage, self.run.id)
        if evo.run.proposer_stats:
            evo.proposer.load_stats(evo.run.proposer_stats)
        code = evo.problem.initial_program
        if self.storage.find_code_hash(self.run.id, normalized_hash(code)) is None:
            # two processes at once: add_proposal makes one of them a duplicate
            initial = evo.intake.initial(code)
            if initial.status == Status.PENDING:
                state.requeue.append(initial)
        state.requeue.extend(self.orphans())
        self.poll(evo, force=True)
        p = state.progress
        p.duplicates = self.storage.counts(self.run.id).get(Status.DUPLICATE, 0)


def absorb(evo: Evolution, cand: Candidate) -> None:
    """Take another process's finished candidate into ``evo``'s state."""
    state = evo.state
    p = state.progress
    sync = evo.sync
    assert sync is not None
    if cand.status == Status.DUPLICATE:
        p.duplicates += 1
        return
    if cand.status == Status.REJECTED:
        p.rejected += 1
        return
    if cand.status == Status.PENDING:
        return
    sync.fitness[cand.id] = cand.fitness
    state.hashes.setdefault(cand.code_hash, cand.id)
    if cand.functional_hash and cand.status in (Status.OK, Status.FAILED):
        state.func_hashes.setdefault(cand.functional_hash, cand.id)
    state.admit(cand)
    if cand.status not in (Status.OK, Status.TIMEOUT) and cand.seq == 0:
        state.initial_failed(cand)
    _reward(evo, cand)
    state.archive.on_evaluated(p.evaluated, evo.rng)


def _reward(evo: Evolution, cand: Candidate) -> None:
    """The others' results teach this process's bandit too (merged statistics)."""
    bandit = getattr(evo.proposer, "bandit", None)
    if bandit is None or not cand.parent_ids or cand.operator not in bandit.arms:
        return
    parent = evo.sync.fitness.get(cand.parent_ids[0]) if evo.sync else None
    improved = (cand.fitness is not None and parent is not None and cand.fitness > parent)
    bandit.update(cand.operator, 1.0 if improved else 0.0)


def joined_candidate(stored: StoredProposal, base: Candidate) -> Candidate:
    """``base`` with the id, seq and status ``add_proposal`` gave it."""
    status = Status.DUPLICATE if stored.duplicate_of is not None else Status.PENDING
    return replace(base, id=stored.id, seq=stored.seq, status=status,
                   duplicate_of=stored.duplicate_of)
