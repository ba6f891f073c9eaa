"""The run spec: a session's limits resolved once; resume extends a run through the service."""

from __future__ import annotations

from pathlib import Path

import pytest

from evoforge.config import RunConfig
from evoforge.problem import load_problem
from evoforge.run.events import RunError
from evoforge.run.service import create_run, execute, extend_run
from evoforge.run.spec import RunSpec
from evoforge.storage import open_storage
from evoforge.testing import write_problem

PROGRAM = """# EVOLVE-BLOCK-START
def value():
    return 1.0
# EVOLVE-BLOCK-END
"""


def _folder(tmp_path: Path, **config: object) -> Path:
    return write_problem(tmp_path / "one", PROGRAM, config=config)


def test_given_values_win_over_the_config_and_the_rest_comes_from_it(tmp_path: Path) -> None:
    folder = _folder(tmp_path, max_time=30.0, target=2.0, workers=3,
                     llm={"max_cost": 1.5, "max_total_tokens": 900})
    storage = open_storage(str(tmp_path / "runs.db"))
    run = create_run(storage, load_problem(folder), budget=7)
    config = RunConfig.model_validate(run.config)
    spec = RunSpec.of(run, config)
    assert spec == RunSpec(budget=7, workers=3, max_time=30.0, target=2.0, max_cost=1.5,
                           max_tokens=900)
    given = RunSpec.of(run, config, workers=1, max_time=5.0, target=4.0, max_cost=0.0,
                       max_tokens=10)
    assert given == RunSpec(budget=7, workers=1, max_time=5.0, target=4.0, max_cost=0.0,
                            max_tokens=10)


@pytest.mark.parametrize(("flag", "value", "message"), [
    ("max_cost", -1.0, "--max-cost must be at least 0"),
    ("max_tokens", 0, "--max-tokens must be at least 1"),
    ("max_time", 0.0, "--time must be more than 0"),
])
def test_values_out_of_range_are_named_as_their_flags(tmp_path: Path, flag: str,
                                                      value: float, message: str) -> None:
    storage = open_storage(str(tmp_path / "runs.db"))
    run = create_run(storage, load_problem(_folder(tmp_path)), budget=3)
    with pytest.raises(RunError, match=message):
        RunSpec.of(run, RunConfig.model_validate(run.config), **{flag: value})


@pytest.mark.parametrize(("given", "message"), [
    ({"budget": 0}, "--budget must be at least 1, not 0"),
    ({"budget": -1}, "--budget must be at least 1, not -1"),
    ({"workers": 0}, "--workers must be at least 1, not 0"),
])
def test_values_out_of_range_are_refused_before_a_run_is_stored(
        tmp_path: Path, given: dict[str, int], message: str) -> None:
    storage = open_storage(str(tmp_path / "runs.db"))
    with pytest.raises(RunError) as info:
        create_run(storage, load_problem(_folder(tmp_path)), **given)  # type: ignore[arg-type]
    assert str(info.value) == message
    assert storage.list_runs() == []


def test_caps_given_once_are_stored_and_kept_by_a_later_session(tmp_path: Path) -> None:
    storage = open_storage(str(tmp_path / "runs.db"))
    run = create_run(storage, load_problem(_folder(tmp_path)), budget=2)
    config = RunConfig.model_validate(run.config)
    RunSpec.of(run, config, max_cost=0.25, max_tokens=500).store_caps(storage, run, config)
    stored = storage.get_run(run.name)
    assert stored is not None
    later = RunSpec.of(stored, RunConfig.model_validate(stored.config))
    assert (later.max_cost, later.max_tokens) == (0.25, 500)


def test_resume_budget_adds_to_what_was_evaluated(tmp_path: Path) -> None:
    storage = open_storage(str(tmp_path / "runs.db"))
    run = create_run(storage, load_problem(_folder(tmp_path)), budget=3, seed=1)
    result = execute(storage, run, summarize=False)
    assert result.progress.evaluated == 3
    extended = extend_run(storage, run, 4)
    assert extended.budget == 7
    result = execute(storage, extended, summarize=False)
    assert result.progress.evaluated == 7 and result.stop_reason == "budget"
    with pytest.raises(RunError, match="at least 1"):
        extend_run(storage, extended, 0)
