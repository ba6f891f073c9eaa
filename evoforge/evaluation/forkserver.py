"""A long-lived evaluation worker: imports the evaluator once, forks a child per candidate.

Run as ``python -m evoforge.evaluation.forkserver EVALUATOR NETWORK MAXPROC [SCRATCH]``
(NETWORK ``1`` lets candidates use the network; ``0`` moves the worker, and so every
child, into an empty network namespace where the OS allows it; SCRATCH, the directory
holding the children's working directories, is then the only writable place of the file
system, where the OS allows a private mount namespace). It reads one JSON
request per line on stdin and writes JSON lines on stdout:

* request ``{"id", "function", "program_path", "workdir", "result_path", "memory_mb",
  "cpu_seconds", "file_mb", "max_processes", "network"}``;
* reply ``{"id", "event": "started", "pid"}`` right after the fork, so the parent can
  kill the child's process group at its wall-clock timeout;
* reply ``{"id", "event": "exited", "status", "leftovers"}`` once the child has exited
  and every process it left behind has been killed and reaped.

The worker is the child subreaper of everything its children start (Linux
``PR_SET_CHILD_SUBREAPER``): processes that escape the child's process group or
session are re-parented to the worker, which kills them when the evaluation ends.
It serves one evaluation at a time.

Before it imports the evaluator, the worker forks a *zygote*
(:mod:`evoforge.problem.candidate`) from which kit-based evaluators get their candidate
processes, so that no candidate process ever holds the evaluator; after each
evaluation it has the zygote kill what candidate processes remain.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import json
import os
import signal
import sys
import tempfile
import time
from typing import Any

from evoforge.evaluation.child import (
    apply_limits,
    call_function,
    import_evaluator,
    isolate_filesystem,
    isolate_network,
    write_result,
)
from evoforge.problem import kit
from evoforge.problem.candidate import start_zygote

_PR_SET_CHILD_SUBREAPER = 36
_PR_SET_PDEATHSIG = 1
_PR_SET_DUMPABLE = 4


def _terminate(_signum: int, _frame: Any) -> None:
    raise SystemExit(0)


def _become_subreaper() -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def _children(pid: int) -> list[int]:
    """Direct children of ``pid``, from /proc."""
    with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(p) for p in f.read().split()]
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # the fields after the command name, which may itself hold spaces or parens
        fields = stat[stat.rfind(b")") + 2:].split()
        if len(fields) > 1 and int(fields[1]) == pid:
            found.append(int(entry))
    return found


class PidsCgroup:
    """A pids cgroup for this worker's children: caps their number (fork bombs) and
    lists them all, wherever they moved in the process tree. Best effort: None where
    the cgroup file system is not writable.

    The worker enters it once and its children are born in it: moving each child in
    (a write to ``cgroup.procs``) took about 15 ms on cgroup v1, longer than a whole
    instant evaluation (issue 11). The worker counts against ``pids.max`` itself.
    """

    ROOTS = ("/sys/fs/cgroup/pids", "/sys/fs/cgroup")

    def __init__(self, path: str, home: str | None = None) -> None:
        self.path = path
        self.home = home  # the cgroup the worker came from, to go back to at the end

    @classmethod
    def create(cls, max_processes: int) -> PidsCgroup | None:
        for root in cls.ROOTS:
            path = os.path.join(root, f"evoforge-{os.getpid()}")
            try:
                os.mkdir(path)
            except OSError:
                continue
            try:
                with open(os.path.join(path, "pids.max"), "w") as f:
                    f.write(str(max_processes + 1))  # the worker and its candidates
                return cls(path, _own_cgroup(root))
            except OSError:
                with contextlib.suppress(OSError):
                    os.rmdir(path)
        return None

    def enter(self) -> None:
        """Move the calling process into the cgroup."""
        _move_to(self.path)

    def leave(self) -> None:
        """Move the calling process back to where it came from (best effort)."""
        if self.home is not None:
            with contextlib.suppress(OSError):
                _move_to(self.home)

    def pids(self) -> list[int]:
        with contextlib.suppress(OSError), open(os.path.join(self.path, "cgroup.procs")) as f:
            return [int(p) for p in f.read().split()]
        return []

    def remove(self) -> None:
        """Leave the cgroup, kill what is left in it and remove it."""
        self.leave()
        remove_cgroup(self.path)


def _move_to(path: str) -> None:
    with open(os.path.join(path, "cgroup.procs"), "w") as f:
        f.write(str(os.getpid()))


def _own_cgroup(root: str) -> str | None:
    """The folder under ``root`` of the calling process's cgroup in that hierarchy."""
    v2 = root == PidsCgroup.ROOTS[1]
    with contextlib.suppress(OSError), open("/proc/self/cgroup") as f:
        for line in f:
            _, controllers, where = line.rstrip("\n").split(":", 2)
            if (controllers == "" if v2 else "pids" in controllers.split(",")):
                return os.path.join(root, where.lstrip("/"))
    return None


def remove_cgroup(path: str) -> None:
    """Kill what is left in a worker's cgroup and remove it (bounded retries)."""
    for _ in range(20):
        try:
            with open(os.path.join(path, "cgroup.procs")) as f:
                pids = [int(p) for p in f.read().split()]
        except OSError:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        try:
            os.rmdir(path)
            return
        except OSError:
            time.sleep(0.05)


def _kill_leftovers(cgroup: PidsCgroup | None, spare: int | None = None) -> int:
    """Kill and reap every process the evaluation left; how many there were.

    ``spare`` (the candidate-process zygote) is not one of them.
    """
    me = os.getpid()
    killed = 0
    for _ in range(50):  # bounded: each round kills what was re-parented since the last
        children = [p for p in _children(me) + (cgroup.pids() if cgroup is not None else [])
                    if p not in (spare, me)]
        if not children:
            break
        for pid in children:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        killed += len(children)
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                time.sleep(0.001)
    return killed


def _child(module: Any, request: dict[str, Any], import_error: dict[str, Any] | None) -> None:
    """Runs in the forked child; never returns."""
    me = os.getpid()
    try:
        os.setsid()
        os.chdir(request["workdir"])
        devnull = os.open(os.devnull, os.O_RDONLY)
        out = os.open("stdout.txt", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        err = os.open("stderr.txt", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(devnull, 0)
        os.dup2(out, 1)
        os.dup2(err, 2)
        # the link to the candidate-process zygote is the one descriptor kept
        keep = kit.zygote_fd()
        if keep is None:
            os.closerange(3, 65536)
        else:
            os.closerange(3, keep)
            os.closerange(keep + 1, 65536)
        # temporary files of the candidate go to its own directory
        os.environ["TMPDIR"] = request["workdir"]
        tempfile.tempdir = request["workdir"]
        sys.stdin = open(0, closefd=False)  # noqa: SIM115 - lives as long as the process
        sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        apply_limits(int(request["memory_mb"]), request.get("cpu_seconds"),
                     request.get("file_mb"), request.get("max_processes"))
        if import_error is not None:
            result = import_error
        else:
            result = call_function(module, request["function"], request["program_path"],
                                   request.get("probe_arguments"),
                                   bool(request.get("profile")), request.get("timeout"))
        if os.getpid() != me:
            os._exit(0)  # a process the candidate forked got here: only the child reports
        write_result(request["result_path"], result)
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
    except BaseException:  # noqa: BLE001 - the parent reads the exit code instead
        os._exit(99)
    os._exit(0)


def serve(evaluator_path: str, network: bool, max_processes: int, scratch: str) -> None:
    """Answer requests on stdin until it closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when we stop
    # if the parent dies without closing our stdin, stop anyway (and clean up)
    signal.signal(signal.SIGTERM, _terminate)
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    # the protocol keeps its own descriptors; fds 0 and 1 go to /dev/null so that an
    # evaluator printing at import cannot corrupt it
    requests = os.fdopen(os.dup(0), "r")
    replies = os.fdopen(os.dup(1), "w", buffering=1)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)

    def reply(message: dict[str, Any]) -> None:
        replies.write(json.dumps(message) + "\n")

    subreaper = _become_subreaper()
    cgroup = PidsCgroup.create(max_processes)
    # candidate processes are forked from a zygote made now, before the evaluator is
    # imported: their memory never holds the evaluator, its verifier or its data
    control, zygote_pid = start_zygote(scratch or None, network)
    kit.install_zygote(control, zygote_pid, scratch or None,
                       hide=[os.path.dirname(os.path.abspath(evaluator_path)),
                             kit.BUILTIN_PROBLEMS])
    # and no process of the same user may read this one's memory (/proc/PID/mem, ptrace)
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)
    if cgroup is not None:  # after the zygote: its candidate processes have their own
        try:
            cgroup.enter()
        except OSError:
            cgroup.remove()
            cgroup = None
    # warm up: the import (and whatever the evaluator does at import) happens once
    module, import_error = import_evaluator(evaluator_path)
    # children inherit an empty network namespace and a file system that is read-only
    # outside the scratch directory holding their working directories: no cost per
    # candidate
    isolated = False if network else isolate_network()
    fs_isolated = isolate_filesystem(scratch) if scratch else False
    # the objects made so far are never collected in a child: a collection there would
    # touch (and so copy) every page they sit on
    gc.freeze()
    reply({"event": "ready", "pid": os.getpid(), "import_error": import_error,
           "network_isolated": isolated, "filesystem_isolated": fs_isolated, "subreaper": subreaper,
           "cgroup": cgroup.path if cgroup else None})
    try:
        for line in requests:
            if not line.strip():
                continue
            request = json.loads(line)
            pid = os.fork()
            if pid == 0:
                _child(module, request, import_error)
            reply({"id": request["id"], "event": "started", "pid": pid})
            _, status = os.waitpid(pid, 0)
            leftovers = kit.reap_candidates() + _kill_leftovers(cgroup, zygote_pid)
            reply({"id": request["id"], "event": "exited", "status": status,
                   "leftovers": leftovers})
    finally:
        with contextlib.suppress(OSError):
            control.close()  # the zygote then kills its candidates and exits
        _kill_leftovers(cgroup)
        if cgroup is not None:
            cgroup.remove()


def main() -> None:
    """Entry point: ``python -m evoforge.evaluation.forkserver EVALUATOR NET MAXPROC [DIR]``."""
    serve(sys.argv[1], network=sys.argv[2] == "1", max_processes=int(sys.argv[3]),
          scratch=sys.argv[4] if len(sys.argv) > 4 else "")


if __name__ == "__main__":
    main()
