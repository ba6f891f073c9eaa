"""Stagnation in a real run: real worker processes, a real SQLite file."""

from __future__ import annotations

from pathlib import Path

from evoforge.candidate import Status
from evoforge.proposers.mutation import MutationProposer
from evoforge.proposers.mutation.proposer import TUNING
from evoforge.testing import run_problem

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "problems"


def test_a_stalled_run_shifts_proposals_to_structural_operators(tmp_path: Path) -> None:
    storage, run_id, evo = run_problem(FIXTURES / "quadratic", tmp_path / "run.db", budget=60,
                                       seed=2, workers=2, mutation={"stall_after": 5})
    proposer = evo.proposer
    assert isinstance(proposer, MutationProposer)
    assert proposer.stalled_proposals > 0
    record = storage.get_run(evo.run.name)
    assert record is not None and record.proposer_stats is not None
    assert record.proposer_stats["stall"]["stalled_proposals"] > 0
    cands = [c for c in storage.iter_candidates(run_id) if c.operator != "initial"]
    assert sum(c.status == Status.OK for c in cands) > 0
    # the best the proposer counts from is the run's best proposal
    best = max(c.fitness for c in cands if c.fitness is not None)
    assert proposer.best_fitness == best
    # held back, not banned: the proposer draws among all operators when no
    # structural one applies, and a tenth of stalled proposals may tune
    assert {c.operator for c in cands} - set(TUNING)
