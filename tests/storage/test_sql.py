"""SQL storage on real SQLite files, and on PostgreSQL when EVOFORGE_TEST_POSTGRES is set."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from evoforge.candidate import Status
from evoforge.storage import DEFAULT_URL, SQLStorage, StorageError, open_storage
from evoforge.storage.schema import metadata
from evoforge.storage.sql import alembic_config, normalize_url
from evoforge.testing.conformance_storage import postgres_schema

PG_URL = os.environ.get("EVOFORGE_TEST_POSTGRES")
needs_pg = pytest.mark.skipif(not PG_URL, reason="EVOFORGE_TEST_POSTGRES is not set")

BACKENDS = ["sqlite", pytest.param("postgresql", marks=needs_pg)]


# --- fixtures ---------------------------------------------------------------------


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "evoforge.db")
    assert PG_URL is not None
    return PG_URL


@pytest.fixture
def prefix(url: str) -> Iterator[str]:
    """A run-name prefix unique to this test; its runs are deleted afterwards."""
    value = f"test-sql-{uuid.uuid4().hex[:12]}-"
    yield value
    engine = sa.create_engine(normalize_url(url))
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM candidates WHERE run_id IN "
                                 "(SELECT id FROM runs WHERE name LIKE :p)"), {"p": value + "%"})
            conn.execute(sa.text("DELETE FROM runs WHERE name LIKE :p"), {"p": value + "%"})
    finally:
        engine.dispose()


@pytest.fixture
def storage(url: str, prefix: str) -> Iterator[SQLStorage]:
    s = SQLStorage(url)
    yield s
    s.close()


def new_run(storage: SQLStorage, prefix: str, suffix: str = "run", **kw: object) -> int:
    args: dict[str, object] = {"problem": "demo", "problem_path": "/tmp/demo",
                               "config": {"max_iterations": 5}, "seed": 1, "budget": 10}
    args.update(kw)
    return storage.create_run(name=prefix + suffix, **args).id  # type: ignore[arg-type]


def add(storage: SQLStorage, run_id: int, seq: int, *, code: str | None = None,
        code_hash: str | None = None, status: Status = Status.PENDING,
        operator: str = "mutate", **kw: object) -> int:
    return storage.add_candidate(
        run_id, seq=seq, island=seq % 2, parent_ids=[] if seq == 0 else [seq - 1],
        operator=operator, code=code or f"x = {seq}\n", code_hash=code_hash or f"h{seq}",
        status=status, **kw,  # type: ignore[arg-type]
    )


def add_ok(storage: SQLStorage, run_id: int, seq: int, fitness: float | None,
           **kw: object) -> int:
    cid = add(storage, run_id, seq, **kw)
    storage.finish_candidate(cid, status=Status.OK, score=fitness, fitness=fitness,
                             metrics={"combined_score": fitness})
    return cid


# --- SQLite specifics ---------------------------------------------------------------


def test_sqlite_wal_mode_and_foreign_keys(tmp_path: Path) -> None:
    s = SQLStorage(str(tmp_path / "wal.db"))
    try:
        with s.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    finally:
        s.close()


def test_normalize_url() -> None:
    assert normalize_url("runs/evo.db") == "sqlite:///runs/evo.db"
    assert normalize_url("/abs/evo.db") == "sqlite:////abs/evo.db"
    assert normalize_url("sqlite:///x.db") == "sqlite:///x.db"
    assert normalize_url("postgresql://u:p@h/db") == "postgresql+psycopg://u:p@h/db"
    assert normalize_url("postgresql+psycopg://u@h/db") == "postgresql+psycopg://u@h/db"


def test_open_storage_default_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    s = open_storage()
    try:
        assert s.list_runs() == []
    finally:
        s.close()
    assert DEFAULT_URL == "sqlite:///evoforge.db"
    assert (tmp_path / "evoforge.db").is_file()


def test_sqlite_data_survives_reopen(tmp_path: Path) -> None:
    path = str(tmp_path / "persist.db")
    s = SQLStorage(path)
    run_id = s.create_run(name="keep", problem="p", problem_path="/p", config={"a": [1, 2]},
                          seed=3, budget=7).id
    cid = add_ok(s, run_id, 0, 0.5, code="print('hi')\n")
    s.update_run(run_id, status="stopped", summary={"reason": "budget"})
    s.close()

    again = SQLStorage(path)
    try:
        run = again.get_run("keep")
        assert run is not None
        assert (run.id, run.status, run.summary, run.config) == (
            run_id, "stopped", {"reason": "budget"}, {"a": [1, 2]})
        c = again.get_candidate(cid)
        assert (c.status, c.fitness, c.code) == (Status.OK, 0.5, "print('hi')\n")
        assert again.next_seq(run_id) == 1
        assert [r.name for r in again.list_runs()] == ["keep"]
    finally:
        again.close()


def test_sqlite_exact_run_listing(tmp_path: Path) -> None:
    s = SQLStorage(str(tmp_path / "list.db"))
    try:
        assert s.latest_run() is None
        assert s.list_runs() == []
        for name in ("first", "second", "third"):
            s.create_run(name=name, problem="p", problem_path="/p", config={}, seed=0, budget=1)
        assert [r.name for r in s.list_runs()] == ["first", "second", "third"]
        latest = s.latest_run()
        assert latest is not None and latest.name == "third"
    finally:
        s.close()


# --- migrations, on every backend (the Storage contract: test_conformance.py) --------


def test_migration_is_idempotent(url: str) -> None:
    head = ScriptDirectory.from_config(alembic_config(normalize_url(url))).get_current_head()
    assert head is not None
    for _ in range(2):
        s = SQLStorage(url)
        with s.engine.connect() as conn:
            versions = conn.execute(sa.text("SELECT version_num FROM alembic_version")).all()
        s.close()
        assert versions == [(head,)]


# --- the migration matches schema.py ------------------------------------------------


def schema_differences(engine: sa.Engine) -> list[object]:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True,
                                                         "compare_server_default": True})
        return list(compare_metadata(context, metadata))


def test_sqlite_migration_matches_schema(tmp_path: Path) -> None:
    s = SQLStorage(str(tmp_path / "schema.db"))
    try:
        assert schema_differences(s.engine) == []
        tables = set(sa.inspect(s.engine).get_table_names())
        assert tables == {"runs", "candidates", "programs", "leases", "alembic_version"}
        # the comparison is not vacuous: a missing index shows up
        with s.engine.begin() as conn:
            conn.exec_driver_sql("DROP INDEX ix_candidates_run_fitness")
        diffs = schema_differences(s.engine)
        assert len(diffs) == 1
        assert diffs[0][0] == "add_index"  # type: ignore[index]
        assert diffs[0][1].name == "ix_candidates_run_fitness"  # type: ignore[index]
    finally:
        s.close()


@needs_pg
def test_postgres_migration_matches_schema() -> None:
    """Migrate a fresh schema (not the shared public one) and compare it with schema.py."""
    assert PG_URL is not None
    schema = f"evoforge_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(normalize_url(PG_URL))
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        sep = "&" if "?" in PG_URL else "?"
        url = f"{PG_URL}{sep}options={quote(f'-csearch_path={schema}')}"
        s = SQLStorage(url)
        try:
            inspector = sa.inspect(s.engine)
            assert inspector.default_schema_name == schema
            assert set(inspector.get_table_names()) == {"runs", "candidates", "programs", "leases",
                                                        "alembic_version"}
            assert schema_differences(s.engine) == []
            run = s.create_run(name="only", problem="p", problem_path="/p", config={}, seed=0,
                               budget=1)
            assert [r.id for r in s.list_runs()] == [run.id]
        finally:
            s.close()
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


# --- URLs that cannot be opened ------------------------------------------------------


@pytest.mark.parametrize(
    "template",
    [
        "{tmp}/no/such/dir/evo.db",
        "{tmp}",  # a directory
        "sqlite:///{tmp}/missing-dir/evo.db",
        "nosuchdialect://host/db",
        "mysql://user@localhost/db",  # driver not installed
        "postgresql://evoforge:x@127.0.0.1:1/nothing",  # nothing listens on port 1
    ],
    ids=["missing-dir", "directory", "sqlite-url-missing-dir", "unknown-dialect",
         "missing-driver", "connection-refused"],
)
def test_unusable_url_raises_storage_error(tmp_path: Path, template: str) -> None:
    url = template.format(tmp=tmp_path)
    with pytest.raises(StorageError) as info:
        SQLStorage(url)
    message = str(info.value)
    assert message.startswith("cannot ")
    assert url.split("@")[-1] in message
    assert "Traceback" not in message
    assert len(message) < 500


@needs_pg
def test_postgres_wrong_password_raises_storage_error() -> None:
    assert PG_URL is not None
    url = sa.make_url(PG_URL).set(password="definitely-wrong").render_as_string(
        hide_password=False)
    with pytest.raises(StorageError, match="authentication failed"):
        SQLStorage(url)


def test_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("these are my notes, not a database\n" * 200)
    with pytest.raises(StorageError):
        SQLStorage(str(path))


def test_error_message_hides_password() -> None:
    with pytest.raises(StorageError) as info:
        SQLStorage("postgresql://evoforge:s3cret-pw@127.0.0.1:1/nothing")
    assert "s3cret-pw" not in str(info.value)


def test_add_candidate_for_missing_run(storage: SQLStorage) -> None:
    with pytest.raises(StorageError):
        add(storage, 2_000_000_000, 0)


def test_finish_missing_candidate(storage: SQLStorage) -> None:
    with pytest.raises(StorageError):
        storage.finish_candidate(2_000_000_000, status=Status.OK, fitness=1.0)


# --- upgrading a database written before programs and shared runs -------------------


@pytest.fixture(params=BACKENDS)
def old_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A never-opened database: a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield str(tmp_path / "old.db")
        return
    assert PG_URL is not None
    with postgres_schema(PG_URL) as url:
        yield url


def test_upgrade_from_0003_moves_code_into_programs(old_url: str) -> None:
    """A 0003 database with candidates: after the upgrade every text, count and counter holds."""
    url = normalize_url(old_url)
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        cfg = alembic_config(url)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0003")
        conn.execute(sa.text(
            "INSERT INTO runs (id, name, problem, problem_path, config, seed, budget, status,"
            " created_at, updated_at, elapsed_seconds) VALUES"
            " (1, 'old', 'p', '/p', '{}', 0, 10, 'stopped', 0, 0, 0)"))
        texts = ["a = 1\n", "b = 2\n", "a = 1\n", "c = 3\n", "ünï = 4\n"]
        statuses = ["ok", "failed", "duplicate", "pending", "ok"]
        for seq, (text, status) in enumerate(zip(texts, statuses, strict=True)):
            conn.execute(sa.text(
                "INSERT INTO candidates (run_id, seq, island, parent_ids, operator, code,"
                " code_hash, status, fitness, created_at) VALUES"
                " (1, :seq, 0, '[]', 'm', :code, :h, :status, :fit, 0)"),
                {"seq": seq, "code": text, "h": f"h{text}", "status": status,
                 "fit": float(seq) if status == "ok" else None})
    engine.dispose()
    s = SQLStorage(old_url)
    try:
        cands = list(s.iter_candidates(1))
        assert [c.code for c in cands] == texts
        assert [str(c.status) for c in cands] == statuses
        with s.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT COUNT(*) FROM programs")).scalar() == 4
        assert s.claimed_evaluations(1) == 4  # ok, failed, pending, ok
        assert s.claim_seq(1) == 5
        synced = s.candidates_since(1).candidates
        assert [c.seq for c in synced] == [0, 1, 2, 4]  # the pending one is not finished
        assert [c.id for c in s.claim_orphans(1, "new-owner")] == [cands[3].id]
        assert [c.seq for c in s.elites(1, 5)] == [4, 0]
    finally:
        s.close()


def test_import_candidates_keeps_counters(tmp_path: Path) -> None:
    s = SQLStorage(str(tmp_path / "import.db"))
    try:
        run_id = new_run(s, "imp-")
        rows = [{"seq": seq, "island": 0, "parent_ids": [], "operator": "m",
                 "code": f"v = {seq % 3}\n", "code_hash": f"h{seq % 3}",
                 "status": Status.OK if seq < 3 else Status.DUPLICATE,
                 "fitness": float(seq) if seq < 3 else None} for seq in range(6)]
        rows.append({"seq": 6, "island": 0, "parent_ids": [], "operator": "m",
                     "code": "w = 1\n", "code_hash": "hw", "status": Status.PENDING})
        s.import_candidates(run_id, rows)
        assert [c.code for c in s.iter_candidates(run_id)] == [r["code"] for r in rows]
        with s.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT COUNT(*) FROM programs")).scalar() == 4
        assert s.claimed_evaluations(run_id) == 4
        assert s.claim_seq(run_id) == 7
        assert len(s.candidates_since(run_id).candidates) == 6
        assert s.find_code_hash(run_id, "h1") is not None
        got = s.add_proposal(run_id, owner="o", budget=4, island=0, parent_ids=[],
                             operator="m", code="new = 1\n", code_hash="hnew")
        assert got is None  # the imported claims count against the budget
    finally:
        s.close()


def _locked_at_first(monkeypatch: pytest.MonkeyPatch, times: int, message: str) -> list[int]:
    """Make the first ``times`` schema migrations fail as SQLite does when it answers at
    once that the database is locked (the real migration runs afterwards)."""
    import sqlite3

    from evoforge.storage import engine as engine_mod

    real = engine_mod._migrate
    calls: list[int] = []

    def migrate(engine: sa.Engine, url: str) -> None:
        calls.append(1)
        if len(calls) <= times:
            raise sa.exc.OperationalError("PRAGMA journal_mode", {},
                                          sqlite3.OperationalError(message))
        real(engine, url)

    monkeypatch.setattr(engine_mod, "_migrate", migrate)
    return calls


def test_sqlite_open_tries_again_when_locked(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    # many processes opening a new file together met an immediate "database is locked"
    calls = _locked_at_first(monkeypatch, 2, "database is locked")
    storage = open_storage(str(tmp_path / "new.db"))
    try:
        storage.create_run(name="r", problem="p", problem_path="/p", config={}, seed=0, budget=1)
        assert [r.name for r in storage.list_runs()] == ["r"]
    finally:
        storage.close()
    assert len(calls) == 3


def test_sqlite_open_gives_up_and_other_errors_are_not_retried(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from evoforge.storage import engine as engine_mod

    monkeypatch.setattr(engine_mod, "OPEN_ATTEMPTS", 3)
    calls = _locked_at_first(monkeypatch, 99, "database is locked")
    with pytest.raises(StorageError, match="database is locked"):
        open_storage(str(tmp_path / "a.db"))
    assert len(calls) == 3
    calls = _locked_at_first(monkeypatch, 99, "disk I/O error")
    with pytest.raises(StorageError, match="disk I/O error"):
        open_storage(str(tmp_path / "b.db"))
    assert len(calls) == 1
