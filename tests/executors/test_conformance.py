"""The shipped Executor conformance suite over the local (fork server, spawn) and Ray executors."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator

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
        """One local Ray instance for the class (starting Ray takes seconds).

        Ray gives its raylet 30 s to register, which a 2-core machine under heavy load
        can miss: one more try then, after a clean shutdown.
        """
        import ray

        for attempt in (1, 2):
            try:
                ray.init(address="local", num_cpus=2, include_dashboard=False,
                         log_to_driver=False)
                break
            except Exception as exc:  # ray raises a bare Exception for this timeout
                ray.shutdown()
                if attempt == 2 or "timed out during startup" not in str(exc):
                    raise
        yield
        ray.shutdown()

    def make_executor(self) -> Executor:
        from evoforge.executors.ray_executor import RayExecutor

        return RayExecutor(2)
