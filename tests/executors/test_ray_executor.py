"""The Ray executor against a real local Ray instance (started once for the module)."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from evoforge.candidate import Status
from evoforge.config import RunConfig
from evoforge.evaluation.sandbox import EvalJob, EvalOutcome
from evoforge.executors.ray_executor import MISSING_RAY, RayExecutor, ray_reason
from evoforge.problem import load_problem
from evoforge.run import Evolution, RunResult, create_run
from evoforge.storage import SQLStorage

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "problems"
FAULTY = FIXTURES / "faulty" / "evaluator.py"

needs_ray = pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                               reason="ray is not installed (pip install 'evoforge[ray]')")


def _job(body: str, timeout: float = 60.0) -> EvalJob:
    return EvalJob(code=body, evaluator_path=FAULTY, timeout=timeout, memory_mb=1024)


def _stat(pid: int) -> tuple[str, str, int] | None:
    """(name, state, parent pid) of a process, or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    name = text[text.index("(") + 1:text.rindex(")")]
    state, ppid = text[text.rindex(")") + 2:].split()[:2]
    return name, state, int(ppid)


def _running(pid: int) -> bool:
    stat = _stat(pid)
    return stat is not None and stat[1] != "Z"


def _descendants(root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := _stat(int(entry))) is not None:
            children.setdefault(stat[2], []).append(int(entry))
    found: set[int] = set()
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _wait_gone(pids: set[int], seconds: float) -> set[int]:
    """The pids still running after waiting up to ``seconds`` for them to end."""
    deadline = time.monotonic() + seconds
    while (alive := {p for p in pids if _running(p)}) and time.monotonic() < deadline:
        time.sleep(0.2)
    return alive


def _hang_with_grandchild(pid_file: Path) -> str:
    """A candidate that starts a ``sleep`` in its process group, records both pids, hangs."""
    return ("import os, subprocess, time\n\n"
            "def f():\n"
            "    p = subprocess.Popen(['sleep', '600'])\n"
            f"    open({str(pid_file)!r}, 'w').write(f'{{os.getpid()}} {{p.pid}}')\n"
            "    time.sleep(600)\n")


async def _pids_from(pid_file: Path, seconds: float = 30.0) -> set[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        text = pid_file.read_text() if pid_file.exists() else ""
        if len(text.split()) == 2:
            return {int(p) for p in text.split()}
        await asyncio.sleep(0.1)
    raise AssertionError("the candidate never started")


def test_without_ray_the_module_imports_and_construction_says_what_to_install(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # makes ``import ray`` fail
    with pytest.raises(RuntimeError) as info:
        RayExecutor(2)
    assert str(info.value) == MISSING_RAY
    assert "pip install 'evoforge[ray]'" in MISSING_RAY


def test_ray_reasons_are_one_line() -> None:
    class TaskError(Exception):
        def __init__(self, cause: BaseException) -> None:
            super().__init__("\x1b[36mray::evaluate_on_worker()\x1b[39m\n  File ...\nboom")
            self.cause = cause

    assert ray_reason(TaskError(ValueError("bad\nsecond line"))) == "ray: ValueError: bad"
    assert ray_reason(OSError("\n\nworker died\nmore")) == "ray: OSError: worker died"
    assert ray_reason(RuntimeError()) == "ray: RuntimeError"


@pytest.fixture(scope="module")
def ray_executor() -> Iterator[RayExecutor]:
    """One local Ray instance (2 CPUs) for the module, shut down and checked at the end.

    Its executor runs the spawn path (a Ray task per candidate), whose Ray-level
    failures these tests provoke; the fork-server actors are tested by the
    conformance suite (test_conformance.py) and the evolution test below.
    """
    before = _descendants(os.getpid())  # other tests' processes are not Ray's
    executor = RayExecutor(max_workers=2, isolation="spawn")
    assert executor._owns_ray, "Ray was already initialized in the test process"
    try:
        yield executor
    finally:
        ray_processes = _descendants(os.getpid()) - before
        names = {stat[0] for p in ray_processes if (stat := _stat(p)) is not None}
        asyncio.run(executor.close())
        assert {"raylet", "gcs_server"} <= names
        left = _wait_gone(ray_processes, 20.0)
        assert not left, f"Ray processes still running after shutdown: {left}"
        if before:
            print("processes of other tests alive when Ray started:",
                  {p: Path(f"/proc/{p}/cmdline").read_bytes()[:150] for p in before
                   if Path(f"/proc/{p}/cmdline").exists()})


@pytest.mark.slow
@needs_ray
def test_ok_crash_timeout_and_raise_are_outcomes(ray_executor: RayExecutor) -> None:
    jobs = {
        "ok": _job("def f():\n    return 2.5\n"),
        "crash": _job("import os, signal\n\ndef f():\n    os.kill(os.getpid(), signal.SIGSEGV)\n"),
        "hang": _job("def f():\n    while True:\n        pass\n", timeout=2.0),
        "raise": _job("def f():\n    raise ValueError('bad idea')\n"),
    }

    async def main() -> dict[str, tuple[EvalOutcome, float]]:
        async def timed(job: EvalJob) -> tuple[EvalOutcome, float]:
            start = time.monotonic()
            return await ray_executor.evaluate(job), time.monotonic() - start

        results = await asyncio.gather(*(timed(job) for job in jobs.values()))
        return dict(zip(jobs, results, strict=True))

    out = asyncio.run(main())
    ok, _ = out["ok"]
    assert ok.status == "ok" and ok.metrics == {"combined_score": 2.5}, ok
    crash, _ = out["crash"]
    assert crash.status == "failed" and crash.error is not None and "SIGSEGV" in crash.error
    hang, hang_seconds = out["hang"]
    assert hang.status == "timeout" and hang.error == "timed out after 2 s"
    assert hang_seconds < 15.0  # enforced on the worker, not by the 30 s safety net
    raised, _ = out["raise"]
    assert raised.status == "failed" and raised.error is not None
    assert "bad idea" in raised.error and "ValueError" in raised.artifacts["traceback"]


@pytest.mark.slow
@needs_ray
def test_a_dead_worker_is_a_failed_outcome_not_an_exception(ray_executor: RayExecutor) -> None:
    # the candidate's parent is the Ray worker: killing it is a Ray-level failure
    job = _job("import os, signal\n\ndef f():\n    os.kill(os.getppid(), signal.SIGKILL)\n"
               "    return 1.0\n")
    out = asyncio.run(ray_executor.evaluate(job))
    assert out.status == "failed" and out.error is not None, out
    assert out.error.startswith("ray: ") and "\n" not in out.error
    # and the executor goes on working
    again = asyncio.run(ray_executor.evaluate(_job("def f():\n    return 3.0\n")))
    assert again.status == "ok" and again.metrics == {"combined_score": 3.0}


@pytest.mark.slow
@needs_ray
def test_cancelling_the_awaiting_task_kills_the_candidate_and_its_children(
        ray_executor: RayExecutor, tmp_path: Path) -> None:
    pid_file = tmp_path / "pids"

    async def main() -> tuple[set[int], float]:
        task = asyncio.ensure_future(ray_executor.evaluate(_job(_hang_with_grandchild(pid_file))))
        pids = await _pids_from(pid_file)
        start = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return pids, time.monotonic() - start

    pids, seconds = asyncio.run(main())
    assert seconds < ray_executor.cancel_grace + 5.0
    assert not _wait_gone(pids, 10.0)


@pytest.mark.slow
@needs_ray
def test_a_task_that_does_not_answer_is_cancelled_as_a_timeout(
        ray_executor: RayExecutor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a negative margin makes the driver give up before the worker's own timeout,
    # as it would for a task stuck in the queue or on a hung node
    monkeypatch.setattr(ray_executor, "safety_margin", -56.0)
    pid_file = tmp_path / "pids"

    async def main() -> tuple[EvalOutcome, set[int]]:
        task = asyncio.ensure_future(ray_executor.evaluate(_job(_hang_with_grandchild(pid_file))))
        pids = await _pids_from(pid_file)
        return await task, pids

    out, pids = asyncio.run(main())
    assert out.status == "timeout" and out.error is not None
    assert "did not answer" in out.error
    assert not _wait_gone(pids, 10.0)


@pytest.mark.slow
@needs_ray
def test_short_evolution_runs_on_ray(ray_executor: RayExecutor, tmp_path: Path) -> None:
    problem = load_problem(FIXTURES / "quadratic")
    storage = SQLStorage(str(tmp_path / "run.db"))
    run = create_run(storage, problem, budget=15, seed=1, workers=2)
    config = RunConfig.model_validate(run.config)

    async def main() -> RunResult:
        executor = RayExecutor(2)  # joins the module's Ray instance
        try:
            evo = Evolution(problem, storage, run, executor, config)
            return await evo.run_session()
        finally:
            await executor.close()

    result = asyncio.run(main())
    assert result.progress.evaluated == 15
    best, initial = result.best, result.initial
    assert best is not None and initial is not None
    assert best.score is not None and initial.score is not None
    assert best.score >= initial.score
    evaluated = [c for c in storage.iter_candidates(run.id)
                 if c.status in (Status.OK, Status.FAILED, Status.TIMEOUT)]
    assert len(evaluated) == 15  # duplicates are stored but not evaluated
    assert sum(c.status == Status.OK for c in evaluated) >= 5
    import ray

    assert ray.is_initialized()  # closing a guest executor leaves Ray running
