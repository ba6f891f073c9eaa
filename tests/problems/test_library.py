"""Every built-in problem keeps the library's promises, checked by running its code.

For each folder under evoforge/problems/: it loads like a user's problem, has a README
and a meta.yaml, its baselines are complete programs whose train and test scores are the
ones meta.yaml and the README state (recomputed here in isolated processes, as the
framework runs them), and the initial program is an honest start: not better than the
best baseline on the test split.
"""

from __future__ import annotations

import math

import pytest

from evoforge.problem import builtin_problems, load_problem
from evoforge.problem.library import objective, read_meta, score_program

PROBLEMS = sorted(builtin_problems())


def _close(meta_value: float, actual: float, tolerance: float, relative: float | None) -> bool:
    if relative is not None:
        return math.isclose(actual, meta_value, rel_tol=relative, abs_tol=tolerance)
    return abs(actual - meta_value) <= tolerance


@pytest.mark.parametrize("name", PROBLEMS)
def test_problem_folder_is_complete(name: str) -> None:
    problem = load_problem(name)
    assert problem.builtin
    assert problem.warnings == []
    assert (problem.path / "README.md").exists()
    assert problem.has_test_split, "built-in problems score a held-out test split"
    meta = read_meta(problem.path)
    assert meta is not None, "meta.yaml is missing"
    assert meta.metric == problem.config.objective.metric
    assert meta.direction == problem.config.objective.direction
    assert set(meta.baselines) == set(problem.baselines), "meta.yaml vs baselines/*.py"
    assert meta.baselines, "at least one baseline"
    readme = (problem.path / "README.md").read_text()
    for base, scores in meta.baselines.items():
        assert base in readme, f"README does not name baseline {base}"
        for split in ("train", "test"):
            assert f"{scores[split]:.3f}" in readme, f"README lacks {base} {split} score"


@pytest.mark.parametrize("name", PROBLEMS)
def test_stated_baseline_scores_are_what_the_code_computes(name: str) -> None:
    problem = load_problem(name)
    meta = read_meta(problem.path)
    assert meta is not None
    maximize = meta.direction == "maximize"
    best_test = None
    for base, path in problem.baselines.items():
        for split, function in (("train", "evaluate"), ("test", "evaluate_test")):
            outcome = score_program(problem, path.read_text(), function)
            assert outcome.status == "ok", f"{base} {split}: {outcome.error}"
            value = objective(problem, outcome.metrics)
            assert value is not None
            stated = meta.baselines[base][split]
            assert _close(stated, value, meta.tolerance, meta.relative), (
                f"{name}/{base} {split}: meta.yaml says {stated}, the code gives {value}")
            if split == "test" and (best_test is None or (value > best_test) == maximize):
                best_test = value
    initial = score_program(problem, problem.initial_program, "evaluate_test")
    assert initial.status == "ok", initial.error
    value = objective(problem, initial.metrics)
    assert value is not None and best_test is not None
    assert (value <= best_test) if maximize else (value >= best_test), (
        "the initial program should not beat the best baseline")
