"""Entry point of an evaluation process: ``python -m evoforge.evaluation.child JOB``.

Runs one evaluator function on one program and writes the outcome as JSON to the
job's result file. The parent process enforces the wall-clock timeout, captures
output and kills the process group; this side sets resource limits and turns
every way an evaluation can end into a result with a reason.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import resource
import sys
import traceback
from typing import Any

from evoforge.evaluation.result import install_openevolve_shim


def _limit_memory(memory_mb: int) -> None:
    limit = memory_mb * 1024 * 1024
    # where a limit is not permitted, the wall-clock timeout still applies
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


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
    if isinstance(result, dict):
        return {"metrics": _jsonable(result), "artifacts": {}}
    metrics = getattr(result, "metrics", None)
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


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """Import the evaluator, call the requested function, return the outcome dict."""
    sys.path.insert(0, job["problem_dir"])
    install_openevolve_shim()
    try:
        spec = importlib.util.spec_from_file_location("evaluator", job["evaluator_path"])
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["evaluator"] = module
        spec.loader.exec_module(module)
    except BaseException as exc:  # noqa: BLE001 - every failure becomes a reason
        out = _error(exc)
        out["error"] = f"importing the evaluator failed: {out['error']}"
        return out
    func = getattr(module, job["function"], None)
    if not callable(func):
        return {"error": f"the evaluator has no function {job['function']}()"}
    try:
        return _normalize(func(job["program_path"]))
    except BaseException as exc:  # noqa: BLE001
        return _error(exc)


def main() -> None:
    """Run the job file named on the command line; always exits through os._exit."""
    with open(sys.argv[1]) as f:
        job = json.load(f)
    _limit_memory(int(job["memory_mb"]))
    os.chdir(job["workdir"])
    out = run_job(job)
    try:
        text = json.dumps(out, allow_nan=True)
    except (TypeError, ValueError) as exc:
        text = json.dumps({"error": f"the evaluator's result is not serializable: {exc}"})
    tmp = job["result_path"] + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, job["result_path"])
    sys.stdout.flush()
    sys.stderr.flush()
    # skip interpreter teardown: leftover threads or atexit hooks must not hang us
    os._exit(0)


if __name__ == "__main__":
    main()
