"""Shared parts of the dashboard and report tests: a real run, a real server, Chromium."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")

# A quadratic fit whose candidates print HTML: the dashboard must show it as text.
# The slow variant sleeps in each evaluation so that a run lasts long enough to be watched.
EVALUATOR = '''"""Minus the mean squared error to 0.3 x^2 - 2 x + 1; slowed down to be watched."""
import importlib.util
import time

SLEEP = {sleep!r}

def evaluate(program_path):
    time.sleep(SLEEP)
    spec = importlib.util.spec_from_file_location("candidate", program_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    xs = [i / 10 for i in range(-30, 31)]
    err = sum((float(module.f(x)) - (0.3 * x * x - 2 * x + 1)) ** 2 for x in xs) / len(xs)
    return {"combined_score": -err, "mse": err}
'''
INITIAL = '''"""Fit f(x) to a hidden quadratic. <script>alert(1)</script> in a docstring."""

print("<script>alert(1)</script>")


# EVOLVE-BLOCK-START
def f(x):
    y = 1.0 * x + 0.5
    return y
# EVOLVE-BLOCK-END
'''
CONFIG = "random_seed: 3\nevaluator: {timeout: 20}\ndatabase: {num_islands: 2}\n"


def write_problem(folder: Path, sleep: float = 0.0) -> Path:
    """Write the HTML-printing quadratic problem into ``folder``, ``sleep`` s per evaluation."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "evaluator.py").write_text(EVALUATOR.replace("{sleep!r}", repr(sleep)))
    (folder / "initial_program.py").write_text(INITIAL)
    (folder / "config.yaml").write_text(CONFIG)
    return folder


def evoforge(*args: str, cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """Run the real command line."""
    return subprocess.run([sys.executable, "-m", "evoforge", *args], cwd=cwd, text=True,
                          capture_output=True, timeout=timeout,
                          env={**os.environ, "COLUMNS": "200"})


def start_run(problem: Path, db: Path, name: str, budget: int) -> subprocess.Popen[str]:
    """Start ``evoforge run`` in the background (its own process group)."""
    return subprocess.Popen(
        [sys.executable, "-m", "evoforge", "run", str(problem), "--budget", str(budget),
         "--workers", "1", "--seed", "2", "--storage", str(db), "--run-name", name],
        cwd=db.parent, text=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        start_new_session=True)


def status_json(db: Path, name: str) -> dict:  # type: ignore[type-arg]
    """``evoforge status --json`` of a run, as a user gets it."""
    proc = evoforge("status", "--json", "--storage", str(db), "--run-name", name, cwd=db.parent)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


@contextmanager
def serve(url: str) -> Iterator[str]:
    """The dashboard over ``url`` on a free 127.0.0.1 port, in a thread; yields its base URL."""
    import uvicorn

    from evoforge.dashboard.app import create_app

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(url), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the dashboard did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


@pytest.fixture(scope="session")
def html_problem(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The HTML-printing quadratic problem folder."""
    return write_problem(tmp_path_factory.mktemp("problems") / "html_quadratic")


@pytest.fixture(scope="session")
def slow_html_problem(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same problem, 0.25 s per evaluation: a run that lasts long enough to watch."""
    return write_problem(tmp_path_factory.mktemp("problems") / "slow_html_quadratic", 0.25)


@pytest.fixture(scope="session")
def finished_run(html_problem: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file holding one finished run, ``done``, of 30 evaluations."""
    db = tmp_path_factory.mktemp("finished") / "runs.db"
    proc = evoforge("run", str(html_problem), "--budget", "30", "--workers", "1", "--seed",
                    "1", "--storage", str(db), "--run-name", "done", cwd=db.parent)
    assert proc.returncode == 0, proc.stderr
    return db


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict) -> dict:  # type: ignore[type-arg]
    """Drive Debian's Chromium: Playwright's own browser download is not available here."""
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: .ci/run installs Debian's chromium package")
        pytest.skip(f"browser tests need {CHROMIUM} (apt-get install -y chromium)")
    return {**browser_type_launch_args, "executable_path": str(CHROMIUM),
            "args": ["--no-sandbox", "--disable-gpu", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update"]}


@pytest.fixture(scope="session")
def helpers() -> object:
    """This module, for the helper functions (test modules cannot import a conftest)."""
    return sys.modules[__name__]
