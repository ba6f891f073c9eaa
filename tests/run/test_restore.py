"""Restoring a run: the full replay, and the fast restore of a large run from its elites."""

from __future__ import annotations

from pathlib import Path

import pytest

import evoforge.run.state as state_module
from evoforge.archive import FeatureSpace
from evoforge.candidate import Status
from evoforge.config import RunConfig
from evoforge.proposers.mutation import MutationProposer
from evoforge.run.service import execute, extend_run, problem_of
from evoforge.run.state import RunState
from evoforge.storage import SQLStorage
from evoforge.testing import run_problem, write_problem

PROGRAM = """# EVOLVE-BLOCK-START
def value():
    x = 1.0
    y = 2.0
    return x * y + 0.5
# EVOLVE-BLOCK-END
"""
EVALUATOR = """import importlib.util


def evaluate(program_path):
    spec = importlib.util.spec_from_file_location("candidate", program_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return {"combined_score": -abs(float(module.value()) - 7.0)}
"""


def _finished_run(tmp_path: Path) -> tuple[SQLStorage, int]:
    folder = write_problem(tmp_path / "seven", PROGRAM, EVALUATOR)
    storage, run_id, _ = run_problem(folder, tmp_path / "runs.db", budget=25, seed=3)
    return storage, run_id


def _restored(storage: SQLStorage, run_id: int) -> RunState:
    run = next(r for r in storage.list_runs() if r.id == run_id)
    problem = problem_of(run)
    config = RunConfig.model_validate(run.config)
    state = RunState(config, FeatureSpace(config.database, problem.initial_program),
                     run.budget, [])
    state.restore(storage, run, MutationProposer(problem.template, config.mutation))
    return state


def test_fast_restore_keeps_counts_best_initial_and_finds_every_known_program(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    storage, run_id = _finished_run(tmp_path)
    full = _restored(storage, run_id)
    monkeypatch.setattr(state_module, "REPLAY_LIMIT", 3)
    monkeypatch.setattr(state_module, "RESTORED_ELITES", 4)
    fast = _restored(storage, run_id)
    assert fast.progress == full.progress and fast.progress.evaluated == 25
    assert fast.next_seq == full.next_seq
    assert full.best is not None and fast.best is not None and fast.best.id == full.best.id
    assert fast.initial is not None and fast.initial.seq == 0
    assert fast.hashes == {}  # nothing read up front ...
    evaluated = [c for c in storage.iter_candidates(run_id)
                 if c.status in (Status.OK, Status.FAILED, Status.TIMEOUT)]
    for cand in evaluated:  # ... and still every program of the run is known
        assert fast.holder(cand.code_hash) == full.holder(cand.code_hash) == cand.id
        if cand.functional_hash:
            assert fast.behaviour_holder(cand.functional_hash) is not None
    assert fast.holder("no such program") is None
    placed = {c.id for island in range(fast.config.database.num_islands)
              for c in fast.archive.cells(island).values()}
    assert fast.best.id in placed and fast.initial.id in placed
    assert len(placed) <= 4 + 1 < len(evaluated)  # the best 4 and the initial program


def test_a_large_run_resumes_from_its_elites_and_repeats_no_program(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    storage, run_id = _finished_run(tmp_path)
    run = next(r for r in storage.list_runs() if r.id == run_id)
    monkeypatch.setattr(state_module, "REPLAY_LIMIT", 3)
    monkeypatch.setattr(state_module, "RESTORED_ELITES", 4)
    result = execute(storage, extend_run(storage, run, 15), summarize=False)
    assert result.stop_reason == "budget" and result.progress.evaluated == 40
    evaluated = [c.code_hash for c in storage.iter_candidates(run_id)
                 if c.status in (Status.OK, Status.FAILED, Status.TIMEOUT)]
    assert len(evaluated) == 40 and len(set(evaluated)) == 40
