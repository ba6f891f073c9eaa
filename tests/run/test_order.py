"""``ordered_lag``: results used in proposal order, so a run does not depend on timing."""

from __future__ import annotations

from pathlib import Path

import pytest

from evoforge.candidate import Status
from evoforge.run import RunError
from evoforge.run.order import ResultOrder, check_lag
from evoforge.testing import run_problem

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "problems"
Row = tuple[int, str, str, float | None, int | None, tuple[int, ...]]


def test_results_are_used_in_proposal_order_and_drained_at_a_stop() -> None:
    order: ResultOrder[str] = ResultOrder(3)
    for key in (10, 11, 12):  # the loop's keys are candidate ids
        order.made(key)
    assert order.outstanding == 3 and not order.room()
    order.finished(11, "b")  # before 10: held back
    assert order.next_in_order() is None and order.held_back == 1
    order.finished(10, "a")
    assert [order.next_in_order(), order.next_in_order(), order.next_in_order()] == [
        "a", "b", None]
    assert order.outstanding == 1 and order.room()
    order.made(13)
    order.finished(13, "d")  # 12 never finishes: the run stops
    assert order.drain() == ["d"] and order.outstanding == 0


def _run(tmp_path: Path, name: str, workers: int, lag: int) -> tuple[list[Row], int]:
    storage, run_id, evo = run_problem(FIXTURES / "jittery", tmp_path / f"{name}.db",
                                       budget=40, workers=workers,
                                       settings={"ordered_lag": lag})
    rows = [(c.seq, c.code_hash, c.status.value, c.score, c.duplicate_of, c.parent_ids)
            for c in storage.iter_candidates(run_id)]
    storage.close()
    assert evo.order is not None
    return rows, evo.order.held_back


def test_an_ordered_run_is_the_same_with_one_to_lag_workers(tmp_path: Path) -> None:
    three, held = _run(tmp_path, "three", workers=3, lag=3)
    again, held_again = _run(tmp_path, "again", workers=3, lag=3)
    one, _ = _run(tmp_path, "one", workers=1, lag=3)
    # results did come back out of order (evaluations take 0-60 ms by program)
    assert held > 0 and held_again > 0
    assert three == again == one
    evaluated = [r for r in three if r[2] in (Status.OK.value, Status.FAILED.value)]
    assert len(evaluated) == 40
    assert any(r[2] == Status.DUPLICATE.value for r in three)


def test_a_lag_below_the_workers_is_refused(tmp_path: Path) -> None:
    check_lag(0, 8, with_model=True, joined=True)  # off: nothing to refuse
    check_lag(4, 4, with_model=False, joined=False)
    with pytest.raises(RunError, match="model-free runs"):
        check_lag(4, 1, with_model=True, joined=False)
    with pytest.raises(RunError, match="--join"):
        check_lag(4, 1, with_model=False, joined=True)
    with pytest.raises(RunError, match="ordered_lag 1 is below the 2 workers"):
        run_problem(FIXTURES / "jittery", tmp_path / "run.db", budget=5, workers=2,
                    settings={"ordered_lag": 1})


def test_a_stopped_ordered_run_keeps_every_finished_evaluation(tmp_path: Path) -> None:
    storage, run_id, evo = run_problem(FIXTURES / "jittery", tmp_path / "run.db",
                                       budget=100_000, workers=2,
                                       settings={"ordered_lag": 6, "max_time": 2.0})
    rows = list(storage.iter_candidates(run_id))
    stored = sum(c.status in (Status.OK, Status.FAILED, Status.TIMEOUT) for c in rows)
    assert evo.stop_reason == "time" and 0 < evo.progress.evaluated < 100_000
    assert stored == evo.progress.evaluated  # held-back results were used at the stop
    # proposals made ahead and never started are stored as not evaluated
    waiting = [c for c in rows if c.status == Status.REJECTED]
    assert len(waiting) <= 6
    assert all(c.error == "not evaluated: the run stopped (time)" for c in waiting)
    assert sum(c.status == Status.PENDING for c in rows) <= 2  # cancelled while running
