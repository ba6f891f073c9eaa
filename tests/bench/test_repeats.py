"""bench/repeats.py counts the evaluations of a stored run that repeated an earlier score."""

from __future__ import annotations

from pathlib import Path

import pytest

from evoforge.problem.kit import load_module
from evoforge.testing import ScriptedProposer, run_problem

BENCH = Path(__file__).resolve().parents[2] / "bench" / "repeats.py"
FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "problems" / "cascade_probe"


def test_repeats_counts_equal_scores_duplicates_and_failures(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    bench = load_module(BENCH, "bench_repeats")
    bodies = ["return 0.3 * x * x - 2.0 * x + 1.1",  # off by +0.1 everywhere
              "return 0.3 * x * x - 2.0 * x + 0.9",  # off by -0.1: the same score
              "return x * 1.0 + 0.5",                # the initial program: a duplicate
              "return undefined_name"]               # fails
    db = tmp_path / "run.db"
    storage, _, _ = run_problem(FIXTURE, db, budget=6, mutation={"simplify_every": 0},
                                proposer=lambda p: ScriptedProposer(p.template, [
                                    f"def f(x):\n    {body}\n" for body in bodies]))
    storage.close()
    (row,) = bench.repeats(db)
    assert {k: row[k] for k in ("ok", "repeats", "duplicates", "failed")} == {
        "ok": 3, "repeats": 1, "duplicates": 1, "failed": 1}
    monkeypatch.setattr("sys.argv", ["repeats.py", str(db)])  # the command line
    bench.main()
    assert "3 ok, 1 repeat an earlier score (33 %), 1 duplicates, 1 failed" in (
        capsys.readouterr().out)
