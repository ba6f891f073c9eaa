"""The shipped Storage conformance suite, run over SQLite files and PostgreSQL."""

from __future__ import annotations

import os

import pytest

from evoforge.testing.conformance_storage import StorageConformance

needs_pg = pytest.mark.skipif(not os.environ.get("EVOFORGE_TEST_POSTGRES"),
                              reason="EVOFORGE_TEST_POSTGRES is not set")


class TestSQLiteStorage(StorageConformance):
    @pytest.fixture
    def storage_url(self, sqlite_shared_url: str) -> str:
        return sqlite_shared_url

    @pytest.fixture
    def fresh_url(self, sqlite_fresh_url: str) -> str:
        return sqlite_fresh_url


@needs_pg
class TestPostgresStorage(StorageConformance):
    @pytest.fixture
    def storage_url(self, pg_shared_url: str) -> str:
        return pg_shared_url

    @pytest.fixture
    def fresh_url(self, pg_fresh_url: str) -> str:
        return pg_fresh_url
