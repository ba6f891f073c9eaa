"""The built-in problem library: metadata, and scoring any program on a problem."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evoforge.config import ConfigError, read_yaml_mapping
from evoforge.evaluation.sandbox import EvalOutcome, check_metrics, run_isolated
from evoforge.problem.loader import Problem, ProblemError

META_FILE = "meta.yaml"


@dataclass
class ProblemMeta:
    """What ``meta.yaml`` says of a built-in problem.

    Attributes:
        title: one-line name.
        summary: what is evolved and how it is scored, one line.
        metric: the objective metric.
        direction: ``maximize`` or ``minimize``.
        source: where the problem comes from.
        tolerance: absolute tolerance the stated scores are checked with; for
            timing-based scores, ``relative`` is used instead.
        relative: relative tolerance for timing-based scores (None otherwise).
        baselines: name -> {"train": score, "test": score}.
    """

    title: str
    summary: str
    metric: str = "combined_score"
    direction: str = "maximize"
    source: str = ""
    tolerance: float = 1e-3
    relative: float | None = None
    baselines: dict[str, dict[str, float]] = field(default_factory=dict)


def read_meta(problem_dir: Path) -> ProblemMeta | None:
    """The problem's ``meta.yaml``, or None if it has none."""
    path = problem_dir / META_FILE
    if not path.exists():
        return None
    try:
        data = read_yaml_mapping(path)
    except ConfigError as exc:
        raise ProblemError(str(exc)) from None
    known = set(ProblemMeta.__dataclass_fields__)
    unknown = set(data) - known
    if unknown:
        raise ProblemError(f"{path}: unknown keys {sorted(unknown)}")
    try:
        return ProblemMeta(**data)
    except TypeError as exc:
        raise ProblemError(f"{path}: {exc}") from None


def score_program(problem: Problem, code: str, function: str = "evaluate_test",
                  timeout: float | None = None) -> EvalOutcome:
    """Evaluate ``code`` with the problem's ``function`` in an isolated process."""
    if function not in problem.evaluator_functions:
        raise ProblemError(f"{problem.evaluator_path}: has no {function}()")
    # the run's own job (limits, file suffix): a score here is a score in a run
    from evoforge.run.assess import eval_job

    job = eval_job(problem, problem.config, code, function,
                   timeout or problem.config.evaluator.test_timeout)
    outcome = asyncio.run(run_isolated(job))
    if outcome.status == "ok":
        reason = check_metrics(outcome.metrics)
        if reason is not None:
            return EvalOutcome("failed", outcome.metrics, outcome.artifacts, reason,
                               outcome.seconds)
    return outcome


def objective(problem: Problem, metrics: dict[str, Any]) -> float | None:
    """The problem's objective value in ``metrics``, as a run computes it (None when
    absent): the configured metric, or OpenEvolve's ``combined_score`` fallback."""
    from evoforge.run.assess import problem_objective

    return problem_objective(problem, metrics)
