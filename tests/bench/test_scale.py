"""bench/scale.py runs end to end on a small store (its numbers are for docs/benchmarks.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evoforge.problem.kit import load_module

BENCH = Path(__file__).resolve().parents[2] / "bench" / "scale.py"


def test_scale_bench_restores_a_large_run_both_ways(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    scale = load_module(BENCH, "bench_scale")
    monkeypatch.setattr(scale, "OUT", tmp_path)
    monkeypatch.setattr(scale, "REPS", 3)
    results = scale.main(["--n", "600", "--backends", "sqlite"])
    written = json.loads((tmp_path / "scale.json").read_text())
    assert written == results
    sqlite = results["sqlite"]
    assert sqlite["n"] == 600 and sqlite["bytes_per_candidate"] > 0
    assert sqlite["resume_fast_s"] >= 0 and sqlite["resume_full_replay_s"] >= 0
