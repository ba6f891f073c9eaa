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

    def _statement(self, name: str) -> Any:
        """A statement of the hot path, built once per storage (issue 11).

        Building and coercing a SQLAlchemy statement on every call cost more CPU than
        running it; these take their values as parameters at execution instead.
        """
        cache: dict[str, Any] = self.__dict__.setdefault("_statements", {})
        found = cache.get(name)
        if found is None:
            found = cache[name] = self._build(name)
        return found

    def _build(self, name: str) -> Any:
        sqlite = self.engine.dialect.name == "sqlite"
        c = candidates.c
        if name in ("run_row", "candidate_row"):
            run_cols = (runs.c.id, runs.c.next_seq, runs.c.claimed, runs.c.synced)
            if name == "run_row":
                query = sa.select(*run_cols).where(runs.c.id == sa.bindparam("b_id"))
            else:  # a candidate's run, locked, and whether the candidate holds a claim
                query = (sa.select(*run_cols, c.claimed.label("c_claimed"))
                         .join_from(candidates, runs, runs.c.id == c.run_id)
                         .where(c.id == sa.bindparam("b_id")))
            # SQLite: BEGIN IMMEDIATE locks the database; PostgreSQL: the run's row
            return query if sqlite else query.with_for_update(of=runs)
        if name == "set_run":  # SET takes the columns of the parameters given
            return runs.update().where(runs.c.id == sa.bindparam("b_id"))
        if name == "set_candidate":
            return candidates.update().where(c.id == sa.bindparam("b_id"))
        if name == "add_program":  # RETURNING gives no row when the text is stored already
            insert = insert_ignoring_conflicts(self.engine.dialect.name)
            return (insert(programs).on_conflict_do_nothing(index_elements=["sha256"])
                    .returning(programs.c.id))
        if name == "find_program":
            return sa.select(programs.c.id).where(programs.c.sha256 == sa.bindparam("b_sha"))
        raise KeyError(name)

    @contextlib.contextmanager
    def _locked(self, statement: str, key: int, missing: str
                ) -> Iterator[tuple[Connection, Any]]:
        with self.engine.begin() as conn:
            if conn.dialect.name == "sqlite":
                # pysqlite would only BEGIN (deferred) at the first write
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            row = conn.execute(self._statement(statement), {"b_id": key}).first()
            if row is None:
                raise StorageError(missing)
            yield conn, row

    def _run_txn(self, run_id: int) -> contextlib.AbstractContextManager[tuple[Connection, Any]]:
        """A write transaction serialized with every other one on the same run.

        Yields the connection and the run's row, read after taking the run's lock:
        on PostgreSQL the row lock (``SELECT ... FOR UPDATE``), on SQLite the database
        write lock (``BEGIN IMMEDIATE``). Every counter update and every
        read-then-write of the shared-run methods happens inside one of these, so
        they are atomic across processes, and commit order equals lock order.
        """
        return self._locked("run_row", run_id, f"no run with id {run_id}")

    def _candidate_txn(self, candidate_id: int
                       ) -> contextlib.AbstractContextManager[tuple[Connection, Any]]:
        """:meth:`_run_txn` on a candidate's run, found in the same statement; the row
        also holds the candidate's ``c_claimed``."""
        return self._locked("candidate_row", candidate_id,
                            f"no candidate with id {candidate_id}")

    def _set_run(self, conn: Connection, run_id: int, **values: Any) -> None:
        """Set a run's columns (counters read inside the same locked transaction)."""
        if values:
            conn.execute(self._statement("set_run"), {"b_id": run_id, **values})

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

    def _program_id(self, conn: Connection, code: str) -> int:
        """The id of ``code``'s programs row, inserted if it is new."""
        sha = program_sha(code)
        # another process may store the same text at the same moment: keep theirs
        added = conn.execute(self._statement("add_program"), {"sha256": sha, "code": code})
        found = added.scalar()
        if found is None:
            found = conn.execute(self._statement("find_program"), {"b_sha": sha}).scalar_one()
        return int(found)

    def _insert(self, conn: Connection, row: Any, run_id: int, *, seq: int, status: Status,
                claim: bool, code: str, **values: Any) -> int:
        """Insert one candidate inside a :meth:`_run_txn`, keeping the run's counters."""
        now = time.time()
        finished = status != Status.PENDING
        # the row was read under the run's lock: the counters' new values are known
        counters: dict[str, Any] = {}
        if seq >= row.next_seq:
            counters["next_seq"] = seq + 1
        if claim:
            counters["claimed"] = row.claimed + 1
        sync_seq = None
        if finished:
            sync_seq = counters["synced"] = row.synced + 1
        self._set_run(conn, run_id, **counters)
        result = conn.execute(candidates.insert(), {
            "run_id": run_id, "seq": seq, "status": str(status), "created_at": now,
            "finished_at": now if finished else None, "sync_seq": sync_seq,
            "program_id": self._program_id(conn, code),
            "claimed": True if str(status) in EVALUATING else None, **values})
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
