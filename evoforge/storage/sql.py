"""SQLAlchemy storage: SQLite (default, WAL mode) and PostgreSQL.

:class:`SQLStorage` is composed of one mixin per group of ``Storage`` methods: runs and
their totals (:mod:`~evoforge.storage.sql_runs`), candidates and program texts
(:mod:`~evoforge.storage.sql_candidates`), and many processes sharing one run
(:mod:`~evoforge.storage.sql_shared`), over the helpers of
:mod:`~evoforge.storage.sql_base`. URLs, engines and migrations are in
:mod:`~evoforge.storage.engine`; their public names are importable from here too.
"""

from __future__ import annotations

from evoforge.storage.base import Storage
from evoforge.storage.engine import (
    DEFAULT_URL,
    MIGRATIONS,
    alembic_config,
    normalize_url,
    open_engine,
    safe_url,
)
from evoforge.storage.sql_base import program_sha
from evoforge.storage.sql_candidates import CandidateStore
from evoforge.storage.sql_runs import RunStore
from evoforge.storage.sql_shared import SharedRunStore

__all__ = ["DEFAULT_URL", "MIGRATIONS", "SQLStorage", "alembic_config", "normalize_url",
           "open_storage", "program_sha", "safe_url"]


class SQLStorage(RunStore, CandidateStore, SharedRunStore):
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
        self.engine = open_engine(url, read_only=read_only)

    def close(self) -> None:
        self.engine.dispose()


def open_storage(url: str | None = None, *, read_only: bool = False) -> Storage:
    """Open the storage at ``url`` (default: ``evoforge.db`` in the working directory).

    Args:
        url: SQLAlchemy URL or SQLite file path.
        read_only: see :class:`SQLStorage`.
    """
    return SQLStorage(url or DEFAULT_URL, read_only=read_only)
