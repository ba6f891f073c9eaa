"""Local executor: each evaluation in its own OS process on this machine."""

from __future__ import annotations

import asyncio

from evoforge.evaluation.sandbox import EvalJob, EvalOutcome, run_isolated
from evoforge.executors.base import Executor


class LocalExecutor(Executor):
    """Evaluates jobs in separate processes, at most ``max_workers`` concurrently.

    Args:
        max_workers: concurrent evaluation processes.
    """

    def __init__(self, max_workers: int = 1) -> None:
        if max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        self.max_workers = max_workers
        self._slots = asyncio.Semaphore(max_workers)

    async def evaluate(self, job: EvalJob) -> EvalOutcome:
        async with self._slots:
            return await run_isolated(job)
