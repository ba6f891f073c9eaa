"""The multi-process half of the Storage conformance suite: one run, many processes.

The tests start real worker processes (``spawn``) that open the storage from its URL
with the suite's opener and race at a barrier: opening a never-opened storage, claiming
sequence numbers and evaluations, proposing the same programs, finishing candidates
while the test reads them back, and taking over the pending candidates of a process
killed with SIGKILL. Subclass
:class:`~evoforge.testing.conformance_storage.StorageConformance`, which includes these.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from typing import Any

import pytest

from evoforge.candidate import Status
from evoforge.storage.base import Storage
from evoforge.testing.conformance_storage_base import (
    PROCESS_TIMEOUT,
    StorageFixtures,
    load_opener,
)

_CTX = multiprocessing.get_context("spawn")


# --- worker processes (module level: the spawn start method imports them) ----------


def _open_at_barrier(opener: str, url: str, barrier: Any, name: str) -> None:
    open_storage = load_opener(opener)  # imports first: the opens race, not the imports
    barrier.wait(timeout=PROCESS_TIMEOUT)
    storage = open_storage(url)
    try:
        storage.create_run(name=name, problem="p", problem_path="/p", config={}, seed=0,
                           budget=1)
    finally:
        storage.close()


def _claim_seqs(opener: str, url: str, barrier: Any, run_id: int, n: int, out: Any) -> None:
    storage = load_opener(opener)(url)
    barrier.wait(timeout=PROCESS_TIMEOUT)
    try:
        out.put([storage.claim_seq(run_id, 1 + i % 3) for i in range(n)])
    finally:
        storage.close()


def _claim_evaluations(opener: str, url: str, barrier: Any, run_id: int, budget: int,
                       out: Any) -> None:
    storage = load_opener(opener)(url)
    barrier.wait(timeout=PROCESS_TIMEOUT)
    won = 0
    try:
        while storage.claim_evaluation(run_id, budget):
            won += 1
        out.put(won)
    finally:
        storage.close()


def _propose(opener: str, url: str, barrier: Any, run_id: int, owner: str,
             hashes: list[str], budget: int, out: Any) -> None:
    storage = load_opener(opener)(url)
    storage.heartbeat(run_id, owner, 600.0)
    barrier.wait(timeout=PROCESS_TIMEOUT)
    stored = []
    try:
        for h in hashes:
            got = storage.add_proposal(run_id, owner=owner, budget=budget, island=0,
                                       parent_ids=[], operator="mutate",
                                       code=f"x = {h!r}\n", code_hash=h)
            stored.append(None if got is None else (got.id, got.seq, got.duplicate_of))
        out.put(stored)
    finally:
        storage.close()


def _finish_some(opener: str, url: str, barrier: Any, ids: list[int]) -> None:
    storage = load_opener(opener)(url)
    barrier.wait(timeout=PROCESS_TIMEOUT)
    try:
        for i, cid in enumerate(ids):
            storage.finish_candidate(cid, status=Status.OK, score=float(i), fitness=float(i))
    finally:
        storage.close()


def _propose_and_hang(opener: str, url: str, run_id: int, owner: str, n: int,
                      ready: Any) -> None:
    storage = load_opener(opener)(url)
    storage.heartbeat(run_id, owner, 600.0)
    for i in range(n):
        storage.add_proposal(run_id, owner=owner, budget=None, island=0, parent_ids=[],
                             operator="mutate", code=f"y = {i}\n", code_hash=f"{owner}-{i}")
    ready.set()
    time.sleep(PROCESS_TIMEOUT)  # killed by the test long before


def _claim_orphans(opener: str, url: str, barrier: Any, run_id: int, owner: str,
                   out: Any) -> None:
    storage = load_opener(opener)(url)
    storage.heartbeat(run_id, owner, 600.0)
    barrier.wait(timeout=PROCESS_TIMEOUT)
    try:
        got: list[int] = []
        while True:
            batch = storage.claim_orphans(run_id, owner, limit=2)
            if not batch:
                break
            got.extend(c.id for c in batch)
            for cand in batch:  # re-run: finish it, so it is no longer an orphan
                storage.finish_candidate(cand.id, status=Status.OK, fitness=1.0, score=1.0)
        out.put(got)
    finally:
        storage.close()


def _join(processes: list[Any]) -> None:
    deadline = time.monotonic() + PROCESS_TIMEOUT
    for proc in processes:
        proc.join(max(0.1, deadline - time.monotonic()))
    alive = [p for p in processes if p.is_alive()]
    for proc in alive:
        proc.kill()
        proc.join()
    assert not alive, f"{len(alive)} worker processes did not finish in time"
    assert [p.exitcode for p in processes] == [0] * len(processes)


def _drain(queue: Any, n: int) -> list[Any]:
    return [queue.get(timeout=PROCESS_TIMEOUT) for _ in range(n)]


class MultiProcessContract(StorageFixtures):
    """The Storage contract with several processes on one run."""

    def _spawn(self, target: Callable[..., None], args_for: Callable[[int], tuple[Any, ...]],
               n: int) -> list[Any]:
        procs = [_CTX.Process(target=target, args=args_for(i), daemon=True) for i in range(n)]
        for proc in procs:
            proc.start()
        return procs

    @pytest.mark.slow
    def test_concurrent_start(self, fresh_url: str, prefix: str) -> None:
        """Ten processes open a never-opened storage at the same instant: all succeed.

        Slow (about 20 s on two cores): ten interpreters import SQLAlchemy and Alembic.
        """
        n = 10
        barrier = _CTX.Barrier(n)
        procs = self._spawn(_open_at_barrier,
                            lambda i: (self.opener, fresh_url, barrier, f"{prefix}{i}"), n)
        _join(procs)
        storage = load_opener(self.opener)(fresh_url)
        try:
            names = {r.name for r in storage.list_runs()}
            assert names == {f"{prefix}{i}" for i in range(n)}
        finally:
            storage.close()

    def test_claim_seq_across_processes(self, storage: Storage, storage_url: str,
                                        prefix: str) -> None:
        run_id = self.new_run(storage, prefix)
        self.add(storage, run_id, 0)
        n, per = self.processes, 25
        barrier, out = _CTX.Barrier(n), _CTX.Queue()
        procs = self._spawn(_claim_seqs,
                            lambda i: (self.opener, storage_url, barrier, run_id, per, out), n)
        firsts = _drain(out, n)
        _join(procs)
        taken = [first + k for chunk in firsts for i, first in enumerate(chunk)
                 for k in range(1 + i % 3)]
        assert sorted(taken) == list(range(1, 1 + len(taken)))

    def test_budget_claims_across_processes(self, storage: Storage, storage_url: str,
                                            prefix: str) -> None:
        run_id = self.new_run(storage, prefix)
        self.add(storage, run_id, 0)  # holds one evaluation already
        n, budget = self.processes, 37
        barrier, out = _CTX.Barrier(n), _CTX.Queue()
        procs = self._spawn(
            _claim_evaluations,
            lambda i: (self.opener, storage_url, barrier, run_id, budget, out), n)
        won = _drain(out, n)
        _join(procs)
        assert sum(won) == budget - 1
        assert storage.claimed_evaluations(run_id) == budget

    def test_proposals_across_processes(self, storage: Storage, storage_url: str,
                                        prefix: str) -> None:
        """Every process proposes the same programs: each is evaluated once, in budget."""
        run_id = self.new_run(storage, prefix)
        n, budget = self.processes, 15
        hashes = [f"p{k}" for k in range(20)]
        barrier, out = _CTX.Barrier(n), _CTX.Queue()
        procs = self._spawn(
            _propose,
            lambda i: (self.opener, storage_url, barrier, run_id, f"{prefix}w{i}",
                       hashes[i:] + hashes[:i], budget, out), n)
        results = [r for chunk in _drain(out, n) for r in chunk]
        _join(procs)
        stored = [r for r in results if r is not None]
        pending = [r for r in stored if r[2] is None]
        assert len(pending) == budget  # exactly the budget, never more
        assert len({r[1] for r in stored}) == len(stored)  # unique seqs
        assert len({r[0] for r in stored}) == len(stored)
        cands = {c.id: c for c in storage.iter_candidates(run_id)}
        assert len(cands) == len(stored)
        pending_hashes = [cands[r[0]].code_hash for r in pending]
        assert len(set(pending_hashes)) == budget  # no program pending twice
        for cid, _seq, first in stored:
            if first is not None:
                assert cands[cid].status == Status.DUPLICATE
                assert cands[first].code_hash == cands[cid].code_hash
                assert cands[first].status == Status.PENDING
        assert storage.claimed_evaluations(run_id) == budget

    def test_sync_across_processes(self, storage: Storage, storage_url: str,
                                   prefix: str) -> None:
        """Polling candidates_since while other processes finish candidates misses none."""
        run_id = self.new_run(storage, prefix)
        n, per = self.processes, 15
        ids = [self.add(storage, run_id, seq) for seq in range(n * per)]
        barrier = _CTX.Barrier(n + 1)
        # each process finishes an interleaved share: commits arrive out of id order
        procs = self._spawn(
            _finish_some,
            lambda i: (self.opener, storage_url, barrier, ids[i::n][::-1]), n)
        barrier.wait(timeout=PROCESS_TIMEOUT)
        seen: list[int] = []
        cursor = 0
        deadline = time.monotonic() + PROCESS_TIMEOUT
        while len(seen) < len(ids) and time.monotonic() < deadline:
            batch = storage.candidates_since(run_id, cursor, limit=7)
            assert batch.cursor >= cursor
            assert all(c.status == Status.OK for c in batch.candidates)
            seen.extend(c.id for c in batch.candidates)
            cursor = batch.cursor
        _join(procs)
        assert sorted(seen) == sorted(ids)  # each one exactly once
        assert storage.candidates_since(run_id, cursor).candidates == []
        later = self.add(storage, run_id, n * per, status=Status.DUPLICATE, duplicate_of=ids[0])
        assert [c.id for c in storage.candidates_since(run_id, cursor).candidates] == [later]

    def test_orphans_after_sigkill(self, storage: Storage, storage_url: str,
                                   prefix: str) -> None:
        """A killed process's pending candidates go, once each, to the processes left."""
        run_id = self.new_run(storage, prefix)
        mine = f"{prefix}alive"
        storage.heartbeat(run_id, mine, 600.0)
        kept = storage.add_proposal(run_id, owner=mine, budget=None, island=0, parent_ids=[],
                                    operator="mutate", code="z = 1\n", code_hash="mine")
        assert kept is not None
        legacy = self.add(storage, run_id, 100)  # no owner: an orphan from the start
        ready = _CTX.Event()
        victim = _CTX.Process(target=_propose_and_hang,
                              args=(self.opener, storage_url, run_id, f"{prefix}victim", 6,
                                    ready), daemon=True)
        victim.start()
        assert ready.wait(PROCESS_TIMEOUT)
        os.kill(victim.pid, signal.SIGKILL)  # type: ignore[arg-type]
        victim.join(PROCESS_TIMEOUT)
        # its lease has not expired yet: only the ownerless one is an orphan
        assert [c.id for c in storage.claim_orphans(run_id, mine)] == [legacy]
        victims = [c.id for c in storage.iter_candidates(run_id, (Status.PENDING,))
                   if c.id not in (kept.id, legacy)]
        assert len(victims) == 6
        storage.heartbeat(run_id, f"{prefix}victim", -1.0)  # as if its lease ran out
        n = self.processes
        barrier, out = _CTX.Barrier(n), _CTX.Queue()
        procs = self._spawn(
            _claim_orphans,
            lambda i: (self.opener, storage_url, barrier, run_id, f"{prefix}r{i}", out), n)
        taken = [cid for chunk in _drain(out, n) for cid in chunk]
        _join(procs)
        assert sorted(taken) == sorted(victims)  # each exactly once, mine never
        assert storage.get_candidate(kept.id).status == Status.PENDING
        assert storage.claimed_evaluations(run_id) == 8  # re-runs took no new claim
        storage.release_owner(mine)
        other = f"{prefix}other"
        storage.heartbeat(run_id, other, 600.0)
        assert [c.id for c in storage.claim_orphans(run_id, other)] == [kept.id, legacy]
