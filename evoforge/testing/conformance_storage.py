"""Conformance tests for :class:`~evoforge.storage.base.Storage` implementations.

Subclass :class:`StorageConformance` in a test module and provide two fixtures:
``storage_url`` (a location tests may share; every test uses its own run names) and
``fresh_url`` (a location never opened before, for the concurrent-start test). The
storage is opened from a URL with the callable named by :attr:`StorageConformance.opener`
(``"module:function"``), in the test process and in the real worker processes the
multi-process tests start, so a plug-in storage is tested exactly as evoforge uses it::

    class TestMyStorage(StorageConformance):
        opener = "my_plugin:open_my_storage"

        @pytest.fixture
        def storage_url(self, tmp_path): return f"my://{tmp_path}/db"

        @pytest.fixture
        def fresh_url(self, tmp_path): return f"my://{tmp_path}/fresh"

:func:`postgres_schema` gives PostgreSQL URLs for both: a fresh schema, dropped after.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from urllib.parse import quote

from evoforge.testing.conformance_storage_base import PROCESS_TIMEOUT, load_opener
from evoforge.testing.conformance_storage_multi import MultiProcessContract
from evoforge.testing.conformance_storage_single import SingleProcessContract

__all__ = ["PROCESS_TIMEOUT", "StorageConformance", "load_opener", "postgres_schema"]


@contextlib.contextmanager
def postgres_schema(base_url: str) -> Iterator[str]:
    """A URL of ``base_url``'s database with a fresh, empty schema first on the search path.

    The schema is dropped afterwards, so tests never touch (or migrate) the shared
    ``public`` schema other users of the database rely on.
    """
    import sqlalchemy as sa

    from evoforge.storage.sql import normalize_url

    schema = f"evoforge_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(normalize_url(base_url))
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        sep = "&" if "?" in base_url else "?"
        yield f"{base_url}{sep}options={quote(f'-csearch_path={schema}')}"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


class StorageConformance(SingleProcessContract, MultiProcessContract):
    """The :class:`~evoforge.storage.base.Storage` contract, as tests to subclass.

    The single-process tests are in
    :mod:`~evoforge.testing.conformance_storage_single`, those with worker processes in
    :mod:`~evoforge.testing.conformance_storage_multi`.

    Attributes:
        opener: ``"module:function"`` that opens a storage from a URL.
        processes: worker processes of the multi-process tests.
    """
