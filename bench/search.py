"""Search bench: evoforge's model-free engine against a plain (1+1) mutation loop.

For each problem and seed, in the same run:

* ``evoforge``: a model-free run (archive, bandit, lexicase, dedupe, functional
  hashing, simplification: everything the problem's config turns on);
* ``plain``: a (1+1) loop with the same mutation operators drawn uniformly (no
  archive, no bandit, hence no crossover and no CMA-ES): the parent is replaced by a
  child at least as good; a program already evaluated is not evaluated again.

Each run has ``--budget`` evaluations and 2 workers. At every checkpoint (100, 250,
500, 1,000, 1,500, 2,000 evaluations, those within the budget) the best program so far
(on the train split) is scored on the held-out test split, so the 500 column comes
from inside the 2,000 run. Writes ``bench/out/search.json``, the table in
``docs/benchmarks.md`` and the plot ``docs/search.png``.

    python bench/search.py [--problems bin_packing ...] [--budget 2000] [--seeds 1 2 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from run_all import timed_run  # a sibling script: bench/ leads sys.path when run as a script

from evoforge.candidate import Candidate, Status, normalized_hash
from evoforge.config import RunConfig
from evoforge.evaluation.sandbox import EvalJob, check_metrics
from evoforge.executors.local import LocalExecutor
from evoforge.problem import load_problem
from evoforge.problem.loader import Problem
from evoforge.proposers.mutation import MutationProposer
from evoforge.run.controller import fitness_of, objective_of

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
DOC = ROOT / "docs" / "benchmarks.md"
PLOT = ROOT / "docs" / "search.png"
PROBLEMS = ["bin_packing", "kv_eviction", "txn_scheduling", "job_shop", "tts_allocation",
            "eplb", "circle_packing"]
CHECKPOINTS = (100, 250, 500, 1000, 1500, 2000)
WASTED = (Status.FAILED, Status.TIMEOUT, Status.DUPLICATE, Status.REJECTED)
WORKERS = 2


def _job(problem: Problem, config: RunConfig, code: str, function: str) -> EvalJob:
    ev = config.evaluator
    timeout = ev.test_timeout if function == "evaluate_test" else ev.timeout
    return EvalJob(code=code, evaluator_path=problem.evaluator_path, function=function,
                   timeout=timeout, memory_mb=ev.memory_mb, output_cap_kb=ev.output_cap_kb,
                   file_mb=ev.file_mb, max_processes=ev.max_processes, network=ev.network)


async def _objective(executor: LocalExecutor, problem: Problem, config: RunConfig, code: str,
                     function: str) -> float | None:
    outcome = await executor.evaluate(_job(problem, config, code, function))
    if outcome.status != "ok" or check_metrics(outcome.metrics):
        return None
    score, _ = objective_of(config, outcome.metrics)
    return score


def _checkpoints(budget: int) -> list[int]:
    return sorted({c for c in CHECKPOINTS if c < budget} | {budget})


def checkpoint_bests(trajectory: list[tuple[int, float, str]], budget: int,
                     evaluated: int) -> dict[int, str | None]:
    """The best-so-far program (its code) at each checkpoint the run reached.

    ``trajectory``: (evaluation index, fitness, code) of each program that scored;
    ``evaluated``: evaluations the run made. A checkpoint past them (a run stopped early,
    by Ctrl-C or a signal) has None, not the last best: nothing was measured there.
    """
    out: dict[int, str | None] = {}
    for point in _checkpoints(budget):
        seen = [t for t in trajectory if t[0] <= point]
        if not seen or point > evaluated:
            out[point] = None
            continue
        out[point] = max(seen, key=lambda t: (t[1], -t[0]))[2]  # ties: the earliest
    return out


async def _test_scores(problem: Problem, config: RunConfig,
                       trajectory: list[tuple[int, float, str]],
                       budget: int, evaluated: int) -> dict[int, float | None]:
    """Test score of the best-so-far program at each checkpoint (see
    :func:`checkpoint_bests`)."""
    executor = LocalExecutor(WORKERS, config.evaluator.isolation)
    cache: dict[str, float | None] = {}
    out: dict[int, float | None] = {}
    try:
        for point, code in checkpoint_bests(trajectory, budget, evaluated).items():
            if code is None:
                out[point] = None
                continue
            if code not in cache:
                cache[code] = await _objective(executor, problem, config, code,
                                               "evaluate_test")
            out[point] = cache[code]
    finally:
        await executor.close()
    return out


def run_evoforge(name: str, budget: int, seed: int) -> dict[str, Any]:
    """One evoforge run; its trajectory, waste counts and baselines."""
    problem = load_problem(name)
    seconds, storage, run, summary = timed_run(name, budget, workers=WORKERS, seed=seed,
                                               summarize=True)
    config = RunConfig.model_validate(run.config)
    trajectory: list[tuple[int, float, str]] = []
    counts = {"failed": 0, "timeout": 0, "duplicate": 0, "rejected": 0, "ok": 0}
    operators: dict[str, dict[str, int]] = {}  # operator -> status -> proposals
    fitness_by_id: dict[int, float | None] = {}
    simplified = 0
    evaluated = 0
    worker_seconds = {"all": 0.0, "wasted": 0.0}  # probes included
    for cand in sorted(storage.iter_candidates(run.id), key=lambda c: c.seq):
        counts[cand.status.value] = counts.get(cand.status.value, 0) + 1
        worker_seconds["all"] += cand.eval_seconds or 0.0
        if cand.status in WASTED:
            worker_seconds["wasted"] += cand.eval_seconds or 0.0
        per_op = operators.setdefault(cand.operator, {})
        per_op[cand.status.value] = per_op.get(cand.status.value, 0) + 1
        fitness_by_id[cand.id] = cand.fitness
        if cand.status in (Status.OK, Status.FAILED, Status.TIMEOUT):
            evaluated += 1
        if cand.status == Status.OK and cand.fitness is not None:
            trajectory.append((evaluated, cand.fitness, cand.code))
            if (cand.operator == "simplify" and cand.parent_ids
                    and fitness_by_id.get(cand.parent_ids[0]) == cand.fitness):
                simplified += 1
    functional = storage.functional_stats(run.id)
    record = storage.get_run(run.name)
    stats = (record.proposer_stats or {}) if record is not None else {}
    storage.close()
    tests = asyncio.run(_test_scores(problem, config, trajectory, budget, evaluated))
    proposals = sum(counts.values()) - 1  # the initial program is no proposal
    return {
        "tests": tests, "seconds": seconds, "counts": counts,
        "waste": sum(counts[s.value] for s in WASTED) / max(proposals, 1),
        "waste_seconds": worker_seconds["wasted"] / max(worker_seconds["all"], 1e-9),
        "functional": functional, "simplified": simplified,
        "avoided": stats.get("avoided"), "oversized": stats.get("oversized"),
        "cmaes": stats.get("cmaes"),
        "stall": stats.get("stall"), "operators": operators,
        "parents_redrawn": summary.get("parents_redrawn"),
        "baselines": {k: v.get("test") for k, v in (summary.get("baselines") or {}).items()},
        "initial_test": (summary.get("test") or {}).get("initial"),
        "direction": config.objective.direction,
    }


async def _plain(problem: Problem, config: RunConfig, budget: int,
                 seed: int) -> tuple[list[tuple[int, float, str]], dict[str, int]]:
    rng = random.Random(seed)
    # the plain loop's own parent, not evoforge's sweep of the initial program
    proposer = MutationProposer(problem.template,
                                config.mutation.model_copy(update={"initial_sweep": 0}))
    # the operators that need no archive: no crossover partner, no CMA-ES strategy
    operators = [op for op in proposer.operators if op not in ("crossover", "cmaes")]
    executor = LocalExecutor(WORKERS, config.evaluator.isolation)
    counts = {"failed": 0, "avoided": 0, "ok": 0}
    evaluated: set[str] = set()
    trajectory: list[tuple[int, float, str]] = []

    async def score(code: str) -> float | None:
        value = await _objective(executor, problem, config, code, "evaluate")
        return None if value is None else fitness_of(config, value)

    try:
        code = problem.initial_program
        fitness = await score(code)
        if fitness is None:
            raise RuntimeError(f"{problem.name}: the initial program fails")
        evaluated.add(normalized_hash(code))
        n = 1
        trajectory.append((n, fitness, code))
        parent = Candidate(id=0, seq=0, island=0, parent_ids=(), operator="initial",
                           code=code, code_hash=normalized_hash(code), status=Status.OK,
                           fitness=fitness)
        idle = 0
        while n < budget and idle < 1000:
            children: list[str] = []
            while len(children) < min(WORKERS, budget - n) and idle < 1000:
                proposal = proposer.propose_with([rng.choice(operators)], parent, [], rng)
                key = normalized_hash(proposal.code) if proposal else None
                if proposal is None or key in evaluated:
                    counts["avoided"] += proposal is not None
                    idle += 1
                    continue
                idle = 0
                evaluated.add(key or "")
                children.append(proposal.code)
            results = await asyncio.gather(*(score(c) for c in children))
            for child, value in zip(children, results, strict=True):
                n += 1
                if value is None:
                    counts["failed"] += 1
                    continue
                counts["ok"] += 1
                trajectory.append((n, value, child))
                assert parent.fitness is not None
                if value >= parent.fitness:  # ties accepted: neutral drift
                    parent = Candidate(id=n, seq=n, island=0, parent_ids=(), operator="plain",
                                       code=child, code_hash=normalized_hash(child),
                                       status=Status.OK, fitness=value)
    finally:
        await executor.close()
    return trajectory, counts


def run_plain(name: str, budget: int, seed: int) -> dict[str, Any]:
    """One (1+1) run with the same operators; its trajectory and waste counts."""
    problem = load_problem(name)
    config = problem.config
    start = time.perf_counter()
    trajectory, counts = asyncio.run(_plain(problem, config, budget, seed))
    seconds = time.perf_counter() - start
    evaluated = 1 + counts["ok"] + counts["failed"]  # the initial program and its children
    tests = asyncio.run(_test_scores(problem, config, trajectory, budget, evaluated))
    return {"tests": tests, "seconds": seconds, "counts": counts,
            "waste": _plain_waste(counts)}


def _plain_waste(counts: dict[str, int]) -> float:
    """Failed evaluations over evaluations (repeats were caught before evaluation)."""
    return counts["failed"] / max(counts["failed"] + counts["ok"], 1)


def _avoided(method: str, result: dict[str, Any]) -> float | None:
    """Proposals dropped before evaluation: made before (or ill-shaped, for evoforge)."""
    if method == "plain":
        counts = result["counts"]
        return counts.get("avoided", counts.get("duplicate"))
    value = result.get("avoided")
    return float(value) if isinstance(value, int | float) else None


def _mean(values: list[float | None]) -> float | None:
    valid = [v for v in values if v is not None]
    return statistics.fmean(valid) if valid else None


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def markdown(rows: list[dict[str, Any]], budget: int, seeds: list[int]) -> str:
    """The search table: per problem and method, test scores at 500 and the budget."""
    mid = 500 if budget > 500 else None
    lines = [
        "| problem | method | test @500 (mean) | test @" + str(budget) + " (mean) | per seed @"
        + str(budget) + " | failed+duplicate | dropped before evaluation | "
        "strongest baseline (test) |",
        "| --- | --- | ---: | ---: | --- | ---: | ---: | --- |",
    ]
    for row in rows:
        for method in ("evoforge", "plain"):
            runs = row[method]
            at_mid = _mean([r["tests"].get(mid) for r in runs]) if mid else None
            at_end = [r["tests"].get(budget) for r in runs]
            if not runs:
                continue
            waste = statistics.fmean(
                _plain_waste({"failed": 0, "ok": 0, **r["counts"]}) if method == "plain"
                else r["waste"] for r in runs)
            avoided = _mean([_avoided(method, r) for r in runs])
            seconds = _mean([r.get("waste_seconds") for r in runs])
            time_share = ("" if seconds is None
                          else f" ({100 * seconds:.1f}% of worker time)")
            lines.append(
                f"| {row['problem']} | {method} | {_fmt(at_mid)} | {_fmt(_mean(at_end))} | "
                f"{', '.join(_fmt(v) for v in at_end)} | {100 * waste:.1f}%{time_share} | "
                f"{_fmt(avoided)} | {row['strongest'] if method == 'evoforge' else ''} |")
    header = (f"Model-free, {budget} evaluations per run, seeds {seeds}, {WORKERS} workers; "
              "scores are the held-out test split of the best train program so far (the "
              "500 column is read inside the same run). failed+duplicate: share of the "
              "stored proposals (evoforge) or of the evaluations (plain) that failed or "
              "repeated a program (for evoforge also the share of the workers' time they "
              "took: a functional duplicate costs a probe, not an evaluation); dropped "
              "before evaluation: proposals per run that the "
              "proposer discarded and replaced at once (a program already made, or "
              "ill-shaped), mean over seeds. Measured in one run of "
              "`python bench/search.py` (part of `make bench`).")
    return header + "\n\n" + "\n".join(lines) + "\n"


def _strongest(baselines: dict[str, float | None], direction: str) -> str:
    scored = {k: v for k, v in baselines.items() if v is not None}
    if not scored:
        return "-"
    pick = (max if direction == "maximize" else min)(scored, key=lambda k: scored[k])
    return f"{pick} {_fmt(scored[pick])}"


def plot(rows: list[dict[str, Any]], budget: int, path: Path) -> None:
    """Mean test score against evaluations, one panel per problem."""
    import matplotlib  # optional: a dev dependency

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = _checkpoints(budget)
    fig, axes = plt.subplots(1, len(rows), figsize=(4 * len(rows), 3.2), squeeze=False)
    for ax, row in zip(axes[0], rows, strict=True):
        for method, style in (("evoforge", "o-"), ("plain", "s--")):
            means = [_mean([r["tests"].get(p) for r in row[method]]) for p in points]
            ax.plot(points, [m if m is not None else float("nan") for m in means], style,
                    label=method)
        for name, value in row["evoforge"][0]["baselines"].items():
            if value is not None:
                ax.axhline(value, linestyle=":", linewidth=1, color="grey")
                ax.annotate(name, (points[0], value), fontsize=7, color="grey")
        ax.set_xscale("log")
        ax.set_title(row["problem"])
        ax.set_xlabel("evaluations")
        ax.set_ylabel("test score")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", nargs="+", default=PROBLEMS)
    parser.add_argument("--budget", type=int, default=2000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--methods", nargs="+", default=["evoforge", "plain"],
                        choices=["evoforge", "plain"])
    parser.add_argument("--doc", type=Path, default=DOC)
    parser.add_argument("--plot", type=Path, default=PLOT)
    parser.add_argument("--from-json", type=Path, nargs="+", default=None,
                        help="write the table and plot from saved search.json files (their "
                        "runs are put together per problem), no runs")
    parser.add_argument("--json", type=Path, default=OUT / "search.json",
                        help="where the runs are saved")
    args = parser.parse_args()
    if args.budget < 2:
        sys.exit("search bench: --budget must be at least 2")
    rows: list[dict[str, Any]] = []
    if args.from_json is not None:
        merged: dict[str, dict[str, Any]] = {}
        for path in args.from_json:
            try:
                saved = json.loads(path.read_text())
            except (OSError, ValueError) as exc:
                sys.exit(f"search bench: cannot read {path}: {exc}")
            for row in saved:
                into = merged.setdefault(row["problem"], {"problem": row["problem"],
                                                          "evoforge": [], "plain": []})
                into["evoforge"] += row.get("evoforge", [])
                into["plain"] += row.get("plain", [])
        rows = list(merged.values())
        for row in rows:  # JSON keys are strings; a stopped run may lack a method or seed
            for method in ("evoforge", "plain"):
                for result in row.get(method, []):
                    result["tests"] = {int(k): v for k, v in result["tests"].items()}
            if row.get("evoforge") and "strongest" not in row:
                first = row["evoforge"][0]
                row["strongest"] = _strongest(first["baselines"], first["direction"])
        seeds = sorted({len(row.get("evoforge", [])) for row in rows})
        print(f"from {args.from_json}: {len(rows)} problem(s), runs per method {seeds}")
        args.problems = []
    for name in args.problems:
        row: dict[str, Any] = {"problem": name, "evoforge": [], "plain": []}
        for seed in args.seeds:
            for method in args.methods:
                start = time.perf_counter()
                runner = run_evoforge if method == "evoforge" else run_plain
                result = runner(name, args.budget, seed)
                row[method].append(result)
                print(f"{name} {method} seed {seed}: {time.perf_counter() - start:.0f} s, "
                      f"test {result['tests']}, waste {100 * result['waste']:.1f}%"
                      + (f" of proposals, {100 * result['waste_seconds']:.1f}% of worker time"
                         if "waste_seconds" in result else "")
                      + (f", parents drawn again {result['parents_redrawn']}"
                         if result.get("parents_redrawn") is not None else "")
                      + (f", children over the size limit {result['oversized']}"
                         if result.get("oversized") is not None else ""),
                      flush=True)
                args.json.parent.mkdir(parents=True, exist_ok=True)  # partial results survive
                args.json.write_text(json.dumps([*rows, row], indent=2))
        if row["evoforge"]:
            first = row["evoforge"][0]
            row["strongest"] = _strongest(first["baselines"], first["direction"])
        rows.append(row)
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2))
    if set(args.methods) != {"evoforge", "plain"} or not rows:
        return  # the table compares both
    table = markdown(rows, args.budget, args.seeds)
    print(table)
    plot(rows, args.budget, args.plot)
    doc = args.doc.read_text() if args.doc.exists() else "# Benchmarks\n"
    begin, end = "<!-- search:begin -->", "<!-- search:end -->"
    block = f"{begin}\n{table}\n![test score against evaluations]({args.plot.name})\n{end}"
    if begin in doc and end in doc:
        doc = doc[:doc.index(begin)] + block + doc[doc.index(end) + len(end):]
    else:
        doc = doc.rstrip() + "\n\n## Search: evoforge against a plain (1+1) loop\n\n" + block + "\n"
    args.doc.write_text(doc)


if __name__ == "__main__":
    main()
