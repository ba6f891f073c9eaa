"""Parent side of the fork-server workers (see :mod:`evoforge.evaluation.forkserver`)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
import weakref
from pathlib import Path
from typing import Any

from evoforge.evaluation.forkserver import remove_cgroup
from evoforge.evaluation.sandbox import (
    _CHILD_ENV,
    EvalJob,
    EvalOutcome,
    interpret,
    make_workdir,
    read_capped,
)

log = logging.getLogger(__name__)

START_TIMEOUT = 120.0
"""Seconds a worker may take to import the evaluator before it counts as broken."""
KILL_GRACE = 5.0
"""Seconds to wait for the worker's report once a timed-out child was killed."""

_warned: set[str] = set()


def warn_once(key: str, message: str) -> None:
    """Log ``message`` once per process (for facts about the machine, not a candidate)."""
    if key not in _warned:
        _warned.add(key)
        log.warning(message)


class WorkerError(RuntimeError):
    """A worker process died or stopped answering."""


class ForkServer:
    """One long-lived worker process for one evaluator; serves one job at a time.

    Args:
        evaluator_path: the problem's ``evaluator.py``.
        network: let candidates use the network (default: an empty network namespace).
        max_processes: processes a candidate may run at once, where enforceable.
    """

    _ids = itertools.count()

    def __init__(self, evaluator_path: Path, *, network: bool = False,
                 max_processes: int = 64) -> None:
        self.evaluator_path = evaluator_path
        # the only writable place for candidates (where the OS allows isolation)
        self.scratch = Path(tempfile.mkdtemp(prefix="evoforge-worker-"))
        self.network = network
        self.max_processes = max_processes
        self.proc: asyncio.subprocess.Process | None = None
        self.info: dict[str, Any] = {}
        self._finalizer: weakref.finalize | None = None

    @property
    def alive(self) -> bool:
        """True while the worker process runs."""
        return self.proc is not None and self.proc.returncode is None

    async def start(self) -> None:
        """Start the worker and wait until it has imported the evaluator."""
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "evoforge.evaluation.forkserver",
            str(self.evaluator_path.resolve()),
            "1" if self.network else "0", str(self.max_processes), str(self.scratch),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL, env={**os.environ, **_CHILD_ENV},
            start_new_session=True, limit=1 << 20,
            # the evaluator's import sees relative paths as under OpenEvolve
            cwd=self.evaluator_path.parent,
        )
        # a worker whose executor is dropped without close() must not outlive it
        self._finalizer = weakref.finalize(self, _terminate, self.proc.pid)
        self.info = await self._read(START_TIMEOUT)
        if self.info.get("event") != "ready":
            raise WorkerError(f"worker did not start: {self.info}")
        if not self.network and not self.info.get("network_isolated"):
            warn_once("network", "network isolation refused by the OS (unshare of a network "
                                 "namespace needs root or user namespaces): candidates can "
                                 "reach the network")
        if not self.network and not self.info.get("filesystem_isolated"):
            warn_once("filesystem", "file-system isolation refused by the OS (a private mount "
                                    "namespace needs root): candidates can write outside "
                                    "their temporary directory")
        if not self.info.get("cgroup"):
            warn_once("cgroup", "no writable pids cgroup: the number of processes a candidate "
                                "starts is bounded only by RLIMIT_NPROC (not for root) and "
                                "the timeout")

    async def _read(self, timeout: float) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout=timeout)
        if not line:
            raise WorkerError("worker exited")
        message: dict[str, Any] = json.loads(line)
        return message

    async def run(self, job: EvalJob) -> EvalOutcome:
        """Evaluate one job in a forked child of the worker.

        Raises:
            WorkerError: when the worker itself broke; the job's child is killed.
        """
        assert self.proc is not None and self.proc.stdin is not None
        workdir, program_path, result_path = make_workdir(job, self.scratch)
        request_id = next(self._ids)
        request = {
            "id": request_id, "function": job.function, "program_path": str(program_path),
            "workdir": str(workdir), "result_path": str(result_path),
            "memory_mb": job.memory_mb, "cpu_seconds": job.timeout + 1,
            "file_mb": job.file_mb, "max_processes": job.max_processes,
            "probe_arguments": job.probe_arguments, "profile": job.profile,
            "timeout": job.timeout,
        }
        start = time.monotonic()
        pid: int | None = None
        timed_out = False
        try:
            self.proc.stdin.write((json.dumps(request) + "\n").encode())
            await self.proc.stdin.drain()
            started = await self._read(START_TIMEOUT)
            pid = int(started["pid"])
            try:
                exited = await asyncio.wait_for(self._read(float("inf")),
                                                timeout=max(job.timeout - (time.monotonic()
                                                                           - start), 0.001))
            except TimeoutError:
                timed_out = True
                _kill(pid)
                exited = await self._read(KILL_GRACE)
            seconds = time.monotonic() - start
            status = int(exited["status"])
            returncode = os.waitstatus_to_exitcode(status)
            cap = job.output_cap_kb * 1024
            artifacts: dict[str, Any] = {}
            for name in ("stdout", "stderr"):
                text = read_capped(workdir / f"{name}.txt", cap)
                if text is not None:
                    artifacts[name] = text
            return interpret(job, result_path, returncode, timed_out, artifacts, seconds)
        except (TimeoutError, ConnectionError, BrokenPipeError, ValueError, WorkerError) as exc:
            if pid is not None:
                _kill(pid)
            await self.close()
            raise WorkerError(f"worker broke during an evaluation: {exc!r}") from exc
        except asyncio.CancelledError:
            # the loop is stopping: kill the child now, then this worker (its report
            # would be read by nobody)
            if pid is not None:
                _kill(pid)
            await self.close()
            raise
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    async def close(self) -> None:
        """Stop the worker (it kills what its children left behind)."""
        proc, self.proc = self.proc, None
        if self._finalizer is not None:
            self._finalizer.detach()
        try:
            if proc is not None and proc.returncode is None:
                await self._stop(proc)
        finally:
            if proc is not None:
                # asyncio has no public close for a Process: a transport left open is
                # closed by its finalizer, which fails once the loop is closed and runs
                # at any garbage collection (even inside another library's call)
                transport = getattr(proc, "_transport", None)
                if transport is not None:
                    transport.close()
            cgroup = self.info.get("cgroup")
            if cgroup:  # a worker killed by its candidate could not remove it itself
                remove_cgroup(cgroup)
            shutil.rmtree(self.scratch, ignore_errors=True)

    @staticmethod
    async def _stop(proc: asyncio.subprocess.Process) -> None:
        assert proc.stdin is not None
        with contextlib.suppress(Exception):
            proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), timeout=2.0)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(proc.wait(), timeout=2.0)


def _terminate(pid: int) -> None:
    """Ask a worker to stop (it then kills and cleans up what its children left)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGTERM)


def _kill(pid: int) -> None:
    """Kill a child's process group (it called setsid) and the child itself."""
    for target in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            target()


class WorkerPool:
    """Fork-server workers per evaluator path, at most ``size`` of each, reused."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._idle: dict[tuple[Path, bool, int], list[ForkServer]] = {}
        self._all: list[ForkServer] = []

    async def warm(self, job: EvalJob) -> None:
        """Start an idle worker for ``job``'s evaluator now, unless one is idle already,
        so that a later :meth:`run` of such a job does not wait for it.

        Raises:
            WorkerError: the worker did not start.
        """
        idle = self._idle.setdefault(self._key(job), [])
        if any(server.alive for server in idle):
            return
        server = self._new_server(job)
        try:
            await server.start()
        except (WorkerError, TimeoutError) as exc:
            await server.close()
            raise WorkerError(f"worker did not start: {exc}") from exc
        idle.append(server)

    @staticmethod
    def _key(job: EvalJob) -> tuple[Path, bool, int]:
        return (job.evaluator_path, job.network, job.max_processes)

    def _new_server(self, job: EvalJob) -> ForkServer:
        """A new worker for ``job``'s evaluator, kept for :meth:`close` (not started)."""
        server = ForkServer(job.evaluator_path, network=job.network,
                            max_processes=job.max_processes)
        self._all.append(server)
        return server

    async def run(self, job: EvalJob) -> EvalOutcome:
        """Run ``job`` on an idle worker of its evaluator, starting one if needed.

        A worker that breaks (its evaluator import hangs, or the candidate kills
        it) is replaced; the job is then a failed candidate with the reason.
        """
        idle = self._idle.setdefault(self._key(job), [])
        server = idle.pop() if idle else None
        start = time.monotonic()
        try:
            if server is not None and not server.alive:
                await server.close()  # its candidate killed it after it reported
            if server is None or not server.alive:
                server = self._new_server(job)
                await server.start()
            outcome = await server.run(job)
        except (WorkerError, TimeoutError) as exc:
            if server is not None:
                await server.close()
            return EvalOutcome("failed", seconds=time.monotonic() - start,
                               error=f"the evaluation broke its worker process ({exc})")
        idle.append(server)
        return outcome

    async def close(self) -> None:
        """Stop every worker."""
        servers, self._all, self._idle = self._all, [], {}
        await asyncio.gather(*(s.close() for s in servers), return_exceptions=True)
