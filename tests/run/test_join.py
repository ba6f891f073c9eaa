"""Many ``evoforge run --join`` processes on one run: real processes, SQLite and PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from evoforge.candidate import Status
from evoforge.storage import open_storage
from evoforge.testing.conformance_storage import postgres_schema

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "problems"
PG_URL = os.environ.get("EVOFORGE_TEST_POSTGRES")
EVALUATED = (Status.OK, Status.FAILED, Status.TIMEOUT)


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh SQLite file, or a fresh schema of the test PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'runs.db'}"
        return
    if not PG_URL:
        pytest.skip("EVOFORGE_TEST_POSTGRES is not set")
    with postgres_schema(PG_URL) as pg:
        yield pg


def _start(cwd: Path, url: str, *args: str, problem: str = "quadratic",
           budget: int = 90) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "evoforge", *args, *(
            ["run", str(FIXTURES / problem), "--budget", str(budget), "--workers", "1"]
            if not args else []), "--storage", url, "--run-name", "coop", "--join"],
        cwd=cwd, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        start_new_session=True, env={**os.environ, "COLUMNS": "200"})


def _check_run(url: str, budget: int) -> None:
    """Exactly ``budget`` evaluations, unique seqs, no program evaluated twice."""
    store = open_storage(url)
    try:
        run = store.get_run("coop")
        assert run is not None and run.status == "stopped"
        cands = list(store.iter_candidates(run.id))
    finally:
        store.close()
    evaluated = [c for c in cands if c.status in EVALUATED]
    assert len(evaluated) == budget
    assert not [c for c in cands if c.status == Status.PENDING]
    seqs = Counter(c.seq for c in cands)
    assert max(seqs.values()) == 1
    hashes = Counter(c.code_hash for c in evaluated)
    assert max(hashes.values()) == 1, hashes.most_common(3)


def _finished(url: str) -> int:
    store = open_storage(url)
    try:
        run = store.get_run("coop")
        if run is None:
            return 0
        counts = store.counts(run.id)
        return sum(counts.get(s, 0) for s in EVALUATED)
    finally:
        store.close()


def test_three_joined_processes_share_one_budget(tmp_path: Path, url: str) -> None:
    procs = [_start(tmp_path, url) for _ in range(3)]
    outs = [p.communicate(timeout=240) for p in procs]
    for proc, (out, err) in zip(procs, outs, strict=True):
        assert proc.returncode == 0, out + err
    _check_run(url, 90)


@pytest.mark.slow  # a killed process's lease (10 s) must expire before others take over
def test_sigkill_one_joined_process_then_resume(tmp_path: Path, url: str) -> None:
    procs = [_start(tmp_path, url, problem="slow_quadratic") for _ in range(3)]
    deadline = time.monotonic() + 120
    while _finished(url) < 20 and time.monotonic() < deadline:
        time.sleep(0.1)
    os.killpg(procs[0].pid, signal.SIGKILL)
    procs[0].wait(timeout=30)
    for proc in procs[1:]:
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, out + err
    resumed = subprocess.run(
        [sys.executable, "-m", "evoforge", "resume", "--storage", url, "--run-name", "coop"],
        cwd=tmp_path, text=True, capture_output=True, timeout=240)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    _check_run(url, 90)


def test_join_with_another_problem_is_one_line_error(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    first = _start(tmp_path, url, budget=3)
    first.communicate(timeout=120)
    assert first.returncode == 0
    other = _start(tmp_path, url, problem="slow_quadratic", budget=3)
    out, err = other.communicate(timeout=120)
    assert other.returncode == 2
    assert "--join needs the same problem" in err
    assert len(err.strip().splitlines()) == 1
