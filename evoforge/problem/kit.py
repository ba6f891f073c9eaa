"""The problem kit: run the candidate in its own process, check and score it in yours.

An evaluator written with the kit never imports the candidate. It calls
:func:`load_program`, which starts a separate *candidate process* holding the
program and nothing of the evaluator, and gets back a :class:`Program` whose
functions are called like local ones::

    from evoforge.problem import kit

    def evaluate(program_path):
        with kit.load_program(program_path, {"solve": "solve(instance)"}) as program:
            answers = [program.solve(instance) for instance in make_instances("train")]
        return score(answers)          # runs here, where the candidate never ran

Arguments and answers travel as plain data (numbers, strings, lists, tuples, dicts,
bytes and numeric numpy arrays; :mod:`evoforge.problem.wire`), so the answer the
verifier checks is a copy the candidate cannot change afterwards, with no object of
the candidate's in it. The candidate process cannot read the problem folder (where
the OS allows a private mount namespace), cannot see the evaluator's memory, and ends
with the evaluation: nothing it leaves behind reaches the next candidate.

:class:`Program` also reads the candidate process's CPU clocks from the kernel, for
speed problems (:func:`time_against_reference`): the candidate cannot patch them.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evoforge.problem import wire

BUILTIN_PROBLEMS = str(Path(__file__).resolve().parent.parent / "problems")
"""The built-in problems' folders, hidden from every candidate process."""
_LIMITS = ("RLIMIT_AS", "RLIMIT_CPU", "RLIMIT_FSIZE", "RLIMIT_NPROC", "RLIMIT_CORE")
_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


class ProgramError(ValueError):
    """The program cannot be used: it does not import, lacks a function, or its process died."""


class CandidateError(ValueError):
    """A call into the program raised, or returned something that is not plain data.

    When the program raised, the error's class is a subclass named like the
    program's exception (``ZeroDivisionError``, ...) and its text is the exception's,
    so that ``f"{type(e).__name__}: {e}"`` reads as it would in one process.
    """


_raised: dict[str, type[CandidateError]] = {}


def _remote(name: str, message: str) -> CandidateError:
    """A CandidateError whose class bears the name of the program's exception class."""
    name = name if name.isidentifier() else "Exception"
    if name not in _raised:
        _raised[name] = type(name, (CandidateError,), {"__module__": "program"})
    return _raised[name](message)


class Scores(dict[str, Any]):
    """Metrics (this dict) plus artifacts: what a kit evaluator returns.

    Reads like the plain metrics dict of the simple form, and carries
    ``artifacts`` (e.g. ``instance_scores``) like an ``EvaluationResult``.
    """

    def __init__(self, metrics: Mapping[str, Any], artifacts: Mapping[str, Any]) -> None:
        super().__init__(metrics)
        self.artifacts = dict(artifacts)

    @property
    def metrics(self) -> dict[str, Any]:
        """The metrics, as a plain dict."""
        return dict(self)


# ---------------------------------------------------------------- the zygote link


@dataclass
class _Zygote:
    control: socket.socket
    pid: int
    scratch: str | None
    hide: list[str]
    own: bool = False  # started by this process for direct calls (not a worker's)


_zygote: _Zygote | None = None
_ids = itertools.count()
# while a profiled evaluation runs: the programs loaded with a profiler inside, and
# the reports of those already closed
_profiled: list[Program] | None = None
_profiles: list[str] = []


@contextlib.contextmanager
def profiling_candidates() -> Iterator[list[str]]:
    """Programs loaded inside this block profile their calls in their own process.

    Yields the list that receives each program's profile report (see
    :class:`evoforge.evaluation.profiling.CandidateProfiler`) when it is closed;
    programs still open at the end of the block are closed then.
    """
    global _profiled
    reports: list[str] = []
    _profiled, _profiles[:] = [], []
    try:
        yield reports
    finally:
        for program in _profiled:
            program.close()
        _profiled = None
        reports.extend(_profiles)
        _profiles.clear()


def install_zygote(control: socket.socket, pid: int, scratch: str | None,
                   hide: Sequence[str]) -> None:
    """Use this zygote for every program loaded in this process (the worker calls it)."""
    global _zygote
    _zygote = _Zygote(control, pid, scratch, [str(h) for h in hide])


def zygote_fd() -> int | None:
    """The descriptor of the zygote link, to keep open in a forked verifier; None if none."""
    return None if _zygote is None else _zygote.control.fileno()


def reap_candidates() -> int:
    """Kill every candidate process the zygote started; how many (the worker calls it)."""
    if _zygote is None:
        return 0
    request_id = next(_ids)
    _zygote.control.send(wire.encode({"op": "reap", "id": request_id}))
    return int(_reply(request_id)["reaped"])


def _reply(request_id: int) -> dict[str, Any]:
    assert _zygote is not None
    while True:
        data = _zygote.control.recv(1 << 20)
        if not data:
            raise ProgramError("the candidate process server stopped")
        message = wire.decode(data)
        if message.get("id") == request_id:  # older replies belong to killed evaluations
            return dict(message)


def _limits() -> dict[str, tuple[int, int]]:
    out = {}
    for name in _LIMITS:
        which = getattr(resource, name, None)
        if which is not None:
            out[name] = resource.getrlimit(which)
    return out


def _ensure_zygote() -> _Zygote:
    """The zygote of this process; outside a worker, start one in a fresh interpreter."""
    global _zygote
    if _zygote is None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        proc = subprocess.Popen(
            [sys.executable, "-m", "evoforge.problem.candidate", str(theirs.fileno())],
            pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL)
        theirs.close()
        _zygote = _Zygote(ours, proc.pid, None, [BUILTIN_PROBLEMS], own=True)
    return _zygote


def _spawn(spec: dict[str, Any]) -> tuple[socket.socket, int]:
    """Start a candidate process; (the channel to it, its pid)."""
    zygote = _ensure_zygote()
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        spec = {**spec, "scratch": zygote.scratch,
                "hide": sorted({*zygote.hide, *spec.get("hide", [])})}
        request_id = next(_ids)
        socket.send_fds(zygote.control,
                        [wire.encode({"op": "spawn", "id": request_id, "spec": spec})],
                        [theirs.fileno()])
        return ours, int(_reply(request_id)["pid"])
    finally:
        theirs.close()


# ---------------------------------------------------------------- the program


class Program:
    """A candidate program running in its own process.

    Use :func:`load_program` to make one. Calling ``program.name(*args)`` for one of
    the declared functions sends the arguments, runs the function there and returns
    its answer as plain data (a fresh copy).

    Raises (from a call):
        CandidateError: the function raised, or its answer is not plain data.
        ProgramError: the candidate process died during the call.
    """

    def __init__(self, channel: socket.socket, pid: int, functions: Mapping[str, str],
                 label: str, workdir: str | None = None) -> None:
        self._channel = channel
        self.pid = pid
        self._functions = dict(functions)
        self._label = label
        self.label = label
        """The program file's name, for messages."""
        self._workdir = workdir
        self.profiling = False
        self.closed = False
        self.import_seconds = 0.0
        """CPU seconds the program's import took (its module body), read from the kernel."""

    def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Call the program's function ``name`` with ``args`` and ``kwargs``; its answer."""
        if name not in self._functions:
            raise AttributeError(f"{name} is not a declared function of the program")
        request: dict[str, Any] = {"call": name, "args": list(args)}
        if kwargs:
            request["kwargs"] = kwargs
        return self._request(request, name)

    def timed_call(self, name: str, *args: Any) -> tuple[Any, float]:
        """Call ``name`` like :meth:`call`; (its answer, CPU seconds it took).

        The time is the program process's CPU time (all its threads) from the moment
        it waits for the request to the moment it waits again after answering, read
        from the kernel: decoding the arguments and encoding the answer count too,
        so no work can be moved out of the timed span.
        """
        if name not in self._functions:
            raise AttributeError(f"{name} is not a declared function of the program")
        self._settle()
        before = self.cpu_seconds()
        answer = self._request({"call": name, "args": list(args)}, name)
        self._settle()
        return answer, self.cpu_seconds() - before

    def _settle(self, limit: float = 2.0) -> None:
        """Wait until the program's main thread sleeps, waiting for the next request.

        The kernel brings a thread's CPU time up to date when it stops running; read
        while it runs, the clock may lag by a scheduler tick.
        """
        deadline = time.monotonic() + limit
        path = f"/proc/{self.pid}/task/{self.pid}/stat"
        while True:
            try:
                with open(path, "rb") as f:
                    stat = f.read()
            except OSError:
                raise ProgramError(f"{self._label}: the program's process is gone") from None
            if stat[stat.rfind(b")") + 2:][:1] != b"R":
                return
            if time.monotonic() > deadline:
                raise ValueError("the program kept running after answering: its CPU time "
                                 "cannot be measured (work left running is not allowed)")
            os.sched_yield()

    def run(self, name: str, *args: Any) -> Any:
        """Run ``harness.name(program, *args)`` in the candidate process; its answer.

        For problems that call the program many times in a loop (a simulator, an
        online algorithm): the loop runs beside the program, and only its result
        comes back, to be checked here. Needs ``harness=`` in :func:`load_program`.
        """
        return self._request({"run": name, "args": list(args)}, name)

    def _request(self, request: dict[str, Any], name: str) -> Any:
        try:
            wire.send(self._channel, request)
        except OSError:
            raise ProgramError(f"{self._label}: the program's process ended before "
                               f"{name}() was called{self._exit_note()}") from None
        try:
            reply = wire.recv(self._channel)
        except (EOFError, OSError):
            raise ProgramError(f"{self._label}: the program's process died during "
                               f"{name}(){self._exit_note()}") from None
        except wire.WireError as exc:
            raise CandidateError(f"{name}() sent back a bad answer: {exc}") from None
        if not isinstance(reply, dict):
            raise CandidateError(f"{name}() sent back a malformed answer")
        if "ok" in reply:
            return reply["ok"]
        if "raised" in reply:
            raise _remote(str(reply["raised"]), str(reply.get("message", "")))
        raise CandidateError(f"{name}() returned something that is not plain data: "
                             f"{reply.get('bad', 'malformed answer')}")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the program's one declared function (for programs that define one)."""
        if len(self._functions) != 1:
            raise TypeError("the program declares several functions; call one by name")
        return self.call(next(iter(self._functions)), *args, **kwargs)

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name.startswith("_") or name not in self._functions:
            raise AttributeError(name)
        return lambda *args, **kwargs: self.call(name, *args, **kwargs)

    def _exit_note(self) -> str:
        return " (os._exit, a crash or the memory limit)"

    # -- clocks read from the kernel, out of the candidate's reach

    def cpu_seconds(self) -> float:
        """CPU seconds of the program's live threads so far (nanosecond resolution).

        Threads that already ended are not in it: compare with
        :meth:`process_cpu_seconds` over a long span to catch work moved to them.
        """
        total = 0
        try:
            tasks = os.listdir(f"/proc/{self.pid}/task")
        except OSError:
            raise ProgramError(f"{self._label}: the program's process is gone") from None
        for task in tasks:
            try:
                with open(f"/proc/{self.pid}/task/{task}/schedstat") as f:
                    total += int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                continue  # a thread that just ended
        return total / 1e9

    def process_cpu_seconds(self) -> float:
        """CPU seconds of the whole program process, every thread, ended ones included.

        Counted in scheduler ticks (often 4-10 ms): use it over long spans only.
        """
        try:
            with open(f"/proc/{self.pid}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            raise ProgramError(f"{self._label}: the program's process is gone") from None
        fields = stat[stat.rfind(b")") + 2:].split()
        # utime and stime are fields 14 and 15 of the line; 12 and 13 after the name
        return (int(fields[11]) + int(fields[12])) / _TICK

    def thread_count(self) -> int:
        """Threads the program's process has now."""
        try:
            return len(os.listdir(f"/proc/{self.pid}/task"))
        except OSError:
            raise ProgramError(f"{self._label}: the program's process is gone") from None

    def close(self) -> None:
        """End the candidate process (first taking its profile, when it has one)."""
        if self.closed:
            return
        self.closed = True
        if self.profiling:
            self._take_profile()
        with contextlib.suppress(OSError):
            self._channel.close()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(self.pid, signal.SIGKILL)
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)

    def _take_profile(self) -> None:
        with contextlib.suppress(OSError, EOFError, wire.WireError):
            self._channel.settimeout(5.0)  # a process stuck in a call has no report
            wire.send(self._channel, {"profile": True})
            reply = wire.recv(self._channel)
            if isinstance(reply, dict) and isinstance(reply.get("ok"), str):
                _profiles.append(reply["ok"])

    def __enter__(self) -> Program:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()


def load_program(program: str | Path, functions: Mapping[str, str], *,
                 code: str | None = None, harness: str | Path | None = None,
                 hide: Sequence[str | Path] = ()) -> Program:
    """Start a candidate process for the program at ``program``.

    Args:
        program: path of the program file (read here; the candidate process gets
            its text, not the path).
        functions: the functions the program must define: name -> how it is called,
            for the error message, e.g. ``{"priority": "priority(item, bins)"}``.
        code: the program text, if not to be read from ``program``.
        harness: a Python file of functions ``f(program, *args)`` to run beside the
            program with :meth:`Program.run` (it must hold nothing secret: the
            candidate can read it).
        hide: more directories the candidate process must not see (the zygote
            already hides the problem folder and the built-in problems).

    Raises:
        ProgramError: a clear one-line reason when the program cannot be imported or
            lacks a function.
    """
    path = Path(program)
    if code is None:
        try:
            code = path.read_text()
        except OSError as exc:
            raise ProgramError(f"{path}: cannot be read ({exc.strerror})") from None
    # in a worker the current directory is the evaluation's own; called directly,
    # the candidate gets a temporary one
    own = (tempfile.mkdtemp(prefix="evoforge-candidate-")
           if _zygote is None or _zygote.own else None)
    spec: dict[str, Any] = {"code": code, "filename": str(path), "functions": sorted(functions),
            "workdir": own or str(Path.cwd()), "limits": _limits(),
            "hide": [BUILTIN_PROBLEMS, *(str(h) for h in hide)]}
    if harness is not None:
        spec["harness"] = {"code": Path(harness).read_text(), "filename": Path(harness).name}
    if _profiled is not None:
        spec["profile"] = True
    channel, pid = _spawn(spec)
    handle = Program(channel, pid, functions, path.name, own)
    if _profiled is not None:
        handle.profiling = True
        _profiled.append(handle)
    try:
        wire.recv(channel)  # set up, waiting to import the program
        handle._settle()
        start = handle.cpu_seconds()
        wire.send(channel, {"go": True})
        ready = wire.recv(channel)
        handle._settle()
        handle.import_seconds = handle.cpu_seconds() - start
    except (EOFError, OSError, wire.WireError, ProgramError):
        handle.close()
        raise ProgramError(f"{path.name}: the program's process died while importing it"
                           f"{handle._exit_note()}") from None
    if "error" in ready:
        handle.close()
        raise ProgramError(f"{path.name}: {ready['error']}")
    missing = list(ready.get("missing", []))
    if missing:
        handle.close()
        raise ProgramError(f"{path.name}: defines no function {functions[missing[0]]}")
    return handle


# ---------------------------------------------------------------- timing


MIN_REPEATS = 3
SLOW_CALL = 0.5
"""Seconds: after a slower warm-up call, a single timed round may do."""
OTHER_THREADS_FACTOR = 1.25
OTHER_THREADS_SLACK = 0.02


@dataclass(frozen=True)
class Timing:
    """How one instance class went: median CPU seconds per call, the timed rounds, and
    what ``check`` returned for each answer of the program, in instance order."""

    reference: float
    program: float
    rounds: int
    checks: tuple[Any, ...] = ()


def time_against_reference(function: str, arguments: Callable[[Any], Sequence[Any]],
                           program: Program, reference: Program, instances: Sequence[Any],
                           check: Callable[[int, Any], Any], budget: float) -> Timing:
    """Check ``program`` on ``instances`` and time it against ``reference``, call for call.

    Each call is ``function(*arguments(instance))``; ``check(k, answer)`` raises if
    the answer on instance ``k`` is wrong (and may return a number, kept in
    ``Timing.checks``). A call that raises becomes a ValueError naming the instance.

    Both programs run in candidate processes, and their
    CPU time per call is read from the kernel by this process: the program can
    neither patch the clock nor see it being read.

    The first instance is the warm-up of both; the program's answer is checked before
    anything is timed, and its CPU time sets the number of rounds (``budget`` divided
    by it, clamped to [MIN_REPEATS, len(instances) - 1], or to [1, ...] after a
    warm-up slower than SLOW_CALL). A round calls each program on the previous
    instance (untimed, so whatever the other left in the caches does not count),
    then times it on the next one; odd rounds the reference goes first, even rounds
    the program. Every answer of the program is checked. Work moved to other threads
    is refused: over the rounds, the program's process CPU time may exceed its main
    thread's by at most OTHER_THREADS_FACTOR plus OTHER_THREADS_SLACK, and it may not
    end with more threads than it started with.
    """
    def call(who: Program, k: int) -> tuple[Any, float]:
        try:
            return who.timed_call(function, *arguments(instances[k]))
        except CandidateError as exc:
            label = "the reference" if who is reference else function
            where = getattr(instances[k], "name", f"instance {k}")
            raise ValueError(f"{label} raised {type(exc).__name__}: {exc} (on {where})"
                             ) from None

    check(0, call(reference, 0)[0])
    answer, warm_up = call(program, 0)
    checks = [check(0, answer)]
    fewest = MIN_REPEATS if warm_up < SLOW_CALL else 1
    rounds = min(len(instances) - 1, max(fewest, int(budget / max(warm_up, 1e-9))))
    times: dict[int, list[float]] = {id(reference): [], id(program): []}
    answers: list[Any] = []
    threads_before = program.thread_count()
    process_start, thread_start = program.process_cpu_seconds(), program.cpu_seconds()
    for k in range(1, 1 + rounds):
        for who in ((reference, program) if k % 2 else (program, reference)):
            call(who, k - 1)  # untimed: whatever the other left in the caches
            result, seconds = call(who, k)
            times[id(who)].append(seconds)
            if who is program:
                answers.append(result)
    process = program.process_cpu_seconds() - process_start
    thread = program.cpu_seconds() - thread_start
    if process > OTHER_THREADS_FACTOR * thread + OTHER_THREADS_SLACK:
        raise ValueError(f"the program used {process:.3f} s of CPU time on all threads but "
                         f"only {thread:.3f} s on its own: work on other threads is not allowed")
    if program.thread_count() > threads_before:
        raise ValueError("the program started threads that are still running: work on other "
                         "threads is not allowed")
    checks += [check(k, result) for k, result in enumerate(answers, start=1)]
    return Timing(statistics.median(times[id(reference)]),
                  statistics.median(times[id(program)]), rounds, tuple(checks))


def load_module(path: str | Path, name: str) -> Any:
    """Import a helper file (e.g. a problem's harness) by path, as module ``name``."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ProgramError(f"{path}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def geometric_mean(values: Sequence[float]) -> float:
    """The geometric mean of positive ``values``."""
    return math.exp(sum(math.log(v) for v in values) / len(values))
