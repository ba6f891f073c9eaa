"""Functional hashing on the built-in problems: every quality-scored problem is probed.

The probe runs in this process exactly as a worker runs it (``child.probe`` with the
problem's evaluator and config), on the initial program, every baseline, a reformatted
copy and a program that only raises. Programs that behave alike must hash alike even
when their text differs; programs that behave differently must not.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
from pathlib import Path
from typing import Any

import pytest

from evoforge.evaluation.child import import_evaluator, probe
from evoforge.problem import builtin_problems, load_problem
from evoforge.problem.loader import Problem

# The score of these problems is speed: every correct program gives the same outputs,
# so an output hash would take a faster program for the slower one it copies.
SPEED_SCORED = {"hamming", "max_coverage", "ppr"}
PROBED = sorted(set(builtin_problems()) - SPEED_SCORED)

# Baselines that are the initial program in other words: same behaviour, other text.
SAME_AS_INITIAL = {
    "bin_packing": {"first_fit"},
    "job_shop": {"spt"},
    "txn_scheduling": {"fifo"},
    "tts_allocation": {"uniform_best_of_n"},
}


def _hash(problem: Problem, program: Path) -> str:
    module, error = import_evaluator(str(problem.evaluator_path))
    assert error is None, error
    out = probe(module, str(program), problem.config.evaluator.probe_inputs)
    assert "error" not in out, out
    return str(out["artifacts"]["probe_hash"])


def _probe_calls(problem: Problem, program: Path) -> list[Any]:
    """Call the probed function on every probe input here (or the evaluator's
    probe_program once): the outputs, or raise."""
    module, error = import_evaluator(str(problem.evaluator_path))
    assert error is None, error
    arguments = problem.config.evaluator.probe_inputs
    if arguments is None and hasattr(module, "probe_program"):
        spec = importlib.util.spec_from_file_location("probed_program", program)
        assert spec is not None and spec.loader is not None
        code = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(code)
        outputs = list(module.probe_program(code))
        # a part that names an exception would hash every failing program alike
        assert not any(isinstance(out, str) and out.startswith("raise:") for out in outputs)
        return outputs
    inputs = ([tuple(a) for a in arguments] if arguments is not None
              else list(module.probe_inputs()))
    spec = importlib.util.spec_from_file_location("probed_program", program)
    assert spec is not None and spec.loader is not None
    code = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(code)
    name = getattr(module, "PROBE_FUNCTION", None)
    if name is None:
        name = next(k for k, v in vars(code).items()
                    if inspect.isfunction(v) and v.__module__ == code.__name__)
    func = getattr(code, name)
    return [func(*(a if isinstance(a, tuple) else (a,))) for a in inputs]


def _raising(problem: Problem, folder: Path) -> Path:
    """The initial program with every evolved function's body replaced by a raise."""
    tree = ast.parse(problem.program_path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef):
            node.body = [ast.parse("raise ValueError('probe')").body[0]]
    path = folder / "raising.py"
    path.write_text(ast.unparse(tree) + "\n")
    return path


@pytest.mark.parametrize("name", PROBED)
def test_probe_separates_programs_that_behave_differently(name: str, tmp_path: Path) -> None:
    problem = load_problem(name)
    initial = _hash(problem, problem.program_path)
    # a reformatted copy (comments, layout and quotes gone) behaves the same
    reformatted = tmp_path / "reformatted.py"
    reformatted.write_text("# reformatted\n\n"
                           + ast.unparse(ast.parse(problem.program_path.read_text())) + "\n")
    assert _hash(problem, reformatted) == initial
    # the probe hashes real outputs: a program that raises everywhere hashes otherwise
    assert _hash(problem, _raising(problem, tmp_path)) != initial
    baselines = {k: _hash(problem, path) for k, path in problem.baselines.items()}
    assert baselines, "every built-in problem ships baselines"
    same = SAME_AS_INITIAL.get(name, set())
    for key, value in baselines.items():
        if key in same:
            assert value == initial, f"{key} behaves as the initial program"
        else:
            assert value != initial, f"{key} behaves unlike the initial program"
    distinct = {v for k, v in baselines.items() if k not in same}
    assert len(distinct) == len(baselines) - len(same), baselines
    # the inputs are deterministic: a second probe gives the same hash
    assert _hash(problem, problem.program_path) == initial


@pytest.mark.parametrize("name", PROBED)
def test_probed_function_runs_on_every_probe_input(name: str) -> None:
    """The initial program and every baseline answer every probe input without raising
    (a probe that only raises would give every program the same hash)."""
    problem = load_problem(name)
    for program in [problem.program_path, *problem.baselines.values()]:
        outputs = _probe_calls(problem, program)
        assert outputs and all(out is not None for out in outputs), program.name


@pytest.mark.parametrize("name", PROBED)
def test_probed_problems_turn_functional_hashing_on(name: str) -> None:
    """The loop probes when the evaluator defines probe_inputs() or probe_program(), or
    the config has probe inputs."""
    problem = load_problem(name)
    assert ({"probe_inputs", "probe_program"} & problem.evaluator_functions
            or problem.config.evaluator.probe_inputs is not None)


@pytest.mark.parametrize("name", sorted(SPEED_SCORED))
def test_speed_scored_problems_are_not_probed(name: str) -> None:
    """Equal outputs are not equal scores when the score is speed: no functional hash."""
    problem = load_problem(name)
    assert not {"probe_inputs", "probe_program"} & problem.evaluator_functions
    assert problem.config.evaluator.probe_inputs is None
