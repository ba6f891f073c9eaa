"""Parents whose recent children were mostly wasted are drawn less (exhausted_avoidance)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from evoforge.candidate import Candidate, Status
from evoforge.proposers.base import Proposal
from evoforge.run.exhaustion import FLOOR, MIN_CHILDREN, Exhaustion
from evoforge.testing import ScriptedProposer, run_problem

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "problems"


def _cand(cid: int) -> Candidate:
    return Candidate(id=cid, seq=cid, island=0, parent_ids=(), operator="x", code="",
                     code_hash=str(cid), status=Status.OK, fitness=float(cid))


def test_a_share_needs_enough_children() -> None:
    ex = Exhaustion(2.0, window=20)
    for _ in range(MIN_CHILDREN - 1):
        ex.child(1, wasted=True)
    assert ex.share(1) is None
    ex.child(1, wasted=False)
    assert ex.share(1) == pytest.approx((MIN_CHILDREN - 1) / MIN_CHILDREN)
    assert ex.share(2) is None


def test_the_share_covers_only_the_recent_window() -> None:
    ex = Exhaustion(2.0, window=10)
    for _ in range(10):
        ex.child(1, wasted=True)
    for _ in range(10):
        ex.child(1, wasted=False)
    assert ex.share(1) == 0.0
    for _ in range(3):
        ex.child(1, wasted=True)
    assert ex.share(1) == pytest.approx(0.3)
    small = Exhaustion(2.0, window=4)  # a window under MIN_CHILDREN still counts
    for wasted in (True, True, False, True, True):
        small.child(1, wasted=wasted)
    assert small.share(1) == pytest.approx(0.75)


def test_a_used_up_parent_is_drawn_less_but_never_ruled_out() -> None:
    used_up, fresh = _cand(1), _cand(2)
    ex = Exhaustion(2.0, window=20)
    for _ in range(20):
        ex.child(used_up.id, wasted=True)
    rng = random.Random(0)
    # the sampler gives the used-up parent 3 times in 4
    picks = [ex.draw(lambda: used_up if rng.random() < 0.75 else fresh, rng).id
             for _ in range(4000)]
    share = picks.count(used_up.id) / len(picks)
    # kept with probability FLOOR per draw, else drawn again (4 draws): about 0.32
    assert 0.2 < share < 0.45
    assert ex.redrawn > 0
    off = Exhaustion(0.0, window=20)
    for _ in range(20):
        off.child(used_up.id, wasted=True)
    picks = [off.draw(lambda: used_up if rng.random() < 0.75 else fresh, rng).id
             for _ in range(4000)]
    assert 0.7 < picks.count(used_up.id) / len(picks) < 0.8
    assert FLOOR > 0


class _Proposer(ScriptedProposer):
    """The first proposal and children of any parent but the initial program are new,
    worse programs; the initial program's other children behave like it (functional
    duplicates). Records each proposal's parent seq."""

    def __init__(self, template) -> None:  # type: ignore[no-untyped-def]
        super().__init__(template, [])
        self.parents: list[int] = []
        self.n = 0

    def propose(self, parent: Candidate, inspirations: list[Candidate],
                rng: random.Random) -> Proposal | None:
        self.n += 1
        self.parents.append(parent.seq)
        if parent.seq == 0 and self.n > 1:
            body = f"def f(x):\n    y = 1.0 * x + 0.5\n    k{self.n} = {self.n}\n    return y\n"
        else:
            body = f"def f(x):\n    return {100 + self.n} * x + 0.5\n"
        return Proposal(code=self.template.render([body]), operator="scripted",
                        parent_ids=[parent.id])


def _run(db: Path, power: float) -> tuple[Any, int, Any, _Proposer]:
    """A 30-evaluation run of ``cascade_probe`` with :class:`_Proposer`."""
    made: list[_Proposer] = []

    def proposer(problem):  # type: ignore[no-untyped-def]
        made.append(_Proposer(problem.template))
        return made[0]

    storage, run_id, evo = run_problem(
        FIXTURES / "cascade_probe", db, budget=30, seed=1,
        proposer=proposer, database={"exhausted_avoidance": power})
    return storage, run_id, evo, made[0]


@pytest.mark.parametrize("power", [0.0, 2.0])
def test_the_loop_records_wasted_children_and_avoids_their_parent(
        tmp_path: Path, power: float) -> None:
    storage, run_id, evo, made = _run(tmp_path / "run.db", power)
    cands = list(storage.iter_candidates(run_id))
    dups = [c for c in cands if c.status == Status.DUPLICATE]
    assert dups and all(c.parent_ids == (cands[0].id,) for c in dups)
    parents = made.parents
    from_initial = parents.count(0) / len(parents)
    if power:
        share = evo.state.exhaustion.share(cands[0].id)
        assert share is not None and share > 0.9
        assert evo.state.exhaustion.redrawn > 0
        assert from_initial < 0.5, (from_initial, len(parents))  # 0.33 when written
    else:
        assert evo.state.exhaustion.share(cands[0].id) is None  # off: nothing recorded
        assert from_initial > 0.55, (from_initial, len(parents))  # 0.69 when written


def test_a_run_of_only_functional_duplicates_stalls(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Every proposal behaves like the initial program: the run stops as stalled (it
    used to spin forever, each probe resetting the count of idle proposals)."""
    import evoforge.run.stop as stop

    monkeypatch.setattr(stop, "MAX_IDLE_PROPOSALS", 15)
    bodies = [f"def f(x):\n    y = 1.0 * x + 0.5\n    k = {n}\n    return y\n"
              for n in range(100)]
    storage, run_id, evo = run_problem(
        FIXTURES / "cascade_probe", tmp_path / "run.db", budget=5, seed=1,
        proposer=lambda p: ScriptedProposer(p.template, bodies))
    assert evo.stop_reason is not None and evo.stop_reason.startswith("stalled")
    cands = list(storage.iter_candidates(run_id))
    assert [c.status for c in cands[1:]] == [Status.DUPLICATE] * 15


def test_a_resumed_run_rebuilds_the_records_of_wasted_children(tmp_path: Path) -> None:
    """The records are replayed from storage on resume, as the loop made them."""
    from evoforge.config import RunConfig
    from evoforge.run.state import RunState

    storage, run_id, evo, made = _run(tmp_path / "run.db", 2.0)
    live = evo.state.exhaustion
    record = storage.get_run(evo.run.name)
    assert record is not None
    config = RunConfig.model_validate(record.config)
    resumed = RunState(config, evo.state.features, 30, [])
    assert resumed.exhaustion.share(evo.state.initial.id) is None  # type: ignore[union-attr]
    resumed.restore(storage, record, made)
    parents = {c.parent_ids[0] for c in storage.iter_candidates(run_id) if c.parent_ids}
    assert len(parents) > 1
    for parent in parents:
        assert resumed.exhaustion.share(parent) == live.share(parent), parent
    initial_share = resumed.exhaustion.share(evo.state.initial.id)  # type: ignore[union-attr]
    assert initial_share is not None and initial_share > 0.9


def test_the_draws_given_up_are_reported(tmp_path: Path) -> None:
    """The run's summary, ``evoforge status`` and its JSON say how many parent draws the
    rule gave up; a resumed session adds its own."""
    import asyncio
    import subprocess
    import sys

    from evoforge.run.events import RunResult
    from evoforge.run.report import run_report
    from evoforge.run.service import _summarize

    db = tmp_path / "run.db"
    storage, run_id, evo, _ = _run(db, 2.0)
    redrawn = evo.state.exhaustion.redrawn
    assert redrawn > 0
    result = RunResult(stop_reason="budget", progress=evo.state.progress,
                       best=evo.state.best, initial=evo.state.initial)

    async def summarize() -> dict:  # type: ignore[type-arg]
        try:
            return await _summarize(evo, result)
        finally:
            await evo.executor.close()  # scoring on the test split restarts workers

    summary = asyncio.run(summarize())
    assert summary["parents_redrawn"] == redrawn
    storage.update_run(run_id, summary=summary)
    record = storage.get_run(evo.run.name)
    assert record is not None
    assert run_report(storage, record)["parents_redrawn"] == redrawn
    proc = subprocess.run([sys.executable, "-m", "evoforge", "status", "--storage", str(db)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert f"parents drawn again: {redrawn}" in proc.stdout
    evo.run = record  # a later session's summary starts from the stored one
    assert asyncio.run(summarize())["parents_redrawn"] == 2 * redrawn
