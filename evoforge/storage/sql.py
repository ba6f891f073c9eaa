"""SQLAlchemy storage: SQLite (default, WAL mode) and PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy.engine import Engine

from evoforge.candidate import Candidate, Status
from evoforge.storage.base import RunRecord, Storage, StorageError
from evoforge.storage.schema import candidates, runs

DEFAULT_URL = "sqlite:///evoforge.db"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"

_RUN_FIELDS = {"status", "budget", "elapsed_seconds", "proposer_stats", "summary", "config"}


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
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


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

    def _migrate(self) -> None:
        cfg = alembic_config(self.url)
        with self.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

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
            code=m["code"], code_hash=m["code_hash"], status=Status(m["status"]),
            score=m["score"], fitness=m["fitness"], metrics=m["metrics"] or {},
            features=m["features"] or {}, artifacts=m["artifacts"] or {},
            error=m["error"], duplicate_of=m["duplicate_of"],
            eval_seconds=m["eval_seconds"], functional_hash=m["functional_hash"],
            stages=m["stages"], model=m["model"], cost=m["cost"],
        )

    def add_candidate(self, run_id: int, *, seq: int, island: int, parent_ids: list[int],
                      operator: str, code: str, code_hash: str, status: Status,
                      seed: int | None = None, duplicate_of: int | None = None,
                      error: str | None = None, model: str | None = None,
                      prompt_tokens: int = 0, completion_tokens: int = 0,
                      cost: float | None = None) -> int:
        now = time.time()
        finished = None if status == Status.PENDING else now
        try:
            with self.engine.begin() as conn:
                result = conn.execute(candidates.insert().values(
                    run_id=run_id, seq=seq, island=island, parent_ids=list(parent_ids),
                    operator=operator, code=code, code_hash=code_hash, status=str(status),
                    seed=seed, duplicate_of=duplicate_of, error=error, created_at=now,
                    finished_at=finished, model=model, prompt_tokens=prompt_tokens or None,
                    completion_tokens=completion_tokens or None, cost=cost,
                ))
                key = result.inserted_primary_key
        except sa.exc.IntegrityError as exc:
            raise StorageError(
                f"cannot store candidate {seq} of run {run_id}: {_one_line(exc.orig)}"
            ) from None
        assert key is not None
        return int(key[0])

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
        with self.engine.begin() as conn:
            result = conn.execute(
                candidates.update().where(candidates.c.id == candidate_id).values(
                    status=str(status), score=score, fitness=fitness, metrics=metrics,
                    features=features, artifacts=artifacts, error=error,
                    eval_seconds=eval_seconds, finished_at=time.time(),
                    functional_hash=functional_hash, stages=stages,
                    duplicate_of=duplicate_of,
                ))
            if result.rowcount == 0:
                raise StorageError(f"no candidate with id {candidate_id}")

    def get_candidate(self, candidate_id: int) -> Candidate:
        with self.engine.connect() as conn:
            row = conn.execute(candidates.select().where(candidates.c.id == candidate_id)).first()
        if row is None:
            raise StorageError(f"no candidate with id {candidate_id}")
        return self._candidate(row)

    def iter_candidates(self, run_id: int,
                        statuses: tuple[Status, ...] | None = None) -> Iterator[Candidate]:
        query = candidates.select().where(candidates.c.run_id == run_id)
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
        query = (candidates.select()
                 .where(candidates.c.run_id == run_id, candidates.c.status == str(Status.OK),
                        candidates.c.fitness.is_not(None))
                 .order_by(candidates.c.fitness.desc(), candidates.c.id).limit(1))
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return self._candidate(row) if row is not None else None

    def close(self) -> None:
        self.engine.dispose()


def open_storage(url: str | None = None, *, read_only: bool = False) -> Storage:
    """Open the storage at ``url`` (default: ``evoforge.db`` in the working directory).

    Args:
        url: SQLAlchemy URL or SQLite file path.
        read_only: see :class:`SQLStorage`.
    """
    return SQLStorage(url or DEFAULT_URL, read_only=read_only)
