"""The shipped Executor conformance suite over the local (fork server, spawn) and Ray executors."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import pytest

from evoforge.executors.base import Executor
from evoforge.executors.local import LocalExecutor
from evoforge.testing.conformance_executor import ExecutorConformance


class TestForkServerExecutor(ExecutorConformance):
    def make_executor(self) -> Executor:
        return LocalExecutor(2, "fork")


class TestSpawnExecutor(ExecutorConformance):
    def make_executor(self) -> Executor:
        return LocalExecutor(2, "spawn")


@pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                    reason="ray is not installed (pip install 'evoforge[ray]')")
class TestRayExecutor(ExecutorConformance):
    @pytest.fixture(autouse=True, scope="class")
    @classmethod
    def local_ray(cls) -> Iterator[None]:
        """One local Ray instance for the class (starting Ray takes seconds), started as
        the executor starts it; each test's executor then joins it."""
        import ray

        from evoforge.executors.ray_executor import RayExecutor

        RayExecutor(2)
        yield
        ray.shutdown()

    def make_executor(self) -> Executor:
        from evoforge.executors.ray_executor import RayExecutor

        return RayExecutor(2)

    def test_a_new_actor_starts_before_the_job_clock(self, tmp_path: Path) -> None:
        """No safety margin: the job gets its own timeout only, and a new actor's start
        (a Ray worker, then its fork server, which imports the evaluator: here a slow
        import) is not taken out of it."""
        from evoforge.executors.ray_executor import RayExecutor
        from evoforge.testing.conformance_executor import EVALUATOR

        evaluator = tmp_path / "evaluator.py"
        evaluator.write_text("import time\ntime.sleep(2.0)\n" + EVALUATOR)
        executor = RayExecutor(2)
        executor.safety_margin = 0.0
        self.make_executor = lambda: executor  # type: ignore[method-assign]
        [(outcome, seconds)] = self.run_jobs([self.job(evaluator, "    return 1.5\n",
                                                       timeout=1.0)])
        assert outcome.status == "ok", (outcome.error, seconds)
        assert outcome.metrics == {"combined_score": 1.5}
        assert seconds > 2.0  # the import was waited for
