"""Library bench: a model-free run per built-in problem against its baselines, on test.

For each problem: ``--seeds`` runs at a fixed ``--budget`` of evaluations (2 workers),
then the best program of each run is scored on the held-out test split; the table
gives the mean and spread over seeds next to the initial program and the baselines,
all measured in this run. Writes ``docs/benchmarks.md`` (the library table) and
``bench/out/library.json``.

Each run also reports the work it did not repeat: functional-hashing hits (proposals
that behaved like a program already evaluated, answered by the probe alone) and the
evaluation seconds they saved, the probe's own cost, and what simplification tried
and kept. ``--work-only`` writes only that table ("Work not repeated") to the doc.

    python bench/library.py [--budget 60] [--seeds 1 2 3] [--problems a b ...] [--work-only]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from evoforge.candidate import Status
from evoforge.problem import builtin_problems, load_problem
from evoforge.problem.library import read_meta
from evoforge.run import create_run, execute
from evoforge.run.simplify import SIMPLIFY
from evoforge.storage import SQLStorage
from evoforge.storage.base import Storage

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
DOC = ROOT / "docs" / "benchmarks.md"


def work_saved(storage: Storage, run_id: int) -> dict[str, Any]:
    """What one run did not repeat, from its stored candidates.

    ``probe_seconds`` is the mean time of a probe alone (a functional hit costs only its
    probe), ``eval_seconds`` the mean time of a full evaluation (probe included).
    Simplification: the deletions it evaluated, and those it kept (same functional hash
    and fitness as the program they shortened) with the characters they removed.
    """
    stats = storage.functional_stats(run_id)
    everything = list(storage.iter_candidates(run_id))
    by_id = {c.id: c for c in everything}
    cands = [c for c in everything if c.seq != 0]  # proposals: the initial program aside
    hits = [c for c in cands if c.status == Status.DUPLICATE and c.functional_hash]
    full = [c for c in cands if c.status in (Status.OK, Status.FAILED, Status.TIMEOUT)
            and c.eval_seconds is not None]
    simplify = [c for c in cands if c.operator == SIMPLIFY and c.status != Status.PENDING]
    kept = []
    for c in simplify:
        parent = by_id.get(c.parent_ids[0]) if c.parent_ids else None
        if (parent is not None and c.status == Status.OK and c.functional_hash
                and c.functional_hash == parent.functional_hash
                and c.fitness == parent.fitness):
            kept.append(len(parent.code) - len(c.code))
    return {
        "proposals": len(cands),
        "evaluated": len(full),
        "failed": sum(c.status in (Status.FAILED, Status.TIMEOUT) for c in cands),
        "duplicates": sum(c.status == Status.DUPLICATE for c in cands),
        "functional_hits": stats["hits"],
        "probed": stats["probed"],
        "seconds_saved": stats["seconds_saved"],
        "probe_seconds": statistics.fmean(c.eval_seconds or 0.0 for c in hits) if hits else None,
        "eval_seconds": statistics.fmean(c.eval_seconds or 0.0 for c in full) if full else None,
        "simplify_evaluated": len(simplify),
        "simplify_kept": len(kept),
        "simplify_chars_removed": sum(kept),
    }


def run_problem(name: str, budget: int, seeds: list[int]) -> dict[str, Any]:
    """Runs of one problem; the test scores of their best programs and the baselines."""
    problem = load_problem(name)
    meta = read_meta(problem.path)
    tests, trains, seconds = [], [], []
    work: list[dict[str, Any]] = []
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
        work.append(work_saved(storage, run.id) | {"seed": seed, "seconds": seconds[-1]})
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
        "work": work,
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


def work_markdown(rows: list[dict[str, Any]], budget: int, seeds: list[int]) -> str:
    """The "Work not repeated" table: one line per problem and seed."""
    lines = [
        "| problem | seed | proposals | evaluated | failed | duplicates (functional) | "
        "eval s (mean) | probe s (mean) | eval s saved | simplify: tried / kept "
        "(chars removed) | run s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        for w in row["work"]:
            lines.append(
                f"| {row['problem']} | {w['seed']} | {w['proposals']} | {w['evaluated']} | "
                f"{w['failed']} | {w['duplicates']} ({w['functional_hits']}) | "
                f"{_fmt(w['eval_seconds'])} | {_fmt(w['probe_seconds'])} | "
                f"{w['seconds_saved']:.1f} | {w['simplify_evaluated']} / "
                f"{w['simplify_kept']} ({w['simplify_chars_removed']}) | {w['seconds']:.0f} |")
    names = " ".join(row["problem"] for row in rows)
    seed_list = " ".join(str(seed) for seed in seeds)
    header = (f"Model-free runs of {budget} evaluations (2 workers), measured in one run of "
              f"`python bench/library.py --budget {budget} --seeds {seed_list} --problems "
              f"{names} --work-only`. Duplicates are "
              "proposals not evaluated (same normalized text, or in brackets, same "
              "functional hash: the probe's outputs matched an evaluated program's); "
              "eval s saved is the evaluation time those functional hits did not spend.")
    return header + "\n\n" + "\n".join(lines) + "\n"


def _replace_block(doc: str, name: str, table: str, heading: str) -> str:
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    block = f"{begin}\n{table}{end}"
    if begin in doc and end in doc:
        return doc[:doc.index(begin)] + block + doc[doc.index(end) + len(end):]
    return doc.rstrip() + f"\n\n{heading}\n\n" + block + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=60)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--problems", nargs="+", default=None)
    parser.add_argument("--doc", type=Path, default=DOC)
    parser.add_argument("--work-only", action="store_true",
                        help="write only the work-not-repeated table to the doc")
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
    work = work_markdown(rows, args.budget, args.seeds)
    print(table)
    print(work)
    doc = args.doc.read_text() if args.doc.exists() else "# Benchmarks\n"
    if not args.work_only:
        doc = _replace_block(doc, "library", table, "## Problem library")
    doc = _replace_block(doc, "work", work, "### Work not repeated")
    args.doc.write_text(doc)


if __name__ == "__main__":
    main()
