"""The base of the Storage conformance suite: the opener, fixtures and helpers its tests use.

:class:`StorageFixtures` is what the two halves of
:class:`~evoforge.testing.conformance_storage.StorageConformance` share; users subclass
that class, not this one.
"""

from __future__ import annotations

import importlib
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from evoforge.candidate import Status
from evoforge.storage.base import Storage

PROCESS_TIMEOUT = 180.0
"""Seconds the worker processes of a test may take before the test fails (generous: ten
interpreters starting at once on a loaded two-core machine took over a minute)."""


def load_opener(opener: str) -> Callable[[str], Storage]:
    """The storage-opening callable named ``"module:function"``."""
    module, _, name = opener.partition(":")
    func: Callable[[str], Storage] = getattr(importlib.import_module(module), name)
    return func


class StorageFixtures:
    """Fixtures and helpers of the Storage conformance tests.

    Attributes:
        opener: ``"module:function"`` that opens a storage from a URL.
        processes: worker processes of the multi-process tests.
    """

    opener = "evoforge.storage:open_storage"
    processes = 4

    @pytest.fixture
    def storage(self, storage_url: str) -> Iterator[Storage]:
        """The storage at ``storage_url``, closed after the test."""
        s = load_opener(self.opener)(storage_url)
        yield s
        s.close()

    @pytest.fixture
    def prefix(self) -> str:
        """A run-name prefix unique to the test."""
        return f"conf-{uuid.uuid4().hex[:12]}-"

    @staticmethod
    def new_run(storage: Storage, prefix: str, suffix: str = "run", **kw: Any) -> int:
        args: dict[str, Any] = {"problem": "demo", "problem_path": "/tmp/demo",
                                "config": {"max_iterations": 5}, "seed": 1, "budget": 10}
        args.update(kw)
        return storage.create_run(name=prefix + suffix, **args).id

    @staticmethod
    def add(storage: Storage, run_id: int, seq: int, *, code: str | None = None,
            code_hash: str | None = None, status: Status = Status.PENDING,
            operator: str = "mutate", **kw: Any) -> int:
        return storage.add_candidate(
            run_id, seq=seq, island=seq % 2, parent_ids=[] if seq == 0 else [seq - 1],
            operator=operator, code=code or f"x = {seq}\n", code_hash=code_hash or f"h{seq}",
            status=status, **kw)

    def add_ok(self, storage: Storage, run_id: int, seq: int, fitness: float | None,
               **kw: Any) -> int:
        cid = self.add(storage, run_id, seq, **kw)
        storage.finish_candidate(cid, status=Status.OK, score=fitness, fitness=fitness,
                                 metrics={"combined_score": fitness})
        return cid
