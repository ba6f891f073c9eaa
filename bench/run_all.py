"""evoforge benchmarks: overhead, scaling and search quality, as ratios measured in one run.

Run with ``make bench``. Prints a table per benchmark and writes JSON to bench/out/.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from evoforge.candidate import Status
from evoforge.problem import load_problem
from evoforge.run import create_run, execute
from evoforge.storage import SQLStorage

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"


def _run(problem: str | Path, budget: int, workers: int, seed: int = 0,
         summarize: bool = False) -> tuple[float, SQLStorage, int, dict]:  # type: ignore[type-arg]
    prob = load_problem(problem)
    tmp = Path(tempfile.mkdtemp(prefix="evoforge-bench-"))
    storage = SQLStorage(str(tmp / "bench.db"))
    run = create_run(storage, prob, budget=budget, seed=seed, workers=workers)
    start = time.perf_counter()
    result = execute(storage, run, workers=workers, summarize=summarize)
    return time.perf_counter() - start, storage, run.id, result.summary


def overhead(budget: int = 200) -> dict[str, float]:
    """Per-candidate wall time with an instant evaluator, against a bare interpreter start."""
    wall, storage, run_id, _ = _run(HERE / "problems" / "instant", budget, workers=1)
    cands = [c for c in storage.iter_candidates(run_id) if c.status != Status.DUPLICATE]
    evals = [c.eval_seconds or 0.0 for c in cands]
    spawn = []
    for _ in range(30):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        spawn.append(time.perf_counter() - t)
    per_candidate = wall / len(cands)
    q = statistics.quantiles(evals, n=20)
    return {
        "candidates": len(cands),
        "per_candidate_ms": 1000 * per_candidate,
        "eval_process_median_ms": 1000 * statistics.median(evals),
        "eval_process_p95_ms": 1000 * q[18],
        "bare_interpreter_ms": 1000 * statistics.median(spawn),
        "loop_ms": 1000 * (per_candidate - statistics.mean(evals)),
        "ratio_to_bare_interpreter": per_candidate / statistics.median(spawn),
    }


def scaling(budget: int = 24) -> dict[str, float]:
    """Evaluations per second with 1 and 2 workers on a CPU-bound evaluator."""
    one, *_ = _run(HERE / "problems" / "busy", budget, workers=1)
    two, *_ = _run(HERE / "problems" / "busy", budget, workers=2)
    return {"evals_per_s_1": budget / one, "evals_per_s_2": budget / two,
            "speedup_2_workers": one / two}


def quality(budget: int = 300, seeds: tuple[int, ...] = (1, 2, 3)) -> dict[str, object]:
    """bin_packing at a fixed budget: best train and test scores against the baselines."""
    rows = []
    summary: dict = {}  # type: ignore[type-arg]
    for seed in seeds:
        _, storage, run_id, summary = _run("bin_packing", budget, workers=2, seed=seed,
                                           summarize=True)
        rows.append({"seed": seed, "train": summary["best_score"],
                     "test": summary["test"]["best"]})
    tests = [r["test"] for r in rows]
    return {"budget": budget, "runs": rows, "test_mean": statistics.mean(tests),
            "test_stdev": statistics.pstdev(tests), "initial_test": summary["test"]["initial"],
            "baselines_test": {k: v["test"] for k, v in summary["baselines"].items()}}


def main() -> None:
    OUT.mkdir(exist_ok=True)
    results = {}
    for name, bench in (("overhead", overhead), ("scaling", scaling), ("quality", quality)):
        start = time.perf_counter()
        results[name] = bench()
        print(f"== {name} ({time.perf_counter() - start:.0f} s)")
        print(json.dumps(results[name], indent=2))
    (OUT / "results.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
