"""The noise script runs and reports every workload and clock (evoforge.measure.noise)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from evoforge.measure import noise


def test_table_has_every_workload_and_clock(capsys: pytest.CaptureFixture[str]) -> None:
    assert noise.main(["--repeats", "3", "--warmup", "0", "--scale", "0.01"]) == 0
    out = capsys.readouterr().out
    assert "| workload | clock |" in out
    for name in noise.workloads(0.01):
        assert f"| {name} | cpu |" in out
        assert f"| {name} | wall |" in out
    assert "load average" in out


def test_json_report() -> None:
    report = noise.run(repeats=2, warmup=0, scale=0.01)
    assert len(report["rows"]) == 4
    for row in report["rows"]:
        assert row["n"] == 2
        assert row["cv_pct"] >= 0 and row["median_ms"] >= 0
    json.dumps(report)


def test_runs_as_a_module() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "evoforge.measure.noise",
            "--repeats",
            "2",
            "--scale",
            "0.01",
            "--json",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert len(json.loads(proc.stdout)["rows"]) == 4


def test_rejects_too_few_repeats() -> None:
    with pytest.raises(SystemExit):
        noise.main(["--repeats", "1"])
