"""SQLAlchemy storage: SQLite (default, WAL mode) and PostgreSQL."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy.engine import Connection, Engine

from evoforge.candidate import Candidate, Status
from evoforge.storage.base import RunRecord, Storage, StorageError, StoredProposal, SyncBatch
from evoforge.storage.schema import candidates, leases, programs, runs

DEFAULT_URL = "sqlite:///evoforge.db"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"

_RUN_FIELDS = {"status", "budget", "elapsed_seconds", "proposer_stats", "summary", "config"}

# statuses that hold (pending) or used an evaluation of the budget
_EVALUATING = (str(Status.PENDING), str(Status.OK), str(Status.FAILED), str(Status.TIMEOUT))
# any number of processes may open a PostgreSQL database at once: the schema is created
# or migrated by one of them at a time, under this advisory lock (a fixed 64-bit key)
_PG_MIGRATION_LOCK = zlib.crc32(b"evoforge schema migration")


def normalize_url(url: str) -> str:
    """Accept a SQLAlchemy URL, or a bare file path meaning a SQLite file."""
    if "://" in url:
        if url.startswith("postgresql://"):
            # psycopg 3 is the driver evoforge installs for PostgreSQL
            return "postgresql+psycopg://" + url[len("postgresql://"):]
        return url
    return f"sqlite:///{url}"


def safe_url(url: str) -> str:
    """``url`` with any password hidden, for messages."""
    try:
        return sa.engine.make_url(normalize_url(url)).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return url


def _one_line(exc: BaseException | None) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # the busy timeout first: switching a new file to WAL needs a lock another
    # process opening it at the same instant may hold
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def program_sha(code: str) -> str:
    """The key a program text is stored under (SHA-256 of its exact UTF-8 text)."""
    return hashlib.sha256(code.encode("utf-8", "surrogatepass")).hexdigest()


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive ``fcntl`` lock on ``path`` (created if needed) for the block."""
    with open(path, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _sqlite_read_only_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # no journal_mode change (that is a write); query_only makes SQLite refuse any write
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA query_only=ON")
    cursor.close()


def alembic_config(url: str) -> AlembicConfig:
    """An Alembic config pointing at evoforge's migrations and ``url``."""
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


class SQLStorage(Storage):
    """Storage over any SQLAlchemy URL; the schema is brought up to date on open.

    Args:
        url: SQLAlchemy URL or a SQLite file path.
        read_only: open for reading only (the dashboard, reports): no migration, and the
            database refuses writes (SQLite ``query_only``, PostgreSQL read-only
            transactions); the storage must exist with an up-to-date schema.
    """

    def __init__(self, url: str = DEFAULT_URL, *, read_only: bool = False) -> None:
        self.url = normalize_url(url)
        self.read_only = read_only
        shown = safe_url(url)
        try:
            engine = sa.create_engine(self.url, future=True)
        except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError) as exc:
            raise StorageError(f"cannot use storage URL {shown}: {_one_line(exc)}") from None
        if engine.dialect.name == "sqlite":
            sa.event.listen(engine, "connect",
                            _sqlite_read_only_pragmas if read_only else _sqlite_pragmas)
            database = engine.url.database
            if read_only and database not in (None, "", ":memory:") \
                    and not Path(database).is_file():
                raise StorageError(f"no SQLite database at {database}")
        elif read_only and engine.dialect.name == "postgresql":
            engine = engine.execution_options(postgresql_readonly=True)
        self.engine: Engine = engine
        try:
            if read_only:
                self._check_schema(shown)
            else:
                self._migrate()
        except sa.exc.DBAPIError as exc:
            raise StorageError(f"cannot open storage {shown}: {_one_line(exc.orig)}") from None

    def _check_schema(self, shown: str) -> None:
        """Read-only opening: the schema must already be at the latest migration."""
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        head = ScriptDirectory.from_config(alembic_config(self.url)).get_current_head()
        with self.engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
        if current is None:
            raise StorageError(f"{shown} holds no evoforge runs")
        if current != head:
            raise StorageError(f"{shown} has an older schema ({current}, latest {head}); "
                               "open it once with 'evoforge status' to upgrade it")

    def _at_head(self) -> bool:
        """Whether the schema is already at the latest migration (a cheap read)."""
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        head = ScriptDirectory.from_config(alembic_config(self.url)).get_current_head()
        with self.engine.connect() as conn:
            return bool(MigrationContext.configure(conn).get_current_revision() == head)

    def _migrate(self) -> None:
        """Create or upgrade the schema, once, whatever the number of processes opening it.

        PostgreSQL: a transaction-scoped advisory lock serializes the upgrades, and the
        second process finds the schema at head. SQLite: an ``fcntl`` lock on the
        sidecar file ``<database>.lock`` does the same (SQLite's own locks do not
        cover Alembic's read-then-create).
        """
        if self._at_head():
            return
        database = self.engine.url.database
        lock: contextlib.AbstractContextManager[None] = contextlib.nullcontext()
        if self.engine.dialect.name == "sqlite" and database not in (None, "", ":memory:"):
            lock = _file_lock(Path(f"{database}.lock"))
        cfg = alembic_config(self.url)
        with lock, self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"),
                             {"k": _PG_MIGRATION_LOCK})
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

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

    # runs ------------------------------------------------------------------
    @staticmethod
    def _run(row: Any) -> RunRecord:
        m = row._mapping
        return RunRecord(**{k: m[k] for k in RunRecord.__dataclass_fields__})

    def create_run(self, *, name: str, problem: str, problem_path: str,
                   config: dict[str, Any], seed: int, budget: int) -> RunRecord:
        now = time.time()
        try:
            with self.engine.begin() as conn:
                conn.execute(runs.insert().values(
                    name=name, problem=problem, problem_path=problem_path, config=config,
                    seed=seed, budget=budget, status="created", created_at=now,
                    updated_at=now, elapsed_seconds=0.0,
                ))
        except sa.exc.IntegrityError:
            raise StorageError(
                f"a run named {name!r} exists already; pick another --run-name "
                "or continue it with 'evoforge resume'"
            ) from None
        run = self.get_run(name)
        assert run is not None
        return run

    def get_run(self, name: str) -> RunRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(runs.select().where(runs.c.name == name)).first()
        return self._run(row) if row is not None else None

    def latest_run(self) -> RunRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(runs.select().order_by(runs.c.id.desc()).limit(1)).first()
        return self._run(row) if row is not None else None

    def list_runs(self) -> list[RunRecord]:
        with self.engine.connect() as conn:
            rows = conn.execute(runs.select().order_by(runs.c.id)).all()
        return [self._run(r) for r in rows]

    def update_run(self, run_id: int, **fields: Any) -> None:
        unknown = set(fields) - _RUN_FIELDS
        if unknown:
            raise StorageError(f"cannot update run fields {sorted(unknown)}")
        with self.engine.begin() as conn:
            conn.execute(runs.update().where(runs.c.id == run_id)
                         .values(updated_at=time.time(), **fields))

    # candidates -------------------------------------------------------------
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
        insert: Any
        if conn.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
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
            claimed=True if str(status) in _EVALUATING else None, **values))
        key = result.inserted_primary_key
        assert key is not None
        return int(key[0])

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
                    claim=str(status) in _EVALUATING and not reserved,
                    island=island,
                    parent_ids=list(parent_ids), operator=operator, code_hash=code_hash,
                    seed=seed, duplicate_of=duplicate_of, error=error, model=model,
                    prompt_tokens=prompt_tokens or None,
                    completion_tokens=completion_tokens or None, cost=cost,
                    owner=owner if status == Status.PENDING else None)
        except sa.exc.IntegrityError as exc:
            raise StorageError(
                f"cannot store candidate {seq} of run {run_id}: {_one_line(exc.orig)}"
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
        insert: Any
        if self.engine.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
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
                values["claimed"] = True if status in _EVALUATING else None
                claimed += status in _EVALUATING
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
        with self.engine.connect() as conn:
            run_id = conn.execute(sa.select(candidates.c.run_id)
                                  .where(candidates.c.id == candidate_id)).scalar()
        if run_id is None:
            raise StorageError(f"no candidate with id {candidate_id}")
        with self._run_txn(run_id) as (conn, row):
            before = conn.execute(sa.select(candidates.c.status, candidates.c.claimed)
                                  .where(candidates.c.id == candidate_id)).one()
            counters: dict[str, Any] = {"synced": row.synced + 1}
            keeps_claim = str(status) in _EVALUATING
            if before.claimed and not keeps_claim:
                counters["claimed"] = runs.c.claimed - 1
            elif not before.claimed and keeps_claim:
                counters["claimed"] = runs.c.claimed + 1
            conn.execute(runs.update().where(runs.c.id == run_id).values(**counters))
            conn.execute(
                candidates.update().where(candidates.c.id == candidate_id).values(
                    status=str(status), score=score, fitness=fitness, metrics=metrics,
                    features=features, artifacts=artifacts, error=error,
                    eval_seconds=eval_seconds, finished_at=time.time(),
                    functional_hash=functional_hash, stages=stages,
                    duplicate_of=duplicate_of, sync_seq=row.synced + 1,
                    claimed=True if keeps_claim else None,
                    owner=None if status != Status.PENDING else candidates.c.owner,
                ))

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

    def counts(self, run_id: int) -> dict[str, int]:
        query = (sa.select(candidates.c.status, sa.func.count())
                 .where(candidates.c.run_id == run_id).group_by(candidates.c.status))
        with self.engine.connect() as conn:
            return {str(s): int(n) for s, n in conn.execute(query).all()}

    def operator_counts(self, run_id: int) -> dict[str, dict[str, int]]:
        query = (sa.select(candidates.c.operator, candidates.c.status, sa.func.count())
                 .where(candidates.c.run_id == run_id)
                 .group_by(candidates.c.operator, candidates.c.status))
        out: dict[str, dict[str, int]] = {}
        with self.engine.connect() as conn:
            for op, status, n in conn.execute(query).all():
                out.setdefault(op, {})[status] = int(n)
        return out

    def functional_hashes(self, run_id: int) -> dict[str, int]:
        query = (sa.select(candidates.c.functional_hash, sa.func.min(candidates.c.id))
                 .where(candidates.c.run_id == run_id,
                        candidates.c.functional_hash.is_not(None),
                        candidates.c.status.in_([str(Status.OK), str(Status.FAILED)]))
                 .group_by(candidates.c.functional_hash))
        with self.engine.connect() as conn:
            return {h: int(i) for h, i in conn.execute(query).all()}

    def usage(self, run_id: int) -> dict[str, float]:
        c = candidates.c
        query = sa.select(sa.func.coalesce(sa.func.sum(c.cost), 0.0),
                          sa.func.coalesce(sa.func.sum(c.prompt_tokens), 0),
                          sa.func.coalesce(sa.func.sum(c.completion_tokens), 0)
                          ).where(c.run_id == run_id)
        with self.engine.connect() as conn:
            cost, prompt, completion = conn.execute(query).one()
        return {"cost": float(cost), "prompt_tokens": int(prompt),
                "completion_tokens": int(completion)}

    def model_stats(self, run_id: int) -> dict[str, dict[str, dict[str, float]]]:
        c = candidates.c
        query = (sa.select(c.model, c.operator, c.status, sa.func.count(),
                           sa.func.coalesce(sa.func.sum(c.prompt_tokens), 0),
                           sa.func.coalesce(sa.func.sum(c.completion_tokens), 0),
                           sa.func.coalesce(sa.func.sum(c.cost), 0.0))
                 .where(c.run_id == run_id, c.model.is_not(None))
                 .group_by(c.model, c.operator, c.status))
        out: dict[str, dict[str, dict[str, float]]] = {}
        with self.engine.connect() as conn:
            for model, op, status, n, p_tok, c_tok, cost in conn.execute(query).all():
                entry = out.setdefault(model, {}).setdefault(op, {})
                entry[status] = entry.get(status, 0) + int(n)
                for key, value in (("prompt_tokens", p_tok), ("completion_tokens", c_tok),
                                   ("cost", cost)):
                    entry[key] = entry.get(key, 0) + float(value)
        return out

    def functional_stats(self, run_id: int) -> dict[str, float]:
        dup = candidates.alias("dup")
        orig = candidates.alias("orig")
        c = candidates.c
        hits_q = (sa.select(sa.func.count(), sa.func.coalesce(
                      sa.func.sum(orig.c.eval_seconds - dup.c.eval_seconds), 0.0))
                  .select_from(dup.join(orig, dup.c.duplicate_of == orig.c.id))
                  .where(dup.c.run_id == run_id, dup.c.status == str(Status.DUPLICATE),
                         dup.c.functional_hash.is_not(None)))
        probed_q = (sa.select(sa.func.count()).where(
            c.run_id == run_id, c.functional_hash.is_not(None),
            c.status.in_([str(Status.OK), str(Status.FAILED), str(Status.TIMEOUT)])))
        with self.engine.connect() as conn:
            hits, saved = conn.execute(hits_q).one()
            probed = conn.execute(probed_q).scalar() or 0
        total = int(hits) + int(probed)
        return {"hits": int(hits), "probed": total,
                "hit_rate": (int(hits) / total) if total else 0.0,
                "seconds_saved": max(float(saved or 0.0), 0.0)}

    def best(self, run_id: int) -> Candidate | None:
        top = self.elites(run_id, 1)
        return top[0] if top else None

    # many processes on one run ------------------------------------------------------
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

    @staticmethod
    def _find_hash(conn: Connection, run_id: int, code_hash: str) -> int | None:
        c = candidates.c
        query = (sa.select(sa.func.min(c.id))
                 .where(c.run_id == run_id, c.code_hash == code_hash,
                        c.status != str(Status.DUPLICATE)))
        value = conn.execute(query).scalar()
        return None if value is None else int(value)

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

    def close(self) -> None:
        self.engine.dispose()


def open_storage(url: str | None = None, *, read_only: bool = False) -> Storage:
    """Open the storage at ``url`` (default: ``evoforge.db`` in the working directory).

    Args:
        url: SQLAlchemy URL or SQLite file path.
        read_only: see :class:`SQLStorage`.
    """
    return SQLStorage(url or DEFAULT_URL, read_only=read_only)
