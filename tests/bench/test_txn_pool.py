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


def test_fit_scores_the_weights_it_names_and_starts_at_the_baseline(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    bench = load_module(BENCH, "bench_txn_pool_fit")
    txn = bench.txn
    baseline = (PROBLEM / "baselines" / "earliest_start_contention.py").read_text()
    few = [txn.make_workload(bench.FIRST_SEED, family, 0) for family in txn.FAMILIES]
    # the linear form at the baseline's weights is the baseline
    assert bench._score(bench._linear(baseline, [0.04, 0.0, 0.0, 0.0]), few) == \
        bench._score(baseline, few)
    monkeypatch.setattr(bench, "FIT_PROGRAMS", 6)  # a few programs per fit, not 240
    splits = [few[k:k + 1] for k in range(3)] + [few[:2]]
    test = few[1:]
    bench.fit_report(baseline, splits, test)
    rows = [line for line in capsys.readouterr().out.splitlines()
            if line.startswith("| ") and "---" not in line][1:]
    assert len(rows) == 3
    train = txn.make_workloads("train")
    sets = (train, [w for s in splits[:3] for w in s], splits[3], test)
    for row in rows:
        name, *cells = row.strip("| ").split(" | ")
        code = baseline
        if "w = " in name:  # the weights named are the ones scored
            weights = [float(x) for x in name.split("w = (")[1].rstrip(")").split(", ")]
            code = bench._linear(baseline, weights)
        assert [float(c) for c in cells] == [round(bench._score(code, ws), 3) for ws in sets]
    with pytest.raises(SystemExit):
        bench.main(["--fit", "--splits", "3"])  # nothing would be held out
