"""SQL storage on real SQLite files, and on PostgreSQL when EVOFORGE_TEST_POSTGRES is set."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from evoforge.candidate import Status
from evoforge.storage import DEFAULT_URL, SQLStorage, StorageError, open_storage
from evoforge.storage.schema import metadata
from evoforge.storage.sql import alembic_config, normalize_url

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


# --- the Storage contract, on every backend ---------------------------------------


def test_create_and_get_run(storage: SQLStorage, prefix: str) -> None:
    config = {"max_iterations": 5, "objective": {"metric": "t", "direction": "minimize"},
              "text": "naïve ünïcode", "nested": [1, 2.5, None, True]}
    run = storage.create_run(name=prefix + "a", problem="demo", problem_path="/tmp/demo",
                             config=config, seed=123, budget=50)
    assert run.name == prefix + "a"
    assert (run.problem, run.problem_path, run.config) == ("demo", "/tmp/demo", config)
    assert (run.seed, run.budget, run.status) == (123, 50, "created")
    assert run.elapsed_seconds == 0.0
    assert run.proposer_stats is None and run.summary is None
    assert run.created_at == run.updated_at > 0
    assert storage.get_run(prefix + "a") == run
    assert storage.get_run(prefix + "missing") is None


def test_latest_and_list_runs(storage: SQLStorage, prefix: str) -> None:
    ids = [new_run(storage, prefix, name) for name in ("r1", "r2", "r3")]
    assert ids == sorted(ids)
    mine = [r for r in storage.list_runs() if r.name.startswith(prefix)]
    assert [r.name for r in mine] == [prefix + "r1", prefix + "r2", prefix + "r3"]
    all_ids = [r.id for r in storage.list_runs()]
    assert all_ids == sorted(all_ids)  # oldest first
    latest = storage.latest_run()
    assert latest is not None
    # the database may be shared with other writers: the latest is ours or newer
    assert latest.id >= ids[-1]


def test_duplicate_run_name(storage: SQLStorage, prefix: str) -> None:
    new_run(storage, prefix, "dup")
    with pytest.raises(StorageError, match="exists already") as info:
        new_run(storage, prefix, "dup")
    assert prefix + "dup" in str(info.value)
    # the storage is still usable after the failed insert
    new_run(storage, prefix, "other")
    assert storage.get_run(prefix + "other") is not None


def test_update_run(storage: SQLStorage, prefix: str) -> None:
    run_id = new_run(storage, prefix)
    before = storage.get_run(prefix + "run")
    assert before is not None
    storage.update_run(run_id, status="running", budget=99, elapsed_seconds=12.5,
                       proposer_stats={"arms": {"swap": [3, 1]}}, summary={"best": 1.0})
    after = storage.get_run(prefix + "run")
    assert after is not None
    assert (after.status, after.budget, after.elapsed_seconds) == ("running", 99, 12.5)
    assert after.proposer_stats == {"arms": {"swap": [3, 1]}}
    assert after.summary == {"best": 1.0}
    assert after.updated_at >= before.updated_at
    assert after.created_at == before.created_at
    with pytest.raises(StorageError, match="name"):
        storage.update_run(run_id, name="renamed")


def test_add_and_finish_candidate(storage: SQLStorage, prefix: str) -> None:
    run_id = new_run(storage, prefix)
    code = "def f(x):\n    return x * 2  # ünïcode\n"
    cid = storage.add_candidate(run_id, seq=0, island=2, parent_ids=[], operator="initial",
                                code=code, code_hash="abc", status=Status.PENDING, seed=2**40)
    c = storage.get_candidate(cid)
    assert (c.id, c.seq, c.island, c.parent_ids, c.operator) == (cid, 0, 2, (), "initial")
    assert (c.code, c.code_hash, c.status) == (code, "abc", Status.PENDING)
    assert c.score is None and c.fitness is None and c.eval_seconds is None
    assert c.metrics == {} and c.features == {} and c.artifacts == {}

    storage.finish_candidate(cid, status=Status.OK, score=-0.1 - 0.2, fitness=0.30000000000000004,
                             metrics={"combined_score": -0.30000000000000004, "n": 3},
                             features={"code_size": 1.5},
                             artifacts={"stdout": "hello\n", "list": [1, "a"]},
                             eval_seconds=0.25)
    c = storage.get_candidate(cid)
    assert c.status == Status.OK
    assert isinstance(c.status, Status)
    assert c.score == -0.1 - 0.2
    assert c.fitness == 0.30000000000000004
    assert c.metrics == {"combined_score": -0.30000000000000004, "n": 3}
    assert c.features == {"code_size": 1.5}
    assert c.artifacts == {"stdout": "hello\n", "list": [1, "a"]}
    assert c.eval_seconds == 0.25
    assert c.error is None

    child = storage.add_candidate(run_id, seq=1, island=0, parent_ids=[cid, cid],
                                  operator="crossover", code="x = 1\n", code_hash="def",
                                  status=Status.PENDING)
    storage.finish_candidate(child, status=Status.FAILED, error="ZeroDivisionError: boom",
                             artifacts={"traceback": "..."})
    c = storage.get_candidate(child)
    assert c.parent_ids == (cid, cid)
    assert (c.status, c.error, c.fitness) == (Status.FAILED, "ZeroDivisionError: boom", None)
    assert child > cid


def test_add_finished_candidate_directly(storage: SQLStorage, prefix: str) -> None:
    run_id = new_run(storage, prefix)
    first = add(storage, run_id, 0, code_hash="same")
    dup = add(storage, run_id, 1, code_hash="same", status=Status.DUPLICATE, duplicate_of=first)
    c = storage.get_candidate(dup)
    assert (c.status, c.duplicate_of) == (Status.DUPLICATE, first)


def test_get_missing_candidate(storage: SQLStorage) -> None:
    with pytest.raises(StorageError, match="no candidate"):
        storage.get_candidate(2_000_000_000)


def test_counts_and_operator_counts(storage: SQLStorage, prefix: str) -> None:
    run_id = new_run(storage, prefix)
    other = new_run(storage, prefix, "other")
    assert storage.counts(run_id) == {}
    assert storage.operator_counts(run_id) == {}
    add_ok(storage, run_id, 0, 1.0, operator="initial")
    add_ok(storage, run_id, 1, 2.0, operator="swap")
    failed = add(storage, run_id, 2, operator="swap")
    storage.finish_candidate(failed, status=Status.FAILED, error="x")
    timeout = add(storage, run_id, 3, operator="tweak")
    storage.finish_candidate(timeout, status=Status.TIMEOUT, error="timed out")
    add(storage, run_id, 4, operator="tweak", status=Status.DUPLICATE)
    add(storage, run_id, 5, operator="tweak")  # still pending
    add_ok(storage, other, 0, 5.0, operator="swap")  # another run: not counted

    assert storage.counts(run_id) == {"ok": 2, "failed": 1, "timeout": 1, "duplicate": 1,
                                      "pending": 1}
    assert storage.operator_counts(run_id) == {
        "initial": {"ok": 1},
        "swap": {"ok": 1, "failed": 1},
        "tweak": {"timeout": 1, "duplicate": 1, "pending": 1},
    }
    assert storage.counts(other) == {"ok": 1}


def test_best(storage: SQLStorage, prefix: str) -> None:
    run_id = new_run(storage, prefix)
    assert storage.best(run_id) is None
    pending = add(storage, run_id, 0)
    assert storage.best(run_id) is None
    failed = add(storage, run_id, 1)
    # non-ok candidates never win, even with a (stray) higher fitness
    storage.finish_candidate(failed, status=Status.FAILED, fitness=1e9, error="x")
    timeout = add(storage, run_id, 2)
    storage.finish_candidate(timeout, status=Status.TIMEOUT, fitness=1e8, error="t")
    add(storage, run_id, 3, status=Status.DUPLICATE)
    assert storage.best(run_id) is None
    add_ok(storage, run_id, 4, None)  # ok without fitness: ignored
    low = add_ok(storage, run_id, 5, -3.0)
    best = storage.best(run_id)
    assert best is not None and best.id == low
    first_top = add_ok(storage, run_id, 6, 2.5)
    add_ok(storage, run_id, 7, 2.5)  # tie: the earlier one stays best
    add_ok(storage, run_id, 8, 1.0)
    best = storage.best(run_id)
    assert best is not None
    assert best.id == first_top
    assert best.fitness == 2.5
    assert pending not in (best.id,)
    # other runs are not considered
    other = new_run(storage, prefix, "other")
    add_ok(storage, other, 0, 100.0)
    again = storage.best(run_id)
    assert again is not None and again.id == first_top


def test_code_hashes(storage: SQLStorage, prefix: str) -> None:
    run_id = new_run(storage, prefix)
    assert storage.code_hashes(run_id) == {}
    a = add(storage, run_id, 0, code_hash="aaa")
    b = add_ok(storage, run_id, 1, 1.0, code_hash="bbb")
    add(storage, run_id, 2, code_hash="aaa", status=Status.DUPLICATE, duplicate_of=a)
    add(storage, run_id, 3, code_hash="ccc", status=Status.DUPLICATE, duplicate_of=a)
    failed = add(storage, run_id, 4, code_hash="ddd")
    storage.finish_candidate(failed, status=Status.FAILED, error="x")
    assert storage.code_hashes(run_id) == {"aaa": a, "bbb": b, "ddd": failed}
    other = new_run(storage, prefix, "other")
    assert storage.code_hashes(other) == {}


def test_next_seq(storage: SQLStorage, prefix: str) -> None:
    run_id = new_run(storage, prefix)
    other = new_run(storage, prefix, "other")
    assert storage.next_seq(run_id) == 0
    add(storage, run_id, 0)
    assert storage.next_seq(run_id) == 1
    add(storage, run_id, 5)
    add(storage, run_id, 2)
    assert storage.next_seq(run_id) == 6
    assert storage.next_seq(other) == 0


def test_run_seq_unique(storage: SQLStorage, prefix: str) -> None:
    run_id = new_run(storage, prefix)
    other = new_run(storage, prefix, "other")
    first = add(storage, run_id, 3)
    with pytest.raises((StorageError, sa.exc.IntegrityError)):
        add(storage, run_id, 3, code="y = 2\n")
    # the same seq in another run is fine, and the storage still works
    add(storage, other, 3)
    assert [c.id for c in storage.iter_candidates(run_id)] == [first]
    assert storage.get_candidate(first).code == "x = 3\n"


def test_ids_increase(storage: SQLStorage, prefix: str) -> None:
    run_id = new_run(storage, prefix)
    ids = [add(storage, run_id, seq) for seq in range(5)]
    assert ids == sorted(ids) and len(set(ids)) == 5


def test_iter_candidates_order_and_filter(storage: SQLStorage, prefix: str) -> None:
    run_id = new_run(storage, prefix)
    other = new_run(storage, prefix, "other")
    for seq in (2, 0, 3, 1):  # inserted out of order
        cid = add(storage, run_id, seq)
        if seq in (0, 3):
            storage.finish_candidate(cid, status=Status.OK, fitness=float(seq))
        elif seq == 1:
            storage.finish_candidate(cid, status=Status.FAILED, error="x")
    add(storage, other, 0)
    assert [c.seq for c in storage.iter_candidates(run_id)] == [0, 1, 2, 3]
    assert [c.seq for c in storage.iter_candidates(run_id, (Status.OK,))] == [0, 3]
    assert [c.seq for c in storage.iter_candidates(run_id, (Status.OK, Status.FAILED))] == [
        0, 1, 3]
    assert [c.seq for c in storage.iter_candidates(run_id, (Status.PENDING,))] == [2]
    assert list(storage.iter_candidates(run_id, (Status.TIMEOUT,))) == []
    assert [c.seq for c in storage.iter_candidates(run_id, ())] == [0, 1, 2, 3]
    assert list(storage.iter_candidates(2_000_000_000)) == []


def test_data_survives_close_and_reopen(url: str, prefix: str) -> None:
    s = SQLStorage(url)
    run_id = new_run(s, prefix, config={"k": "v"})
    cid = add_ok(s, run_id, 0, 4.25)
    s.close()
    again = SQLStorage(url)
    try:
        run = again.get_run(prefix + "run")
        assert run is not None and run.id == run_id and run.config == {"k": "v"}
        best = again.best(run_id)
        assert best is not None and (best.id, best.fitness) == (cid, 4.25)
    finally:
        again.close()


def test_writes_visible_to_a_second_storage(url: str, prefix: str) -> None:
    writer, reader = SQLStorage(url), SQLStorage(url)
    try:
        run_id = new_run(writer, prefix)
        assert reader.get_run(prefix + "run") is not None
        cid = add(writer, run_id, 0)
        assert reader.get_candidate(cid).status == Status.PENDING
        writer.finish_candidate(cid, status=Status.OK, fitness=1.0)
        assert reader.counts(run_id) == {"ok": 1}
    finally:
        writer.close()
        reader.close()


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
