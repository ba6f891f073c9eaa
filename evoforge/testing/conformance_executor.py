"""Conformance tests for :class:`~evoforge.executors.base.Executor` implementations.

Subclass :class:`ExecutorConformance` and implement :meth:`~ExecutorConformance.make_executor`;
every test creates the executor inside its own event loop and closes it at the end::

    class TestMyExecutor(ExecutorConformance):
        def make_executor(self) -> Executor:
            return MyExecutor(max_workers=2)

The candidates are hostile on purpose (a crash, a hang that leaves a child behind, a
fork bomb, a memory bomb): the tests check that each is an outcome, within its time
limit, and that nothing the candidate started is still running afterwards.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from evoforge.evaluation.sandbox import EvalJob, EvalOutcome
from evoforge.executors.base import Executor

EVALUATOR = '''
import importlib.util


def evaluate(program_path):
    spec = importlib.util.spec_from_file_location("candidate", program_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return {"combined_score": module.f()}
'''
GRACE = 20.0
"""Seconds past a job's timeout an outcome may take (a loaded machine, a busy cluster)."""

BOMB_TIMEOUT = 8.0
"""The fork bomb's timeout: where nothing caps its processes it runs this long."""


def _running(pid: int) -> bool:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return text[text.rindex(")") + 2:].split()[0] != "Z"


def _record_pids(pid_file: Path) -> str:
    """Candidate lines that start a ``sleep`` child and write both pids to ``pid_file``."""
    return ("    import os, subprocess\n"
            "    p = subprocess.Popen(['sleep', '600'])\n"
            f"    open({str(pid_file)!r}, 'w').write(f'{{os.getpid()}} {{p.pid}}')\n")


class ExecutorConformance:
    """The :class:`~evoforge.executors.base.Executor` contract, as tests to subclass.

    Attributes:
        timeout: the hang test's job timeout, seconds.
        answered_at: ``time.time()`` of the last answer in :meth:`run_jobs`.
    """

    timeout = 3.0
    answered_at = 0.0

    def make_executor(self) -> Executor:
        """A new executor under test (called inside the test's event loop)."""
        raise NotImplementedError

    @pytest.fixture
    def pid_file(self) -> Iterator[Path]:
        """Where a candidate writes its pids: /dev/shm, which the sandbox leaves writable
        (a candidate may not write outside its own temporary directory elsewhere)."""
        path = Path("/dev/shm") / f"evoforge-conformance-{uuid.uuid4().hex}"
        yield path
        path.unlink(missing_ok=True)

    @pytest.fixture
    def evaluator(self, tmp_path: Path) -> Path:
        """A minimal evaluator: ``combined_score`` is what the candidate's ``f()`` returns."""
        path = tmp_path / "evaluator.py"
        path.write_text(EVALUATOR)
        return path

    def job(self, evaluator: Path, body: str, **kw: object) -> EvalJob:
        """A job whose candidate's ``f()`` runs ``body`` (indented function lines)."""
        return EvalJob(code=f"def f():\n{body}", evaluator_path=evaluator,
                       **{"timeout": 60.0, "memory_mb": 1024, **kw})  # type: ignore[arg-type]

    def run_jobs(self, jobs: list[EvalJob]) -> list[tuple[EvalOutcome, float]]:
        """Each job's outcome and wall seconds, all submitted at once to one executor
        (:attr:`answered_at`: the wall-clock time of the last answer)."""
        self.answered_at = 0.0
        async def main() -> list[tuple[EvalOutcome, float]]:
            executor = self.make_executor()

            async def timed(job: EvalJob) -> tuple[EvalOutcome, float]:
                start = time.monotonic()
                outcome = await executor.evaluate(job)
                self.answered_at = max(self.answered_at, time.time())
                return outcome, time.monotonic() - start

            try:
                return await asyncio.gather(*(timed(j) for j in jobs))
            finally:
                await executor.close()

        return asyncio.run(main())

    @staticmethod
    def wait_gone(pids: list[int], seconds: float = 10.0) -> list[int]:
        """The pids still running after up to ``seconds``."""
        deadline = time.monotonic() + seconds
        while (alive := [p for p in pids if _running(p)]) and time.monotonic() < deadline:
            time.sleep(0.1)
        return alive

    # --- the tests ---------------------------------------------------------------------

    def test_ok_raise_and_crash_are_outcomes(self, evaluator: Path) -> None:
        (ok, _), (raised, _), (crash, _) = self.run_jobs([
            self.job(evaluator, "    return 2.5\n"),
            self.job(evaluator, "    raise ValueError('bad idea')\n"),
            self.job(evaluator,
                     "    import os, signal\n    os.kill(os.getpid(), signal.SIGSEGV)\n"),
        ])
        assert ok.status == "ok", ok.error
        assert ok.metrics == {"combined_score": 2.5}
        assert raised.status == "failed" and "ValueError" in (raised.error or "")
        assert crash.status == "failed" and "SIGSEGV" in (crash.error or "")

    def test_hang_times_out_and_leaves_nothing(self, evaluator: Path, pid_file: Path) -> None:
        body = _record_pids(pid_file) + "    while True:\n        pass\n"
        [(outcome, _)] = self.run_jobs([self.job(evaluator, body, timeout=self.timeout)])
        assert outcome.status == "timeout", outcome.error
        # timed from the candidate's start (its pid file): starting a worker (a new Ray
        # actor on a loaded 2-core machine: tens of seconds) is not the time limit's part
        assert self.answered_at - pid_file.stat().st_mtime < self.timeout + GRACE
        pids = [int(p) for p in pid_file.read_text().split()]
        assert self.wait_gone(pids) == []

    @pytest.mark.slow
    def test_fork_bomb_is_contained(self, evaluator: Path, pid_file: Path) -> None:
        """Slow where no process cap applies (spawn isolation as root: no cgroup, and
        RLIMIT_NPROC does not bind root): the bomb then runs to its timeout and takes the
        whole machine meanwhile, so the project's own suite runs it apart (``alone``)."""
        body = _record_pids(pid_file) + "    while True:\n        os.fork()\n"
        [(outcome, seconds)] = self.run_jobs([self.job(evaluator, body, timeout=BOMB_TIMEOUT,
                                                       max_processes=16)])
        assert outcome.status in ("failed", "timeout"), outcome.error
        assert seconds < BOMB_TIMEOUT + GRACE
        pids = [int(p) for p in pid_file.read_text().split()]
        assert self.wait_gone(pids) == []

    def test_memory_bomb_is_contained(self, evaluator: Path) -> None:
        body = "    chunks = []\n    while True:\n        chunks.append(bytearray(10**8))\n"
        [(outcome, _)] = self.run_jobs([self.job(evaluator, body, memory_mb=512)])
        assert outcome.status == "failed"
        assert "memory" in (outcome.error or "").lower()

    def test_cancel_stops_the_candidate(self, evaluator: Path, pid_file: Path) -> None:
        body = _record_pids(pid_file) + "    import time\n    time.sleep(600)\n"

        async def main() -> None:
            executor = self.make_executor()
            try:
                task = asyncio.ensure_future(executor.evaluate(self.job(evaluator, body)))
                deadline = time.monotonic() + 60
                while not pid_file.exists() or len(pid_file.read_text().split()) < 2:
                    assert time.monotonic() < deadline, "the candidate never started"
                    await asyncio.sleep(0.1)
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
            finally:
                await executor.close()

        asyncio.run(main())
        pids = [int(p) for p in pid_file.read_text().split()]
        assert self.wait_gone(pids, GRACE) == []

    def test_after_faults_the_executor_still_works(self, evaluator: Path) -> None:
        outcomes = self.run_jobs([
            self.job(evaluator, "    import os\n    os._exit(7)\n"),
            *[self.job(evaluator, f"    return {i}.0\n") for i in range(3)],
        ])
        assert outcomes[0][0].status == "failed"
        assert [o.metrics for o, _ in outcomes[1:]] == [{"combined_score": float(i)}
                                                       for i in range(3)]
        assert all(o.status == "ok" for o, _ in outcomes[1:])
