"""Sandboxed evaluation in real subprocesses (evoforge.evaluation, evoforge.executors.local)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from evoforge.candidate import normalized_hash
from evoforge.evaluation import EvaluationResult
from evoforge.evaluation.sandbox import EvalJob, EvalOutcome, check_metrics, run_isolated
from evoforge.executors import LocalExecutor

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sandbox"
EVALUATOR = FIXTURES / "evaluator.py"
OPENEVOLVE_EVALUATOR = FIXTURES / "openevolve_evaluator.py"

OK_PROGRAM = """\
def run():
    return {"combined_score": 1.5, "count": 3}
"""


def program(body: str) -> str:
    return textwrap.dedent(body)


MODE = {"isolation": "spawn"}


@pytest.fixture(autouse=True, params=["spawn", "fork"])
def isolation(request: pytest.FixtureRequest) -> Iterator[str]:
    """Every test runs twice: a fresh interpreter per job, and the fork-server workers."""
    MODE["isolation"] = request.param
    yield request.param
    MODE["isolation"] = "spawn"


def evaluate(code: str, *, evaluator: Path = EVALUATOR, **kw: object) -> EvalOutcome:
    job = EvalJob(code=code, evaluator_path=evaluator, **kw)  # type: ignore[arg-type]
    if MODE["isolation"] == "spawn":
        return asyncio.run(run_isolated(job))

    async def forked() -> EvalOutcome:
        executor = LocalExecutor(1, "fork")
        try:
            return await executor.evaluate(job)
        finally:
            await executor.close()

    return asyncio.run(forked())


def processes_matching(pattern: str) -> list[int]:
    found = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True,
                           check=False)
    return [int(pid) for pid in found.stdout.split()]


def wait_gone(pattern: str, within: float = 5.0) -> list[int]:
    """PIDs still matching ``pattern`` after up to ``within`` seconds (killed ones vanish)."""
    deadline = time.monotonic() + within
    while True:
        left = processes_matching(pattern)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


@pytest.fixture
def marker() -> Iterator[str]:
    """A unique 'sleep' argument; any process still using it is killed after the test."""
    value = f"299.{uuid.uuid4().int % 10**9:09d}"
    yield value
    for pid in processes_matching(f"sleep {value}"):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


# --- outcomes -----------------------------------------------------------------------


def test_ok_dict_result() -> None:
    out = evaluate(OK_PROGRAM, timeout=30)
    assert out.status == "ok", out.error
    assert out.metrics == {"combined_score": 1.5, "count": 3}
    assert out.error is None
    assert out.artifacts == {}
    assert 0 < out.seconds < 30


def test_numpy_scalars_become_numbers() -> None:
    code = program("""\
        import numpy as np

        def run():
            return {"a": np.float64(0.25), "b": np.int64(4), "c": [np.float32(0.5)]}
        """)
    out = evaluate(code, timeout=30)
    assert out.status == "ok", out.error
    assert out.metrics == {"a": 0.25, "b": 4, "c": [0.5]}
    assert check_metrics({"a": out.metrics["a"], "b": out.metrics["b"]}) is None


def test_evaluation_result_with_artifacts() -> None:
    code = program("""\
        from evoforge.evaluation import EvaluationResult

        def run():
            print("working")
            return EvaluationResult(metrics={"combined_score": 2.0},
                                    artifacts={"feedback": "good", "sizes": [1, 2]})
        """)
    out = evaluate(code, timeout=30)
    assert out.status == "ok", out.error
    assert out.metrics == {"combined_score": 2.0}
    assert out.artifacts["feedback"] == "good"
    assert out.artifacts["sizes"] == [1, 2]
    assert out.artifacts["stdout"] == "working\n"


def test_openevolve_evaluator_import_works() -> None:
    out = evaluate(OK_PROGRAM, evaluator=OPENEVOLVE_EVALUATOR, timeout=30)
    assert out.status == "ok", out.error
    assert out.metrics == {"combined_score": 1.5, "count": 3}
    assert out.artifacts == {"feedback": "looks fine", "details": {"checked": 3, "ratio": 0.5}}


def test_candidate_raises() -> None:
    code = program("""\
        def helper(x):
            raise ValueError(f"bad input {x}")

        def run():
            return helper(42)
        """)
    out = evaluate(code, timeout=30)
    assert out.status == "failed"
    assert out.error is not None
    assert "ValueError" in out.error
    assert "bad input 42" in out.error
    assert "helper" in out.artifacts["traceback"]
    assert out.metrics == {}


def test_candidate_fails_at_import() -> None:
    out = evaluate("import no_such_module_zz\n\ndef run():\n    return {}\n", timeout=30)
    assert out.status == "failed"
    assert out.error is not None
    assert "ModuleNotFoundError" in out.error
    assert "no_such_module_zz" in out.error


def test_candidate_with_syntax_error() -> None:
    out = evaluate("def run(:\n    return {}\n", timeout=30)
    assert out.status == "failed"
    assert out.error is not None and "SyntaxError" in out.error


def test_evaluator_that_fails_to_import(tmp_path: Path) -> None:
    evaluator = tmp_path / "evaluator.py"
    evaluator.write_text("raise RuntimeError('evaluator broken')\n")
    out = evaluate(OK_PROGRAM, evaluator=evaluator, timeout=30)
    assert out.status == "failed"
    assert out.error is not None
    assert "importing the evaluator failed" in out.error
    assert "evaluator broken" in out.error


def test_missing_evaluator_function() -> None:
    out = evaluate(OK_PROGRAM, function="evaluate_test", timeout=30)
    assert out.status == "failed"
    assert out.error is not None and "evaluate_test" in out.error


def test_candidate_segfaults() -> None:
    code = program("""\
        import os
        import signal

        def run():
            os.kill(os.getpid(), signal.SIGSEGV)
        """)
    out = evaluate(code, timeout=30)
    assert out.status == "failed"
    assert out.error is not None and "SIGSEGV" in out.error


def test_candidate_loops_forever() -> None:
    code = "def run():\n    while True:\n        pass\n"
    start = time.monotonic()
    out = evaluate(code, timeout=1.5)
    elapsed = time.monotonic() - start
    assert out.status == "timeout"
    assert out.error is not None and "timed out" in out.error
    assert elapsed < 1.5 + 3
    assert out.seconds >= 1.4


def test_candidate_allocates_without_bound() -> None:
    code = program("""\
        def run():
            chunks = []
            while True:
                chunks.append(bytearray(32 * 1024 * 1024))
        """)
    out = evaluate(code, timeout=30, memory_mb=512)
    assert out.status == "failed"
    assert out.error is not None and "memory" in out.error.lower()


def test_candidate_allocates_small_objects_without_bound() -> None:
    code = program("""\
        def run():
            items = []
            while True:
                items.append([0] * 1000)
        """)
    out = evaluate(code, timeout=30, memory_mb=512)
    assert out.status == "failed"
    assert out.error is not None and "memory" in out.error.lower()


def test_candidate_calls_sys_exit() -> None:
    out = evaluate("import sys\n\ndef run():\n    sys.exit(3)\n", timeout=30)
    assert out.status == "failed"
    assert out.error is not None
    assert "sys.exit(3)" in out.error


def test_candidate_calls_os_exit() -> None:
    out = evaluate("import os\n\ndef run():\n    os._exit(7)\n", timeout=30)
    assert out.status == "failed"
    assert out.error is not None
    assert "exit" in out.error and "7" in out.error
    assert "code 7" in out.error


def test_candidate_prints_10_mb() -> None:
    code = program("""\
        import sys

        def run():
            sys.stdout.write("HEAD" + "x" * (10 * 1024 * 1024) + "TAIL")
            print("the end")
            sys.stderr.write("e" * 100_000)
            return {"combined_score": 1.0}
        """)
    out = evaluate(code, timeout=60, output_cap_kb=16)
    assert out.status == "ok", out.error
    assert out.metrics == {"combined_score": 1.0}
    stdout = out.artifacts["stdout"]
    assert stdout.startswith("HEADxxx")
    assert stdout.endswith("TAILthe end\n")
    assert "bytes cut" in stdout
    assert 16 * 1024 <= len(stdout) <= 16 * 1024 + 200
    cut = int(stdout.split("[... ")[1].split(" bytes cut")[0])
    assert cut == 4 + 10 * 1024 * 1024 + 4 + len("the end\n") - 16 * 1024
    stderr = out.artifacts["stderr"]
    assert "bytes cut" in stderr
    assert len(stderr) <= 16 * 1024 + 200


def test_evaluator_returns_none() -> None:
    out = evaluate(OK_PROGRAM, function="evaluate_none", timeout=30)
    assert out.status == "failed"
    assert out.error is not None and "nothing" in out.error


def test_evaluator_returns_string() -> None:
    out = evaluate(OK_PROGRAM, function="evaluate_string", timeout=30)
    assert out.status == "failed"
    assert out.error is not None
    assert "str" in out.error
    assert "metrics dict" in out.error


def test_candidate_runs_in_its_own_directory() -> None:
    code = program("""\
        import os

        def run():
            with open("scratch.txt", "w") as f:
                f.write("x")
            return {"in_tmp": float(os.path.exists("program.py")),
                    "threads": float(os.environ.get("OMP_NUM_THREADS") == "1")}
        """)
    out = evaluate(code, timeout=30)
    assert out.status == "ok", out.error
    assert out.metrics == {"in_tmp": 1.0, "threads": 1.0}


# --- process cleanup ----------------------------------------------------------------


def test_hanging_candidate_leaves_no_grandchild(marker: str) -> None:
    code = program(f"""\
        import subprocess
        import time

        def run():
            subprocess.Popen(["sleep", "{marker}"])
            while True:
                time.sleep(0.1)
        """)
    start = time.monotonic()
    out = evaluate(code, timeout=1.5)
    assert out.status == "timeout"
    assert time.monotonic() - start < 1.5 + 3
    assert wait_gone(f"sleep {marker}") == []


def test_finished_candidate_leaves_no_grandchild(marker: str) -> None:
    code = program(f"""\
        import subprocess

        def run():
            subprocess.Popen(["sleep", "{marker}"], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
            return {{"combined_score": 1.0}}
        """)
    out = evaluate(code, timeout=30)
    assert out.status == "ok", out.error
    assert wait_gone(f"sleep {marker}") == []


def test_finished_candidate_with_background_child_holding_stdout(marker: str) -> None:
    code = program(f"""\
        import subprocess

        def run():
            subprocess.Popen(["sleep", "{marker}"])  # inherits stdout and stderr
            return {{"combined_score": 1.0}}
        """)
    out = evaluate(code, timeout=3)
    assert wait_gone(f"sleep {marker}") == []
    assert out.status == "ok", out.error
    assert out.seconds < 3


def test_cancelled_evaluation_leaves_no_process(marker: str) -> None:
    code = program(f"""\
        import subprocess
        import time

        def run():
            subprocess.Popen(["sleep", "{marker}"])
            while True:
                time.sleep(0.1)
        """)

    async def main() -> None:
        executor = LocalExecutor(max_workers=1)
        task = asyncio.ensure_future(executor.evaluate(
            EvalJob(code=code, evaluator_path=EVALUATOR, timeout=60)))
        deadline = time.monotonic() + 20
        while not processes_matching(f"sleep {marker}"):
            assert time.monotonic() < deadline, "the candidate never started its child"
            await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await executor.close()

    start = time.monotonic()
    asyncio.run(main())
    assert time.monotonic() - start < 30
    assert wait_gone(f"sleep {marker}") == []


def test_grandchild_in_new_session_is_killed(marker: str, isolation: str) -> None:
    if isolation == "spawn":
        pytest.xfail("spawn isolation kills only the process group; a process in a new "
                     "session outlives it (the default fork isolation catches it)")
    code = program(f"""\
        import subprocess

        def run():
            subprocess.Popen(["sleep", "{marker}"], start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            return {{"combined_score": 1.0}}
        """)
    out = evaluate(code, timeout=30)
    assert out.status == "ok", out.error
    assert wait_gone(f"sleep {marker}", within=1.0) == []


# --- LocalExecutor --------------------------------------------------------------------


def test_local_executor_two_workers_four_jobs() -> None:
    def job(i: int) -> EvalJob:
        # the spans come back as metrics: candidates cannot write outside their directory
        code = program(f"""\
            import time

            def run():
                start = time.monotonic()
                time.sleep(1.5)
                end = time.monotonic()
                return {{"combined_score": float({i}), "start": start, "end": end}}
            """)
        return EvalJob(code=code, evaluator_path=EVALUATOR, timeout=60)

    async def main() -> list[EvalOutcome]:
        executor = LocalExecutor(max_workers=2)
        assert executor.max_workers == 2
        try:
            return await asyncio.gather(*(executor.evaluate(job(i)) for i in range(4)))
        finally:
            await executor.close()

    outcomes = asyncio.run(main())
    assert [o.status for o in outcomes] == ["ok"] * 4
    assert [o.metrics["combined_score"] for o in outcomes] == [0.0, 1.0, 2.0, 3.0]
    spans = [(o.metrics["start"], o.metrics["end"]) for o in outcomes]
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans],
                    key=lambda x: (x[0], x[1]))
    running = peak = 0
    for _, delta in events:
        running += delta
        peak = max(peak, running)
    assert peak == 2


def test_local_executor_faults_are_outcomes() -> None:
    async def main() -> list[EvalOutcome]:
        executor = LocalExecutor(max_workers=2)
        jobs = [
            EvalJob(code=OK_PROGRAM, evaluator_path=EVALUATOR, timeout=30),
            EvalJob(code="def run():\n    raise KeyError('k')\n", evaluator_path=EVALUATOR,
                    timeout=30),
            EvalJob(code="def run():\n    while True:\n        pass\n",
                    evaluator_path=EVALUATOR, timeout=1.0),
            EvalJob(code="import os\n\ndef run():\n    os._exit(7)\n",
                    evaluator_path=EVALUATOR, timeout=30),
        ]
        try:
            return await asyncio.gather(*(executor.evaluate(j) for j in jobs))
        finally:
            await executor.close()

    outcomes = asyncio.run(main())
    assert [o.status for o in outcomes] == ["ok", "failed", "timeout", "failed"]


def test_a_dropped_executor_stops_its_workers() -> None:
    """An executor dropped without close() leaves no worker process behind."""
    async def main() -> list[int]:
        executor = LocalExecutor(max_workers=1, isolation="fork")
        await executor.evaluate(EvalJob(code=OK_PROGRAM, evaluator_path=EVALUATOR))
        assert executor._pool is not None
        pids = [s.proc.pid for s in executor._pool._all if s.proc is not None]
        # dropped while its loop runs: asyncio's own finalizers need the loop, and
        # one that ran in a later test's garbage collection would fail there
        del executor
        gc.collect()
        return pids

    pids = asyncio.run(main())
    assert pids
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{p}").exists() and "Z" not in
              Path(f"/proc/{p}/stat").read_text().split(")")[-1][:3] for p in pids):
        assert time.monotonic() < deadline, "the worker outlived its executor"
        # the claim is about an executor that is collected: if a cycle kept it until
        # asyncio.run's clean-up, this loop allocates too little to trigger a collection
        # (seen once in CI under load: the worker alive after 10 s)
        if time.monotonic() > deadline - 9:
            gc.collect()
        time.sleep(0.05)


def test_local_executor_needs_a_worker() -> None:
    with pytest.raises(ValueError):
        LocalExecutor(max_workers=0)


# --- check_metrics ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("metrics", "needle"),
    [
        ({"score": float("nan")}, "NaN"),
        ({"score": float("inf")}, "infinite"),
        ({"score": float("-inf")}, "infinite"),
        ({"score": "fast"}, "str"),
        ({"ok": 1.0, "score": "1.0"}, "'score'"),
        ({"score": None}, "NoneType"),
        ({"score": [1.0]}, "list"),
        ({}, "no metrics"),
        (None, "no metrics"),
        ([("score", 1.0)], "no metrics"),
    ],
    ids=["nan", "inf", "-inf", "string", "numeric-string", "none", "list", "empty",
         "not-a-dict", "pairs"],
)
def test_check_metrics_rejects(metrics: object, needle: str) -> None:
    reason = check_metrics(metrics)
    assert reason is not None
    assert needle in reason


@pytest.mark.parametrize(
    "metrics",
    [
        {"score": 1},
        {"score": 0},
        {"score": -3.5},
        {"score": 1e300, "time": 0.0, "count": 10**20},
        {"score": -0.0},
        {"score": 1.0, "valid": True},  # bools count as 0/1, as OpenEvolve evaluators use them
    ],
)
def test_check_metrics_accepts_numbers(metrics: dict[str, object]) -> None:
    assert check_metrics(metrics) is None


# --- EvaluationResult and the shim --------------------------------------------------------


def test_evaluation_result_helpers() -> None:
    r = EvaluationResult.from_dict({"a": 1.0})
    assert r.to_dict() == {"a": 1.0}
    assert not r.has_artifacts()
    r.artifacts["x"] = "y"
    assert r.has_artifacts()


def test_openevolve_shim_in_a_fresh_interpreter() -> None:
    script = ("from evoforge.evaluation import install_openevolve_shim\n"
              "assert install_openevolve_shim()\n"
              "assert not install_openevolve_shim()\n"
              "from openevolve.evaluation_result import EvaluationResult\n"
              "from evoforge.evaluation.result import EvaluationResult as Own\n"
              "assert EvaluationResult is Own\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr


# --- normalized_hash ------------------------------------------------------------------------


def test_normalized_hash_ignores_comments_blank_lines_and_formatting() -> None:
    a = "def f(x):\n    return x + 1\n"
    b = "# a comment\n\n\ndef f(x):  # trailing\n\n    return (x+1)\n\n\n"
    c = "def f( x ):\n    return x  +  1"
    assert normalized_hash(a) == normalized_hash(b) == normalized_hash(c)
    assert len(normalized_hash(a)) == 32


def test_normalized_hash_differs_for_different_code() -> None:
    base = normalized_hash("def f(x):\n    return x + 1\n")
    assert base != normalized_hash("def f(x):\n    return x + 2\n")
    assert base != normalized_hash("def g(x):\n    return x + 1\n")
    assert base != normalized_hash("def f(y):\n    return y + 1\n")
    assert base != normalized_hash("def f(x):\n    return 1 + x\n")


def test_normalized_hash_of_unparsable_code() -> None:
    bad = "def f(:\n"
    assert normalized_hash(bad) == normalized_hash(bad)
    assert normalized_hash(bad) != normalized_hash(bad + "  ")
    assert len(normalized_hash(bad)) == 32


def test_workdir_links_the_problem_folder_as_it_is_now(tmp_path: Path) -> None:
    """The folder's entries are listed once and listed again when the folder changes."""
    from evoforge.evaluation.sandbox import make_workdir
    (tmp_path / "evaluator.py").write_text("def evaluate(path):\n    return {}\n")
    (tmp_path / "data.csv").write_text("1\n")
    job = EvalJob(code="x = 1\n", evaluator_path=tmp_path / "evaluator.py")
    first, program_path, _ = make_workdir(job, tmp_path)
    assert program_path.read_text() == "x = 1\n"
    assert (first / "data.csv").resolve() == (tmp_path / "data.csv").resolve()
    (tmp_path / "more.csv").write_text("2\n")
    second, _, _ = make_workdir(job, tmp_path)
    assert (second / "more.csv").read_text() == "2\n"
    assert not (second / "program.py").is_symlink()
