"""Storage URLs, SQLAlchemy engines and the schema's migrations (SQLite and PostgreSQL).

:func:`open_engine` is the whole of opening a storage below the ``Storage`` methods: it
turns a URL into an engine with the dialect's connection settings, then brings the schema
to the latest Alembic migration (once, whatever the number of processes opening it at
the same instant) or, read-only, checks it is there already.
"""

from __future__ import annotations

import contextlib
import fcntl
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy.engine import Engine

from evoforge.storage.base import StorageError

DEFAULT_URL = "sqlite:///evoforge.db"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"

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


def one_line(exc: BaseException | None) -> str:
    """The first line of ``exc``'s message (its type's name when it has none)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


OPEN_ATTEMPTS = 8
"""Tries to open a SQLite storage that answers "database is locked" (about 6 s in all)."""


def alembic_config(url: str) -> AlembicConfig:
    """An Alembic config pointing at evoforge's migrations and ``url``."""
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # the busy timeout first: switching a new file to WAL needs a lock another
    # process opening it at the same instant may hold
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_read_only_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # no journal_mode change (that is a write); query_only makes SQLite refuse any write
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA query_only=ON")
    cursor.close()


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive ``fcntl`` lock on ``path`` (created if needed) for the block."""
    with open(path, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _revisions(engine: Engine, url: str) -> tuple[str | None, str | None]:
    """The schema's current migration (None in an empty database) and the latest one."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision(), head


def _check_schema(engine: Engine, url: str, shown: str) -> None:
    """Read-only opening: the schema must already be at the latest migration."""
    current, head = _revisions(engine, url)
    if current is None:
        raise StorageError(f"{shown} holds no evoforge runs")
    if current != head:
        raise StorageError(f"{shown} has an older schema ({current}, latest {head}); "
                           "open it once with 'evoforge status' to upgrade it")


def _migrate(engine: Engine, url: str) -> None:
    """Create or upgrade the schema, once, whatever the number of processes opening it.

    PostgreSQL: a transaction-scoped advisory lock serializes the upgrades, and the
    second process finds the schema at head. SQLite: an ``fcntl`` lock on the
    sidecar file ``<database>.lock`` does the same (SQLite's own locks do not
    cover Alembic's read-then-create).
    """
    current, head = _revisions(engine, url)  # a cheap read: usually at head already
    if current == head:
        return
    database = engine.url.database
    lock: contextlib.AbstractContextManager[None] = contextlib.nullcontext()
    if engine.dialect.name == "sqlite" and database not in (None, "", ":memory:"):
        lock = _file_lock(Path(f"{database}.lock"))
    cfg = alembic_config(url)
    with lock, engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"),
                         {"k": _PG_MIGRATION_LOCK})
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def open_engine(url: str, *, read_only: bool = False) -> Engine:
    """An engine on ``url`` whose schema is at the latest migration.

    Args:
        url: SQLAlchemy URL or a SQLite file path.
        read_only: no migration, and the database refuses writes (SQLite
            ``query_only``, PostgreSQL read-only transactions); the schema must be at the
            latest migration already.

    Raises:
        StorageError: the URL cannot be used, the database cannot be reached, or
            (read-only) it holds no schema or an older one.
    """
    full = normalize_url(url)
    shown = safe_url(url)
    try:
        engine = sa.create_engine(full, future=True)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError) as exc:
        raise StorageError(f"cannot use storage URL {shown}: {one_line(exc)}") from None
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect",
                        _sqlite_read_only_pragmas if read_only else _sqlite_pragmas)
        database = engine.url.database
        if read_only and database not in (None, "", ":memory:") \
                and not Path(database).is_file():
            raise StorageError(f"no SQLite database at {database}")
    elif read_only and engine.dialect.name == "postgresql":
        engine = engine.execution_options(postgresql_readonly=True)
    for attempt in range(OPEN_ATTEMPTS):
        try:
            if read_only:
                _check_schema(engine, full, shown)
            else:
                _migrate(engine, full)
            return engine
        except sa.exc.DBAPIError as exc:
            # SQLite answers "database is locked" at once, without its busy timeout,
            # where waiting could deadlock; many processes opening a new file together
            # met it in CI. The schema check and migration are safe to run again.
            locked = (engine.dialect.name == "sqlite"
                      and isinstance(exc, sa.exc.OperationalError)
                      and "locked" in str(exc.orig))
            if not locked or attempt == OPEN_ATTEMPTS - 1:
                raise StorageError(f"cannot open storage {shown}: {one_line(exc.orig)}") \
                    from None
        time.sleep(0.05 * 2 ** attempt)
    raise AssertionError("unreachable")  # pragma: no cover
