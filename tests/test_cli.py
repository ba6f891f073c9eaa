"""The command line, as a user runs it: real processes, a real SQLite file in a folder."""

from __future__ import annotations

import importlib.metadata
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "problems"


def evoforge(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "evoforge", *args], cwd=cwd, text=True,
                          capture_output=True, timeout=timeout,
                          env={**os.environ, "COLUMNS": "200"})


def status_json(cwd: Path, *extra: str) -> dict:  # type: ignore[type-arg]
    proc = evoforge("status", "--json", *extra, cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_run_status_best_runs_problems_in_one_folder(tmp_path: Path) -> None:
    proc = evoforge("run", str(FIXTURES / "quadratic"), "--budget", "30", "--workers", "2",
                    "--seed", "1", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "stopped: budget" in proc.stdout
    assert (tmp_path / "evoforge.db").exists()
    info = status_json(tmp_path)
    for key in ("evaluated", "failed", "duplicates", "best_score", "initial_score"):
        assert key in info
    assert info["evaluated"] == 30
    assert info["best_score"] >= info["initial_score"]
    assert info["operators"]
    text = evoforge("status", cwd=tmp_path)
    assert text.returncode == 0 and "operators" in text.stdout
    best = evoforge("best", cwd=tmp_path)
    assert best.returncode == 0 and "def f(x):" in best.stdout
    out = tmp_path / "best.py"
    assert evoforge("best", "--out", str(out), cwd=tmp_path).returncode == 0
    assert out.read_text() == best.stdout
    runs = evoforge("runs", cwd=tmp_path)
    assert runs.returncode == 0 and "quadratic-1" in runs.stdout
    problems = evoforge("problems", cwd=tmp_path)
    assert problems.returncode == 0 and "bin_packing" in problems.stdout
    # a second run gets the next default name; status defaults to the latest
    assert evoforge("run", str(FIXTURES / "quadratic"), "--budget", "5",
                    cwd=tmp_path).returncode == 0
    assert status_json(tmp_path)["run"] == "quadratic-2"
    assert status_json(tmp_path, "--run-name", "quadratic-1")["evaluated"] == 30
    more = evoforge("resume", "--run-name", "quadratic-1", "--budget", "10", cwd=tmp_path)
    assert more.returncode == 0, more.stderr
    assert status_json(tmp_path, "--run-name", "quadratic-1")["evaluated"] == 40


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["run", "no_such_problem"], "no such problem"),
        (["status", "--run-name", "nope"], "no run named 'nope'"),
        (["best"], "no runs in this storage"),
        (["run", "{fixtures}/quadratic", "--storage", "/nonexistent/dir/x.db"],
         "cannot open storage"),
    ],
)
def test_errors_are_one_line(tmp_path: Path, args: list[str], needle: str) -> None:
    proc = evoforge(*[a.format(fixtures=FIXTURES) for a in args], cwd=tmp_path)
    assert proc.returncode == 2
    assert needle in proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_broken_problem_folder_is_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "initial_program.py").write_text("# EVOLVE-BLOCK-START\nx = 1\n# EVOLVE-BLOCK-END\n")
    (folder / "evaluator.py").write_text("def score(path):\n    return {}\n")
    proc = evoforge("run", str(folder), cwd=tmp_path)
    assert proc.returncode == 2
    assert "evaluator.py: defines no 'evaluate'" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_bad_mutation_config_is_one_line_before_any_run(tmp_path: Path) -> None:
    folder = tmp_path / "badops"
    folder.mkdir()
    for name in ("initial_program.py", "evaluator.py"):
        (folder / name).write_text((FIXTURES / "quadratic" / name).read_text())
    (folder / "config.yaml").write_text("mutation: {operators: [constant, teleport]}\n")
    proc = evoforge("run", str(folder), cwd=tmp_path)
    assert proc.returncode == 2
    assert "config.yaml" in proc.stderr and "'teleport'" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert evoforge("runs", cwd=tmp_path).stdout.count("badops") == 0


def test_openevolve_folder_runs_unchanged(tmp_path: Path) -> None:
    # its config names OpenAI models at an unreachable address: --no-llm runs model-free
    proc = evoforge("run", str(FIXTURES / "openevolve_style"), "--budget", "8", "--no-llm",
                    cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "have no counterpart" in proc.stderr  # warned (in one line), not failed
    info = status_json(tmp_path)
    assert info["initial_score"] == 1.0
    assert info["seed"] == 7  # random_seed read from the OpenEvolve config
    assert info["baselines"]["builtin_sum"]["test"] == 1.0


def _wait_for_finished(db: Path, n: int, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if db.exists():
            try:
                with sqlite3.connect(db) as conn:
                    done = conn.execute("SELECT count(*) FROM candidates WHERE status IN "
                                        "('ok','failed','timeout')").fetchone()[0]
                if done >= n:
                    return int(done)
            except sqlite3.OperationalError:
                pass
        time.sleep(0.05)
    raise AssertionError(f"fewer than {n} evaluations finished in {timeout} s")


def _finished(db: Path) -> dict[int, tuple[str, float | None]]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT id, status, score FROM candidates WHERE status IN "
                            "('ok','failed','timeout')").fetchall()
    return {r[0]: (r[1], r[2]) for r in rows}


def _start_run(tmp_path: Path, name: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "evoforge", "run", str(FIXTURES / "slow_quadratic"),
         "--budget", "40", "--workers", "2", "--run-name", name],
        cwd=tmp_path, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        start_new_session=True,
    )


def test_resume_after_sigkill_loses_no_finished_evaluation(tmp_path: Path) -> None:
    proc = _start_run(tmp_path, "killed")
    db = tmp_path / "evoforge.db"
    try:
        _wait_for_finished(db, 12)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    before = _finished(db)
    assert len(before) >= 12
    info = status_json(tmp_path)
    assert info["evaluated"] == len(before)
    resumed = evoforge("resume", "--run-name", "killed", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    after = _finished(db)
    assert all(after[i] == v for i, v in before.items())  # nothing finished was lost
    info = status_json(tmp_path)
    assert info["evaluated"] == 40  # counts continued to the run's budget
    assert info["pending"] == 0


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["run", "--bogus"], "No such option: --bogus"),
        (["frobnicate"], "No such command 'frobnicate'"),
        (["run"], "Missing argument"),
        (["run", "{fixtures}/quadratic", "--workers", "0"], "Invalid value for '--workers'"),
    ],
)
def test_usage_errors_print_usage_not_a_traceback(tmp_path: Path, args: list[str],
                                                  needle: str) -> None:
    proc = evoforge(*[a.format(fixtures=FIXTURES) for a in args], cwd=tmp_path)
    assert proc.returncode == 2
    assert needle in proc.stderr and proc.stderr.startswith("Usage: ")
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) <= 4


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--budget", "-1"], "--budget must be at least 1, not -1"),
        (["--executor", "foo"], "unknown executor 'foo'; use local or ray"),
        (["--time", "-3"], "--time must be more than 0 seconds, not -3"),
        (["--max-cost", "-1"], "--max-cost must be at least 0, not -1"),
    ],
)
def test_a_value_out_of_range_is_refused_and_stores_no_run(tmp_path: Path, args: list[str],
                                                           message: str) -> None:
    proc = evoforge("run", str(FIXTURES / "quadratic"), *args, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"error: {message}"
    assert "no runs in this storage" in evoforge("status", cwd=tmp_path).stderr


def test_tables_fit_80_columns_and_a_run_without_a_best_names_none(tmp_path: Path) -> None:
    def status_at_80(cwd: Path, command: str = "status") -> str:
        proc = subprocess.run([sys.executable, "-m", "evoforge", command], cwd=cwd,
                              text=True, capture_output=True, timeout=60,
                              env={**os.environ, "COLUMNS": "80"})
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    (tmp_path / "ok").mkdir()
    ran = evoforge("run", str(FIXTURES / "quadratic"), "--budget", "12", "--seed", "1",
                   cwd=tmp_path / "ok")
    assert ran.returncode == 0, ran.stderr
    shown = status_at_80(tmp_path / "ok")
    assert "operator_swap" in shown or "tune" in shown
    assert "improvement" in shown and "\u2026" not in shown  # no cell cut to an ellipsis
    (tmp_path / "failed").mkdir()
    failed = evoforge("run", str(FIXTURES / "failing_initial"), "--budget", "3",
                      cwd=tmp_path / "failed")
    assert failed.returncode == 2
    shown = status_at_80(tmp_path / "failed")
    assert "best -, initial -;" in shown and "None" not in shown
    listed = status_at_80(tmp_path, "problems")  # long baseline names fold, not cut
    assert "txn_scheduling" in listed and "\u2026" not in listed


def test_version_is_the_installed_distributions(tmp_path: Path) -> None:
    proc = evoforge("--version", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"evoforge {importlib.metadata.version('evoforge')}"


def test_ctrl_c_stops_cleanly_and_keeps_finished_work(tmp_path: Path) -> None:
    proc = _start_run(tmp_path, "interrupted")
    db = tmp_path / "evoforge.db"
    _wait_for_finished(db, 8)
    os.killpg(proc.pid, signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    info = status_json(tmp_path)
    assert info["stop_reason"] == "interrupted"
    assert info["status"] == "stopped"
    assert 8 <= info["evaluated"] < 40
    finished = _finished(db)
    assert evoforge("resume", cwd=tmp_path).returncode == 0
    assert all(_finished(db)[i] == v for i, v in finished.items())
    assert status_json(tmp_path)["evaluated"] == 40


def test_problems_show_and_score(tmp_path: Path) -> None:
    shown = evoforge("problems", "show", "circle_packing", "--score", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "# circle_packing" in shown.stdout or "circle_packing" in shown.stdout.splitlines()[0]
    assert "baseline grid" in shown.stdout and "2.5414" in shown.stdout
    listing = evoforge("problems", cwd=tmp_path)
    for name in ("bin_packing", "eplb", "kv_eviction", "circle_packing", "txn_scheduling",
                 "spot_scheduling", "job_shop", "tts_allocation", "ppr", "max_coverage",
                 "hamming"):
        assert name in listing.stdout
    best_fit = ROOT / "evoforge" / "problems" / "bin_packing" / "baselines" / "best_fit.py"
    scored = evoforge("problems", "score", "bin_packing", str(best_fit), "--json", cwd=tmp_path)
    assert scored.returncode == 0, scored.stderr
    assert json.loads(scored.stdout)["combined_score"] == pytest.approx(-4.8573, abs=1e-3)
    broken = tmp_path / "broken.py"
    broken.write_text("def priority(item, bins):\n    return 1 / 0\n")
    bad = evoforge("problems", "score", "bin_packing", str(broken), cwd=tmp_path)
    assert bad.returncode == 2 and "ZeroDivisionError" in bad.stderr
    assert "Traceback" not in bad.stderr
    unknown = evoforge("problems", "show", "nope", cwd=tmp_path)
    assert unknown.returncode == 2 and "no built-in problem 'nope'" in unknown.stderr


def test_run_ordered_lag_gives_the_same_run_twice(tmp_path: Path) -> None:
    bests = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        proc = evoforge("run", str(FIXTURES / "jittery"), "--budget", "16", "--workers", "2",
                        "--ordered-lag", "4", cwd=tmp_path / name)
        assert proc.returncode == 0, proc.stderr
        assert status_json(tmp_path / name)["evaluated"] == 16
        bests.append(evoforge("best", cwd=tmp_path / name).stdout)
    assert bests[0] == bests[1] and "def f(x):" in bests[0]
    refused = evoforge("run", str(FIXTURES / "jittery"), "--budget", "5", "--workers", "2",
                       "--ordered-lag", "1", cwd=tmp_path / "a")
    assert refused.returncode != 0
    assert "ordered_lag 1 is below the 2 workers" in refused.stderr
    assert "Traceback" not in refused.stderr
