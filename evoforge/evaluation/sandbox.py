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
EXIT_FSIZE = 97
"""Exit code of an evaluation that could not write its result past the file-size limit."""

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
        file_mb: largest file the evaluation may write (stdout and stderr included).
        max_processes: processes the evaluation may run at once (where enforceable).
        network: whether the evaluation may use the network.
        probe_arguments: for the probe pseudo-function, inputs from the config.
        program_suffix: suffix of the candidate's file (``.py``, ``.rs``, ...).
        profile: record where the candidate spends its time (the ``profile`` artifact).
    """

    code: str
    evaluator_path: Path
    function: str = "evaluate"
    timeout: float = 60.0
    memory_mb: int = 4096
    output_cap_kb: int = 64
    file_mb: int = 64
    max_processes: int = 64
    network: bool = False
    probe_arguments: list[list[Any]] | None = None
    program_suffix: str = ".py"
    profile: bool = False


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


def _exit_reason(code: int, job: EvalJob) -> str:
    if code < 0:
        sig = -code
        reason = f"the evaluation process was killed by {_signal_name(code)}"
        if sig == signal.SIGKILL:
            reason += " (out of memory?)"
        elif sig == signal.SIGXCPU:
            reason = f"CPU time limit exceeded ({_signal_name(code)})"
        return reason
    if code == EXIT_FSIZE:
        return f"wrote more than the {job.file_mb} MiB file-size limit (output flood?)"
    return f"the evaluation process exited with code {code} before returning a result (os._exit?)"


# how a refused network call reads in an error (no route, no name resolution)
_NETWORK_SIGNS = ("Network is unreachable", "Temporary failure in name resolution",
                  "Name or service not known", "No address associated with hostname",
                  "nodename nor servname")


def interpret(job: EvalJob, result_path: Path, returncode: int | None, timed_out: bool,
              artifacts: dict[str, Any], seconds: float) -> EvalOutcome:
    """Turn how an evaluation process ended (and its result file) into an outcome."""
    if timed_out:
        return EvalOutcome("timeout", artifacts=artifacts, seconds=seconds,
                           error=f"timed out after {job.timeout:g} s")
    if not result_path.exists():
        reason = _exit_reason(returncode if returncode is not None else 0, job)
        return EvalOutcome("failed", artifacts=artifacts, seconds=seconds, error=reason)
    try:
        result = json.loads(result_path.read_text())
    except (OSError, ValueError) as exc:
        return EvalOutcome("failed", artifacts=artifacts, seconds=seconds,
                           error=f"the evaluation's result could not be read: {exc}")
    if "error" in result:
        if "traceback" in result:
            artifacts["traceback"] = result["traceback"]
        error = result["error"]
        if "File too large" in error:
            error = f"wrote more than the {job.file_mb} MiB file-size limit: {error}"
        elif "Read-only file system" in error:
            error = f"tried to write outside its temporary directory: {error}"
        elif any(sign in error for sign in _NETWORK_SIGNS):
            error = (f"tried to use the network, which evaluations do not have (set "
                     f"evaluator.network: true in the config to allow it): {error}")
        elif "Resource temporarily unavailable" in error and "BlockingIOError" in error:
            error = f"hit the limit of {job.max_processes} processes (fork bomb?): {error}"
        return EvalOutcome("failed", artifacts=artifacts, seconds=seconds, error=error)
    artifacts = {**result.get("artifacts", {}), **artifacts}
    return EvalOutcome("ok", metrics=result["metrics"], artifacts=artifacts, seconds=seconds)


# names the evaluation writes in its directory; problem files by these names are not linked
_OWN_NAMES = {"job.json", "result.json", "result.json.tmp", "stdout.txt", "stderr.txt"}


def make_workdir(job: EvalJob, base: Path | None = None) -> tuple[Path, Path, Path]:
    """A fresh temporary directory holding the program: (workdir, program, result path).

    The problem folder's entries are linked into it, so that relative paths in the
    evaluator (``open("data.csv")``, ``subprocess.run(["python", "submit.py"])``)
    resolve against the problem folder as under OpenEvolve, while new files land
    in the temporary directory. Where file-system isolation holds, the linked
    files are read-only to the candidate.
    """
    workdir = Path(tempfile.mkdtemp(prefix="evoforge-eval-", dir=base))
    program_path = workdir / (Path(PROGRAM_NAME).stem + job.program_suffix)
    program_path.write_text(job.code)
    for name, target in _problem_entries(job.evaluator_path.parent):
        if name != program_path.name:
            with contextlib.suppress(OSError):
                os.symlink(target, workdir / name)
    return workdir, program_path, workdir / "result.json"


_entries: dict[Path, tuple[int, list[tuple[str, str]]]] = {}


def _problem_entries(problem_dir: Path) -> list[tuple[str, str]]:
    """(name, resolved path) of the problem folder's entries to link, listed again only
    when the folder changed (its mtime): resolving every entry for every candidate
    cost a millisecond of the loop's time (issue 11)."""
    try:
        mtime = problem_dir.stat().st_mtime_ns
    except OSError:
        return []
    cached = _entries.get(problem_dir)
    # a folder changed within the last second is listed again: file times are coarse
    # (a clock tick), so a change in the same tick would leave the mtime as it was
    if cached is not None and cached[0] == mtime and time.time_ns() - mtime > 10**9:
        return cached[1]
    found = []
    with contextlib.suppress(OSError):
        for entry in problem_dir.iterdir():
            if entry.name not in _OWN_NAMES:
                with contextlib.suppress(OSError):
                    found.append((entry.name, str(entry.resolve())))
    _entries[problem_dir] = (mtime, found)
    return found


def read_capped(path: Path, cap: int) -> str | None:
    """Head and tail of a captured output file, ``cap`` bytes in all; None if empty."""
    try:
        size = path.stat().st_size
    except OSError:
        return None
    if size == 0:
        return None
    half = max(cap // 2, 1)
    with path.open("rb") as f:
        if size <= cap:
            return f.read().decode(errors="replace")
        head = f.read(half)
        f.seek(size - half)
        tail = f.read(half)
    return (head.decode(errors="replace") + f"\n[... {size - 2 * half} bytes cut ...]\n"
            + tail.decode(errors="replace"))


async def run_isolated(job: EvalJob) -> EvalOutcome:
    """Evaluate ``job`` in a fresh process group; never raises for candidate faults.

    The process gets its own temporary working directory holding the program,
    an address-space limit, and is killed with its whole process group when the
    timeout passes or when it finishes (so nothing it started outlives it).
    """
    workdir, program_path, result_path = make_workdir(job)
    job_path = workdir / "job.json"
    job_path.write_text(json.dumps({
        "evaluator_path": str(job.evaluator_path),
        "problem_dir": str(job.evaluator_path.parent),
        "function": job.function,
        "program_path": str(program_path),
        "result_path": str(result_path),
        "workdir": str(workdir),
        "memory_mb": job.memory_mb,
        "probe_arguments": job.probe_arguments,
        "profile": job.profile,
        "timeout": job.timeout,
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
        artifacts: dict[str, Any] = {}
        if out.total:
            artifacts["stdout"] = out.text()
        if err.total:
            artifacts["stderr"] = err.text()
        return interpret(job, result_path, proc.returncode, timed_out, artifacts,
                         time.monotonic() - start)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
