"""Cascade, functional hashing and simplification, through the real loop and workers."""

from __future__ import annotations

from pathlib import Path

from evoforge.candidate import Status
from evoforge.problem import load_problem
from evoforge.run import Evolution
from evoforge.storage import SQLStorage
from evoforge.testing import ScriptedProposer, run_problem

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "problems" / "cascade_probe"


def run(tmp_path: Path, bodies: list[str], budget: int,
        folder: Path = FIXTURE, **config: object) -> tuple[SQLStorage, int, Evolution]:
    return run_problem(folder, tmp_path / "run.db", budget=budget, mutation=config,
                       proposer=lambda p: ScriptedProposer(p.template, bodies))


SAME_AS_INITIAL = "def f(x):\n    return x * 1.0 + 0.5\n"
FAILS_STAGE1 = "def f(x):\n    return 1000.0 * x\n"
GOOD = "def f(x):\n    return 0.3 * x * x - 2.0 * x + 1.0\n"
SAME_AS_GOOD = "def f(x):\n    y = 0.3 * x * x - 2.0 * x\n    return y + 1.0\n"


def test_cascade_stops_at_the_failed_stage_and_keeps_each_stage(tmp_path: Path) -> None:
    storage, run_id, _ = run(tmp_path, [FAILS_STAGE1, GOOD], budget=3, simplify_every=0)
    cands = list(storage.iter_candidates(run_id))
    bad, good = cands[1], cands[2]
    # a threshold miss stops the cascade but is no failure (OpenEvolve's
    # Evaluator._cascade_evaluate returns the metrics of the stages that ran)
    assert bad.status == Status.OK and bad.error is None
    assert bad.stages is not None and len(bad.stages) == 1
    assert bad.stages[0]["stopped"] is True and bad.stages[0]["threshold"] == -50
    assert bad.score is not None and bad.score < -50
    assert good.status == Status.OK and good.score == 0.0
    assert good.stages is not None and [s["stage"] for s in good.stages] == [1, 2]
    assert good.metrics["stage1"] == 1.0 and good.metrics["stage2"] == 1.0
    assert good.stages[1]["seconds"] >= 0.3  # the costly stage ran


def test_functional_duplicates_reuse_results(tmp_path: Path) -> None:
    storage, run_id, evo = run(tmp_path, [SAME_AS_INITIAL, GOOD, SAME_AS_GOOD], budget=10,
                               simplify_every=0)
    cands = list(storage.iter_candidates(run_id))
    initial, twin, good, good_twin = cands[:4]
    assert initial.functional_hash and good.functional_hash
    assert twin.status == Status.DUPLICATE and twin.duplicate_of == initial.id
    assert twin.functional_hash == initial.functional_hash
    assert twin.score == initial.score  # the result was reused, not recomputed
    assert (twin.eval_seconds or 0) < 0.3  # only the probe ran
    assert good_twin.status == Status.DUPLICATE and good_twin.duplicate_of == good.id
    stats = storage.functional_stats(run_id)
    assert stats["hits"] == 2 and stats["probed"] == 4
    assert stats["seconds_saved"] > 0.5  # two evaluations of >= 0.3 s each were skipped
    assert evo.func_hits == 2


def test_simplify_removes_statements_that_change_nothing(tmp_path: Path) -> None:
    redundant = ("def f(x):\n    unused = x * 3.0\n    scale = 1.0\n"
                 "    return scale * (0.3 * x * x - 2.0 * x + 1.0)\n")
    storage, run_id, evo = run(tmp_path, [redundant], budget=8, simplify_every=1)
    cands = list(storage.iter_candidates(run_id))
    simplified = [c for c in cands if c.operator == "simplify" and c.status == Status.OK]
    assert simplified, [(c.operator, c.status, c.error) for c in cands]
    best_simple = min(simplified, key=lambda c: len(c.code))
    assert "unused" not in best_simple.code
    assert best_simple.score == 0.0
    assert best_simple.functional_hash == cands[1].functional_hash
    assert evo.simplifications >= 1


def test_probe_inputs_from_the_config(tmp_path: Path) -> None:
    """A problem without probe_inputs() gets functional hashing from config.yaml."""
    import shutil

    folder = tmp_path / "quadratic"
    shutil.copytree(FIXTURE.parent / "quadratic", folder)
    with (folder / "config.yaml").open("a") as f:
        f.write("\nevaluator: {timeout: 10, probe_inputs: [[-1.0], [0.0], [2.5]]}\n")
    assert "probe_inputs" not in load_problem(folder).evaluator_functions
    storage, run_id, _ = run(tmp_path, [SAME_AS_INITIAL, GOOD], budget=5, folder=folder)
    cands = list(storage.iter_candidates(run_id))
    assert cands[1].status == Status.DUPLICATE and cands[1].duplicate_of == cands[0].id
    assert cands[1].functional_hash == cands[0].functional_hash
    assert cands[2].status == Status.OK and cands[2].functional_hash != cands[0].functional_hash
