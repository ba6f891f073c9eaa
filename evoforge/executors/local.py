"""Local executor: each evaluation in its own OS process on this machine."""

from __future__ import annotations

import asyncio
from typing import Literal

from evoforge.evaluation.sandbox import EvalJob, EvalOutcome, run_isolated
from evoforge.evaluation.workers import WorkerPool
from evoforge.executors.base import Executor


class LocalExecutor(Executor):
    """Evaluates jobs in separate processes, at most ``max_workers`` concurrently.

    Args:
        max_workers: concurrent evaluations.
        isolation: ``fork`` (default): long-lived workers import the evaluator once
            and fork a fresh child per candidate; ``spawn``: a fresh interpreter per
            candidate (slower; for evaluators that cannot survive a fork).
    """

    def __init__(self, max_workers: int = 1, isolation: Literal["fork", "spawn"] = "fork") -> None:
        if max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        self.max_workers = max_workers
        self.isolation = isolation
        self._slots = asyncio.Semaphore(max_workers)
        self._pool = WorkerPool(max_workers) if isolation == "fork" else None

    async def evaluate(self, job: EvalJob) -> EvalOutcome:
        async with self._slots:
            if self._pool is None:
                return await run_isolated(job)
            return await self._pool.run(job)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
