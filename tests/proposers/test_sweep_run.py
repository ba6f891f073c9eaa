"""The initial program's sweep in a real run: real worker processes, a real SQLite file."""

from __future__ import annotations

from pathlib import Path

from evoforge.candidate import Status
from evoforge.problem.blocks import extract_regions
from evoforge.proposers.mutation import MutationProposer
from evoforge.proposers.mutation.canonical import canonical
from evoforge.proposers.mutation.fresh import SWEEP_FACTORS, compass_step
from evoforge.proposers.mutation.operators import numeric_literals, with_numeric_literals
from evoforge.testing import run_problem

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "problems"


def test_a_run_tries_the_switch_of_its_initial_program_by_itself(tmp_path: Path) -> None:
    storage, run_id, evo = run_problem(FIXTURES / "switch", tmp_path / "run.db", budget=80,
                                       seed=2, workers=2)
    proposer = evo.proposer
    assert isinstance(proposer, MutationProposer)
    cands = list(storage.iter_candidates(run_id))
    initial = next(c for c in cands if c.operator == "initial")
    before = numeric_literals(extract_regions(proposer.template, initial.code))
    assert before[0] == 0  # REFINE = 0: the refinement is off
    one_literal: dict[tuple[int, float], float | None] = {}
    for c in cands:
        if c.parent_ids != (initial.id,) or c.operator != "tune":
            continue
        after = numeric_literals(extract_regions(proposer.template, c.code))
        changed = [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b]
        if len(changed) == 1:
            one_literal[(changed[0], after[changed[0]])] = c.fitness
    # the switch was tried off (-1) and on (1) by itself, and on beat the initial program
    assert (0, -1) in one_literal and (0, 1) in one_literal
    on = one_literal[(0, 1)]
    assert on is not None and initial.fitness is not None and on > initial.fitness
    # the sweep (7 literals, 14 steps; better structures go first) is stored for a resume
    record = storage.get_run(evo.run.name)
    assert record is not None and record.proposer_stats is not None
    fresh = record.proposer_stats["fresh"]
    assert fresh["swept"] is True
    sweep = [e for e in fresh["queue"] if e["literal_major"]]
    assert not sweep or sweep[0]["moves"] + sweep[0]["tunes_left"] == 14
    if not sweep:
        # every literal was stepped by itself, unless its steps fold to programs already
        # made: ``2.0 * 1.0`` halved at either factor is ``1.0``, so the second factor's
        # steps are dropped as equivalents of the first's, not proposed
        regions = extract_regions(proposer.template, initial.code)
        made = {form.hash for c in cands if (form := canonical(c.code)) is not None}
        for i in set(range(len(before))) - {i for i, _ in one_literal}:
            for factor in SWEEP_FACTORS:
                moved = list(before)
                moved[i] = compass_step(before[i], factor)
                stepped = with_numeric_literals(regions, moved)
                assert stepped is not None
                form = canonical(proposer.template.render(stepped))
                assert form is not None and form.hash in made, (i, factor)
    assert sum(c.status == Status.OK for c in cands) > 40
