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
import importlib
import multiprocessing
import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import pytest

from evoforge.candidate import Status
from evoforge.storage.base import Storage, StorageError

_CTX = multiprocessing.get_context("spawn")
PROCESS_TIMEOUT = 180.0
"""Seconds the worker processes of a test may take before the test fails (generous: ten
interpreters starting at once on a loaded two-core machine took over a minute)."""


def load_opener(opener: str) -> Callable[[str], Storage]:
    """The storage-opening callable named ``"module:function"``."""
    module, _, name = opener.partition(":")
    func: Callable[[str], Storage] = getattr(importlib.import_module(module), name)
    return func


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


# --- worker processes (module level: the spawn start method imports them) ----------


def _open_at_barrier(opener: str, url: str, barrier: Any, name: str) -> None:
    open_storage = load_opener(opener)  # imports first: the opens race, not the imports
    barrier.wait(timeout=PROCESS_TIMEOUT)
    storage = open_storage(url)
    try:
        storage.create_run(name=name, problem="p", problem_path="/p", config={}, seed=0,
                           budget=1)
    finally:
        storage.close()


def _claim_seqs(opener: str, url: str, barrier: Any, run_id: int, n: int, out: Any) -> None:
    storage = load_opener(opener)(url)
    barrier.wait(timeout=PROCESS_TIMEOUT)
    try:
        out.put([storage.claim_seq(run_id, 1 + i % 3) for i in range(n)])
    finally:
        storage.close()


def _claim_evaluations(opener: str, url: str, barrier: Any, run_id: int, budget: int,
                       out: Any) -> None:
    storage = load_opener(opener)(url)
    barrier.wait(timeout=PROCESS_TIMEOUT)
    won = 0
    try:
        while storage.claim_evaluation(run_id, budget):
            won += 1
        out.put(won)
    finally:
        storage.close()


def _propose(opener: str, url: str, barrier: Any, run_id: int, owner: str,
             hashes: list[str], budget: int, out: Any) -> None:
    storage = load_opener(opener)(url)
    storage.heartbeat(run_id, owner, 600.0)
    barrier.wait(timeout=PROCESS_TIMEOUT)
    stored = []
    try:
        for h in hashes:
            got = storage.add_proposal(run_id, owner=owner, budget=budget, island=0,
                                       parent_ids=[], operator="mutate",
                                       code=f"x = {h!r}\n", code_hash=h)
            stored.append(None if got is None else (got.id, got.seq, got.duplicate_of))
        out.put(stored)
    finally:
        storage.close()


def _finish_some(opener: str, url: str, barrier: Any, ids: list[int]) -> None:
    storage = load_opener(opener)(url)
    barrier.wait(timeout=PROCESS_TIMEOUT)
    try:
        for i, cid in enumerate(ids):
            storage.finish_candidate(cid, status=Status.OK, score=float(i), fitness=float(i))
    finally:
        storage.close()


def _propose_and_hang(opener: str, url: str, run_id: int, owner: str, n: int,
                      ready: Any) -> None:
    storage = load_opener(opener)(url)
    storage.heartbeat(run_id, owner, 600.0)
    for i in range(n):
        storage.add_proposal(run_id, owner=owner, budget=None, island=0, parent_ids=[],
                             operator="mutate", code=f"y = {i}\n", code_hash=f"{owner}-{i}")
    ready.set()
    time.sleep(PROCESS_TIMEOUT)  # killed by the test long before


def _claim_orphans(opener: str, url: str, barrier: Any, run_id: int, owner: str,
                   out: Any) -> None:
    storage = load_opener(opener)(url)
    storage.heartbeat(run_id, owner, 600.0)
    barrier.wait(timeout=PROCESS_TIMEOUT)
    try:
        got: list[int] = []
        while True:
            batch = storage.claim_orphans(run_id, owner, limit=2)
            if not batch:
                break
            got.extend(c.id for c in batch)
            for cand in batch:  # re-run: finish it, so it is no longer an orphan
                storage.finish_candidate(cand.id, status=Status.OK, fitness=1.0, score=1.0)
        out.put(got)
    finally:
        storage.close()


def _join(processes: list[Any]) -> None:
    deadline = time.monotonic() + PROCESS_TIMEOUT
    for proc in processes:
        proc.join(max(0.1, deadline - time.monotonic()))
    alive = [p for p in processes if p.is_alive()]
    for proc in alive:
        proc.kill()
        proc.join()
    assert not alive, f"{len(alive)} worker processes did not finish in time"
    assert [p.exitcode for p in processes] == [0] * len(processes)


def _drain(queue: Any, n: int) -> list[Any]:
    return [queue.get(timeout=PROCESS_TIMEOUT) for _ in range(n)]


class StorageConformance:
    """The :class:`~evoforge.storage.base.Storage` contract, as tests to subclass.

    Attributes:
        opener: ``"module:function"`` that opens a storage from a URL.
        processes: worker processes of the multi-process tests.
    """

    opener = "evoforge.storage:open_storage"
    processes = 4

    # --- fixtures and helpers --------------------------------------------------------

    @pytest.fixture
    def storage(self, storage_url: str) -> Iterator[Storage]:
        """The storage at ``storage_url``, closed after the test."""
        s = load_opener(self.opener)(storage_url)
        yield s
        s.close()

    @pytest.fixture
    def prefix(self) -> str:
        """A run-name prefix unique to the test."""
        return f"conf-{uuid.uuid4().hex[:12]}-"

    @staticmethod
    def new_run(storage: Storage, prefix: str, suffix: str = "run", **kw: Any) -> int:
        args: dict[str, Any] = {"problem": "demo", "problem_path": "/tmp/demo",
                                "config": {"max_iterations": 5}, "seed": 1, "budget": 10}
        args.update(kw)
        return storage.create_run(name=prefix + suffix, **args).id

    @staticmethod
    def add(storage: Storage, run_id: int, seq: int, *, code: str | None = None,
            code_hash: str | None = None, status: Status = Status.PENDING,
            operator: str = "mutate", **kw: Any) -> int:
        return storage.add_candidate(
            run_id, seq=seq, island=seq % 2, parent_ids=[] if seq == 0 else [seq - 1],
            operator=operator, code=code or f"x = {seq}\n", code_hash=code_hash or f"h{seq}",
            status=status, **kw)

    def add_ok(self, storage: Storage, run_id: int, seq: int, fitness: float | None,
               **kw: Any) -> int:
        cid = self.add(storage, run_id, seq, **kw)
        storage.finish_candidate(cid, status=Status.OK, score=fitness, fitness=fitness,
                                 metrics={"combined_score": fitness})
        return cid

    def _spawn(self, target: Callable[..., None], args_for: Callable[[int], tuple[Any, ...]],
               n: int) -> list[Any]:
        procs = [_CTX.Process(target=target, args=args_for(i), daemon=True) for i in range(n)]
        for proc in procs:
            proc.start()
        return procs

    # --- runs --------------------------------------------------------------------------

    def test_create_and_get_run(self, storage: Storage, prefix: str) -> None:
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

    def test_latest_and_list_runs(self, storage: Storage, prefix: str) -> None:
        ids = [self.new_run(storage, prefix, name) for name in ("r1", "r2", "r3")]
        assert ids == sorted(ids)
        mine = [r for r in storage.list_runs() if r.name.startswith(prefix)]
        assert [r.name for r in mine] == [prefix + "r1", prefix + "r2", prefix + "r3"]
        all_ids = [r.id for r in storage.list_runs()]
        assert all_ids == sorted(all_ids)  # oldest first
        latest = storage.latest_run()
        assert latest is not None
        # the storage may be shared with other tests: the latest is ours or newer
        assert latest.id >= ids[-1]

    def test_duplicate_run_name(self, storage: Storage, prefix: str) -> None:
        self.new_run(storage, prefix, "dup")
        with pytest.raises(StorageError, match="exists already") as info:
            self.new_run(storage, prefix, "dup")
        assert prefix + "dup" in str(info.value)
        # the storage is still usable after the failed insert
        self.new_run(storage, prefix, "other")
        assert storage.get_run(prefix + "other") is not None

    def test_update_run(self, storage: Storage, prefix: str) -> None:
        run_id = self.new_run(storage, prefix)
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

    # --- candidates ----------------------------------------------------------------------

    def test_add_and_finish_candidate(self, storage: Storage, prefix: str) -> None:
        run_id = self.new_run(storage, prefix)
        code = "def f(x):\n    return x * 2  # ünïcode\n"
        cid = storage.add_candidate(run_id, seq=0, island=2, parent_ids=[],
                                    operator="initial", code=code, code_hash="abc",
                                    status=Status.PENDING, seed=2**40)
        c = storage.get_candidate(cid)
        assert (c.id, c.seq, c.island, c.parent_ids, c.operator) == (cid, 0, 2, (), "initial")
        assert (c.code, c.code_hash, c.status) == (code, "abc", Status.PENDING)
        assert c.score is None and c.fitness is None and c.eval_seconds is None
        assert c.metrics == {} and c.features == {} and c.artifacts == {}

        storage.finish_candidate(cid, status=Status.OK, score=-0.1 - 0.2,
                                 fitness=0.30000000000000004,
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
        assert (c.status, c.error, c.fitness) == (Status.FAILED, "ZeroDivisionError: boom",
                                                  None)
        assert child > cid

    def test_same_program_text_in_many_candidates(self, storage: Storage, prefix: str) -> None:
        run_id = self.new_run(storage, prefix)
        other = self.new_run(storage, prefix, "other")
        text = "def f():\n    return 'shared'\n"
        ids = [self.add(storage, run_id, seq, code=text) for seq in range(3)]
        ids.append(self.add(storage, other, 0, code=text))
        ids.append(self.add(storage, run_id, 3, code=text + "# not the same text\n"))
        codes = [c.code for c in storage.get_candidates(ids)]
        assert codes == [text] * 4 + [text + "# not the same text\n"]

    def test_add_finished_candidate_directly(self, storage: Storage, prefix: str) -> None:
        run_id = self.new_run(storage, prefix)
        first = self.add(storage, run_id, 0, code_hash="same")
        dup = self.add(storage, run_id, 1, code_hash="same", status=Status.DUPLICATE,
                       duplicate_of=first)
        c = storage.get_candidate(dup)
        assert (c.status, c.duplicate_of) == (Status.DUPLICATE, first)

    def test_missing_candidates(self, storage: Storage, prefix: str) -> None:
        with pytest.raises(StorageError, match="no candidate"):
            storage.get_candidate(2_000_000_000)
        with pytest.raises(StorageError):
            storage.finish_candidate(2_000_000_000, status=Status.OK, fitness=1.0)
        with pytest.raises(StorageError):
            self.add(storage, 2_000_000_000, 0)
        run_id = self.new_run(storage, prefix)
        cid = self.add(storage, run_id, 0)
        with pytest.raises(StorageError, match="no candidate"):
            storage.get_candidates([cid, 2_000_000_000])

    def test_counts_and_operator_counts(self, storage: Storage, prefix: str) -> None:
        run_id = self.new_run(storage, prefix)
        other = self.new_run(storage, prefix, "other")
        assert storage.counts(run_id) == {}
        assert storage.operator_counts(run_id) == {}
        self.add_ok(storage, run_id, 0, 1.0, operator="initial")
        self.add_ok(storage, run_id, 1, 2.0, operator="swap")
        failed = self.add(storage, run_id, 2, operator="swap")
        storage.finish_candidate(failed, status=Status.FAILED, error="x")
        timeout = self.add(storage, run_id, 3, operator="tweak")
        storage.finish_candidate(timeout, status=Status.TIMEOUT, error="timed out")
        self.add(storage, run_id, 4, operator="tweak", status=Status.DUPLICATE)
        self.add(storage, run_id, 5, operator="tweak")  # still pending
        self.add_ok(storage, other, 0, 5.0, operator="swap")  # another run: not counted

        assert storage.counts(run_id) == {"ok": 2, "failed": 1, "timeout": 1, "duplicate": 1,
                                          "pending": 1}
        assert storage.operator_counts(run_id) == {
            "initial": {"ok": 1},
            "swap": {"ok": 1, "failed": 1},
            "tweak": {"timeout": 1, "duplicate": 1, "pending": 1},
        }
        assert storage.counts(other) == {"ok": 1}

    def test_best_and_elites(self, storage: Storage, prefix: str) -> None:
        run_id = self.new_run(storage, prefix)
        assert storage.best(run_id) is None
        assert storage.elites(run_id, 5) == []
        pending = self.add(storage, run_id, 0)
        failed = self.add(storage, run_id, 1)
        # non-ok candidates never win, even with a (stray) higher fitness
        storage.finish_candidate(failed, status=Status.FAILED, fitness=1e9, error="x")
        timeout = self.add(storage, run_id, 2)
        storage.finish_candidate(timeout, status=Status.TIMEOUT, fitness=1e8, error="t")
        self.add(storage, run_id, 3, status=Status.DUPLICATE)
        assert storage.best(run_id) is None
        self.add_ok(storage, run_id, 4, None)  # ok without fitness: ignored
        low = self.add_ok(storage, run_id, 5, -3.0)
        best = storage.best(run_id)
        assert best is not None and best.id == low
        first_top = self.add_ok(storage, run_id, 6, 2.5)
        second_top = self.add_ok(storage, run_id, 7, 2.5)  # tie: the earlier one stays best
        middle = self.add_ok(storage, run_id, 8, 1.0)
        best = storage.best(run_id)
        assert best is not None and (best.id, best.fitness) == (first_top, 2.5)
        assert best.code == "x = 6\n"
        assert pending != best.id
        assert [c.id for c in storage.elites(run_id, 3)] == [first_top, second_top, middle]
        assert [c.id for c in storage.elites(run_id, 10)] == [first_top, second_top, middle,
                                                               low]
        other = self.new_run(storage, prefix, "other")
        self.add_ok(storage, other, 0, 100.0)
        again = storage.best(run_id)
        assert again is not None and again.id == first_top

    def test_code_and_functional_hashes(self, storage: Storage, prefix: str) -> None:
        run_id = self.new_run(storage, prefix)
        assert storage.code_hashes(run_id) == {}
        a = self.add(storage, run_id, 0, code_hash="aaa")
        b = self.add_ok(storage, run_id, 1, 1.0, code_hash="bbb")
        self.add(storage, run_id, 2, code_hash="aaa", status=Status.DUPLICATE, duplicate_of=a)
        self.add(storage, run_id, 3, code_hash="ccc", status=Status.DUPLICATE, duplicate_of=a)
        failed = self.add(storage, run_id, 4, code_hash="ddd")
        storage.finish_candidate(failed, status=Status.FAILED, error="x",
                                 functional_hash="f1")
        assert storage.code_hashes(run_id) == {"aaa": a, "bbb": b, "ddd": failed}
        for code_hash, expected in (("aaa", a), ("bbb", b), ("ddd", failed), ("ccc", None),
                                    ("zzz", None)):
            assert storage.find_code_hash(run_id, code_hash) == expected
        ok = self.add(storage, run_id, 5, code_hash="eee")
        storage.finish_candidate(ok, status=Status.OK, fitness=1.0, functional_hash="f1")
        timeout = self.add(storage, run_id, 6, code_hash="fff")
        storage.finish_candidate(timeout, status=Status.TIMEOUT, functional_hash="f2")
        assert storage.functional_hashes(run_id) == {"f1": failed}
        assert storage.find_functional_hash(run_id, "f1") == failed
        assert storage.find_functional_hash(run_id, "f2") is None  # a timeout proves nothing
        other = self.new_run(storage, prefix, "other")
        assert storage.code_hashes(other) == {}
        assert storage.find_code_hash(other, "aaa") is None

    def test_next_seq_and_unique_seq(self, storage: Storage, prefix: str) -> None:
        run_id = self.new_run(storage, prefix)
        other = self.new_run(storage, prefix, "other")
        assert storage.next_seq(run_id) == 0
        first = self.add(storage, run_id, 0)
        assert storage.next_seq(run_id) == 1
        self.add(storage, run_id, 5)
        self.add(storage, run_id, 2)
        assert storage.next_seq(run_id) == 6
        assert storage.next_seq(other) == 0
        with pytest.raises(StorageError):
            self.add(storage, run_id, 5, code="y = 2\n")
        self.add(storage, other, 5)  # the same seq in another run is fine
        assert [c.seq for c in storage.iter_candidates(run_id)] == [0, 2, 5]
        assert storage.get_candidate(first).code == "x = 0\n"

    def test_ids_increase(self, storage: Storage, prefix: str) -> None:
        run_id = self.new_run(storage, prefix)
        ids = [self.add(storage, run_id, seq) for seq in range(5)]
        assert ids == sorted(ids) and len(set(ids)) == 5

    def test_iter_candidates_order_and_filter(self, storage: Storage, prefix: str) -> None:
        run_id = self.new_run(storage, prefix)
        other = self.new_run(storage, prefix, "other")
        for seq in (2, 0, 3, 1):  # inserted out of order
            cid = self.add(storage, run_id, seq)
            if seq in (0, 3):
                storage.finish_candidate(cid, status=Status.OK, fitness=float(seq),
                                         artifacts={"out": "x"}, stages=[{"s": 1}])
            elif seq == 1:
                storage.finish_candidate(cid, status=Status.FAILED, error="x")
        self.add(storage, other, 0)
        assert [c.seq for c in storage.iter_candidates(run_id)] == [0, 1, 2, 3]
        assert [c.seq for c in storage.iter_candidates(run_id, (Status.OK,))] == [0, 3]
        assert [c.seq for c in storage.iter_candidates(
            run_id, (Status.OK, Status.FAILED))] == [0, 1, 3]
        assert [c.seq for c in storage.iter_candidates(run_id, (Status.PENDING,))] == [2]
        assert list(storage.iter_candidates(run_id, (Status.TIMEOUT,))) == []
        assert [c.seq for c in storage.iter_candidates(run_id, ())] == [0, 1, 2, 3]
        assert list(storage.iter_candidates(2_000_000_000)) == []
        full = list(storage.iter_candidates(run_id))
        light = list(storage.iter_summaries(run_id))
        assert [c.id for c in light] == [c.id for c in full]
        assert [c.fitness for c in light] == [c.fitness for c in full]
        assert all(c.code == "" and c.artifacts == {} for c in light)
        assert [c.seq for c in storage.iter_summaries(run_id, (Status.OK,))] == [0, 3]

    def test_writes_visible_to_a_second_storage(self, storage_url: str, prefix: str) -> None:
        opener = load_opener(self.opener)
        writer, reader = opener(storage_url), opener(storage_url)
        try:
            run_id = self.new_run(writer, prefix, config={"k": "v"})
            assert reader.get_run(prefix + "run") is not None
            cid = self.add(writer, run_id, 0)
            assert reader.get_candidate(cid).status == Status.PENDING
            writer.finish_candidate(cid, status=Status.OK, fitness=1.0)
            assert reader.counts(run_id) == {"ok": 1}
        finally:
            writer.close()
            reader.close()
        again = opener(storage_url)
        try:
            run = again.get_run(prefix + "run")
            assert run is not None and run.config == {"k": "v"}
            best = again.best(run_id)
            assert best is not None and (best.id, best.fitness) == (cid, 1.0)
        finally:
            again.close()

    # --- one run, several processes -----------------------------------------------------

    def test_claims_count_candidates(self, storage: Storage, prefix: str) -> None:
        run_id = self.new_run(storage, prefix)
        assert storage.claimed_evaluations(run_id) == 0
        a = self.add(storage, run_id, 0)
        self.add(storage, run_id, 1, status=Status.DUPLICATE, duplicate_of=a)
        b = self.add(storage, run_id, 2)
        assert storage.claimed_evaluations(run_id) == 2
        storage.finish_candidate(a, status=Status.OK, fitness=1.0)
        storage.finish_candidate(b, status=Status.DUPLICATE, duplicate_of=a)  # functional
        assert storage.claimed_evaluations(run_id) == 1
        assert storage.claim_evaluation(run_id, 2)
        assert not storage.claim_evaluation(run_id, 2)
        self.add(storage, run_id, 3, reserved=True)  # uses the reservation
        assert storage.claimed_evaluations(run_id) == 2
        assert storage.claim_evaluation(run_id, 3)
        storage.release_evaluation(run_id)
        assert storage.claimed_evaluations(run_id) == 2
        assert storage.claim_seq(run_id) == 4
        assert storage.claim_seq(run_id, 3) == 5
        self.add(storage, run_id, 20)
        assert storage.claim_seq(run_id) == 21

    @pytest.mark.slow
    def test_concurrent_start(self, fresh_url: str, prefix: str) -> None:
        """Ten processes open a never-opened storage at the same instant: all succeed.

        Slow (about 20 s on two cores): ten interpreters import SQLAlchemy and Alembic.
        """
        n = 10
        barrier = _CTX.Barrier(n)
        procs = self._spawn(_open_at_barrier,
                            lambda i: (self.opener, fresh_url, barrier, f"{prefix}{i}"), n)
        _join(procs)
        storage = load_opener(self.opener)(fresh_url)
        try:
            names = {r.name for r in storage.list_runs()}
            assert names == {f"{prefix}{i}" for i in range(n)}
        finally:
            storage.close()

    def test_claim_seq_across_processes(self, storage: Storage, storage_url: str,
                                        prefix: str) -> None:
        run_id = self.new_run(storage, prefix)
        self.add(storage, run_id, 0)
        n, per = self.processes, 25
        barrier, out = _CTX.Barrier(n), _CTX.Queue()
        procs = self._spawn(_claim_seqs,
                            lambda i: (self.opener, storage_url, barrier, run_id, per, out), n)
        firsts = _drain(out, n)
        _join(procs)
        taken = [first + k for chunk in firsts for i, first in enumerate(chunk)
                 for k in range(1 + i % 3)]
        assert sorted(taken) == list(range(1, 1 + len(taken)))

    def test_budget_claims_across_processes(self, storage: Storage, storage_url: str,
                                            prefix: str) -> None:
        run_id = self.new_run(storage, prefix)
        self.add(storage, run_id, 0)  # holds one evaluation already
        n, budget = self.processes, 37
        barrier, out = _CTX.Barrier(n), _CTX.Queue()
        procs = self._spawn(
            _claim_evaluations,
            lambda i: (self.opener, storage_url, barrier, run_id, budget, out), n)
        won = _drain(out, n)
        _join(procs)
        assert sum(won) == budget - 1
        assert storage.claimed_evaluations(run_id) == budget

    def test_proposals_across_processes(self, storage: Storage, storage_url: str,
                                        prefix: str) -> None:
        """Every process proposes the same programs: each is evaluated once, in budget."""
        run_id = self.new_run(storage, prefix)
        n, budget = self.processes, 15
        hashes = [f"p{k}" for k in range(20)]
        barrier, out = _CTX.Barrier(n), _CTX.Queue()
        procs = self._spawn(
            _propose,
            lambda i: (self.opener, storage_url, barrier, run_id, f"{prefix}w{i}",
                       hashes[i:] + hashes[:i], budget, out), n)
        results = [r for chunk in _drain(out, n) for r in chunk]
        _join(procs)
        stored = [r for r in results if r is not None]
        pending = [r for r in stored if r[2] is None]
        assert len(pending) == budget  # exactly the budget, never more
        assert len({r[1] for r in stored}) == len(stored)  # unique seqs
        assert len({r[0] for r in stored}) == len(stored)
        cands = {c.id: c for c in storage.iter_candidates(run_id)}
        assert len(cands) == len(stored)
        pending_hashes = [cands[r[0]].code_hash for r in pending]
        assert len(set(pending_hashes)) == budget  # no program pending twice
        for cid, _seq, first in stored:
            if first is not None:
                assert cands[cid].status == Status.DUPLICATE
                assert cands[first].code_hash == cands[cid].code_hash
                assert cands[first].status == Status.PENDING
        assert storage.claimed_evaluations(run_id) == budget

    def test_sync_across_processes(self, storage: Storage, storage_url: str,
                                   prefix: str) -> None:
        """Polling candidates_since while other processes finish candidates misses none."""
        run_id = self.new_run(storage, prefix)
        n, per = self.processes, 15
        ids = [self.add(storage, run_id, seq) for seq in range(n * per)]
        barrier = _CTX.Barrier(n + 1)
        # each process finishes an interleaved share: commits arrive out of id order
        procs = self._spawn(
            _finish_some,
            lambda i: (self.opener, storage_url, barrier, ids[i::n][::-1]), n)
        barrier.wait(timeout=PROCESS_TIMEOUT)
        seen: list[int] = []
        cursor = 0
        deadline = time.monotonic() + PROCESS_TIMEOUT
        while len(seen) < len(ids) and time.monotonic() < deadline:
            batch = storage.candidates_since(run_id, cursor, limit=7)
            assert batch.cursor >= cursor
            assert all(c.status == Status.OK for c in batch.candidates)
            seen.extend(c.id for c in batch.candidates)
            cursor = batch.cursor
        _join(procs)
        assert sorted(seen) == sorted(ids)  # each one exactly once
        assert storage.candidates_since(run_id, cursor).candidates == []
        later = self.add(storage, run_id, n * per, status=Status.DUPLICATE, duplicate_of=ids[0])
        assert [c.id for c in storage.candidates_since(run_id, cursor).candidates] == [later]

    def test_orphans_after_sigkill(self, storage: Storage, storage_url: str,
                                   prefix: str) -> None:
        """A killed process's pending candidates go, once each, to the processes left."""
        run_id = self.new_run(storage, prefix)
        mine = f"{prefix}alive"
        storage.heartbeat(run_id, mine, 600.0)
        kept = storage.add_proposal(run_id, owner=mine, budget=None, island=0, parent_ids=[],
                                    operator="mutate", code="z = 1\n", code_hash="mine")
        assert kept is not None
        legacy = self.add(storage, run_id, 100)  # no owner: an orphan from the start
        ready = _CTX.Event()
        victim = _CTX.Process(target=_propose_and_hang,
                              args=(self.opener, storage_url, run_id, f"{prefix}victim", 6,
                                    ready), daemon=True)
        victim.start()
        assert ready.wait(PROCESS_TIMEOUT)
        os.kill(victim.pid, signal.SIGKILL)  # type: ignore[arg-type]
        victim.join(PROCESS_TIMEOUT)
        # its lease has not expired yet: only the ownerless one is an orphan
        assert [c.id for c in storage.claim_orphans(run_id, mine)] == [legacy]
        victims = [c.id for c in storage.iter_candidates(run_id, (Status.PENDING,))
                   if c.id not in (kept.id, legacy)]
        assert len(victims) == 6
        storage.heartbeat(run_id, f"{prefix}victim", -1.0)  # as if its lease ran out
        n = self.processes
        barrier, out = _CTX.Barrier(n), _CTX.Queue()
        procs = self._spawn(
            _claim_orphans,
            lambda i: (self.opener, storage_url, barrier, run_id, f"{prefix}r{i}", out), n)
        taken = [cid for chunk in _drain(out, n) for cid in chunk]
        _join(procs)
        assert sorted(taken) == sorted(victims)  # each exactly once, mine never
        assert storage.get_candidate(kept.id).status == Status.PENDING
        assert storage.claimed_evaluations(run_id) == 8  # re-runs took no new claim
        storage.release_owner(mine)
        other = f"{prefix}other"
        storage.heartbeat(run_id, other, 600.0)
        assert [c.id for c in storage.claim_orphans(run_id, other)] == [kept.id, legacy]
