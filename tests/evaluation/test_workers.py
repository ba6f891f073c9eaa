"""The fork-server workers' parent side: what a worker leaves behind once closed."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import sys
from pathlib import Path
from typing import Any

from evoforge.evaluation.workers import ForkServer

EVALUATOR = Path(__file__).resolve().parents[1] / "fixtures" / "sandbox" / "evaluator.py"


def _unraisable_after(coroutine: Any) -> list[Any]:
    """Run ``coroutine`` to the end of its loop, collect garbage, return what could not raise."""
    gc.collect()  # what earlier tests left is theirs, not this one's
    caught: list[Any] = []
    previous = sys.unraisablehook
    sys.unraisablehook = caught.append
    try:
        asyncio.run(coroutine)
        gc.collect()
    finally:
        sys.unraisablehook = previous
    return caught


def test_a_worker_that_died_is_closed_without_leaving_its_pipes_open() -> None:
    """A worker killed from outside, then closed: nothing fails once the loop is gone.

    Its transport, left open, would be closed by a finalizer at some later garbage
    collection, after the loop closed, and raise there (inside whatever code was running).
    """
    async def main() -> None:
        server = ForkServer(EVALUATOR)
        await server.start()
        assert server.proc is not None
        os.kill(server.proc.pid, signal.SIGKILL)
        await asyncio.wait_for(server.proc.wait(), timeout=10)
        assert not server.alive
        await server.close()

    caught = _unraisable_after(main())
    assert [str(item.exc_value) for item in caught] == []


def test_a_live_worker_is_closed_without_leaving_its_pipes_open() -> None:
    async def main() -> None:
        server = ForkServer(EVALUATOR)
        await server.start()
        assert server.alive
        await server.close()
        assert not server.alive

    caught = _unraisable_after(main())
    assert [str(item.exc_value) for item in caught] == []


def test_candidates_are_born_in_the_workers_pids_cgroup() -> None:
    """The worker enters its pids cgroup once, so each candidate starts inside it (and
    under its process cap) without being moved in; closing the worker removes it."""
    from evoforge.evaluation.sandbox import EvalJob

    code = ("def run():\n"
            "    with open('/proc/self/cgroup') as f:\n"
            "        lines = f.read().splitlines()\n"
            "    return {'inside': float(any('evoforge-' in line for line in lines))}\n")

    async def main() -> tuple[str | None, Any]:
        server = ForkServer(EVALUATOR)
        await server.start()
        try:
            outcome = await server.run(EvalJob(code=code, evaluator_path=EVALUATOR))
        finally:
            await server.close()
        return server.info.get("cgroup"), outcome

    cgroup, outcome = asyncio.run(main())
    if cgroup is None:
        import pytest
        pytest.skip("no writable pids cgroup on this machine")
    assert outcome.status == "ok", outcome.error
    assert outcome.metrics == {"inside": 1.0}
    assert not Path(cgroup).exists()
