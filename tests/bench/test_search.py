"""bench/search.py's evoforge run: its counts, waste shares and table row."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from evoforge.candidate import Status
from evoforge.problem.kit import load_module
from evoforge.storage import SQLStorage

BENCH = Path(__file__).resolve().parents[2] / "bench"


def test_an_evoforge_run_reports_waste_by_proposals_and_by_worker_time(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(BENCH))  # search.py imports its sibling run_all
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the run's database
    bench = load_module(BENCH / "search.py", "bench_search")
    result = bench.run_evoforge("bin_packing", 12, 1)
    counts = result["counts"]
    evaluated = counts["ok"] + counts["failed"] + counts["timeout"]
    assert evaluated == 12 and counts["ok"] >= 1
    proposals = sum(counts.values()) - 1
    wasted = counts["failed"] + counts["timeout"] + counts["duplicate"] + counts["rejected"]
    assert result["waste"] == pytest.approx(wasted / proposals)
    # the worker time of wasted proposals (probes, failed evaluations) over all of it
    (db,) = tmp_path.glob("evoforge-bench-*/bench.db")
    storage = SQLStorage(str(db))
    (run,) = storage.list_runs()
    # children the size limit stopped before they were proposed, as the proposer counted
    assert run.proposer_stats is not None
    assert result["oversized"] == run.proposer_stats["oversized"] >= 0
    seconds = {"all": 0.0, "wasted": 0.0}
    for cand in storage.iter_candidates(run.id):
        seconds["all"] += cand.eval_seconds or 0.0
        if cand.status in (Status.FAILED, Status.TIMEOUT, Status.DUPLICATE, Status.REJECTED):
            seconds["wasted"] += cand.eval_seconds or 0.0
    storage.close()
    assert seconds["all"] > 0
    assert result["waste_seconds"] == pytest.approx(seconds["wasted"] / seconds["all"])
    assert 0.0 <= result["waste_seconds"] < 1.0
    assert set(result["tests"]) == {12}
    row = bench.markdown([{"problem": "bin_packing", "evoforge": [result], "plain": [],
                           "strongest": "awkward_gap_fit -2.992"}], 12, [1])
    shares = f"{100 * result['waste']:.1f}% ({100 * result['waste_seconds']:.1f}% of worker"
    assert shares + " time)" in row


def test_checkpoints_past_a_stopped_runs_end_have_no_score(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(BENCH))
    bench = load_module(BENCH / "search.py", "bench_search")
    trajectory = [(1, -5.0, "a"), (40, -4.0, "b"), (90, -4.5, "c"), (180, -3.0, "d")]
    # a whole run: the best so far at each checkpoint
    assert bench.checkpoint_bests(trajectory, 250, 250) == {100: "b", 250: "d"}
    # stopped after 120 evaluations: 250 was never reached, so it has no program
    assert bench.checkpoint_bests(trajectory[:3], 250, 120) == {100: "b", 250: None}
    assert bench.checkpoint_bests([], 250, 0) == {100: None, 250: None}


def test_the_ordering_bench_compares_both_ways(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(BENCH))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the runs' databases
    import run_all

    result = run_all.ordering(budget=12, seeds=(1,), lag=2)
    runs = result["runs"]
    assert isinstance(runs, list)
    assert [r["ordered_lag"] for r in runs] == [0, 2]
    assert all(r["proposals"] >= 12 and r["wall_s"] > 0 for r in runs)
    assert float(result["ordered_over_unordered_per_proposal"]) > 0  # type: ignore[arg-type]
