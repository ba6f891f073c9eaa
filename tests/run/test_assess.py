"""The Assessor gives a run and ``problems score`` the same objective."""

from __future__ import annotations

from pathlib import Path

from evoforge.candidate import Status
from evoforge.problem import load_problem
from evoforge.problem.library import objective, score_program
from evoforge.testing import run_problem

PROGRAM = """# EVOLVE-BLOCK-START
def values():
    return 1.0, 3.0
# EVOLVE-BLOCK-END
"""
# no combined_score: the objective is OpenEvolve's fallback, the mean of the metrics
EVALUATOR = """import importlib.util


def evaluate(program_path):
    spec = importlib.util.spec_from_file_location("candidate", program_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    a, b = module.values()
    return {"a": a, "b": b}
"""


def test_problems_score_and_the_run_agree_on_the_fallback_objective(tmp_path: Path) -> None:
    folder = tmp_path / "mean"
    folder.mkdir()
    (folder / "initial_program.py").write_text(PROGRAM)
    (folder / "evaluator.py").write_text(EVALUATOR)
    storage, run_id, _ = run_problem(folder, tmp_path / "runs.db", budget=1)
    initial = next(iter(storage.iter_candidates(run_id)))
    assert initial.status == Status.OK and initial.score == 2.0
    problem = load_problem(folder)
    outcome = score_program(problem, problem.initial_program, "evaluate")
    assert outcome.status == "ok"
    assert objective(problem, outcome.metrics) == initial.score
