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

``--fit`` asks instead whether the train split can tell a better program from the
baseline at all: it fits the weights of a linear priority over the features
(:data:`FEATURES`, CMA-ES, 240 programs) once on the 9 train workloads, as the search
sees them, and once on the first three splits of the pool (90 workloads), and scores
both fits and the baseline on train, on the 90, on the other splits of the pool (held
out) and on test. About 3 minutes.

    python bench/txn_pool.py --fit [--splits 5]
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
BASELINE_WEIGHT = 0.04
BASELINE = f"-start + {BASELINE_WEIGHT} * contention"
FEATURES = ("contention", "gap", "duration", "np.maximum(start + duration - makespan, 0.0)")
"""``--fit``: the priority is ``-start + sum(w_i * feature_i)``; the baseline is
``w = (BASELINE_WEIGHT, 0, 0, 0)``."""
FIT_PROGRAMS = 240
FIT_SPLITS = 3


def _schedule(code: str) -> txn.Schedule:
    module = types.ModuleType("candidate")
    exec(compile(code, "<candidate>", "exec"), module.__dict__)  # noqa: S102 - trusted code
    return module.schedule


def _linear(baseline: str, weights: list[float]) -> str:
    terms = " + ".join(f"{w:.4g} * {f}" for w, f in zip(weights, FEATURES, strict=True))
    return baseline.replace(BASELINE, f"-start + {terms}")


def _score(code: str, workloads: list[txn.Workload]) -> float:
    # a fresh module per call: a sampling program's RNG starts anew, as in evaluate
    return float(txn.score_schedule(_schedule(code), workloads).metrics["combined_score"])


def _fit(baseline: str, workloads: list[txn.Workload]) -> list[float]:
    """The weights CMA-ES finds best on ``workloads`` (seeded, from the baseline's)."""
    import cma

    start = [BASELINE_WEIGHT] + [0.0] * (len(FEATURES) - 1)
    es = cma.CMAEvolutionStrategy(start, 0.05,
                                  {"seed": 1, "verbose": -9, "maxfevals": FIT_PROGRAMS})
    best: tuple[float, list[float]] | None = None
    while not es.stop():
        asked = es.ask()
        losses = [-_score(_linear(baseline, list(x)), workloads) for x in asked]
        es.tell(asked, losses)
        for x, loss in zip(asked, losses, strict=True):
            if best is None or loss < best[0]:
                best = (loss, [float(f"{v:.4g}") for v in x])
    assert best is not None
    return best[1]


def fit_report(baseline: str, splits: list[list[txn.Workload]],
               test: list[txn.Workload]) -> None:
    """Print the ``--fit`` table (see the module docstring)."""
    train = txn.make_workloads("train")
    fitted_on = [w for split in splits[:FIT_SPLITS] for w in split]
    held_out = [w for split in splits[FIT_SPLITS:] for w in split]
    programs = {"earliest_start_contention": baseline}
    for name, workloads in ((f"fit on the {len(train)} train workloads", train),
                            (f"fit on pool splits {FIRST_SEED}-{FIRST_SEED + FIT_SPLITS - 1}",
                             fitted_on)):
        weights = _fit(baseline, workloads)
        programs[f"{name}: w = {tuple(weights)}"] = _linear(baseline, weights)
    print(f"priority = -start + w . ({', '.join(FEATURES)}); combined_score, higher is "
          f"better; the pool's splits {FIRST_SEED + FIT_SPLITS}-{FIRST_SEED + len(splits) - 1} "
          "are held out of both fits")
    print(f"| program | train ({len(train)}) | pool {FIRST_SEED}-{FIRST_SEED + FIT_SPLITS - 1} "
          f"({len(fitted_on)}) | held out ({len(held_out)}) | test ({len(test)}) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, code in programs.items():
        cells = [_score(code, ws) for ws in (train, fitted_on, held_out, test)]
        print(f"| {name} | " + " | ".join(f"{c:.3f}" for c in cells) + " |", flush=True)


def main(argv: list[str] | None = None) -> int:
    """Print each program's score on every split of the pool, their mean, and its test score."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--splits", type=int, default=5, help="splits of 30 workloads")
    parser.add_argument("dbs", nargs="*", type=Path, help="bench/search.py databases")
    parser.add_argument("--fit", action="store_true",
                        help="fit linear priorities on train and on the pool instead")
    args = parser.parse_args(argv)
    if args.fit and args.splits <= FIT_SPLITS:
        parser.error(f"--fit needs more than {FIT_SPLITS} splits (some are held out)")
    warnings.filterwarnings("ignore", category=RuntimeWarning)  # evolved x / 0 -> inf
    splits = [[txn.make_workload(FIRST_SEED + k, family, i)
               for family in txn.FAMILIES for i in range(10)] for k in range(args.splits)]
    test = txn.make_workloads("test")
    programs: dict[str, str] = {p.stem: p.read_text()
                                for p in sorted((PROBLEM / "baselines").glob("*.py"))}
    escp = programs["earliest_start_contention"]
    assert BASELINE in escp, "the baseline changed; update WEIGHTS"
    if args.fit:
        fit_report(escp, splits, test)
        return 0
    for weight in WEIGHTS:
        if weight != BASELINE_WEIGHT:
            programs[f"earliest_start_contention, {weight}"] = escp.replace(
                BASELINE, f"-start + {weight} * contention")
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
        scores = [_score(code, ws) for ws in splits]
        on_test = _score(code, test)
        print(f"| {name} | " + " | ".join(f"{s:.3f}" for s in scores)
              + f" | **{sum(scores) / len(scores):.3f}** | {on_test:.3f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
