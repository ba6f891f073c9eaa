"""Entry point of an evaluation process: ``python -m evoforge.evaluation.child JOB``.

Runs one evaluator function on one program and writes the outcome as JSON to the
job's result file. The parent process enforces the wall-clock timeout, captures
output and kills the process group; this side sets resource limits and turns
every way an evaluation can end into a result with a reason.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import importlib.util
import inspect
import json
import math
import os
import resource
import signal
import sys
import traceback
from typing import Any

from evoforge.evaluation.result import install_openevolve_shim

_CLONE_NEWNET = 0x40000000


def apply_limits(memory_mb: int, cpu_seconds: float | None = None,
                 file_mb: int | None = None, max_processes: int | None = None) -> None:
    """Set this process's resource limits; where one is not permitted, skip it.

    The wall-clock timeout enforced by the parent holds whatever is skipped here.
    """
    mib = 1024 * 1024
    limits = [(resource.RLIMIT_AS, memory_mb * mib), (resource.RLIMIT_CORE, 0)]
    if cpu_seconds is not None:
        limits.append((resource.RLIMIT_CPU, max(1, math.ceil(cpu_seconds))))
    if file_mb is not None:
        limits.append((resource.RLIMIT_FSIZE, file_mb * mib))
        # a write past the limit then fails with EFBIG instead of killing silently
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    if max_processes is not None and os.geteuid() != 0:
        # counts all processes of the user, so leave room for the ones running now
        limits.append((resource.RLIMIT_NPROC, _user_processes() + max_processes))
    for which, value in limits:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(which, (value, value))


def _user_processes() -> int:
    uid = os.getuid()
    count = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    count += 1
    return count


_CLONE_NEWNS = 0x00020000
_MS_RDONLY, _MS_REMOUNT, _MS_BIND, _MS_REC, _MS_PRIVATE = 1, 32, 4096, 16384, 1 << 18
# mounts a candidate still writes to: devices (/dev/null, /dev/shm), kernel interfaces
_KEEP_WRITABLE = ("/dev", "/proc", "/sys/fs/cgroup")


def isolate_filesystem(writable: str) -> bool:
    """Make every mount read-only for this process and its children, but ``writable``.

    Uses a private mount namespace (root only); False where the OS refuses.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.unshare(_CLONE_NEWNS) != 0:
            return False
        if libc.mount(b"none", b"/", None, _MS_REC | _MS_PRIVATE, None) != 0:
            return False
        target = os.path.realpath(writable).encode()
        if libc.mount(target, target, None, _MS_BIND | _MS_REC, None) != 0:
            return False
        with open("/proc/self/mountinfo") as f:
            points = [line.split()[4] for line in f]
        keep = (os.path.realpath(writable), *_KEEP_WRITABLE)
        for point in points:
            if any(point == k or point.startswith(k.rstrip("/") + "/") for k in keep):
                continue
            libc.mount(None, point.encode(), None, _MS_REMOUNT | _MS_BIND | _MS_RDONLY, None)
        return True
    except (OSError, AttributeError):
        return False


def isolate_network() -> bool:
    """Move this process into a new, empty network namespace; False where refused."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.unshare(_CLONE_NEWNET) == 0)
    except (OSError, AttributeError):
        return False


def _jsonable(value: Any) -> Any:
    """Numbers, strings, lists and dicts pass; numpy scalars become floats; rest -> repr."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    item = getattr(value, "item", None)
    if callable(item):
        try:
            return _jsonable(item())
        except (TypeError, ValueError):
            pass
    return repr(value)


def _normalize(result: Any) -> dict[str, Any]:
    metrics = getattr(result, "metrics", None)
    if isinstance(result, dict) and not isinstance(metrics, dict):
        return {"metrics": _jsonable(result), "artifacts": {}}
    if isinstance(metrics, dict):
        artifacts = getattr(result, "artifacts", None) or {}
        return {"metrics": _jsonable(metrics), "artifacts": _jsonable(dict(artifacts))}
    shown = "nothing (None)" if result is None else f"a {type(result).__name__}"
    return {"error": f"evaluator returned {shown}; expected a metrics dict or EvaluationResult"}


def _error(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, MemoryError):
        return {"error": "out of memory: the evaluation exceeded its memory limit",
                "kind": "memory"}
    if isinstance(exc, SystemExit):
        return {"error": f"the evaluation called sys.exit({exc.code!r})"}
    if isinstance(exc, RecursionError):
        return {"error": "RecursionError: maximum recursion depth exceeded"}
    tb = traceback.format_exception(type(exc), exc, exc.__traceback__)
    tail = "".join(tb[-6:])
    return {"error": f"{type(exc).__name__}: {exc}".strip(), "traceback": tail[-4000:]}


def import_evaluator(evaluator_path: str) -> tuple[Any, dict[str, Any] | None]:
    """Import ``evaluator.py`` as module ``evaluator``; (module, None) or (None, error)."""
    problem_dir = os.path.dirname(os.path.abspath(evaluator_path))
    if problem_dir not in sys.path:
        sys.path.insert(0, problem_dir)
    install_openevolve_shim()
    try:
        spec = importlib.util.spec_from_file_location("evaluator", evaluator_path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["evaluator"] = module
        spec.loader.exec_module(module)
    except BaseException as exc:  # noqa: BLE001 - every failure becomes a reason
        out = _error(exc)
        out["error"] = f"importing the evaluator failed: {out['error']}"
        return None, out
    return module, None


PROBE = "__probe__"
"""Pseudo function name: run the candidate on the evaluator's probe inputs, hash outputs."""


def _canonical(value: Any, out: list[str]) -> None:
    """Append a canonical text form of ``value``: equal behaviour, equal text."""
    if isinstance(value, float):
        out.append(f"f{round(value, 9)!r}")
    elif isinstance(value, bool | int | str | bytes) or value is None:
        out.append(f"{type(value).__name__}{value!r}")
    elif isinstance(value, dict):
        out.append("{")
        for key in sorted(value, key=repr):
            _canonical(key, out)
            _canonical(value[key], out)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for item in value:
            _canonical(item, out)
        out.append("]")
    elif hasattr(value, "dtype") and hasattr(value, "shape") and hasattr(value, "tolist"):
        # numpy arrays and scalars, without importing numpy here
        kind = getattr(value.dtype, "kind", "")
        data = value.round(9) if kind in "fc" else value
        out.append(f"nd{value.shape}{value.dtype.str}")
        _canonical(data.tolist(), out)
    else:
        out.append(repr(value))


def probe(module: Any, program_path: str,
          arguments: list[list[Any]] | None = None) -> dict[str, Any]:
    """Run the candidate on probe inputs and hash the outputs.

    The inputs are ``arguments`` (from the config: one list of positional arguments
    per call) or else the evaluator's ``probe_inputs()`` (one input per call; a tuple
    is spread as arguments). Without config arguments, an evaluator's
    ``probe_program(program)`` takes precedence: it gets the imported program and
    returns what is hashed, so a problem whose program makes a sequence of decisions
    can run it closed-loop on a small instance (each call then sees the states the
    program's own earlier choices made, which fixed inputs cannot show); if it raises,
    the program hashes as the exception's type. The evaluator names the function with
    ``PROBE_FUNCTION`` (default: the first function the program defines). An input
    that makes the candidate raise hashes as the exception's type, so equal failures
    are equal too. An evaluator's ``probe_key(output)``, if defined, maps each output to
    what the evaluation depends on (say, the order of a priority function's scores)
    before it is hashed; it may raise for an output the evaluation would reject.
    """
    whole = getattr(module, "probe_program", None) if arguments is None else None
    inputs: list[Any] = ([tuple(a) for a in arguments] if arguments is not None
                         else [] if whole is not None else list(module.probe_inputs()))
    spec = importlib.util.spec_from_file_location("candidate_probe", program_path)
    assert spec is not None and spec.loader is not None
    program = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(program)
    except BaseException as exc:  # noqa: BLE001
        digest = hashlib.sha256(f"import:{type(exc).__name__}".encode()).hexdigest()[:32]
        return {"metrics": {}, "artifacts": {"probe_hash": digest}}
    parts: list[str] = []
    if whole is not None:
        try:
            _canonical(whole(program), parts)
        except Exception as exc:  # noqa: BLE001 - raising is behaviour too
            parts = [f"raise:{type(exc).__name__}"]
        return _probe_digest(parts)
    key = getattr(module, "probe_key", None)
    name = getattr(module, "PROBE_FUNCTION", None)
    if name is None:
        functions = [v for v in vars(program).values()
                     if inspect.isfunction(v) and v.__module__ == program.__name__]
        if not functions:
            return {"error": "probe: the program defines no function to probe"}
        func = functions[0]
    else:
        func = getattr(program, name)
    for args in inputs:
        call_args = args if isinstance(args, tuple) else (args,)
        try:
            output = func(*call_args)
            _canonical(output if key is None else key(output), parts)
        except Exception as exc:  # noqa: BLE001 - raising is behaviour too
            parts.append(f"raise:{type(exc).__name__}")
    return _probe_digest(parts)


def _probe_digest(parts: list[str]) -> dict[str, Any]:
    """The probe's outcome: the hash of the canonical parts of its outputs."""
    digest = hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]
    return {"metrics": {}, "artifacts": {"probe_hash": digest}}


def call_function(module: Any, function: str, program_path: str,
                  probe_arguments: list[list[Any]] | None = None,
                  profile: bool = False, timeout: float | None = None) -> dict[str, Any]:
    """Call ``module.function(program_path)``; the outcome dict, never an exception.

    With ``profile`` (config ``evaluator.profile``) the function is called a second
    time, under :func:`evoforge.evaluation.profiling.profiled`, and the outcome gets
    the ``profile`` artifact (unless the evaluator set one itself).
    """
    if function == PROBE:
        try:
            return probe(module, program_path, probe_arguments)
        except BaseException as exc:  # noqa: BLE001
            return _error(exc)
    func = getattr(module, function, None)
    if not callable(func):
        return {"error": f"the evaluator has no function {function}()"}
    try:
        if profile and function != PROBE:
            return _with_profile(func, program_path, timeout)
        return _normalize(func(program_path))
    except BaseException as exc:  # noqa: BLE001
        return _error(exc)


# a profiled call takes up to this many times the plain one (cProfile on pure Python)
_PROFILE_SLOWDOWN = 4.0


def _with_profile(func: Any, program_path: str, timeout: float | None) -> dict[str, Any]:
    """The profiling hook: the scored call runs as usual (profilers slow a candidate
    down, which would distort speed scores), then a second call of ``func`` under
    the profilers gives the ``profile`` artifact; its result is not used. The second
    call is skipped when it would likely run past the evaluation's ``timeout``."""
    import time

    from evoforge.evaluation.profiling import profiled

    started = time.perf_counter()
    out = _normalize(func(program_path))
    took = time.perf_counter() - started
    if timeout is not None and took * (1 + _PROFILE_SLOWDOWN) > timeout:
        report = (f"no profile: the evaluation took {took:.3g} s, too close to its "
                  f"{timeout:g} s timeout for a profiled second run")
    else:
        try:
            _, report = profiled(func, program_path)
        except Exception as exc:  # noqa: BLE001 - the score stands; say why no profile
            report = f"the profiled run failed: {type(exc).__name__}: {exc}"[:300]
    out["artifacts"].setdefault("profile", report)
    return out


def write_result(result_path: str, out: dict[str, Any]) -> None:
    """Write the outcome atomically, so a half-written file is never read."""
    try:
        text = json.dumps(out, allow_nan=True)
    except (TypeError, ValueError) as exc:
        text = json.dumps({"error": f"the evaluator's result is not serializable: {exc}"})
    tmp = result_path + ".tmp"
    try:
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, result_path)
    except OSError as exc:  # e.g. the file-size limit was already used up
        if exc.errno == errno.EFBIG:
            os._exit(97)  # sandbox.EXIT_FSIZE
        raise


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """Import the evaluator, call the requested function, return the outcome dict."""
    module, error = import_evaluator(job["evaluator_path"])
    if error is not None:
        return error
    return call_function(module, job["function"], job["program_path"],
                         job.get("probe_arguments"), bool(job.get("profile")),
                         job.get("timeout"))


def main() -> None:
    """Run the job file named on the command line; always exits through os._exit."""
    with open(sys.argv[1]) as f:
        job = json.load(f)
    os.chdir(job["workdir"])
    # candidate processes of kit-based evaluators fork from a zygote made before the
    # evaluator is imported (see evoforge.problem.candidate)
    from evoforge.problem import kit
    from evoforge.problem.candidate import start_zygote
    control, pid = start_zygote(None, network=True)
    kit.install_zygote(control, pid, None, hide=[job["problem_dir"], kit.BUILTIN_PROBLEMS])
    apply_limits(int(job["memory_mb"]))
    write_result(job["result_path"], run_job(job))
    sys.stdout.flush()
    sys.stderr.flush()
    # skip interpreter teardown: leftover threads or atexit hooks must not hang us
    os._exit(0)


if __name__ == "__main__":
    main()
