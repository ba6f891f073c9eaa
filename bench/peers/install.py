"""Install the peer frameworks into their own virtual environments (bench/peers/.venvs/).

evoforge never imports them: ``run.py`` runs each with its own interpreter. A peer that
does not install is recorded with pip's error in ``.venvs/NAME.error`` and left out of
the runs; one that does gets ``.venvs/NAME.ok`` with the version installed::

    python bench/peers/install.py [--only openevolve]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import venv
from pathlib import Path

VENVS = Path(__file__).resolve().parent / ".venvs"
# Pinned: OpenEvolve 0.4.1 is the version issue 11 measured.
PEERS = {"openevolve": "openevolve==0.4.1", "shinka": "shinka-evolve"}


def install(name: str, requirement: str) -> bool:
    """Make ``.venvs/NAME`` and pip-install ``requirement`` there; True when it worked."""
    VENVS.mkdir(exist_ok=True)
    ok, error = VENVS / f"{name}.ok", VENVS / f"{name}.error"
    ok.unlink(missing_ok=True)
    error.unlink(missing_ok=True)
    env = VENVS / name
    if not (env / "bin" / "python").exists():
        venv.create(env, with_pip=True)
    pip = [str(env / "bin" / "python"), "-m", "pip"]
    proc = subprocess.run([*pip, "install", "-q", requirement], capture_output=True, text=True)
    if proc.returncode != 0:
        error.write_text(proc.stdout + proc.stderr)
        print(f"{name}: {requirement} did not install (see {error})", file=sys.stderr)
        return False
    dist = requirement.split("==")[0]
    show = subprocess.run([*pip, "show", dist], capture_output=True, text=True, check=True)
    version = next(line.split(":", 1)[1].strip() for line in show.stdout.splitlines()
                   if line.startswith("Version:"))
    ok.write_text(f"{dist}=={version}\n")
    print(f"{name}: {dist} {version}")
    return True


def main() -> None:
    """Install every peer (or ``--only`` one)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", choices=sorted(PEERS))
    args = parser.parse_args()
    for name, requirement in PEERS.items():
        if args.only in (None, name):
            install(name, requirement)


if __name__ == "__main__":
    main()
