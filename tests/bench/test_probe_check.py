"""bench/probe_check.py re-scores functional duplicates and probes them again."""

from __future__ import annotations

from pathlib import Path

import pytest

from evoforge.candidate import Status
from evoforge.problem import load_problem
from evoforge.problem.kit import load_module
from evoforge.problems.bin_packing import evaluator as ev
from evoforge.storage import SQLStorage

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench" / "probe_check.py"
INITIAL = ROOT / "evoforge" / "problems" / "bin_packing" / "initial_program.py"
BAND = ("np.where((bins - item > {lo} * bins[-1]) & (bins - item < {hi} * bins[-1]), "
        "{value}, item) - bins")


def _code(body: str) -> str:
    return INITIAL.read_text().replace("return -np.arange(len(bins), dtype=float)",
                                       f"return {body}")


def test_probe_check_counts_duplicates_that_score_otherwise(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bench = load_module(BENCH, "bench_probe_check")
    problem = load_problem("bin_packing")
    storage = SQLStorage(str(tmp_path / "bench.db"))
    run = storage.create_run(name="r", problem="bin_packing",
                             problem_path=str(problem.path), config={}, seed=1, budget=10)
    ref_code = _code(BAND.format(lo=0.0491297, hi=0.207977, value=0.385432))
    ref_path = tmp_path / "ref.py"
    ref_path.write_text(ref_code)
    ref_score = ev.evaluate(str(ref_path))["combined_score"]
    ref = storage.add_candidate(run.id, seq=1, island=0, parent_ids=[], operator="initial",
                                code=ref_code, code_hash="a", status=Status.PENDING)
    storage.finish_candidate(ref, status=Status.OK, score=ref_score, fitness=ref_score)
    # a real functional duplicate of the old probe that packs train otherwise, and one
    # that only shifts the scores (it packs exactly alike)
    dups = {"other": _code(BAND.format(lo=0.0387869, hi=0.201284, value=0.539135)),
            "shifted": _code(BAND.format(lo=0.0491297, hi=0.207977, value=0.385432)
                             + " + 7.0")}
    for seq, (name, code) in enumerate(dups.items(), start=2):
        cid = storage.add_candidate(run.id, seq=seq, island=0, parent_ids=[ref],
                                    operator="tune", code=code, code_hash=name,
                                    status=Status.PENDING)
        storage.finish_candidate(cid, status=Status.DUPLICATE, duplicate_of=ref,
                                 functional_hash="f")
    storage.close()
    result = bench.check([tmp_path / "bench.db"], sample=10)
    assert result["pairs"] == 2
    assert result["different"] == 1 and result["better"] == 1  # the band was better
    assert result["different_separated"] == 1 and result["alike_separated"] == 0
    assert bench.main([str(tmp_path / "bench.db")]) == 0
    assert "told apart by the current probe: 1 of 1 that differ; 0 of 1" in capsys.readouterr().out
