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
