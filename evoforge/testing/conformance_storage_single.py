"""The single-process half of the Storage conformance suite: runs, candidates, claims.

Every test here runs in the test process (one test opens a second storage on the same
URL to check that writes are visible to it). Subclass
:class:`~evoforge.testing.conformance_storage.StorageConformance`, which includes these.
"""

from __future__ import annotations

import pytest

from evoforge.candidate import Status
from evoforge.storage.base import Storage, StorageError
from evoforge.testing.conformance_storage_base import StorageFixtures, load_opener


class SingleProcessContract(StorageFixtures):
    """The Storage contract as one process sees it."""

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

    # --- evaluation claims and sequence numbers (one process) --------------------------

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

