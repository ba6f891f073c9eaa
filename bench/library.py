"""Library bench: a model-free run per built-in problem against its baselines, on test.

For each problem: ``--seeds`` runs at a fixed ``--budget`` of evaluations (2 workers),
then the best program of each run is scored on the held-out test split; the table
gives the mean and spread over seeds next to the initial program and the baselines,
all measured in this run. Writes ``docs/benchmarks.md`` (the library table) and
``bench/out/library.json``.

    python bench/library.py [--budget 60] [--seeds 1 2 3] [--problems a b ...]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from evoforge.problem import builtin_problems, load_problem
from evoforge.problem.library import read_meta
from evoforge.run import create_run, execute
from evoforge.storage import SQLStorage

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
DOC = ROOT / "docs" / "benchmarks.md"


def run_problem(name: str, budget: int, seeds: list[int]) -> dict[str, Any]:
    """Runs of one problem; the test scores of their best programs and the baselines."""
    problem = load_problem(name)
    meta = read_meta(problem.path)
    tests, trains, seconds = [], [], []
    summary: dict[str, Any] = {}
    for seed in seeds:
        storage = SQLStorage(str(Path(tempfile.mkdtemp(prefix="evoforge-lib-")) / "lib.db"))
        run = create_run(storage, problem, budget=budget, seed=seed, workers=2)
        start = time.perf_counter()
        result = execute(storage, run, workers=2)
        seconds.append(time.perf_counter() - start)
        summary = result.summary
        trains.append(summary.get("best_score"))
        tests.append((summary.get("test") or {}).get("best"))
        storage.close()
    valid = [t for t in tests if t is not None]
    return {
        "problem": name,
        "direction": meta.direction if meta else "maximize",
        "budget": budget,
        "seeds": seeds,
        "best_test": tests,
        "best_train": trains,
        "test_mean": statistics.fmean(valid) if valid else None,
        "test_spread": statistics.pstdev(valid) if len(valid) > 1 else 0.0,
        "initial_test": (summary.get("test") or {}).get("initial"),
        "baselines_test": {k: v.get("test") for k, v in (summary.get("baselines") or {}).items()},
        "seconds_per_run": statistics.fmean(seconds),
    }


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _beats(row: dict[str, Any]) -> str:
    """Which baselines the mean best test score matches or beats."""
    mean = row["test_mean"]
    if mean is None:
        return "-"
    better = [name for name, score in row["baselines_test"].items() if score is not None and (
        mean >= score if row["direction"] == "maximize" else mean <= score)]
    return ", ".join(better) or "none"


def markdown(rows: list[dict[str, Any]], budget: int, seeds: list[int]) -> str:
    """The library table as markdown."""
    lines = [
        "| problem | direction | initial | evolved best (mean ± spread) | baselines | "
        "matches or beats |",
        "| --- | --- | ---: | ---: | --- | --- |",
    ]
    for row in rows:
        baselines = ", ".join(f"{k} {_fmt(v)}" for k, v in row["baselines_test"].items())
        lines.append(
            f"| {row['problem']} | {row['direction']} | {_fmt(row['initial_test'])} | "
            f"{_fmt(row['test_mean'])} ± {_fmt(row['test_spread'])} | {baselines} | "
            f"{_beats(row)} |")
    header = (f"Model-free runs, budget {budget} evaluations, seeds {seeds}, 2 workers; "
              "every score is on the held-out test split, measured in one run of "
              "`python bench/library.py` (part of `make bench`).")
    return header + "\n\n" + "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=60)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--problems", nargs="+", default=None)
    parser.add_argument("--doc", type=Path, default=DOC)
    args = parser.parse_args()
    names = args.problems or sorted(builtin_problems())
    rows = []
    for name in names:
        start = time.perf_counter()
        rows.append(run_problem(name, args.budget, args.seeds))
        print(f"{name}: {time.perf_counter() - start:.0f} s, test mean "
              f"{_fmt(rows[-1]['test_mean'])}", flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "library.json").write_text(json.dumps(rows, indent=2))
    table = markdown(rows, args.budget, args.seeds)
    print(table)
    doc = args.doc.read_text() if args.doc.exists() else "# Benchmarks\n"
    begin, end = "<!-- library:begin -->", "<!-- library:end -->"
    block = f"{begin}\n{table}{end}"
    if begin in doc and end in doc:
        doc = doc[:doc.index(begin)] + block + doc[doc.index(end) + len(end):]
    else:
        doc = doc.rstrip() + "\n\n## Problem library\n\n" + block + "\n"
    args.doc.write_text(doc)


if __name__ == "__main__":
    main()
