"""evoforge benchmarks: overhead, scaling and search quality, as ratios measured in one run.

Run with ``make bench``. Prints a table per benchmark and writes JSON to bench/out/.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from evoforge.candidate import Status
from evoforge.evaluation.sandbox import EvalJob
from evoforge.executors.local import LocalExecutor
from evoforge.problem import load_problem
from evoforge.run import create_run, execute
from evoforge.storage import SQLStorage
from evoforge.storage.base import RunRecord

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"


def timed_run(problem: str | Path, budget: int, workers: int, seed: int = 0,
              summarize: bool = False, ordered_lag: int = 0,
              ) -> tuple[float, SQLStorage, RunRecord, dict]:  # type: ignore[type-arg]
    """One run in a fresh SQLite file: wall seconds, the storage, the run, its summary."""
    prob = load_problem(problem)
    if ordered_lag:
        prob.config = prob.config.model_copy(update={"ordered_lag": ordered_lag})
    tmp = Path(tempfile.mkdtemp(prefix="evoforge-bench-"))
    storage = SQLStorage(str(tmp / "bench.db"))
    run = create_run(storage, prob, budget=budget, seed=seed, workers=workers)
    start = time.perf_counter()
    result = execute(storage, run, workers=workers, summarize=summarize)
    return time.perf_counter() - start, storage, run, result.summary


def _executor_times(isolation: str, n: int, problem: str = "instant") -> list[float]:
    """Wall seconds of each of ``n`` evaluations with an instant evaluator."""
    job = EvalJob(code=(HERE / "problems" / problem / "initial_program.py").read_text(),
                  evaluator_path=HERE / "problems" / problem / "evaluator.py", timeout=30)

    async def main() -> list[float]:
        executor = LocalExecutor(1, isolation)  # type: ignore[arg-type]
        times = []
        try:
            await executor.evaluate(job)  # start the worker outside the measurement
            for _ in range(n):
                start = time.perf_counter()
                outcome = await executor.evaluate(job)
                times.append(time.perf_counter() - start)
                assert outcome.status == "ok", outcome.error
        finally:
            await executor.close()
        return times

    return asyncio.run(main())


def _ms(values: list[float]) -> dict[str, float]:
    q = statistics.quantiles(values, n=20)
    return {"median_ms": 1000 * statistics.median(values), "p95_ms": 1000 * q[18]}


def overhead(n: int = 200, budget: int = 200) -> dict[str, object]:
    """Per-candidate overhead of the local executor with an evaluator that returns at once.

    Also the cost of the run/check split: an evaluator that calls the candidate once
    in its own process (``instant_kit``) against one that imports and calls it
    (``instant_import``).

    ``fork`` (default: workers fork a child per candidate) against ``spawn`` (a fresh
    interpreter per candidate), interleaved in one run; then a whole model-free run
    (proposal + duplicate check + archive + storage + evaluation) per candidate.
    """
    fork, spawn = [], []
    for _ in range(4):  # interleave so that load on the machine hits both alike
        fork += _executor_times("fork", n // 4)
        spawn += _executor_times("spawn", n // 4)
    # the split of evoforge.problem.kit: the candidate in its own process, called once,
    # against importing it into the evaluation process and calling it there
    in_process, split = [], []
    for _ in range(4):
        in_process += _executor_times("fork", n // 4, "instant_import")
        split += _executor_times("fork", n // 4, "instant_kit")
    wall, storage, run, _ = timed_run(HERE / "problems" / "instant", budget, workers=1)
    cands = [c for c in storage.iter_candidates(run.id) if c.status != Status.DUPLICATE]
    return {
        "executor_fork": _ms(fork),
        "executor_spawn": _ms(spawn),
        "spawn_over_fork_median": statistics.median(spawn) / statistics.median(fork),
        "executor_fork_import_and_call": _ms(in_process),
        "executor_fork_kit_split_and_call": _ms(split),
        "split_over_import_median": statistics.median(split) / statistics.median(in_process),
        "run_per_candidate_ms": 1000 * wall / len(cands),
        "run_candidates": len(cands),
    }


def scaling(budget: int = 24) -> dict[str, float]:
    """Evaluations per second with 1 and 2 workers on a CPU-bound evaluator."""
    one, *_ = timed_run(HERE / "problems" / "busy", budget, workers=1)
    two, *_ = timed_run(HERE / "problems" / "busy", budget, workers=2)
    return {"evals_per_s_1": budget / one, "evals_per_s_2": budget / two,
            "speedup_2_workers": one / two}


def ordering(budget: int = 300, seeds: tuple[int, ...] = (1, 2), lag: int = 4,
             ) -> dict[str, object]:
    """The cost of ``ordered_lag``: bin_packing, 2 workers, results used as they arrive
    against in proposal order, the two alternating per seed. Runs of one seed make
    different programs (and so different numbers of quick functional duplicates), so
    the time per proposal is compared beside the time per evaluation."""
    rows = []
    for seed in seeds:
        for this_lag in (0, lag):
            wall, storage, run, _ = timed_run("bin_packing", budget, workers=2, seed=seed,
                                              ordered_lag=this_lag)
            proposals = sum(1 for _ in storage.iter_candidates(run.id))
            rows.append({"seed": seed, "ordered_lag": this_lag, "wall_s": wall,
                         "proposals": proposals, "ms_per_evaluation": 1000 * wall / budget,
                         "ms_per_proposal": 1000 * wall / proposals})

    def mean(key: str, this_lag: int) -> float:
        return statistics.mean(r[key] for r in rows if r["ordered_lag"] == this_lag)

    return {"budget": budget, "runs": rows,
            "ordered_over_unordered_per_evaluation":
                mean("ms_per_evaluation", lag) / mean("ms_per_evaluation", 0),
            "ordered_over_unordered_per_proposal":
                mean("ms_per_proposal", lag) / mean("ms_per_proposal", 0)}


def quality(budget: int = 300, seeds: tuple[int, ...] = (1, 2, 3)) -> dict[str, object]:
    """bin_packing at a fixed budget: best train and test scores against the baselines."""
    rows = []
    summary: dict = {}  # type: ignore[type-arg]
    for seed in seeds:
        _, storage, _, summary = timed_run("bin_packing", budget, workers=2, seed=seed,
                                           summarize=True)
        rows.append({"seed": seed, "train": summary["best_score"],
                     "test": summary["test"]["best"]})
    tests = [r["test"] for r in rows]
    return {"budget": budget, "runs": rows, "test_mean": statistics.mean(tests),
            "test_stdev": statistics.pstdev(tests), "initial_test": summary["test"]["initial"],
            "baselines_test": {k: v["test"] for k, v in summary["baselines"].items()}}


def library() -> dict[str, object]:
    """The problem library bench (bench/library.py), writing docs/benchmarks.md."""
    subprocess.run([sys.executable, str(HERE / "library.py")], check=True)
    return {"written": "docs/benchmarks.md", "json": "bench/out/library.json"}


def search() -> dict[str, object]:
    """The search bench (bench/search.py): evoforge against a plain (1+1) loop."""
    subprocess.run([sys.executable, str(HERE / "search.py")], check=True)
    return {"written": "docs/benchmarks.md, docs/search.png", "json": "bench/out/search.json"}


def speed_claims() -> dict[str, object]:
    """What the speed-scored problems' READMEs claim of their baselines (bench/speed_claims.py)."""
    subprocess.run([sys.executable, str(HERE / "speed_claims.py")], check=True)
    return json.loads((OUT / "speed_claims.json").read_text())


def scale() -> dict[str, object]:
    """The storage scale bench (bench/scale.py): a million candidates, SQLite and PostgreSQL."""
    backends = "sqlite,postgresql" if os.environ.get("EVOFORGE_TEST_POSTGRES") else "sqlite"
    subprocess.run([sys.executable, str(HERE / "scale.py"), "--backends", backends], check=True)
    return {"json": "bench/out/scale.json"}


def main() -> None:
    OUT.mkdir(exist_ok=True)
    results = {}
    for name, bench in (("overhead", overhead), ("scaling", scaling), ("ordering", ordering),
                        ("quality", quality),
                        ("library", library), ("search", search), ("speed_claims", speed_claims),
                        ("scale", scale)):
        start = time.perf_counter()
        results[name] = bench()
        print(f"== {name} ({time.perf_counter() - start:.0f} s)")
        print(json.dumps(results[name], indent=2))
    (OUT / "results.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
