"""Run one evaluation in a separate OS process, with a timeout, limits and captured output."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

PROGRAM_NAME = "program.py"

# Candidates run one per worker; threaded BLAS would oversubscribe the cores.
_CHILD_ENV = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "PYTHONHASHSEED": "0",
    "PYTHONDONTWRITEBYTECODE": "1",
}


@dataclass(frozen=True)
class EvalJob:
    """One evaluation to run.

    Attributes:
        code: the full program text.
        evaluator_path: the problem's ``evaluator.py``.
        function: evaluator function to call (``evaluate``, ``evaluate_test``, ...).
        timeout: wall-clock seconds before the process group is killed.
        memory_mb: address-space limit of the evaluation process.
        output_cap_kb: bytes of stdout and of stderr kept, each.
    """

    code: str
    evaluator_path: Path
    function: str = "evaluate"
    timeout: float = 60.0
    memory_mb: int = 4096
    output_cap_kb: int = 64


@dataclass
class EvalOutcome:
    """What an evaluation produced.

    Attributes:
        status: ``ok``, ``failed`` or ``timeout``.
        metrics: the evaluator's metrics (empty unless ok).
        artifacts: evaluator artifacts plus captured ``stdout``/``stderr`` tails.
        error: the reason, for failed and timeout.
        seconds: wall-clock seconds of the evaluation process.
    """

    status: str
    metrics: dict[str, Any] = field(default_factory=dict)
    artifacts: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    seconds: float = 0.0


class _Capture:
    """Drains a pipe, keeping the head and the tail up to a cap."""

    def __init__(self, cap: int) -> None:
        self.half = max(cap // 2, 1)
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    async def drain(self, pipe: IO[bytes] | None) -> None:
        if pipe is None:
            return
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), pipe)
        try:
            await self._read(reader)
        finally:
            transport.close()

    async def _read(self, stream: asyncio.StreamReader) -> None:
        while True:
            chunk = await stream.read(65536)
            if not chunk:
                return
            self.total += len(chunk)
            room = self.half - len(self.head)
            if room > 0:
                self.head += chunk[:room]
                chunk = chunk[room:]
            if chunk:
                self.tail += chunk
                if len(self.tail) > self.half:
                    del self.tail[: len(self.tail) - self.half]

    def text(self) -> str:
        kept = len(self.head) + len(self.tail)
        middle = ""
        if self.total > kept:
            middle = f"\n[... {self.total - kept} bytes cut ...]\n"
        return (bytes(self.head).decode(errors="replace") + middle
                + bytes(self.tail).decode(errors="replace"))


async def _wait_exit(proc: subprocess.Popen[bytes]) -> None:
    """Return when ``proc`` exits (pidfd where the kernel has it, polling otherwise)."""
    loop = asyncio.get_running_loop()
    try:
        fd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        while proc.poll() is None:
            await asyncio.sleep(0.005)
        return
    exited: asyncio.Future[None] = loop.create_future()

    def on_exit() -> None:
        if not exited.done():
            exited.set_result(None)

    loop.add_reader(fd, on_exit)
    try:
        if proc.poll() is None:
            await exited
    finally:
        loop.remove_reader(fd)
        os.close(fd)


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def is_finite_number(value: Any) -> bool:
    """True for ints, floats and bools (as 0/1) that are neither NaN nor infinite."""
    return isinstance(value, int | float) and math.isfinite(value)


def check_metrics(metrics: Any) -> str | None:
    """Why ``metrics`` is unusable, or None when every value is a finite number."""
    if not isinstance(metrics, dict) or not metrics:
        return "the evaluator returned no metrics"
    for name, value in metrics.items():
        if isinstance(value, float) and math.isnan(value):
            return f"metric {name!r} is NaN"
        if isinstance(value, float) and math.isinf(value):
            return f"metric {name!r} is infinite"
        if not is_finite_number(value):
            return (f"metric {name!r} is a {type(value).__name__}, not a number "
                    "(put text in artifacts)")
    return None


def _signal_name(code: int) -> str:
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


async def run_isolated(job: EvalJob) -> EvalOutcome:
    """Evaluate ``job`` in a fresh process group; never raises for candidate faults.

    The process gets its own temporary working directory holding the program,
    an address-space limit, and is killed with its whole process group when the
    timeout passes or when it finishes (so nothing it started outlives it).
    """
    workdir = Path(tempfile.mkdtemp(prefix="evoforge-eval-"))
    program_path = workdir / PROGRAM_NAME
    program_path.write_text(job.code)
    result_path = workdir / "result.json"
    job_path = workdir / "job.json"
    job_path.write_text(json.dumps({
        "evaluator_path": str(job.evaluator_path),
        "problem_dir": str(job.evaluator_path.parent),
        "function": job.function,
        "program_path": str(program_path),
        "result_path": str(result_path),
        "workdir": str(workdir),
        "memory_mb": job.memory_mb,
    }))
    env = {**os.environ, **_CHILD_ENV}
    cap = job.output_cap_kb * 1024
    out, err = _Capture(cap), _Capture(cap)
    start = time.monotonic()
    timed_out = False
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "evoforge.evaluation.child", str(job_path)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=workdir,
            env=env,
            start_new_session=True,
        )
        readers = [asyncio.ensure_future(out.drain(proc.stdout)),
                   asyncio.ensure_future(err.drain(proc.stderr))]
        try:
            # wait for the process itself, not for its pipes: a background process
            # it started may hold them open long after it returned its result
            await asyncio.wait_for(_wait_exit(proc), timeout=job.timeout)
        except TimeoutError:
            timed_out = True
        finally:
            _kill_group(proc.pid)
            proc.wait()
            # a process that left the group may still hold the pipes; don't wait on it
            _, pending = await asyncio.wait(readers, timeout=1.0)
            for task in pending:
                task.cancel()
            for pipe in (proc.stdout, proc.stderr):
                if pipe is not None:
                    pipe.close()
        seconds = time.monotonic() - start
        artifacts: dict[str, Any] = {}
        if out.total:
            artifacts["stdout"] = out.text()
        if err.total:
            artifacts["stderr"] = err.text()
        if timed_out:
            return EvalOutcome("timeout", artifacts=artifacts, seconds=seconds,
                               error=f"timed out after {job.timeout:g} s")
        if not result_path.exists():
            code = proc.returncode if proc.returncode is not None else 0
            if code < 0:
                reason = f"the evaluation process was killed by {_signal_name(code)}"
                if code == -signal.SIGKILL:
                    reason += " (out of memory?)"
            else:
                reason = (f"the evaluation process exited with code {code} "
                          "before returning a result (os._exit?)")
            return EvalOutcome("failed", artifacts=artifacts, seconds=seconds, error=reason)
        result = json.loads(result_path.read_text())
        if "error" in result:
            if "traceback" in result:
                artifacts["traceback"] = result["traceback"]
            return EvalOutcome("failed", artifacts=artifacts, seconds=seconds,
                               error=result["error"])
        artifacts = {**result.get("artifacts", {}), **artifacts}
        return EvalOutcome("ok", metrics=result["metrics"], artifacts=artifacts,
                           seconds=seconds)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
