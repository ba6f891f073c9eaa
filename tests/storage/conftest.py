"""Storage locations for the storage tests: SQLite files and fresh PostgreSQL schemas."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from evoforge.testing.conformance_storage import postgres_schema

PG_URL = os.environ.get("EVOFORGE_TEST_POSTGRES")


@pytest.fixture(scope="session")
def pg_shared_url() -> Iterator[str]:
    """One fresh schema for the session's PostgreSQL tests (never the shared public one)."""
    if not PG_URL:
        pytest.skip("EVOFORGE_TEST_POSTGRES is not set")
    with postgres_schema(PG_URL) as url:
        yield url


@pytest.fixture
def pg_fresh_url() -> Iterator[str]:
    """A fresh, never-opened schema for one test."""
    if not PG_URL:
        pytest.skip("EVOFORGE_TEST_POSTGRES is not set")
    with postgres_schema(PG_URL) as url:
        yield url


@pytest.fixture(scope="session")
def sqlite_shared_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("storage") / "shared.db")


@pytest.fixture
def sqlite_fresh_url(tmp_path: Path) -> str:
    return str(tmp_path / "fresh.db")
