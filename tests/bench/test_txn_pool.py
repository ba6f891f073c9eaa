"""bench/txn_pool.py scores txn_scheduling programs on fresh workloads as evaluate does."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from evoforge.problem.kit import load_module
from evoforge.testing import run_problem

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench" / "txn_pool.py"
PROBLEM = ROOT / "evoforge" / "problems" / "txn_scheduling"


def test_txn_pool_reproduces_the_test_scores_and_reads_a_run(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bench = load_module(BENCH, "bench_txn_pool")
    db = tmp_path / "bench.db"
    storage, run_id, _ = run_problem(PROBLEM, db, budget=4, seed=1)
    best = storage.best(run_id)
    storage.close()
    assert best is not None and best.score is not None
    assert bench.main(["--splits", "1", str(db)]) == 0
    rows = {line.split(" | ")[0].lstrip("| "): line for line in
            capsys.readouterr().out.splitlines() if line.startswith("| ")}
    meta = yaml.safe_load((PROBLEM / "meta.yaml").read_text())["baselines"]
    for name in ("earliest_start_contention", "smf_sampled", "fifo"):
        # the test column is evaluate_test's score: the sampling baseline's too
        test = float(rows[name].rstrip(" |").rsplit(" | ", 1)[1])
        assert test == pytest.approx(meta[name]["test"], abs=1e-3), name
    assert "earliest_start_contention, 0.06" in rows
    (run_row,) = [line for name, line in rows.items() if name.startswith(f"{tmp_path.name} ")]
    assert f"(train {best.score:.3f})" in run_row
    assert re.search(r"\*\*-\d+\.\d{3}\*\*", run_row)  # its pool mean
