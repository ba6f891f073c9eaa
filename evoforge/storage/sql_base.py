"""What the SQL storage's method groups share: the engine, row conversion, the run lock.

:class:`~evoforge.storage.sql.SQLStorage` is composed of mixins, one per group of
``Storage`` methods (:mod:`~evoforge.storage.sql_runs`,
:mod:`~evoforge.storage.sql_candidates`, :mod:`~evoforge.storage.sql_shared`); each
derives from :class:`SQLBase`, which declares the attributes they use and holds the
helpers more than one group needs.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from evoforge.candidate import Candidate, Status
from evoforge.storage.base import Storage, StorageError
from evoforge.storage.schema import candidates, programs, runs

# statuses that hold (pending) or used an evaluation of the budget
EVALUATING = (str(Status.PENDING), str(Status.OK), str(Status.FAILED), str(Status.TIMEOUT))


def program_sha(code: str) -> str:
    """The key a program text is stored under (SHA-256 of its exact UTF-8 text)."""
    return hashlib.sha256(code.encode("utf-8", "surrogatepass")).hexdigest()


def insert_ignoring_conflicts(dialect: str) -> Any:
    """The dialect's ``insert`` construct, which has ``on_conflict_do_nothing``.

    Args:
        dialect: ``"postgresql"`` or ``"sqlite"``.
    """
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert
        return pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert
    return sqlite_insert


class SQLBase(Storage):
    """The state and helpers shared by the SQL storage's method groups.

    Attributes:
        url: the normalized SQLAlchemy URL.
        read_only: whether the storage was opened for reading only.
        engine: the SQLAlchemy engine; its schema is at the latest migration.
    """

    url: str
    read_only: bool
    engine: Engine

    @contextlib.contextmanager
    def _run_txn(self, run_id: int) -> Iterator[tuple[Connection, Any]]:
        """A write transaction serialized with every other one on the same run.

        Yields the connection and the run's row, read after taking the run's lock:
        on PostgreSQL the row lock (``SELECT ... FOR UPDATE``), on SQLite the database
        write lock (``BEGIN IMMEDIATE``). Every counter update and every
        read-then-write of the shared-run methods happens inside one of these, so
        they are atomic across processes, and commit order equals lock order.
        """
        with self.engine.begin() as conn:
            query = sa.select(runs.c.id, runs.c.next_seq, runs.c.claimed, runs.c.synced
                              ).where(runs.c.id == run_id)
            if conn.dialect.name == "sqlite":
                # pysqlite would only BEGIN (deferred) at the first write
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                query = query.with_for_update()
            row = conn.execute(query).first()
            if row is None:
                raise StorageError(f"no run with id {run_id}")
            yield conn, row

    @staticmethod
    def _candidate(row: Any) -> Candidate:
        m = row._mapping
        return Candidate(
            id=m["id"], seq=m["seq"], island=m["island"],
            parent_ids=tuple(m["parent_ids"] or ()), operator=m["operator"],
            code=m.get("code", ""), code_hash=m["code_hash"], status=Status(m["status"]),
            score=m["score"], fitness=m["fitness"], metrics=m["metrics"] or {},
            features=m["features"] or {}, artifacts=m.get("artifacts") or {},
            error=m["error"], duplicate_of=m["duplicate_of"],
            eval_seconds=m["eval_seconds"], functional_hash=m["functional_hash"],
            stages=m.get("stages"), model=m["model"], cost=m["cost"],
        )

    @staticmethod
    def _select(*, code: bool = True) -> sa.Select[Any]:
        """Candidates' columns, with their program text (joined) unless ``code`` is off."""
        if not code:
            light = [c for c in candidates.c if c.name not in ("artifacts", "stages")]
            return sa.select(*light)
        return (sa.select(candidates, programs.c.code)
                .join(programs, programs.c.id == candidates.c.program_id))

    @staticmethod
    def _program_id(conn: Connection, code: str) -> int:
        """The id of ``code``'s programs row, inserted if it is new."""
        sha = program_sha(code)
        found = conn.execute(sa.select(programs.c.id).where(programs.c.sha256 == sha)).scalar()
        if found is not None:
            return int(found)
        insert = insert_ignoring_conflicts(conn.dialect.name)
        # another process may store the same text at the same moment: keep theirs
        conn.execute(insert(programs).values(sha256=sha, code=code)
                     .on_conflict_do_nothing(index_elements=["sha256"]))
        return int(conn.execute(
            sa.select(programs.c.id).where(programs.c.sha256 == sha)).scalar_one())

    def _insert(self, conn: Connection, row: Any, run_id: int, *, seq: int, status: Status,
                claim: bool, code: str, **values: Any) -> int:
        """Insert one candidate inside a :meth:`_run_txn`, keeping the run's counters."""
        now = time.time()
        finished = status != Status.PENDING
        counters: dict[str, Any] = {}
        if seq >= row.next_seq:
            counters["next_seq"] = seq + 1
        if claim:
            counters["claimed"] = runs.c.claimed + 1
        sync_seq = None
        if finished:
            sync_seq = row.synced + 1
            counters["synced"] = sync_seq
        if counters:
            conn.execute(runs.update().where(runs.c.id == run_id).values(**counters))
        result = conn.execute(candidates.insert().values(
            run_id=run_id, seq=seq, status=str(status), created_at=now,
            finished_at=now if finished else None, sync_seq=sync_seq,
            program_id=self._program_id(conn, code),
            claimed=True if str(status) in EVALUATING else None, **values))
        key = result.inserted_primary_key
        assert key is not None
        return int(key[0])

    @staticmethod
    def _find_hash(conn: Connection, run_id: int, code_hash: str) -> int | None:
        """The first non-duplicate candidate of the run with ``code_hash``, if any."""
        c = candidates.c
        query = (sa.select(sa.func.min(c.id))
                 .where(c.run_id == run_id, c.code_hash == code_hash,
                        c.status != str(Status.DUPLICATE)))
        value = conn.execute(query).scalar()
        return None if value is None else int(value)
