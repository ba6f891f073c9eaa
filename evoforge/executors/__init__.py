"""Executors: where evaluations run (local processes; Ray later)."""

from evoforge.executors.base import Executor
from evoforge.executors.local import LocalExecutor

__all__ = ["Executor", "LocalExecutor"]
