"""The SQL storage's candidates: storing, finishing and reading them, and hash lookups."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa

from evoforge.candidate import Candidate, Status
from evoforge.storage.base import StorageError
from evoforge.storage.engine import one_line
from evoforge.storage.schema import candidates, programs, runs
from evoforge.storage.sql_base import EVALUATING, SQLBase, insert_ignoring_conflicts, program_sha


class CandidateStore(SQLBase):
    """Candidates one at a time or in bulk, their program texts, and lookups by hash."""

    def add_candidate(self, run_id: int, *, seq: int, island: int, parent_ids: list[int],
                      operator: str, code: str, code_hash: str, status: Status,
                      seed: int | None = None, duplicate_of: int | None = None,
                      error: str | None = None, model: str | None = None,
                      prompt_tokens: int = 0, completion_tokens: int = 0,
                      cost: float | None = None, owner: str | None = None,
                      reserved: bool = False) -> int:
        try:
            with self._run_txn(run_id) as (conn, row):
                return self._insert(
                    conn, row, run_id, seq=seq, status=status, code=code,
                    claim=str(status) in EVALUATING and not reserved,
                    island=island,
                    parent_ids=list(parent_ids), operator=operator, code_hash=code_hash,
                    seed=seed, duplicate_of=duplicate_of, error=error, model=model,
                    prompt_tokens=prompt_tokens or None,
                    completion_tokens=completion_tokens or None, cost=cost,
                    owner=owner if status == Status.PENDING else None)
        except sa.exc.IntegrityError as exc:
            raise StorageError(
                f"cannot store candidate {seq} of run {run_id}: {one_line(exc.orig)}"
            ) from None

    def import_candidates(self, run_id: int, rows: list[dict[str, Any]]) -> None:
        """Store many candidates in one transaction (imports, benchmarks, fixtures).

        Each row holds ``candidates`` columns plus ``code`` (the program text); ``seq``,
        ``island``, ``parent_ids``, ``operator``, ``code_hash`` and ``status`` are
        required. Program texts are stored once each, the run's counters (next seq,
        claims, sync order) are kept, and the rows' seqs must be new to the run.
        """
        if not rows:
            return
        insert = insert_ignoring_conflicts(self.engine.dialect.name)
        shas = [program_sha(r["code"]) for r in rows]
        texts = dict(zip(shas, (r["code"] for r in rows), strict=True))
        now = time.time()
        with self._run_txn(run_id) as (conn, run):
            conn.execute(insert(programs).on_conflict_do_nothing(index_elements=["sha256"]),
                         [{"sha256": k, "code": v} for k, v in texts.items()])
            keys: dict[str, int] = {}
            distinct = list(texts)
            for start in range(0, len(distinct), 500):
                chunk = distinct[start:start + 500]
                keys.update(conn.execute(sa.select(programs.c.sha256, programs.c.id)
                                         .where(programs.c.sha256.in_(chunk))).all())
            synced, claimed, out = int(run.synced), 0, []
            for row, sha in zip(rows, shas, strict=True):
                values = {k: v for k, v in row.items() if k != "code"}
                status = str(values["status"])
                values["status"] = status
                values.setdefault("created_at", now)
                values["run_id"], values["program_id"] = run_id, keys[sha]
                values["claimed"] = True if status in EVALUATING else None
                claimed += status in EVALUATING
                if status != str(Status.PENDING):
                    synced += 1
                    values["sync_seq"] = synced
                    values.setdefault("finished_at", now)
                out.append(values)
            # executemany needs the same keys in every row
            names = set().union(*out)
            conn.execute(candidates.insert(),
                         [{k: v.get(k) for k in names} for v in out])
            conn.execute(runs.update().where(runs.c.id == run_id).values(
                next_seq=max(int(run.next_seq), 1 + max(int(r["seq"]) for r in rows)),
                claimed=runs.c.claimed + claimed, synced=synced))

    def finish_candidate(self, candidate_id: int, *, status: Status,
                         score: float | None = None, fitness: float | None = None,
                         metrics: dict[str, Any] | None = None,
                         features: dict[str, float] | None = None,
                         artifacts: dict[str, Any] | None = None,
                         error: str | None = None,
                         eval_seconds: float | None = None,
                         functional_hash: str | None = None,
                         stages: list[dict[str, Any]] | None = None,
                         duplicate_of: int | None = None) -> None:
        with self._candidate_txn(candidate_id) as (conn, row):
            keeps_claim = str(status) in EVALUATING
            synced = row.synced + 1
            counters: dict[str, Any] = {"synced": synced}
            if row.c_claimed and not keeps_claim:
                counters["claimed"] = row.claimed - 1
            elif not row.c_claimed and keeps_claim:
                counters["claimed"] = row.claimed + 1
            self._set_run(conn, row.id, **counters)
            values: dict[str, Any] = {
                "b_id": candidate_id, "status": str(status), "score": score,
                "fitness": fitness, "metrics": metrics, "features": features,
                "artifacts": artifacts, "error": error, "eval_seconds": eval_seconds,
                "finished_at": time.time(), "functional_hash": functional_hash,
                "stages": stages, "duplicate_of": duplicate_of, "sync_seq": synced,
                "claimed": True if keeps_claim else None}
            if status != Status.PENDING:  # a pending candidate keeps its owner
                values["owner"] = None
            conn.execute(self._statement("set_candidate"), values)

    def get_candidate(self, candidate_id: int) -> Candidate:
        with self.engine.connect() as conn:
            row = conn.execute(self._select().where(candidates.c.id == candidate_id)).first()
        if row is None:
            raise StorageError(f"no candidate with id {candidate_id}")
        return self._candidate(row)

    def iter_candidates(self, run_id: int,
                        statuses: tuple[Status, ...] | None = None) -> Iterator[Candidate]:
        yield from self._iter(run_id, statuses, code=True)

    def iter_summaries(self, run_id: int,
                       statuses: tuple[Status, ...] | None = None) -> Iterator[Candidate]:
        yield from self._iter(run_id, statuses, code=False)

    def _iter(self, run_id: int, statuses: tuple[Status, ...] | None,
              *, code: bool) -> Iterator[Candidate]:
        query = self._select(code=code).where(candidates.c.run_id == run_id)
        if statuses:
            query = query.where(candidates.c.status.in_([str(s) for s in statuses]))
        # streamed in batches: a caller that stops early (the initial program, for
        # status) does not load a whole run's code into memory
        with self.engine.connect() as conn:
            result = conn.execution_options(yield_per=500).execute(
                query.order_by(candidates.c.seq))
            for row in result:
                yield self._candidate(row)

    def code_hashes(self, run_id: int) -> dict[str, int]:
        query = (sa.select(candidates.c.code_hash, sa.func.min(candidates.c.id))
                 .where(candidates.c.run_id == run_id,
                        candidates.c.status != str(Status.DUPLICATE))
                 .group_by(candidates.c.code_hash))
        with self.engine.connect() as conn:
            return {h: int(i) for h, i in conn.execute(query).all()}

    def next_seq(self, run_id: int) -> int:
        query = sa.select(sa.func.max(candidates.c.seq)).where(candidates.c.run_id == run_id)
        with self.engine.connect() as conn:
            value = conn.execute(query).scalar()
        return 0 if value is None else int(value) + 1

    def functional_hashes(self, run_id: int) -> dict[str, int]:
        query = (sa.select(candidates.c.functional_hash, sa.func.min(candidates.c.id))
                 .where(candidates.c.run_id == run_id,
                        candidates.c.functional_hash.is_not(None),
                        candidates.c.status.in_([str(Status.OK), str(Status.FAILED)]))
                 .group_by(candidates.c.functional_hash))
        with self.engine.connect() as conn:
            return {h: int(i) for h, i in conn.execute(query).all()}

    def find_code_hash(self, run_id: int, code_hash: str) -> int | None:
        with self.engine.connect() as conn:
            return self._find_hash(conn, run_id, code_hash)

    def find_functional_hash(self, run_id: int, functional_hash: str) -> int | None:
        c = candidates.c
        query = (sa.select(sa.func.min(c.id))
                 .where(c.run_id == run_id, c.functional_hash == functional_hash,
                        c.status.in_([str(Status.OK), str(Status.FAILED)])))
        with self.engine.connect() as conn:
            value = conn.execute(query).scalar()
        return None if value is None else int(value)

    def elites(self, run_id: int, limit: int) -> list[Candidate]:
        query = (self._select()
                 .where(candidates.c.run_id == run_id, candidates.c.status == str(Status.OK),
                        candidates.c.fitness.is_not(None))
                 .order_by(candidates.c.fitness.desc(), candidates.c.id).limit(limit))
        with self.engine.connect() as conn:
            return [self._candidate(r) for r in conn.execute(query).all()]

    def get_candidates(self, ids: list[int]) -> list[Candidate]:
        found: dict[int, Candidate] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                for row in conn.execute(self._select().where(candidates.c.id.in_(chunk))):
                    cand = self._candidate(row)
                    found[cand.id] = cand
        missing = [i for i in ids if i not in found]
        if missing:
            raise StorageError(f"no candidate with id {missing[0]}")
        return [found[i] for i in ids]

    def best(self, run_id: int) -> Candidate | None:
        top = self.elites(run_id, 1)
        return top[0] if top else None
