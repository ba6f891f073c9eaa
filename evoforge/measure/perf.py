"""Hardware event counts (retired instructions) through Linux ``perf stat``.

Instruction counts are far less noisy than time (EvalPerf scores with them),
but need a machine whose kernel exposes hardware counters to this user: many
VMs and containers do not (``perf`` then prints ``<not supported>``), the
``perf`` binary may be missing, and ``kernel.perf_event_paranoid`` may forbid
it. Everything here detects that and returns ``None`` instead of failing, so
callers can fall back to CPU time::

    count = measure_instructions(fn, data)
    score = count if count is not None else measure(fn, data).median

Two ways to count:

* :func:`count_instructions_cmd` runs a command under
  ``perf stat -x, -e instructions`` and returns its count.
* :func:`measure_instructions` counts a Python callable. ``perf stat`` cannot
  count part of the calling process, so the callable runs in a forked child
  that waits until ``perf stat -p CHILD`` is attached (handshake through
  perf's ``--control`` ack, perf >= 5.10), runs the callable once and reports
  back; perf is then stopped with SIGINT. The count covers the callable plus
  a small constant overhead (a pipe read/write and the child's exit path), so
  compare counts of different callables, not absolute numbers. The
  callable's return value and side effects stay in the child. POSIX only;
  as with any ``fork`` of a multi-threaded process, the callable must not
  need locks that other threads of the parent might hold.

Both also accept another ``event`` (any name ``perf list`` shows, e.g.
``cycles`` or the software event ``task-clock``); the ``count_event_*`` /
``measure_event`` variants return the raw float (``task-clock`` is in msec).
"""

from __future__ import annotations

import contextlib
import functools
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

#: The event counted by default.
INSTRUCTIONS = "instructions"

#: Seconds allowed for the availability probe and for perf to attach.
PROBE_TIMEOUT = 10.0


@dataclass(frozen=True)
class PerfProbe:
    """Outcome of checking whether ``perf stat`` can count an event here.

    Attributes:
        available: True when a test run produced a positive count.
        reason: Why not, when unavailable (empty when available).
        sample: The count of the probe command (``true``) when available.
    """

    available: bool
    reason: str = ""
    sample: float | None = None


def _event_base(name: str) -> str:
    """``cpu_core/instructions/u`` or ``instructions:u`` -> ``instructions``."""
    name = name.strip()
    if "/" in name:
        parts = [p for p in name.split("/") if p]
        name = parts[1] if len(parts) > 1 else parts[0]
    return name.split(":", 1)[0]


def parse_perf_csv(text: str, event: str = INSTRUCTIONS) -> float | None:
    """Read one event's count from ``perf stat -x,`` output.

    Lines look like ``123456,,instructions:u,1000,100.00,,`` (value, unit,
    event, running time, percentage, ...). Comment lines (``#``) and other
    text (``Events enabled``) are skipped. On hybrid CPUs one line per core
    type is printed (``cpu_core/instructions/``, ``cpu_atom/instructions/``):
    counted lines are summed and ``<not counted>`` ones count as 0 (the task
    never ran on that core type).

    Args:
        text: The output of ``perf stat -x,``.
        event: The event name asked for (modifiers such as ``:u`` ignored).

    Returns:
        The count, or ``None`` when no line for ``event`` has a number (the
        event is ``<not supported>`` or absent).
    """
    wanted = _event_base(event)
    total = 0.0
    found = False
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split(",")
        if len(fields) < 3 or _event_base(fields[2]) != wanted:
            continue
        value = fields[0].strip()
        if value.startswith("<"):
            continue  # <not supported> / <not counted>
        try:
            total += float(value)
        except ValueError:
            continue
        found = True
    return total if found else None


@contextlib.contextmanager
def _stat_output_file() -> Iterator[Path]:
    handle, name = tempfile.mkstemp(prefix="evoforge-perf-", suffix=".csv")
    os.close(handle)
    path = Path(name)
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _stat_argv(perf: str, event: str, output: Path) -> list[str]:
    return [perf, "stat", "-x,", "-e", event, "-o", str(output)]


def _short(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " | ".join(lines[-3:])[:300]


@functools.cache
def probe_perf(perf: str = "perf", event: str = INSTRUCTIONS) -> PerfProbe:
    """Check once (cached per ``perf``/``event``) whether ``perf stat`` counts ``event``.

    Runs ``perf stat -x, -e EVENT true`` and parses its output. A missing
    binary, a permission error, a non-zero exit (``perf_event_paranoid``,
    Debian's "perf not found for kernel" wrapper), a hang, ``<not
    supported>`` or a zero count all give ``available=False`` with a reason.

    Args:
        perf: The perf executable (name on ``PATH`` or a path).
        event: The event to try.

    Returns:
        The probe's outcome; never raises.
    """
    try:
        with _stat_output_file() as output:
            proc = subprocess.run(
                [*_stat_argv(perf, event, output), "true"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                timeout=PROBE_TIMEOUT,
                check=False,
            )
            text = output.read_text(errors="replace")
    except FileNotFoundError:
        return PerfProbe(False, f"{perf!r} not found")
    except PermissionError as exc:
        return PerfProbe(False, f"cannot run {perf!r}: {exc}")
    except subprocess.TimeoutExpired:
        return PerfProbe(False, f"{perf!r} did not finish in {PROBE_TIMEOUT:g} s")
    except OSError as exc:
        return PerfProbe(False, f"cannot run {perf!r}: {exc}")
    stderr = proc.stderr.decode(errors="replace")
    if proc.returncode != 0:
        return PerfProbe(False, f"perf exited {proc.returncode}: {_short(stderr or text)}")
    count = parse_perf_csv(text, event)
    if count is None:
        return PerfProbe(False, f"event {event!r} not supported: {_short(text)}")
    if count <= 0:
        return PerfProbe(False, f"event {event!r} counted nothing")
    return PerfProbe(True, "", count)


def perf_available(perf: str = "perf", event: str = INSTRUCTIONS) -> bool:
    """Whether ``perf stat`` can count ``event`` on this machine (probed once, cached).

    Args:
        perf: The perf executable; point it at a nonexistent name to force
            the fallback path.
        event: The event needed.

    Returns:
        True when counts are available.
    """
    return probe_perf(perf, event).available


def count_event_cmd(
    argv: Sequence[str],
    *,
    event: str = INSTRUCTIONS,
    perf: str = "perf",
    timeout: float | None = None,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = False,
) -> float | None:
    """Run ``argv`` under ``perf stat`` and return its count of ``event``.

    The command's stdout and stderr are discarded; perf's report goes to a
    temporary file so it never mixes with them.

    Args:
        argv: The command and its arguments.
        event: The perf event to count.
        perf: The perf executable.
        timeout: Seconds of wall time allowed; on overrun the whole process
            group (perf and the command) is killed.
        cwd: Working directory for the command.
        env: Environment for the command (default: inherited).
        check: Raise if the command exits non-zero.

    Returns:
        The count, or ``None`` when perf cannot count ``event`` here.

    Raises:
        TimeoutError: If the command outruns ``timeout``.
        subprocess.CalledProcessError: If ``check`` and the command failed.
        ValueError: If ``argv`` is empty.
    """
    if not argv:
        raise ValueError("argv must name a command")
    if not perf_available(perf, event):
        return None
    with _stat_output_file() as output:
        command = [*_stat_argv(perf, event, output), "--", *argv]
        proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            start_new_session=True,
        )
        try:
            returncode = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            raise TimeoutError(f"{argv[0]!r} ran past {timeout} s under perf") from None
        text = output.read_text(errors="replace")
    if check and returncode != 0:
        raise subprocess.CalledProcessError(returncode, list(argv))
    return parse_perf_csv(text, event)


def count_instructions_cmd(
    argv: Sequence[str],
    *,
    perf: str = "perf",
    timeout: float | None = None,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = False,
) -> int | None:
    """Retired instructions of running ``argv`` (``perf stat -x, -e instructions``).

    Counts the command and its children, interpreter start-up included for a
    ``python`` command. Kernel instructions may be left out where
    ``perf_event_paranoid`` forbids counting them (perf then reports
    ``instructions:u``); compare counts taken on the same machine only.

    Args:
        argv: The command and its arguments.
        perf: The perf executable.
        timeout: Seconds of wall time allowed.
        cwd: Working directory for the command.
        env: Environment for the command.
        check: Raise if the command exits non-zero.

    Returns:
        The count, or ``None`` when unsupported here (use CPU time instead).

    Raises:
        TimeoutError: If the command outruns ``timeout``.
        subprocess.CalledProcessError: If ``check`` and the command failed.
    """
    count = count_event_cmd(
        argv, event=INSTRUCTIONS, perf=perf, timeout=timeout, cwd=cwd, env=env, check=check
    )
    return None if count is None else int(count)


def _read_until(fd: int, deadline: float | None) -> bytes | None:
    """Read what arrives on ``fd`` before ``deadline`` (monotonic seconds).

    Returns:
        The bytes read, ``b""`` at end of file, or ``None`` on timeout.
    """
    remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
    ready, _, _ = select.select([fd], [], [], remaining)
    if not ready:
        return None
    return os.read(fd, 64)


def _child(
    fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], go: int, done: int
) -> NoReturn:  # pragma: no cover - runs in the forked child
    status = b"E"
    try:
        if os.read(go, 1) == b"G":
            try:
                fn(*args, **kwargs)
                status = b"K"
            except BaseException:  # noqa: BLE001 - any failure is reported to the parent
                status = b"F"
            os.write(done, status)
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(0)


def measure_event(
    fn: Callable[..., Any],
    *args: Any,
    event: str = INSTRUCTIONS,
    perf: str = "perf",
    timeout: float | None = None,
    **kwargs: Any,
) -> float | None:
    """Count ``event`` while one call of ``fn(*args, **kwargs)`` runs in a forked child.

    See the module docstring for how the child and ``perf stat -p`` are
    synchronised. ``event``, ``perf`` and ``timeout`` are not passed to ``fn``.

    Args:
        fn: The callable; it runs once, in a child process.
        *args: Positional arguments for ``fn``.
        event: The perf event to count.
        perf: The perf executable.
        timeout: Seconds of wall time allowed for the call.
        **kwargs: Keyword arguments for ``fn``.

    Returns:
        The count, or ``None`` when perf cannot count ``event`` here, the
        platform cannot fork, or perf could not attach (too old for
        ``--control``).

    Raises:
        TimeoutError: If the call outruns ``timeout`` (the child is killed).
        ChildProcessError: If ``fn`` raised or the child died.
    """
    if not hasattr(os, "fork") or not perf_available(perf, event):
        return None
    go_read, go_write = os.pipe()
    done_read, done_write = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child never returns
        os.close(go_write)
        os.close(done_read)
        _child(fn, args, dict(kwargs), go_read, done_write)
    os.close(go_read)
    os.close(done_write)
    ctl_read, ctl_write = os.pipe()
    ack_read, ack_write = os.pipe()
    perf_proc: subprocess.Popen[bytes] | None = None
    child_reaped = False
    try:
        with _stat_output_file() as output:
            command = [
                *_stat_argv(perf, event, output),
                "--control",
                f"fd:{ctl_read},{ack_write}",
                "-p",
                str(pid),
            ]
            try:
                perf_proc = subprocess.Popen(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    pass_fds=(ctl_read, ack_write),
                    start_new_session=True,
                )
            except OSError:
                return None
            finally:
                os.close(ctl_read)
                os.close(ack_write)
            # perf answers control commands only from its main loop, i.e. once
            # the counters are open and enabled: the ack means "attached".
            try:
                os.write(ctl_write, b"enable\n")
            except BrokenPipeError:  # perf exited at once (e.g. no --control)
                return None
            ack = _read_until(ack_read, time.monotonic() + PROBE_TIMEOUT)
            if not ack or not ack.startswith(b"ack"):
                return None
            os.write(go_write, b"G")
            deadline = None if timeout is None else time.monotonic() + timeout
            status = _read_until(done_read, deadline)
            if status is None:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                child_reaped = True
                raise TimeoutError(f"call ran past {timeout} s under perf")
            if not status:
                os.waitpid(pid, 0)
                child_reaped = True
                raise ChildProcessError("the measured child died without reporting")
            os.waitpid(pid, 0)
            child_reaped = True
            perf_proc.send_signal(signal.SIGINT)
            try:
                perf_proc.wait(timeout=PROBE_TIMEOUT)
            except subprocess.TimeoutExpired:
                _kill_group(perf_proc)
                return None
            if status[:1] != b"K":
                raise ChildProcessError("the measured callable raised in the child")
            return parse_perf_csv(output.read_text(errors="replace"), event)
    finally:
        for fd in (go_write, done_read, ctl_write, ack_read):
            with contextlib.suppress(OSError):
                os.close(fd)
        if not child_reaped:
            with contextlib.suppress(ProcessLookupError, ChildProcessError):
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
        if perf_proc is not None and perf_proc.poll() is None:
            _kill_group(perf_proc)


def measure_instructions(
    fn: Callable[..., Any],
    *args: Any,
    perf: str = "perf",
    timeout: float | None = None,
    **kwargs: Any,
) -> int | None:
    """Retired instructions of one call of ``fn(*args, **kwargs)``, or ``None``.

    ``None`` means "no hardware counts here": fall back to
    :func:`evoforge.measure.measure` (CPU time). ``perf`` and ``timeout`` are
    not passed to ``fn``.

    Args:
        fn: The callable; it runs once, in a forked child process.
        *args: Positional arguments for ``fn``.
        perf: The perf executable.
        timeout: Seconds of wall time allowed for the call.
        **kwargs: Keyword arguments for ``fn``.

    Returns:
        The instruction count, or ``None`` when unsupported.

    Raises:
        TimeoutError: If the call outruns ``timeout``.
        ChildProcessError: If ``fn`` raised.
    """
    count = measure_event(fn, *args, event=INSTRUCTIONS, perf=perf, timeout=timeout, **kwargs)
    return None if count is None else int(count)


__all__ = [
    "INSTRUCTIONS",
    "PerfProbe",
    "count_event_cmd",
    "count_instructions_cmd",
    "measure_event",
    "measure_instructions",
    "parse_perf_csv",
    "perf_available",
    "probe_perf",
]
