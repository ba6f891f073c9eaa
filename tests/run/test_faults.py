"""Fault injection: candidates that break in every known way, through a real run.

For each fault the run finishes, the candidate is stored with a specific reason, and
no process of the run is left behind afterwards.
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
import subprocess
import time
from pathlib import Path

import pytest

from evoforge.candidate import Status
from evoforge.config import RunConfig
from evoforge.evaluation.workers import ForkServer
from evoforge.executors.local import LocalExecutor
from evoforge.problem import load_problem
from evoforge.run import Evolution, create_run
from evoforge.storage import SQLStorage
from evoforge.testing import ScriptedProposer

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "problems" / "faulty"


def faults(port: int, outside: Path, marker: str) -> dict[str, tuple[str, Status, str]]:
    """name -> (body of f, expected status, expected words in the reason)."""
    return {
        "segfault": ("import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)",
                     Status.FAILED, "SIGSEGV"),
        "infinite loop": ("while True:\n    pass", Status.TIMEOUT, "timed out after 8 s"),
        "unbounded allocation": ("chunks = []\nwhile True:\n    chunks.append(bytearray(10**8))",
                                 Status.FAILED, "out of memory"),
        "fork bomb": ("import os\nwhile True:\n    os.fork()", Status.FAILED,
                      "limit of 32 processes"),
        "100 MB to stdout": ("import sys\nfor _ in range(100):\n    sys.stdout.write('x' * 10**6)"
                             "\nreturn 1.0", Status.FAILED, "file-size limit"),
        "NaN metric": ("return float('nan')", Status.FAILED, "is NaN"),
        "inf metric": ("return float('inf')", Status.FAILED, "is infinite"),
        "string metric": ("return 'fast'", Status.FAILED, "is a str, not a number"),
        "raises in the evaluator": ("raise KeyError('no such key')", Status.FAILED,
                                    "KeyError"),
        "sys.exit": ("import sys\nsys.exit(3)", Status.FAILED, "sys.exit(3)"),
        "os._exit": ("import os\nos._exit(7)", Status.FAILED, "exited with code 7"),
        "writes outside its directory": (f"open({str(outside)!r}, 'w').write('x')\nreturn 1.0",
                                         Status.FAILED, "outside its temporary directory"),
        "network connection": (f"import socket\nsocket.create_connection(('127.0.0.1', {port}),"
                               " timeout=2)\nreturn 1.0", Status.FAILED, "network"),
        "evaluator returns nothing": ("return None", Status.FAILED, "returned nothing"),
        "background process": (f"import subprocess\nsubprocess.Popen(['sleep', '{marker}'],"
                               " start_new_session=True)\nreturn 2.0", Status.OK, ""),
    }


def leftover_processes(marker: str) -> list[str]:
    found = subprocess.run(["pgrep", "-af", marker], capture_output=True, text=True,
                           check=False).stdout.splitlines()
    return [line for line in found if "pgrep" not in line]


def children_of_this_process() -> list[int]:
    me = os.getpid()
    with open(f"/proc/{me}/task/{me}/children") as f:
        return [int(p) for p in f.read().split()]


@pytest.mark.slow
def test_every_fault_is_stored_with_its_reason_and_nothing_is_left(tmp_path: Path) -> None:
    # children this test process had before the run (a problem kit's zygote started by an
    # earlier test that called an evaluator directly) are not the run's leftovers
    before = set(children_of_this_process())
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.setblocking(False)
    port = listener.getsockname()[1]
    outside = tmp_path / "outside.txt"
    marker = f"{random.randint(100, 999)}.{os.getpid()}"
    cases = faults(port, outside, marker)
    bodies = ["def f():\n" + "".join(f"    {line}\n" for line in body.splitlines())
              for body, _, _ in cases.values()]
    problem = load_problem(FIXTURE)
    storage = SQLStorage(str(tmp_path / "run.db"))
    record = create_run(storage, problem, budget=len(cases) + 1)
    config = RunConfig.model_validate(record.config)
    config = config.model_copy(update={"evaluator": config.evaluator.model_copy(
        update={"timeout": 8.0, "memory_mb": 512, "max_processes": 32, "file_mb": 16})})
    evo = Evolution(problem, storage, record, LocalExecutor(2), config,
                    proposer=ScriptedProposer(problem.template, bodies))

    workers: list[ForkServer] = []

    async def main() -> None:
        try:
            await evo.run_session()
        finally:
            assert isinstance(evo.executor, LocalExecutor) and evo.executor._pool is not None
            workers.extend(evo.executor._pool._all)
            await evo.executor.close()

    start = time.monotonic()
    asyncio.run(main())
    assert time.monotonic() - start < 120
    cands = list(storage.iter_candidates(record.id))[1:]
    assert len(cands) == len(cases)
    for cand, (name, (_, status, words)) in zip(cands, cases.items(), strict=True):
        assert cand.status == status, (name, cand.status, cand.error)
        assert words in (cand.error or ""), (name, cand.error)
    # the run finished with its budget; nothing it started is still running
    assert evo.progress.evaluated == len(cases) + 1
    assert not outside.exists()
    with pytest.raises(BlockingIOError):
        listener.accept()  # no connection ever reached the listener
    listener.close()
    deadline = time.monotonic() + 5
    while (leftover_processes(marker) or set(children_of_this_process()) - before) and \
            time.monotonic() < deadline:
        time.sleep(0.1)
    assert leftover_processes(marker) == []
    assert set(children_of_this_process()) - before == set()
    # the workers' cgroups (where the OS gave them one) and scratch directories are gone
    assert workers
    for worker in workers:
        assert not worker.scratch.exists()
        if worker.info.get("cgroup"):
            assert not Path(worker.info["cgroup"]).exists()
