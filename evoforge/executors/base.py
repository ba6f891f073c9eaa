"""The executor plug point: where evaluations run."""

from __future__ import annotations

from abc import ABC, abstractmethod

from evoforge.evaluation.sandbox import EvalJob, EvalOutcome


class Executor(ABC):
    """Runs evaluation jobs, up to ``max_workers`` at a time.

    Contract:
        * :meth:`evaluate` returns an :class:`EvalOutcome` for every job; faults
          of the candidate (crash, hang, memory) are outcomes, not exceptions.
        * A job never runs longer than its timeout (plus a small grace), and
          nothing it started is left running when the outcome is returned.
        * Cancelling the awaiting task stops the evaluation and its processes.
        * :meth:`close` releases every resource; the executor is unusable after.
    """

    max_workers: int

    @abstractmethod
    async def evaluate(self, job: EvalJob) -> EvalOutcome:
        """Run one job and return its outcome."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources."""
