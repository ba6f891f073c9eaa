"""Read-only opening of a storage (the dashboard's and the report's): no write, no migration."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command

from evoforge.candidate import Status
from evoforge.storage import SQLStorage, StorageError, open_storage
from evoforge.storage.sql import alembic_config


def test_read_only_reads_and_refuses_writes(tmp_path: Path) -> None:
    path = tmp_path / "ro.db"
    writer = SQLStorage(str(path))
    run = writer.create_run(name="r", problem="p", problem_path="/p", config={}, seed=1,
                            budget=3)
    cid = writer.add_candidate(run.id, seq=0, island=0, parent_ids=[], operator="initial",
                               code="x = 1\n", code_hash="h", status=Status.OK)
    reader = open_storage(str(path), read_only=True)
    assert reader.get_candidate(cid).code == "x = 1\n"
    with pytest.raises(Exception, match="readonly"):
        reader.update_run(run.id, status="tampered")
    # the reader sees the writer's later writes (the live dashboard depends on it)
    writer.finish_candidate(cid, status=Status.OK, score=2.0, fitness=2.0)
    assert reader.get_candidate(cid).score == 2.0
    reader.close()
    writer.close()


def test_read_only_needs_an_existing_current_database(tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"
    with pytest.raises(StorageError, match="no SQLite database at"):
        open_storage(str(missing), read_only=True)
    assert not missing.exists()
    old = tmp_path / "old.db"
    SQLStorage(str(old)).close()
    url = f"sqlite:///{old}"
    command.downgrade(alembic_config(url), "-1")
    with pytest.raises(StorageError, match="older schema"):
        open_storage(str(old), read_only=True)
    SQLStorage(str(old)).close()  # a normal opening upgrades it again
    open_storage(str(old), read_only=True).close()
