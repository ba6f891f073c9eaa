"""What the loop tells the outside: progress snapshots, callbacks, the result, errors."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from evoforge.candidate import Candidate, Status
from evoforge.problem.loader import Problem


class RunError(RuntimeError):
    """The run cannot start or continue; the message says why in one line."""


@dataclass
class Progress:
    """A snapshot of a run for progress displays.

    Attributes:
        evaluated: finished evaluations (ok, failed, timeout), initial included.
        own: those this process made in this session (the rest: earlier sessions, or
            other processes joined to the run).
        budget: the evaluation budget.
        ok: evaluations that produced a score.
        failed: evaluations that failed.
        timeouts: evaluations that timed out.
        duplicates: proposals skipped as duplicates.
        rejected: proposals rejected before evaluation (a reply that did not apply,
            or too similar to an earlier candidate).
        best_score: best objective value so far.
        initial_score: the initial program's objective value.
        evals_per_second: evaluations per second in this session.
        running: evaluations in flight.
        requests: model requests in flight.
        ready: proposals waiting for a free evaluator.
    """

    evaluated: int = 0
    own: int = 0
    budget: int = 0
    ok: int = 0
    failed: int = 0
    timeouts: int = 0
    duplicates: int = 0
    rejected: int = 0
    best_score: float | None = None
    initial_score: float | None = None
    evals_per_second: float = 0.0
    running: int = 0
    requests: int = 0
    ready: int = 0


@dataclass
class RunResult:
    """How a run session ended."""

    stop_reason: str
    progress: Progress
    best: Candidate | None
    initial: Candidate | None
    summary: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


class Events:
    """Callbacks from the loop; subclass to display progress. All optional."""

    def progress(self, progress: Progress) -> None:
        """Called after each finished evaluation or duplicate."""

    def new_best(self, candidate: Candidate, progress: Progress) -> None:
        """Called when a candidate beats the best so far."""

    def message(self, text: str) -> None:
        """A line worth showing the user."""


ProgressCallback = Callable[[Progress], None]


def initial_failure(problem: Problem, cand: Candidate) -> str:
    """The one-line stop for an initial program that failed, with the right advice."""
    program = problem.program_path.name
    error = cand.error or "no reason given"
    if cand.status == Status.TIMEOUT:
        advice = (f"make {program} faster or raise evaluator.timeout in "
                  f"{problem.config_name}")
    elif "No module named" in error:
        advice = "install the missing package in the environment evoforge runs in"
    elif error.startswith("importing the evaluator failed"):
        advice = ("the evaluator cannot run here: install what it needs (a tool, a "
                  "package, data) where evoforge runs")
    elif cand.metrics:
        # the evaluator answered, but its metrics do not fit the configuration
        advice = (f"set objective or feature_dimensions in {problem.config_name} "
                  "to metrics the evaluator returns")
    else:
        advice = f"fix {program}"
    return (f"the initial program failed its evaluation: {error}; {advice} "
            "(or start anyway with --allow-failing-initial)")
