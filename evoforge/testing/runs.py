"""One helper for tests that drive the real loop: create a run, evolve it, close up."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from evoforge.config import RunConfig
from evoforge.executors.local import LocalExecutor
from evoforge.problem import Problem, load_problem
from evoforge.proposers.base import Proposer
from evoforge.run import Evolution, create_run
from evoforge.storage import SQLStorage

VALUE_EVALUATOR = """import importlib.util


def evaluate(program_path):
    spec = importlib.util.spec_from_file_location("candidate", program_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return {"combined_score": float(module.value())}
"""
"""An evaluator whose score is what the program's ``value()`` returns."""


def write_problem(folder: Path, program: str, evaluator: str = VALUE_EVALUATOR,
                  config: dict[str, Any] | None = None) -> Path:
    """Make a problem folder: ``initial_program.py``, ``evaluator.py``, a config.yaml.

    Returns:
        ``folder``, created with its parents.
    """
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "initial_program.py").write_text(program)
    (folder / "evaluator.py").write_text(evaluator)
    (folder / "config.yaml").write_text(yaml.safe_dump(config or {}))
    return folder


def run_problem(folder: Path, db: Path, *, budget: int,
                proposer: Callable[[Problem], Proposer] | None = None,
                seed: int | None = None, workers: int = 1,
                mutation: dict[str, Any] | None = None,
                database: dict[str, Any] | None = None,
                settings: dict[str, Any] | None = None) -> tuple[SQLStorage, int, Evolution]:
    """Run the problem in ``folder`` for ``budget`` evaluations on local workers.

    Args:
        folder: the problem folder.
        db: the SQLite file the run is stored in.
        budget: evaluations, the initial program included.
        proposer: makes the proposer from the loaded problem (default: model-free).
        seed: the run's seed (default: the problem's config).
        workers: concurrent evaluations.
        mutation: overrides of the config's ``mutation`` section.
        database: overrides of the config's ``database`` section.
        settings: overrides of the config's top-level settings (``ordered_lag``, ...).

    Returns:
        The storage, the run's id and the finished :class:`Evolution`; its executor is
        closed whatever happened.
    """
    problem = load_problem(folder)
    storage = SQLStorage(str(db))
    record = create_run(storage, problem, budget=budget, seed=seed)
    config = RunConfig.model_validate({**record.config, **(settings or {})})
    for section, overrides in (("mutation", mutation), ("database", database)):
        if overrides:
            config = config.model_copy(update={
                section: getattr(config, section).model_copy(update=overrides)})
    evo = Evolution(problem, storage, record, LocalExecutor(workers), config,
                    proposer=proposer(problem) if proposer is not None else None)

    async def main() -> None:
        try:
            await evo.run_session()
        finally:
            await evo.executor.close()

    asyncio.run(main())
    return storage, record.id, evo
