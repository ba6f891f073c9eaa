"""Search features through the real loop: simplification with an asynchronous proposer,
lexicase parents from per-instance scores, proposals that avoid duplicates."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

from evoforge.candidate import Candidate, Status
from evoforge.proposers.base import Proposal
from evoforge.run import Evolution
from evoforge.storage import SQLStorage
from evoforge.testing import ScriptedProposer, run_problem

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "problems"
REDUNDANT = ("def f(x):\n    unused = x * 3.0\n    scale = 1.0\n"
             "    return scale * (0.3 * x * x - 2.0 * x + 1.0)\n")


class AsyncScripted(ScriptedProposer):
    """A scripted proposer the loop treats like an LLM (proposals awaited concurrently)."""

    asynchronous = True

    async def propose_async(self, parent: Candidate, inspirations: list[Candidate],
                            rng: random.Random) -> Proposal | None:
        await asyncio.sleep(0.01)  # a model takes a while
        return self.propose(parent, inspirations, rng)


def _run(tmp_path: Path, folder: Path, proposer_of, budget: int,  # type: ignore[no-untyped-def]
         **mutation: object) -> tuple[SQLStorage, int, Evolution]:
    return run_problem(folder, tmp_path / "run.db", budget=budget, seed=1,
                       proposer=proposer_of, mutation=mutation)


def test_simplification_runs_with_an_asynchronous_proposer(tmp_path: Path) -> None:
    storage, run_id, evo = _run(
        tmp_path, FIXTURES / "cascade_probe",
        lambda p: AsyncScripted(p.template, [REDUNDANT]), budget=8, simplify_every=1)
    cands = list(storage.iter_candidates(run_id))
    simplified = [c for c in cands if c.operator == "simplify" and c.status == Status.OK]
    assert simplified, [(c.operator, c.status, c.error) for c in cands]
    assert "unused" not in min(simplified, key=lambda c: len(c.code)).code
    assert evo.simplifications >= 1


def test_circle_packing_probes_place_centers(tmp_path: Path) -> None:
    """circle_packing's config gives probe inputs: candidates get functional hashes."""
    from evoforge.problem import builtin_problems

    folder = builtin_problems()["circle_packing"]
    storage, run_id, evo = _run(
        tmp_path, Path(folder),
        lambda p: ScriptedProposer(p.template, [p.template.regions[0] + SAME_CENTRES]),
        budget=3)
    cands = list(storage.iter_candidates(run_id))
    assert evo.probing
    assert cands[0].functional_hash  # the initial program was probed
    # other code, the same centres: a functional duplicate, not evaluated
    assert cands[1].status == Status.DUPLICATE and cands[1].duplicate_of == cands[0].id
    assert cands[1].functional_hash == cands[0].functional_hash


SAME_CENTRES = "\n\ndef unused_helper():\n    return 0\n"
