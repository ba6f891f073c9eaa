"""The candidate's side of a split evaluation: a process that runs the program, nothing else.

A *zygote* is forked from the worker before the evaluator is imported, so its memory
holds no evaluator, verifier or data. For each program the verifier loads, the zygote
forks a fresh candidate process that

* closes every descriptor but its channel, starts its own session, and (where the OS
  allows) gets a private mount namespace: the problem folders are hidden under an
  empty read-only tmpfs, ``/dev/shm`` is a fresh tmpfs, and of the scratch directory
  only its own working directory stays writable;
* gives up every capability and becomes non-dumpable (so it cannot undo the mounts,
  nor read or trace the memory of the verifier or of another candidate process);
* takes the verifier's resource limits, imports the program from its source text and
  answers calls: plain data in, plain data out (:mod:`evoforge.problem.wire`).

The zygote kills every candidate process and whatever they started when the worker
says an evaluation is over, so nothing of one candidate outlives it. Also runnable as
``python -m evoforge.problem.candidate FD``: a zygote in a fresh interpreter, for an
evaluator called directly (outside a worker).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import platform
import resource
import signal
import socket
import sys
import types
from typing import Any

from evoforge.problem import wire

_CLONE_NEWNS = 0x00020000
_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_NOEXEC = 1, 2, 4, 8
_MS_REMOUNT, _MS_BIND, _MS_REC, _MS_PRIVATE = 32, 4096, 16384, 1 << 18
_PR_SET_PDEATHSIG, _PR_SET_DUMPABLE, _PR_CAPBSET_DROP = 1, 4, 24
_PR_SET_CHILD_SUBREAPER, _PR_SET_NO_NEW_PRIVS = 36, 38
_CAP_VERSION_3 = 0x20080522
_SYS_CAPSET = {"x86_64": 126, "aarch64": 91}


# ---------------------------------------------------------------- one candidate


def _mount(libc: Any, source: bytes | None, target: str, fstype: bytes | None, flags: int,
           data: bytes | None = None) -> bool:
    return bool(libc.mount(source, target.encode(), fstype, flags, data) == 0)


def isolate(workdir: str, scratch: str | None, hide: list[str]) -> dict[str, bool]:
    """Private mounts for this process: hide ``hide``, fresh /dev/shm, scratch read-only.

    Returns what succeeded (all False where the OS refuses a mount namespace).
    """
    done = {"hidden": False, "shm": False, "scratch": False}
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.unshare(_CLONE_NEWNS) != 0:
            return done
        if not _mount(libc, b"none", "/", None, _MS_REC | _MS_PRIVATE):
            return done
    except (OSError, AttributeError):
        return done
    flags = _MS_NOSUID | _MS_NODEV | _MS_NOEXEC
    done["hidden"] = all(_mount(libc, b"tmpfs", d, b"tmpfs", flags | _MS_RDONLY, b"size=4k")
                         for d in hide if os.path.isdir(d))
    if os.path.isdir("/dev/shm"):
        done["shm"] = _mount(libc, b"tmpfs", "/dev/shm", b"tmpfs", flags, b"size=64m")
    if scratch:
        real = os.path.realpath(workdir)
        done["scratch"] = (_mount(libc, real.encode(), real, None, _MS_BIND)
                           and _mount(libc, None, os.path.realpath(scratch), None,
                                      _MS_REMOUNT | _MS_BIND | _MS_RDONLY))
    return done


def _apply_limits(limits: dict[str, Any]) -> None:
    for name, (soft, hard) in limits.items():
        which = getattr(resource, name, None)
        if which is not None:
            with contextlib.suppress(ValueError, OSError):
                resource.setrlimit(which, (soft, hard))


def drop_privileges() -> bool:
    """Give up every capability for good, and make this process non-dumpable.

    A root candidate then still owns root's files (so the interpreter and its
    libraries, wherever installed, load) but cannot unmount what hides the problem
    folder, cannot leave its namespaces, and cannot read or trace the memory of a
    non-dumpable process (the verifier, another candidate). True where it all held.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return False
    # no process of the same user may trace this one (e.g. a reference being timed)
    libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)
    libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    if os.geteuid() != 0:
        return True  # nothing more to give up
    for cap in range(64):  # the bounding set: execve cannot give any back
        libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0)
    number = _SYS_CAPSET.get(platform.machine())
    if number is None:
        return False
    header = (ctypes.c_uint32 * 2)(_CAP_VERSION_3, 0)
    data = (ctypes.c_uint32 * 6)()  # effective, permitted, inheritable: all empty
    return bool(libc.syscall(number, header, data) == 0)


def load_module(code: Any, filename: str, name: str = "program") -> types.ModuleType:
    """Execute ``code`` (source text or a code object) as a fresh module named ``name``."""
    module = types.ModuleType(name)
    module.__file__ = filename
    sys.modules[name] = module
    if isinstance(code, str):
        code = compile(code, filename, "exec")
    exec(code, module.__dict__)  # noqa: S102 - this is the point
    return module


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def serve_program(channel: socket.socket, code: str, filename: str,
                  functions: list[str], harness: dict[str, str] | None = None,
                  profile: bool = False) -> None:
    """Import the program, report which ``functions`` it defines, then answer calls.

    A request ``{"call": f, "args": a}`` runs ``program.f(*a)``; ``{"run": f, "args":
    a}`` runs ``harness.f(program, *a)``, the problem's own loop around the program
    (its source comes from the verifier; it runs here, beside the program). With
    ``profile``, every call runs under a profiler and ``{"profile": True}`` answers
    with the report of where the calls spent their time.
    """
    profiler = None
    if profile:
        from evoforge.evaluation.profiling import CandidateProfiler

        profiler = CandidateProfiler(filename, code)
    # compile first (the import's cost is its module body, not the parser's), then
    # wait for the verifier to read this process's clock: what the import costs is
    # then measured from outside (Program.import_seconds)
    sources = [("harness", "the problem's harness", harness["code"], harness["filename"])
               ] if harness else []
    sources.append(("program", "the program", code, filename))
    compiled: list[tuple[str, str, Any]] = []
    for key, label, text, name in sources:
        try:
            compiled.append((key, label, compile(text, name, "exec")))
        except BaseException as exc:  # noqa: BLE001
            compiled.append((key, label, exc))
    wire.send(channel, {"waiting": True})
    try:
        wire.recv(channel)
    except (EOFError, OSError):
        return
    loaded: dict[str, types.ModuleType] = {}
    for key, label, unit in compiled:
        try:
            if isinstance(unit, BaseException):
                raise unit
            loaded[key] = load_module(unit, filename, key)
        except BaseException as exc:  # noqa: BLE001 - every failure is a reason
            wire.send(channel, {"error": f"importing {label} failed: {_describe(exc)}"})
            return
    module, helper = loaded["program"], loaded.get("harness")
    missing = [f for f in functions if not callable(getattr(module, f, None))]
    wire.send(channel, {"ready": True, "missing": missing})
    while True:
        try:
            request = wire.recv(channel)
        except (EOFError, OSError):
            return
        if "profile" in request:
            wire.send(channel, {"ok": profiler.report() if profiler else "no profile"})
            continue
        args = request["args"]
        kwargs = request.get("kwargs", {})
        try:
            if "run" in request:
                func, args = getattr(helper, request["run"]), [module, *args]
            else:
                func = getattr(module, request["call"])
            result = (profiler.call(func, *args, **kwargs) if profiler
                      else func(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001
            wire.send(channel, {"raised": type(exc).__name__, "message": str(exc)})
            continue
        try:
            message = wire.encode({"ok": result})
        except wire.WireError as exc:
            message = wire.encode({"bad": str(exc)})
        channel.sendall(message)


def run_candidate(channel: socket.socket, spec: dict[str, Any]) -> None:
    """Body of a candidate process (never returns)."""
    code = 0
    try:
        os.setsid()
        devnull = os.open(os.devnull, os.O_RDONLY)
        workdir = spec["workdir"]
        out = os.open(os.path.join(workdir, "stdout.txt"),
                      os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        err = os.open(os.path.join(workdir, "stderr.txt"),
                      os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(devnull, 0)
        os.dup2(out, 1)
        os.dup2(err, 2)
        keep = channel.fileno()
        os.closerange(3, keep)
        os.closerange(keep + 1, 65536)
        sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        isolate(workdir, spec.get("scratch"), list(spec.get("hide", [])))
        drop_privileges()
        os.chdir(workdir)
        os.environ["TMPDIR"] = workdir
        _apply_limits(spec.get("limits", {}))
        serve_program(channel, spec["code"], spec["filename"], list(spec["functions"]),
                      spec.get("harness"), bool(spec.get("profile")))
    except BaseException as exc:  # noqa: BLE001 - the verifier sees the closed channel
        code = 99
        with contextlib.suppress(Exception):
            os.write(2, f"candidate process failed: {_describe(exc)}\n".encode())
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


# ---------------------------------------------------------------- the zygote


def _reap(children: set[int]) -> int:
    """Kill every candidate process (and their groups and orphans); reap them all."""
    killed = 0
    with contextlib.suppress(ChildProcessError):  # the ones that ended already
        while True:
            done, _ = os.waitpid(-1, os.WNOHANG)
            if done == 0:
                break
            children.discard(done)
    for _ in range(50):  # bounded: each round kills what was re-parented since the last
        pids = set(children) | set(_own_children())
        if not pids:
            break
        for pid in pids:
            for kill in (os.killpg, os.kill):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    kill(pid, signal.SIGKILL)
        killed += len(pids)
        for pid in pids:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        children.clear()
    return killed


def _own_children() -> list[int]:
    me = os.getpid()
    with contextlib.suppress(OSError), open(f"/proc/{me}/task/{me}/children") as f:
        return [int(p) for p in f.read().split()]
    return []


def zygote(control: socket.socket, scratch: str | None, network: bool) -> None:
    """Serve spawn and reap requests on ``control`` until it closes (never returns)."""
    from evoforge.evaluation.child import isolate_filesystem, isolate_network

    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None)
        # orphans of candidate processes come back here, to be killed by _reap
        libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)  # candidates may not read this one
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if not network:
        isolate_network()
    if scratch:
        isolate_filesystem(scratch)
    children: set[int] = set()
    code = 0
    try:
        while True:
            message, fds, _, _ = socket.recv_fds(control, 1 << 20, 4)
            if not message:
                break
            request = wire.decode(message)
            if request["op"] == "reap":
                for fd in fds:
                    os.close(fd)
                control.send(wire.encode({"id": request["id"], "reaped": _reap(children)}))
                continue
            channel = socket.socket(fileno=fds[0])
            pid = os.fork()
            if pid == 0:
                control.close()
                run_candidate(channel, request["spec"])
            channel.close()
            children.add(pid)
            # reap the ones that already ended, so the table stays small
            with contextlib.suppress(ChildProcessError):
                while True:
                    done, _ = os.waitpid(-1, os.WNOHANG)
                    if done == 0:
                        break
                    children.discard(done)
            control.send(wire.encode({"id": request["id"], "pid": pid}))
    except BaseException:  # noqa: BLE001 - the worker sees the closed socket
        code = 1
    _reap(children)
    os._exit(code)


def start_zygote(scratch: str | None, network: bool) -> tuple[socket.socket, int]:
    """Fork a zygote from this process; (the control socket, its pid).

    Call it before anything secret is in this process's memory: every candidate
    process starts as a copy of the zygote.
    """
    import numpy  # noqa: F401 - imported once here, not once per candidate

    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    pid = os.fork()
    if pid == 0:
        parent.close()
        keep = child.fileno()
        with contextlib.suppress(OSError):
            # nothing of the worker's protocol may reach a candidate
            os.closerange(3, keep)
            os.closerange(keep + 1, 65536)
        zygote(child, scratch, network)
    child.close()
    return parent, pid


def main() -> None:
    """``python -m evoforge.problem.candidate FD``: a zygote on the control socket FD.

    Started by an evaluator called outside a worker: a fresh interpreter, so its
    candidate processes hold nothing of the evaluator either.
    """
    control = socket.socket(fileno=int(sys.argv[1]))
    zygote(control, None, network=False)


if __name__ == "__main__":
    main()
