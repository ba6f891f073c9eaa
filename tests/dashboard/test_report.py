"""``evoforge report``: its files exist and its numbers are those of ``status --json``."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

PNG = b"\x89PNG\r\n\x1a\n"


def test_report_files_and_numbers_match_status(finished_run: Path, tmp_path: Path,
                                               helpers: Any) -> None:
    out = tmp_path / "report"
    proc = helpers.evoforge("report", "--storage", str(finished_run), "--run-name", "done",
                            "--out", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    for name in ("score.png", "archive.png", "operators.png"):
        data = (out / name).read_bytes()
        assert data.startswith(PNG) and len(data) > 5000, name
    status = helpers.status_json(finished_run, "done")
    assert json.loads((out / "status.json").read_text()) == status
    text = (out / "report.md").read_text()
    table = dict(re.findall(r"^\| (\w+) \| ([^|]+) \|$", text, flags=re.M))
    for key in ("evaluated", "budget", "ok", "failed", "timeouts", "duplicates", "best_score",
                "best_id", "initial_score", "elapsed_seconds", "evals_per_second"):
        assert json.loads(table[key]) == status[key], key
    for op, entry in status["operators"].items():
        row = re.search(rf"^\| {re.escape(op)} \| (\d+) \| (\d+) \| (\d+) \|", text, flags=re.M)
        assert row is not None, op
        assert [int(v) for v in row.groups()] == [entry["proposed"], entry.get("ok", 0),
                                                  entry.get("failed", 0)]
    # the lineage runs from the initial program to the best, and the best program follows
    steps = re.findall(r"^\| (\d+) \| (\d+) \| (\w+) \| (\S+) \| (\S+) \|$", text, flags=re.M)
    assert steps[0][2] == "initial" and int(steps[-1][1]) == status["best_id"]
    assert float(steps[-1][3]) == status["best_score"]
    best = helpers.evoforge("best", "--storage", str(finished_run), "--run-name", "done",
                            cwd=tmp_path).stdout
    assert best.rstrip("\n") in text
    for image in ("score.png", "archive.png", "operators.png"):
        assert f"]({image})" in text


def test_report_of_a_missing_run_is_one_line(finished_run: Path, tmp_path: Path,
                                             helpers: Any) -> None:
    proc = helpers.evoforge("report", "--storage", str(finished_run), "--run-name", "nope",
                            "--out", str(tmp_path / "r"), cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: no run named 'nope' in this storage (runs: done)"
    assert not (tmp_path / "r").exists()
