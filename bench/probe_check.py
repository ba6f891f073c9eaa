"""How faithful is a problem's probe? Functional duplicates of past runs, scored again.

A functional duplicate is never evaluated: its probe hash matched an evaluated program's,
so it was taken to behave like it. This script samples functional duplicates from
``bench/search.py`` databases (``/tmp/evoforge-bench-*/bench.db``; any run database
works), scores each on the train split and compares with the program it was taken for
(exactly equal scores count as the same behaviour), and probes both with the problem's
*current* probe (``child.probe``, as a worker runs it). It prints how many duplicates
scored otherwise on train (better, worse), how many of those the current probe tells
apart, and how many truly-alike pairs it splits (each would cost an evaluation that
finds nothing new). Exact equality is the test, so a score with a timed part
(eplb's speed score) differs between any two runs: use it on problems scored by
outcome only. The programs run in this process: use it on your own runs only.

    python bench/probe_check.py [--sample 60] DB [DB ...]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

from evoforge.candidate import Status
from evoforge.evaluation.child import import_evaluator, probe
from evoforge.problem import load_problem
from evoforge.storage import SQLStorage


def _score(module: Any, metric: str, path: str) -> float | None:
    try:
        return float(module.evaluate(path)[metric])
    except Exception:  # noqa: BLE001 - a program that fails here scores nothing
        return None


def check(dbs: list[Path], sample: int, seed: int = 1) -> dict[str, Any]:
    """Sample ``sample`` functional duplicates per run of each database and compare.

    Returns:
        counts: ``pairs``, ``different`` (scored otherwise on train), ``better``,
        ``different_separated`` and ``alike_separated`` (by the current probe), and
        ``probe_ms`` (mean time of one probe).
    """
    out = {"pairs": 0, "different": 0, "better": 0, "different_separated": 0,
           "alike_separated": 0, "probe_ms": 0.0}
    probes = 0
    with tempfile.TemporaryDirectory() as tmp:
        for db in dbs:
            storage = SQLStorage(str(db))
            for run in storage.list_runs():
                problem = load_problem(run.problem)
                module, error = import_evaluator(str(problem.evaluator_path))
                if error is not None:
                    raise SystemExit(f"{run.problem}: {error}")
                metric = problem.config.objective.metric
                maximize = problem.config.objective.direction == "maximize"
                cands = {c.id: c for c in storage.iter_candidates(run.id)}
                dups = [c for c in cands.values()
                        if c.status is Status.DUPLICATE and c.functional_hash
                        and c.duplicate_of in cands
                        and cands[c.duplicate_of].status is Status.OK]
                rng = random.Random(seed)
                for dup in rng.sample(dups, min(sample, len(dups))):
                    ref = cands[dup.duplicate_of]
                    paths, hashes = [], []
                    for k, cand in enumerate((dup, ref)):
                        path = Path(tmp) / f"p{out['pairs']}_{k}.py"
                        path.write_text(cand.code)
                        paths.append(str(path))
                        start = time.perf_counter()
                        hashes.append(probe(module, str(path))["artifacts"]["probe_hash"])
                        out["probe_ms"] += 1000 * (time.perf_counter() - start)
                        probes += 1
                    mine, theirs = _score(module, metric, paths[0]), ref.score
                    out["pairs"] += 1
                    apart = hashes[0] != hashes[1]
                    if mine is not None and theirs is not None and mine == theirs:
                        out["alike_separated"] += apart
                        continue
                    out["different"] += 1
                    out["different_separated"] += apart
                    if mine is not None and theirs is not None and (mine > theirs) == maximize:
                        out["better"] += 1
    out["probe_ms"] = round(out["probe_ms"] / max(probes, 1), 1)
    return out


def main(argv: list[str] | None = None) -> int:
    """Print the comparison for the databases given."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=int, default=60, help="duplicates per run")
    parser.add_argument("dbs", nargs="+", type=Path, help="run databases")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", category=RuntimeWarning)  # evolved x / 0 -> inf
    r = check(args.dbs, args.sample)
    alike = r["pairs"] - r["different"]
    print(f"functional duplicates sampled: {r['pairs']}")
    print(f"scored otherwise on train than the program they were taken for: "
          f"{r['different']} ({r['better']} better)")
    print(f"told apart by the current probe: {r['different_separated']} of {r['different']} "
          f"that differ; {r['alike_separated']} of {alike} that score alike")
    print(f"mean probe time: {r['probe_ms']} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
