"""The built wheel works on its own: it carries every file the package reads at run time.

The wheel is built from a copy of the sources, installed into a fresh virtual
environment (its dependencies come from this environment's site-packages, added as
a plain path, so nothing is downloaded), and drives an LLM run against the fake
server from a folder outside the repository.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

from evoforge.testing import FakeLLMServer, Reply

ROOT = Path(__file__).resolve().parents[1]
FIRST_FIT = "    return -np.arange(len(bins), dtype=float)"


def _run(args: list[str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["COLUMNS"] = "200"
    proc = subprocess.run(args, cwd=cwd, text=True, capture_output=True, timeout=timeout,
                          env=env)
    assert proc.returncode == 0, f"{args}: {proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    return proc


@pytest.mark.slow
def test_wheel_installs_and_runs_an_llm_run(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "evoforge", source / "evoforge",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    wheels = tmp_path / "wheels"
    # this environment's setuptools builds it offline; without one, pip fetches it
    offline = ["--no-build-isolation"] if importlib.util.find_spec("setuptools") else []
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", *offline, "-q",
          "-w", str(wheels), str(source)], cwd=tmp_path)
    (wheel,) = wheels.glob("evoforge-*.whl")

    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                     cwd=tmp_path).stdout.strip())
    # the dependencies: this environment's site-packages as a plain path entry (its
    # .pth files, the editable install of evoforge among them, are not processed)
    (site / "deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q",
          str(wheel)], cwd=tmp_path)

    work = tmp_path / "work"
    work.mkdir()
    where = _run([str(python), "-c", "import evoforge; print(evoforge.__file__)"], cwd=work)
    assert Path(where.stdout.strip()).is_relative_to(site), where.stdout

    def reply(request: dict[str, object]) -> Reply:
        text = json.dumps(request)
        if "-np.arange" in text:
            return Reply.diff(FIRST_FIT, "    return -bins")
        return Reply.garbage()

    evoforge = env_dir / "bin" / "evoforge"
    with FakeLLMServer(reply) as server:
        _run([str(evoforge), "run", "bin_packing", "--budget", "6", "--workers", "1",
              "--llm", f"{server.base_url}:fake-model", "--seed", "1"], cwd=work)
        assert server.chat_requests, "the run never asked the model"
    status = json.loads(_run([str(evoforge), "status", "--json"], cwd=work).stdout)
    (entry,) = status["models"].values()
    modes = entry["modes"]
    applied = sum(m["applied"] for m in modes.values())
    assert applied >= 1, modes
    # the prompts came from the installed templates
    assert any("EVOLVE-BLOCK" in json.dumps(r.body) for r in server.chat_requests)
