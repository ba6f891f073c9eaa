"""The SQL storage's methods for many processes on one run.

Sequence numbers, evaluation claims against the budget and deduplicated proposals are
handed out inside the run's lock (``SQLBase._run_txn``); finished candidates are read
back in commit order; leases tell the pending candidates of a killed process apart.
"""

from __future__ import annotations

import time

import sqlalchemy as sa

from evoforge.candidate import Candidate, Status
from evoforge.storage.base import StorageError, StoredProposal, SyncBatch
from evoforge.storage.schema import candidates, leases, runs
from evoforge.storage.sql_base import SQLBase


class SharedRunStore(SQLBase):
    """Claims, deduplicated proposals, the finished-candidate feed and owners' leases."""

    def claim_seq(self, run_id: int, n: int = 1) -> int:
        if n < 1:
            raise ValueError("n must be at least 1")
        with self._run_txn(run_id) as (conn, row):
            conn.execute(runs.update().where(runs.c.id == run_id)
                         .values(next_seq=row.next_seq + n))
            return int(row.next_seq)

    def claim_evaluation(self, run_id: int, budget: int) -> bool:
        with self._run_txn(run_id) as (conn, row):
            if row.claimed >= budget:
                return False
            conn.execute(runs.update().where(runs.c.id == run_id)
                         .values(claimed=row.claimed + 1))
            return True

    def release_evaluation(self, run_id: int) -> None:
        with self._run_txn(run_id) as (conn, row):
            if row.claimed <= 0:
                raise StorageError(f"run {run_id} holds no evaluation claim to release")
            conn.execute(runs.update().where(runs.c.id == run_id)
                         .values(claimed=row.claimed - 1))

    def claimed_evaluations(self, run_id: int) -> int:
        with self.engine.connect() as conn:
            value = conn.execute(sa.select(runs.c.claimed).where(runs.c.id == run_id)).scalar()
        if value is None:
            raise StorageError(f"no run with id {run_id}")
        return int(value)

    def add_proposal(self, run_id: int, *, owner: str, budget: int | None, island: int,
                     parent_ids: list[int], operator: str, code: str, code_hash: str,
                     seed: int | None = None, model: str | None = None,
                     prompt_tokens: int = 0, completion_tokens: int = 0,
                     cost: float | None = None) -> StoredProposal | None:
        with self._run_txn(run_id) as (conn, row):
            # inside the run's lock: no other process can store this hash meanwhile
            first = self._find_hash(conn, run_id, code_hash)
            if first is None and budget is not None and row.claimed >= budget:
                return None
            status = Status.PENDING if first is None else Status.DUPLICATE
            seq = int(row.next_seq)
            cid = self._insert(
                conn, row, run_id, seq=seq, status=status, code=code,
                claim=first is None, island=island,
                parent_ids=list(parent_ids), operator=operator, code_hash=code_hash,
                seed=seed, duplicate_of=first, model=model,
                prompt_tokens=prompt_tokens or None,
                completion_tokens=completion_tokens or None, cost=cost,
                owner=owner if first is None else None)
            return StoredProposal(id=cid, seq=seq, duplicate_of=first)

    def candidates_since(self, run_id: int, cursor: int = 0,
                         limit: int | None = None) -> SyncBatch:
        query = (self._select().where(candidates.c.run_id == run_id,
                                      candidates.c.sync_seq > cursor)
                 .order_by(candidates.c.sync_seq))
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        found = [self._candidate(r) for r in rows]
        return SyncBatch(found, int(rows[-1]._mapping["sync_seq"]) if rows else cursor)

    def heartbeat(self, run_id: int, owner: str, lease_seconds: float) -> None:
        expires = time.time() + lease_seconds
        with self.engine.begin() as conn:
            updated = conn.execute(leases.update().where(leases.c.owner == owner)
                                   .values(run_id=run_id, expires_at=expires)).rowcount
            if not updated:
                conn.execute(leases.insert().values(owner=owner, run_id=run_id,
                                                    expires_at=expires))

    def release_owner(self, owner: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(leases.delete().where(leases.c.owner == owner))

    def claim_orphans(self, run_id: int, owner: str, limit: int | None = None,
                      now: float | None = None) -> list[Candidate]:
        now = time.time() if now is None else now
        c = candidates.c
        alive = (sa.select(leases.c.owner)
                 .where(leases.c.run_id == run_id, leases.c.expires_at > now))
        with self._run_txn(run_id) as (conn, _row):
            query = (sa.select(c.id).where(
                c.run_id == run_id, c.status == str(Status.PENDING),
                sa.or_(c.owner.is_(None), c.owner.not_in(alive)))
                .order_by(c.seq))
            if limit is not None:
                query = query.limit(limit)
            ids = [int(i) for i in conn.execute(query).scalars()]
            if ids:
                conn.execute(candidates.update().where(c.id.in_(ids)).values(owner=owner))
        return self.get_candidates(ids)

