"""The README's walk-through is true: its files are examples/sin_approx, and it runs."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "sin_approx"


def _blocks(lang: str) -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(rf"```{lang}\n(.*?)```", text, flags=re.S)


def test_readme_starts_with_make_run_and_make_test() -> None:
    first = _blocks("bash")[0]
    commands = [line.split("#")[0].strip() for line in first.splitlines() if line.strip()]
    assert commands[:2] == ["make run", "make test"]


def test_readme_files_are_the_example() -> None:
    python_blocks = _blocks("python")
    assert (EXAMPLE / "initial_program.py").read_text() in python_blocks
    assert (EXAMPLE / "evaluator.py").read_text() in python_blocks
    readme_config = yaml.safe_load(_blocks("yaml")[0])
    assert readme_config == yaml.safe_load((EXAMPLE / "config.yaml").read_text())


def test_readme_example_runs_and_improves(tmp_path: Path) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "evoforge", *args], cwd=tmp_path,
                              text=True, capture_output=True, timeout=300)

    run = cli("run", str(EXAMPLE), "--workers", "2", "--budget", "80")
    assert run.returncode == 0, run.stderr
    status = cli("status", "--json")
    info = json.loads(status.stdout)
    assert info["evaluated"] == 80
    assert info["best_score"] > info["initial_score"]
    out = tmp_path / "best_approx.py"
    assert cli("best", "--out", str(out)).returncode == 0
    assert "def approx(x):" in out.read_text()


def test_make_run_stores_where_the_next_readme_command_looks() -> None:
    # the README's next command is 'evoforge status', which reads ./evoforge.db
    recipe = subprocess.run(["make", "-n", "run"], cwd=ROOT, text=True, capture_output=True,
                            timeout=60, check=True).stdout
    line = next(ln for ln in recipe.splitlines() if "evoforge run bin_packing" in ln)
    assert "--storage" not in line
