"""The suite's own xdist groups hold: tests that ``tests/conftest.py`` groups run on one
worker under ``--dist loadgroup`` (pytest 9 with pytest-xdist 3.8 silently dropped every
group, so the PostgreSQL and Ray tests ran side by side)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
GROUPED = 6


def test_tests_the_conftest_groups_run_on_one_worker(tmp_path: Path) -> None:
    pytest.importorskip("xdist")
    shutil.copy(TESTS / "conftest.py", tmp_path / "conftest.py")
    # "postgres" in a test's name puts it in the conftest's postgres group; each test
    # sleeps so that, were the group ignored, the second worker would take some of them
    body = "import os\nimport time\n" + "".join(
        f"\n\ndef test_postgres_{i}():\n    time.sleep(0.2)\n"
        f"    open(r'{tmp_path}/worker{i}', 'w').write(os.environ['PYTEST_XDIST_WORKER'])\n"
        for i in range(GROUPED))
    (tmp_path / "test_grouped.py").write_text(body)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-n", "2", "--dist", "loadgroup",
         "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
        # a clean start even when this test itself runs in an xdist worker
        env={k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    workers = {(tmp_path / f"worker{i}").read_text() for i in range(GROUPED)}
    assert len(workers) == 1, f"one group ran on {sorted(workers)}"
