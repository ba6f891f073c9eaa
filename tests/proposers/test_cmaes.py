"""Tests of the CMA-ES tuner of an elite's constants (the ``cmaes`` operator)."""

from __future__ import annotations

import random
import subprocess
import sys

from evoforge.candidate import Candidate, Status, normalized_hash
from evoforge.proposers.mutation.cmaes import CMATuner
from evoforge.proposers.mutation.operators import numeric_literals


def _candidate(cid: int, code: str, fitness: float) -> Candidate:
    return Candidate(id=cid, seq=cid, island=0, parent_ids=(), operator="initial", code=code,
                     code_hash=normalized_hash(code), status=Status.OK, fitness=fitness)


def _generation(tuner: CMATuner, parent: Candidate,
                rng: random.Random) -> list[tuple[list[str], dict[str, object]]]:
    """Every proposal of the current generation (until the tuner waits for results)."""
    out = []
    for _ in range(100):
        made = tuner.propose(parent, [parent.code], rng)
        if made is None:
            break
        regions, meta, base_id = made
        assert base_id == parent.id
        out.append((regions, meta))
    return out


def test_only_an_elite_starts_a_strategy() -> None:
    rng = random.Random(1)
    tuner = CMATuner()
    tuner.observe(5.0)
    weak = _candidate(1, "x = 3.0\n", 1.0)
    assert tuner.propose(weak, [weak.code], rng) is None
    assert tuner.strategies == 0
    elite = _candidate(2, "x = 2.0\n", 5.0)
    assert tuner.propose(elite, [elite.code], rng) is not None
    assert tuner.strategies == 1


def test_a_plateau_ends_the_strategy_and_its_base_is_not_tuned_again() -> None:
    rng = random.Random(2)
    tuner = CMATuner(max_generations=50)
    parent = _candidate(1, "x = 3.0\ny = 0.5\n", 0.0)
    batch = _generation(tuner, parent, rng)
    assert len(batch) > 1
    for _, meta in batch:
        tuner.tell(meta, 0.0)  # every child scores the same: a plateau
    assert tuner.generations == 1
    assert tuner.propose(parent, [parent.code], rng) is None  # finished, and tuned before
    other = _candidate(2, "x = 1.0\ny = 0.5\n", 0.0)
    assert tuner.propose(other, [other.code], rng) is not None
    assert tuner.strategies == 2


def test_tuning_moves_a_constant_towards_the_optimum() -> None:
    rng = random.Random(3)
    tuner = CMATuner(max_generations=30)
    target = 1.3

    def fitness(regions: list[str]) -> float:
        (x,) = numeric_literals(regions)
        return -(x - target) ** 2

    parent = _candidate(1, "x = 3.0\n", fitness(["x = 3.0\n"]))
    best = parent.fitness
    assert best is not None
    for _ in range(30):
        batch = _generation(tuner, parent, rng)
        if not batch:
            break
        for regions, meta in batch:
            value = fitness(regions)
            tuner.observe(value)
            tuner.tell(meta, value)
            best = max(best, value)
    assert best > -0.01, best  # from (3.0 - 1.3)^2 = 2.89 to within 0.1 of the optimum


def test_no_warning_when_matplotlib_is_missing() -> None:
    # cma warns at import when matplotlib is absent, as after `make run`'s install;
    # that warning reached the user's terminal in the middle of a run's progress
    code = (
        "import random, sys, warnings\n"
        "sys.modules['matplotlib'] = None  # import matplotlib now raises ImportError\n"
        "sys.modules['matplotlib.pyplot'] = None\n"
        "warnings.simplefilter('error')\n"
        "from evoforge.candidate import Candidate, Status, normalized_hash\n"
        "from evoforge.proposers.mutation.cmaes import CMATuner\n"
        "code = 'x = 2.0\\n'\n"
        "parent = Candidate(id=1, seq=1, island=0, parent_ids=(), operator='initial', "
        "code=code, code_hash=normalized_hash(code), status=Status.OK, fitness=1.0)\n"
        "tuner = CMATuner()\n"
        "assert tuner.propose(parent, [code], random.Random(1)) is not None\n"
        "assert 'cma' in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""


def test_an_int_literal_at_zero_is_tuned_too() -> None:
    """An int's step is scaled by at least 1: a switch such as ``ROUNDS = 0`` moves (it
    stayed 0 when the step was 0.1 times the solution's entry)."""
    rng = random.Random(3)
    tuner = CMATuner()
    parent = _candidate(1, "ROUNDS = 0\nrate = 0.5\n", 1.0)
    rounds = set()
    for _ in range(3):
        batch = _generation(tuner, parent, rng)
        for regions, meta in batch:
            rounds.add(numeric_literals(regions)[0])
            tuner.tell(meta, 1.0 + 0.1 * numeric_literals(regions)[0])
    assert rounds - {0}, rounds
    assert all(isinstance(r, int) for r in rounds)
