"""The stop rule, alone and through config.yaml's max_time and target."""

from __future__ import annotations

import time
from pathlib import Path

from evoforge.run.stop import MAX_IDLE_PROPOSALS, StopRule
from evoforge.testing import run_problem, write_problem

PROGRAM = """# EVOLVE-BLOCK-START
def value():
    x = 1.0
    y = 2.0
    return x + y
# EVOLVE-BLOCK-END
"""


def test_stop_rule_names_the_first_limit_reached() -> None:
    rule = StopRule(budget=10, target=5.0, maximize=False, max_cost=1.0, max_tokens=100)
    go = {"evaluated": 3, "best_score": 6.0, "cost": 0.5, "tokens": 10, "idle": 0}
    assert rule.reason(**go) is None
    assert rule.reason(**{**go, "evaluated": 10}) == "budget"
    assert rule.reason(**{**go, "best_score": 5.0}) == "target"  # minimizing
    assert rule.reason(**{**go, "cost": 1.0}) == "cost"
    assert rule.reason(**{**go, "tokens": 100}) == "tokens"
    assert rule.reason(**{**go, "idle": MAX_IDLE_PROPOSALS}).startswith("stalled")
    assert StopRule(10, deadline=time.monotonic() - 1).reason(**go) == "time"


def problem(tmp_path: Path, **config: float) -> Path:
    return write_problem(tmp_path / "three", PROGRAM, config=config)


def test_config_target_stops_the_run(tmp_path: Path) -> None:
    _, _, evo = run_problem(problem(tmp_path, target=3.0), tmp_path / "r.db",
                            budget=10_000)
    assert evo.progress.evaluated == 1  # the initial program already reaches 3.0
    assert evo.progress.best_score == 3.0


def test_config_max_time_stops_the_run(tmp_path: Path) -> None:
    started = time.monotonic()
    _, _, evo = run_problem(problem(tmp_path, max_time=1.5), tmp_path / "r.db",
                            budget=1_000_000)
    assert evo.progress.evaluated < 1_000_000
    assert time.monotonic() - started < 30
    assert evo.spec.max_time == 1.5
