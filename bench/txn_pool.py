"""txn_scheduling beyond its test split: how programs generalise to fresh workloads.

The search's best train programs on txn_scheduling score about as well as the strongest
baseline (earliest_start_contention, ``-start + 0.04 * contention``) on the test split,
sometimes a little better, sometimes worse. This script asks whether that is noise of a
30-workload split or a real difference: it scores programs on a pool of fresh workloads
(``--splits`` splits of 30, generated like the train and test splits with other seeds),
in this process (the programs are trusted: baselines, or the best programs of runs you
made). It scores the shipped baselines, earliest_start_contention with other weights on
contention, and the best program of each bench database given (``/tmp/evoforge-bench-*/
bench.db``, kept by ``bench/search.py``). About 1.5 s per program and split of 30.

    python bench/txn_pool.py [--splits 5] [DB ...]
"""

from __future__ import annotations

import argparse
import sys
import types
import warnings
from pathlib import Path

from evoforge.problems.txn_scheduling import evaluator as txn
from evoforge.storage import SQLStorage

PROBLEM = Path(txn.__file__).resolve().parent
FIRST_SEED = 11  # the pool's split seeds: 11, 12, ... (train and test use others)
WEIGHTS = (0.02, 0.03, 0.04, 0.05, 0.06, 0.08)


def _schedule(code: str) -> txn.Schedule:
    module = types.ModuleType("candidate")
    exec(compile(code, "<candidate>", "exec"), module.__dict__)  # noqa: S102 - trusted code
    return module.schedule


def main(argv: list[str] | None = None) -> int:
    """Print each program's score on every split of the pool, their mean, and its test score."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--splits", type=int, default=5, help="splits of 30 workloads")
    parser.add_argument("dbs", nargs="*", type=Path, help="bench/search.py databases")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", category=RuntimeWarning)  # evolved x / 0 -> inf
    splits = [[txn.make_workload(FIRST_SEED + k, family, i)
               for family in txn.FAMILIES for i in range(10)] for k in range(args.splits)]
    test = txn.make_workloads("test")
    programs: dict[str, str] = {p.stem: p.read_text()
                                for p in sorted((PROBLEM / "baselines").glob("*.py"))}
    escp = programs["earliest_start_contention"]
    assert "-start + 0.04 * contention" in escp, "the baseline changed; update WEIGHTS"
    for weight in WEIGHTS:
        if weight != 0.04:
            programs[f"earliest_start_contention, {weight}"] = escp.replace(
                "-start + 0.04 * contention", f"-start + {weight} * contention")
    for db in args.dbs:
        storage = SQLStorage(str(db))
        for run in storage.list_runs():
            best = storage.best(run.id)
            if run.problem.endswith("txn_scheduling") and best is not None:
                programs[f"{db.parent.name} seed {run.seed} (train {best.score:.3f})"] = best.code
        storage.close()
    print(f"pool: {args.splits} splits of 30 workloads (seeds {FIRST_SEED}-"
          f"{FIRST_SEED + args.splits - 1}); combined_score, higher is better")
    print("| program | " + " | ".join(f"split {FIRST_SEED + k}" for k in range(args.splits))
          + " | pool mean | test |")
    print("| --- |" + " ---: |" * (args.splits + 2))
    for name, code in programs.items():
        # a fresh module per split: a sampling program's RNG starts anew, as in evaluate
        scores = [txn.score_schedule(_schedule(code), ws).metrics["combined_score"]
                  for ws in splits]
        on_test = txn.score_schedule(_schedule(code), test).metrics["combined_score"]
        print(f"| {name} | " + " | ".join(f"{s:.3f}" for s in scores)
              + f" | **{sum(scores) / len(scores):.3f}** | {on_test:.3f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
