"""Start, resume and summarize runs: the glue between CLI, problem, storage and loop."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import signal
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from evoforge.config import LLMConfig, LLMModelConfig, ProblemFiles, RunConfig, first_error
from evoforge.executors.base import Executor
from evoforge.executors.local import LocalExecutor
from evoforge.problem.loader import Problem, ProblemError, load_problem
from evoforge.proposers.llm.backend import Backend
from evoforge.proposers.llm.prices import unpriced
from evoforge.proposers.llm.proposer import LLMProposer, parse_llm_spec, specs_from_config
from evoforge.proposers.llm.types import LLMError
from evoforge.proposers.mutation import MutationProposer
from evoforge.run.controller import Events, Evolution, RunError, RunResult
from evoforge.run.order import check_lag
from evoforge.run.report import evaluated_of
from evoforge.run.shared import RunSync
from evoforge.run.spec import RunSpec
from evoforge.storage.base import RunRecord, Storage, StorageError


def default_run_name(storage: Storage, problem: str) -> str:
    """``<problem>-<n>`` with the smallest n not taken."""
    taken = {r.name for r in storage.list_runs()}
    n = 1
    while f"{problem}-{n}" in taken:
        n += 1
    return f"{problem}-{n}"


def open_run(storage: Storage, problem: Problem, *, join: bool = False,
             run_name: str | None = None, **options: Any) -> RunRecord:
    """Create a run; with ``join``, join the run ``run_name`` if it exists already.

    Several processes started at once with ``join`` share one run: the first creates it
    (with ``options``, as :func:`create_run`), the others find it, including one that lost
    the race to create it.

    Raises:
        RunError: the run to join holds another problem, or it cannot be created.
        StorageError: the name is taken and ``join`` is not set.
    """
    def existing() -> RunRecord | None:
        record = storage.get_run(run_name) if run_name is not None else None
        if record is not None and (record.problem != problem.name
                                   or Path(record.problem_path) != Path(problem.path)):
            raise RunError(f"run {run_name} exists with problem {record.problem} "
                           f"({record.problem_path}); --join needs the same problem")
        return record

    if join and (record := existing()) is not None:
        return record
    if join and problem.config.ordered_lag:
        check_lag(problem.config.ordered_lag, 1, with_model=False, joined=True)
    try:
        return create_run(storage, problem, run_name=run_name, **options)
    except StorageError:
        if join and (record := existing()) is not None:
            return record  # another process created it just now
        raise


_OPTIONS = {"max_iterations": "--budget", "random_seed": "--seed", "workers": "--workers"}
"""The config keys that :func:`create_run`'s arguments set, by the option that sets them."""


def create_run(storage: Storage, problem: Problem, *, run_name: str | None = None,
               budget: int | None = None, seed: int | None = None,
               workers: int | None = None, llm: list[str] | None = None,
               no_llm: bool = False) -> RunRecord:
    """Create a run for ``problem``; command-line values override its config.

    ``llm`` holds ``--llm`` specs; they replace the config's models and are stored
    with the run, so ``resume`` uses the same models. ``no_llm`` drops the config's
    models (a model-free run).
    """
    overrides: dict[str, Any] = {}
    if no_llm:
        overrides["llm"] = problem.config.llm.model_copy(update={"models": []})
    if llm:
        try:
            specs = [parse_llm_spec(spec) for spec in llm]
        except ValueError as exc:
            raise RunError(str(exc)) from None
        # only what --llm set: the config's llm section fills the rest, as for its own
        # models (max_concurrency from llm.max_concurrency, else the loop decides)
        models = [LLMModelConfig.model_validate(s.model_dump(exclude_unset=True))
                  for s in specs]
        overrides["llm"] = problem.config.llm.model_copy(update={"models": models})
    if budget is not None:
        overrides["max_iterations"] = budget
    if seed is not None:
        overrides["random_seed"] = seed
    if workers is not None:
        overrides["workers"] = workers
    if not problem.builtin:
        # resume finds the same files, whatever their names
        overrides["problem_files"] = ProblemFiles(
            program=str(problem.program_path), evaluator=str(problem.evaluator_path),
            config=str(problem.config_path) if problem.config_path else None)
    try:  # model_copy does not validate: --budget 0 or --workers 0 would be stored as given
        config = RunConfig.model_validate(
            problem.config.model_copy(update=overrides).model_dump())
    except ValidationError as exc:
        error = exc.errors()[0]
        key = str(error["loc"][0]) if error["loc"] else ""
        least = (error.get("ctx") or {}).get("ge")
        if key in _OPTIONS and key in overrides and least is not None:
            # named as typed, as RunSpec names --time or --max-cost
            raise RunError(f"{_OPTIONS[key]} must be at least {least}, "
                           f"not {overrides[key]}") from None
        raise RunError(first_error(exc)) from None
    if not problem.is_python:
        if not config.llm.models:
            raise RunError(
                f"{problem.program_path.name}: the model-free operators mutate Python only "
                f"and this program is {problem.language}; give --llm MODEL or models in "
                f"{problem.config_name}")
        # only the model writes the program; Python operators would only fail on it
        config = config.model_copy(update={"llm": LLMConfig.model_validate(
            {**config.llm.model_dump(), "mutation_operators": False})})
    if config.random_seed is None:
        # OpenEvolve's "no seed": draw one, and store it so the run can be replayed
        config = config.model_copy(update={"random_seed": secrets.randbelow(2**31)})
    assert config.random_seed is not None
    check_lag(config.ordered_lag, config.workers, with_model=bool(config.llm.models),
              joined=False)
    try:  # a bad mutation or llm section fails here, before a run is stored
        MutationProposer(problem.template, config.mutation)
        specs_from_config(config)
    except (ValueError, ValidationError) as exc:
        raise RunError(f"{problem.path / problem.config_name}: {exc}".splitlines()[0]) from None
    return storage.create_run(
        name=run_name or default_run_name(storage, problem.name),
        problem=problem.name,
        problem_path=str(problem.path),
        config=config.model_dump(mode="json"),
        seed=config.random_seed,
        budget=config.max_iterations,
    )


def problem_of(run: RunRecord) -> Problem:
    """Load the problem a run was made for, from the folder it was loaded from."""
    path = Path(run.problem_path)
    files = (run.config or {}).get("problem_files") or {}
    try:
        if files.get("program"):
            config = files.get("config")
            return load_problem(path, program=Path(files["program"]),
                                evaluator=Path(files["evaluator"]),
                                config=Path(config) if config else None)
        return load_problem(path if path.is_dir() else run.problem)
    except ProblemError as exc:
        raise RunError(f"run {run.name!r}: its problem cannot be loaded: {exc}") from None


async def _summarize(evo: Evolution, result: RunResult) -> dict[str, Any]:
    """Score the best and initial programs on the test split, and the baselines."""
    run = evo.storage.get_run(evo.run.name) or evo.run
    summary: dict[str, Any] = dict(run.summary or {})
    summary["stop_reason"] = result.stop_reason
    best, initial = result.best, result.initial
    summary["best_id"] = best.id if best else None
    summary["best_score"] = best.score if best else None
    summary["initial_score"] = initial.score if initial else None
    # parent draws given up because most of the parent's recent children were wasted
    # (database.exhausted_avoidance), over the sessions that reached this summary
    summary["parents_redrawn"] = (int(summary.get("parents_redrawn") or 0)
                                  + evo.state.exhaustion.redrawn)
    if result.stop_reason == "interrupted":
        return summary
    test: dict[str, Any] = dict(summary.get("test") or {})
    if evo.problem.has_test_split and best is not None:
        if test.get("best_id") != best.id:
            test["best_id"] = best.id
            test["best"] = await evo.score_test(best)
        if initial is not None and "initial" not in test:
            test["initial"] = await evo.score_test(initial)
        summary["test"] = test
    if evo.problem.baselines and "baselines" not in summary:
        baselines: dict[str, Any] = {}
        for name, path in evo.problem.baselines.items():
            code = path.read_text()
            entry = {"train": await evo.score_code(code, "evaluate")}
            if evo.problem.has_test_split:
                entry["test"] = await evo.score_code(code, "evaluate_test")
            baselines[name] = entry
        summary["baselines"] = baselines
    return summary


def extend_run(storage: Storage, run: RunRecord, evaluations: int) -> RunRecord:
    """Give ``run`` ``evaluations`` more than it has evaluated so far (``resume --budget``).

    Raises:
        RunError: ``evaluations`` is below 1.
    """
    if evaluations < 1:
        raise RunError(f"--budget must be at least 1 evaluation to add, not {evaluations}")
    done = evaluated_of(storage.counts(run.id))
    storage.update_run(run.id, budget=done + evaluations)
    return storage.get_run(run.name) or run


EXECUTORS = ("local", "ray")
"""The executors :func:`make_executor` knows, by name."""


def check_executor(name: str) -> None:
    """Refuse an executor name :func:`make_executor` does not know.

    Raises:
        RunError: ``name`` is not one of :data:`EXECUTORS`.
    """
    if name not in EXECUTORS:
        raise RunError(f"unknown executor {name!r}; use {' or '.join(EXECUTORS)}")


def make_executor(name: str, workers: int, config: RunConfig,
                  ray_address: str | None = None) -> Executor:
    """The executor called ``name`` (``local`` or ``ray``)."""
    check_executor(name)
    if name == "ray":
        from evoforge.executors.ray_executor import RayExecutor

        try:
            return RayExecutor(workers, ray_address)
        except RuntimeError as exc:
            raise RunError(str(exc)) from None
    return LocalExecutor(workers, config.evaluator.isolation)


def execute(storage: Storage, run: RunRecord, *, workers: int | None = None,
            max_time: float | None = None, target: float | None = None,
            events: Events | None = None, summarize: bool = True,
            executor: str = "local", ray_address: str | None = None,
            max_cost: float | None = None, max_tokens: int | None = None,
            join: bool = False) -> RunResult:
    """Run (or continue) ``run`` until it stops; Ctrl-C stops it cleanly.

    With ``join`` this process shares the run with any others joined to it
    (:class:`~evoforge.run.shared.RunSync`).

    The first SIGINT stops proposing and cancels running evaluations (they stay
    pending and are evaluated first on resume); finished work is already stored.

    ``max_cost`` (dollars) and ``max_tokens`` (model tokens, prompt and completion,
    for the whole run) are stored with the run, so a later resume keeps them unless
    it gives new ones. Where a model's price is unknown, ``max_cost`` says so at
    start through ``events.message``.
    """
    problem = problem_of(run)
    config = RunConfig.model_validate(run.config)
    spec = RunSpec.of(run, config, workers=workers, max_time=max_time, target=target,
                      max_cost=max_cost, max_tokens=max_tokens)
    config = spec.store_caps(storage, run, config)

    specs = specs_from_config(config)
    if spec.max_cost is not None and specs and unpriced(specs) and events is not None:
        events.message(
            f"--max-cost {spec.max_cost:g} cannot be enforced: unknown price for "
            f"{', '.join(unpriced(specs))}; give it as --llm NAME@IN/OUT or price_in/"
            "price_out in config.yaml, or cap tokens with --max-tokens")

    async def main() -> RunResult:
        backend: Backend | None = None
        proposer: LLMProposer | None = None
        if specs:
            # fail fast: a missing key or an unreachable endpoint stops us before any work
            try:
                backend = Backend(specs)
                await backend.check()
            except LLMError as exc:
                if backend is not None:
                    await backend.close()
                raise RunError(str(exc)) from None
            proposer = LLMProposer(problem.template, config, specs, backend, problem.path)
        runner = make_executor(executor, spec.workers, config, ray_address)
        evo = Evolution(problem, storage, run, runner, config, spec=spec, events=events,
                        proposer=proposer, sync=RunSync(storage, run) if join else None)
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGINT, evo.request_stop, "interrupted")
            loop.add_signal_handler(signal.SIGTERM, evo.request_stop, "interrupted")
        try:
            result = await evo.run_session()
            if summarize:
                if events is not None and result.stop_reason != "interrupted":
                    events.message("scoring the best program on the test split and baselines")
                result.summary = await _summarize(evo, result)
                storage.update_run(run.id, summary=result.summary)
            return result
        finally:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(signal.SIGINT)
                loop.remove_signal_handler(signal.SIGTERM)
            await runner.close()
            if backend is not None:
                await backend.close()

    return asyncio.run(main())
