"""Evaluator for job-shop scheduling with an evolved dispatching rule.

Instances are Taillard's 15x15 job-shop instances, produced by our own
implementation of the generator in E. Taillard, "Benchmarks for basic scheduling
problems", EJOR 64 (1993) 278-285: ta01-ta10 from their published seeds, plus
further instances from the same generator with other seeds.

A fixed Giffler-Thompson builder constructs an active schedule. At each step it
finds the unscheduled operation that can complete first, takes the operations
waiting for that machine which could start before that completion time (the
conflict set), and asks the program's ``priority(...)`` for one score per
operation of the conflict set; the highest score (rounded to 6 decimals; ties go
to the lowest job index) is scheduled next, as early as possible.

Every schedule is re-checked from scratch (``verify_schedule``: every operation
exactly once on its machine with its duration, job order, no machine overlap)
and its makespan recomputed. The score of an instance is the gap of the makespan
to a lower bound computed here, ``100 * (makespan - LB) / LB``;
``combined_score`` is the mean gap over the split's instances (lower is better).
"""

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from evoforge.problem import kit

HERE = Path(__file__).resolve().parent

# the schedule builder, which runs in the candidate's process
harness = kit.load_module(HERE / "harness.py", "_job_shop_harness")
SCORE_DECIMALS = harness.SCORE_DECIMALS

# ---------------------------------------------------------------- Taillard's generator

# Parameters of the Lehmer / Park-Miller generator of Taillard (1993), in
# Schrage's overflow-free form: seed <- 16807 * seed mod (2^31 - 1).
_A, _B, _C, _M = 16807, 127773, 2836, 2**31 - 1

# ta01-ta10 (15 jobs x 15 machines): (time seed, machine seed) as published by
# Taillard (1993), and the optimal makespans (all ten are proven optimal; the
# values are those listed on Taillard's benchmark page and in the JSPLIB /
# jsspInstancesAndResults collections).
TAILLARD_15x15: dict[str, tuple[int, int]] = {
    "ta01": (840612802, 398197754),
    "ta02": (1314640371, 386720536),
    "ta03": (1227221349, 316176388),
    "ta04": (342269428, 1806358582),
    "ta05": (1603221416, 1501949241),
    "ta06": (1357584978, 1734077082),
    "ta07": (44531661, 1374316395),
    "ta08": (302545136, 2092186050),
    "ta09": (1153780144, 1393392374),
    "ta10": (73896786, 1544979948),
}
OPTIMAL_MAKESPAN: dict[str, int] = {
    "ta01": 1231, "ta02": 1244, "ta03": 1218, "ta04": 1175, "ta05": 1224,
    "ta06": 1238, "ta07": 1227, "ta08": 1217, "ta09": 1274, "ta10": 1241,
}

N_JOBS, N_MACHINES = 15, 15

# Splits: name -> (Taillard instances, seed of the extra instances, number of extras).
SPLITS: dict[str, tuple[tuple[str, ...], int, int]] = {
    "train": (("ta01", "ta02", "ta03", "ta04", "ta05"), 20240611, 10),
    "test": (("ta06", "ta07", "ta08", "ta09", "ta10"), 77031, 25),
}

# The features passed to priority(), in order (each an array over the conflict set).
FEATURES = harness.FEATURES

Priority = Callable[..., np.ndarray]


class TaillardRandom:
    """Taillard's uniform generator: ``unif(low, high)`` as in the 1993 paper."""

    def __init__(self, seed: int) -> None:
        if not 0 < seed < _M:
            raise ValueError(f"seed must be in [1, {_M - 1}], got {seed}")
        self.seed = seed

    def unif(self, low: int, high: int) -> int:
        """Advance the seed and return an integer uniform in [low, high]."""
        k = self.seed // _B
        self.seed = _A * (self.seed % _B) - k * _C
        if self.seed < 0:
            self.seed += _M
        value_0_1 = self.seed / _M
        return low + int(value_0_1 * (high - low + 1))


@dataclass(frozen=True)
class Instance:
    """A job-shop instance: ``times[j][k]`` and ``machines[j][k]`` of the k-th operation of job j.

    Machines are numbered from 0.
    """

    name: str
    times: np.ndarray  # (jobs, machines) int64
    machines: np.ndarray  # (jobs, machines) int64, each row a permutation of range(m)
    best_known: int | None = None

    @property
    def n_jobs(self) -> int:
        return int(self.times.shape[0])

    @property
    def n_machines(self) -> int:
        return int(self.times.shape[1])

    @property
    def lower_bound(self) -> int:
        """max(job bound, machine bound) -- see :func:`lower_bound`."""
        return lower_bound(self.times, self.machines)


def taillard_instance(name: str, time_seed: int, machine_seed: int,
                      n_jobs: int = N_JOBS, n_machines: int = N_MACHINES) -> Instance:
    """Taillard's job-shop generator.

    Processing times: ``d[i][j] = unif(time_seed, 1, 99)`` for jobs i, operations
    j (row by row). Machine orders: every row starts as 1..m, then for each
    position j, swap entry j with entry ``unif(machine_seed, j, m)``.
    """
    time_rng = TaillardRandom(time_seed)
    times = [[time_rng.unif(1, 99) for _ in range(n_machines)] for _ in range(n_jobs)]
    machine_rng = TaillardRandom(machine_seed)
    machines = []
    for _ in range(n_jobs):
        row = list(range(n_machines))
        for j in range(n_machines):  # 0-based form of swap(M[j], M[unif(j, m)])
            k = machine_rng.unif(j, n_machines - 1)
            row[j], row[k] = row[k], row[j]
        machines.append(row)
    return Instance(name, np.array(times, dtype=np.int64), np.array(machines, dtype=np.int64),
                    OPTIMAL_MAKESPAN.get(name))


def lower_bound(times: np.ndarray, machines: np.ndarray) -> int:
    """A lower bound on the makespan: the larger of the job and machine bounds.

    Job bound: the largest total processing time of a job. Machine bound: for
    each machine, its total load plus the smallest head (work a job must do
    before reaching that machine) plus the smallest tail (work after it).
    """
    times = np.asarray(times, dtype=np.int64)
    machines = np.asarray(machines, dtype=np.int64)
    job_bound = int(times.sum(axis=1).max())
    cumsum = np.cumsum(times, axis=1)
    heads = cumsum - times
    tails = times.sum(axis=1, keepdims=True) - cumsum
    machine_bound = 0
    for mach in range(times.shape[1]):
        mask = machines == mach
        bound = int(times[mask].sum() + heads[mask].min() + tails[mask].min())
        machine_bound = max(machine_bound, bound)
    return max(job_bound, machine_bound)


def extra_seeds(split_seed: int, count: int) -> list[tuple[int, int]]:
    """(time seed, machine seed) pairs for the extra instances of a split."""
    rng = random.Random(split_seed)
    return [(rng.randint(1, _M - 1), rng.randint(1, _M - 1)) for _ in range(count)]


def make_instances(split: str) -> list[Instance]:
    """The instances of ``split`` ("train" or "test"), always the same for a split."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {sorted(SPLITS)}")
    names, seed, count = SPLITS[split]
    instances = [taillard_instance(name, *TAILLARD_15x15[name]) for name in names]
    for i, (time_seed, machine_seed) in enumerate(extra_seeds(seed, count)):
        instances.append(taillard_instance(f"gen_{split}_{i}", time_seed, machine_seed))
    return instances


# ---------------------------------------------------------------- schedule builder

# One scheduled operation: (job, operation index within the job, machine, start, end).
Entry = tuple[int, int, int, int, int]


def build_schedule(instance: Instance, priority: Priority) -> list[Entry]:
    """Giffler-Thompson active schedule generation driven by the function ``priority``, here.

    Raises:
        ValueError: if ``priority`` raises, or returns the wrong shape or NaN.
    """
    rows = harness.build(harness.local(priority), instance.times, instance.machines,
                         instance.name)
    return [tuple(row) for row in rows.tolist()]


# ---------------------------------------------------------------- verifier


class ScheduleError(ValueError):
    """A schedule that is not a valid solution of its instance."""


def _as_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, np.integer)):
        return int(value)
    return None


def verify_schedule(times: Sequence[Sequence[int]] | np.ndarray,
                    machines: Sequence[Sequence[int]] | np.ndarray,
                    schedule: Sequence[Sequence[int]]) -> int:
    """Check that ``schedule`` solves the instance; return its makespan, recomputed.

    Args:
        times: ``times[j][k]``, processing time of the k-th operation of job j.
        machines: ``machines[j][k]``, its machine (0-based).
        schedule: entries ``(job, op, machine, start, end)``, in any order.

    Raises:
        ScheduleError: naming the first problem found: a malformed entry, an
            unknown or duplicated operation, a wrong machine or duration, a
            negative start, a missing operation, a job's operations out of
            order or overlapping, or two operations overlapping on a machine.
    """
    times_l = [[int(t) for t in row] for row in np.asarray(times).tolist()]
    machines_l = [[int(x) for x in row] for row in np.asarray(machines).tolist()]
    n = len(times_l)
    m = len(times_l[0]) if n else 0
    placed: dict[tuple[int, int], tuple[int, int]] = {}
    by_machine: list[list[tuple[int, int, int, int]]] = [[] for _ in range(m)]
    for index, entry in enumerate(schedule):
        try:
            fields = list(entry)
        except TypeError:
            raise ScheduleError(
                f"entry {index} is {entry!r}, not (job, op, machine, start, end)") from None
        values = [_as_int(v) for v in fields]
        if len(fields) != 5 or any(v is None for v in values):
            raise ScheduleError(f"entry {index} is {tuple(fields)!r}, not five integers "
                                "(job, op, machine, start, end)")
        job, op, mach, start, end = (int(v) for v in values)  # type: ignore[arg-type]
        if not (0 <= job < n and 0 <= op < m):
            raise ScheduleError(f"entry {index}: operation ({job}, {op}) does not exist")
        if (job, op) in placed:
            raise ScheduleError(f"operation ({job}, {op}) is scheduled twice")
        if mach != machines_l[job][op]:
            raise ScheduleError(f"operation ({job}, {op}) is on machine {mach}, "
                                f"needs machine {machines_l[job][op]}")
        if start < 0:
            raise ScheduleError(f"operation ({job}, {op}) starts at {start} < 0")
        if end - start != times_l[job][op]:
            raise ScheduleError(
                f"operation ({job}, {op}) lasts {end - start}, its processing time is "
                f"{times_l[job][op]}")
        placed[(job, op)] = (start, end)
        by_machine[mach].append((start, end, job, op))
    missing = [(j, k) for j in range(n) for k in range(m) if (j, k) not in placed]
    if missing:
        shown = ", ".join(map(str, missing[:5])) + (", ..." if len(missing) > 5 else "")
        raise ScheduleError(f"{len(missing)} operation(s) never scheduled: {shown}")
    for j in range(n):
        for k in range(1, m):
            if placed[(j, k)][0] < placed[(j, k - 1)][1]:
                raise ScheduleError(
                    f"job {j}: operation {k} starts at {placed[(j, k)][0]} before operation "
                    f"{k - 1} ends at {placed[(j, k - 1)][1]}")
    for mach, ops in enumerate(by_machine):
        ops.sort()
        for (s0, e0, j0, k0), (s1, _e1, j1, k1) in zip(ops, ops[1:], strict=False):
            if s1 < e0:
                raise ScheduleError(
                    f"machine {mach}: operations ({j0}, {k0}) [{s0}, {e0}) and ({j1}, {k1}) "
                    f"starting at {s1} overlap")
    return max((end for _start, end in placed.values()), default=0)


# ---------------------------------------------------------------- scoring


def load_priority(program_path: str | Path) -> kit.Program:
    """Start the program at ``program_path`` in its own process (see evoforge.problem.kit).

    Calling the result calls its ``priority`` there, with the features as keywords.
    """
    return kit.load_program(program_path, {"priority": f"priority({', '.join(FEATURES)})"},
                            harness=HERE / "harness.py")


def gap_pct(makespan: int, bound: int) -> float:
    """Percent of the makespan above the lower bound."""
    return 100.0 * (makespan - bound) / bound


def score_priority(priority: Priority, split: str) -> kit.Scores:
    """Schedule every instance of ``split`` with the function ``priority``, here."""
    return score_schedules(split, lambda instance: build_schedule(instance, priority))


def score_program(program: kit.Program, split: str) -> kit.Scores:
    """Build the schedules in the program's process; check and score them here."""
    try:
        program.run("check_signature")
    except kit.CandidateError as exc:
        raise ValueError(f"{program.label}: {exc}") from None

    def builder(instance: Instance) -> Sequence[Sequence[int]]:
        try:
            rows = program.run("build", instance.times, instance.machines, instance.name)
        except kit.CandidateError as exc:
            raise ValueError(str(exc)) from None
        if not isinstance(rows, np.ndarray):
            raise ScheduleError("the schedule builder returned no array")
        return [tuple(row) for row in rows.tolist()]
    return score_schedules(split, builder)


def score_schedules(split: str,
                    builder: Callable[[Instance], Sequence[Sequence[int]]]) -> kit.Scores:
    """Verify and score the schedule ``builder`` gives for every instance of ``split``.

    The artifact ``instance_scores`` holds each instance's gap to its lower bound,
    in instance order (lower is better, like ``combined_score``).
    """
    instances = make_instances(split)
    gaps: list[float] = []
    known_gaps: list[float] = []
    makespans = 0
    for instance in instances:
        schedule = builder(instance)
        makespan = verify_schedule(instance.times, instance.machines, schedule)
        gaps.append(gap_pct(makespan, instance.lower_bound))
        makespans += makespan
        if instance.best_known is not None:
            if makespan < instance.best_known:  # pragma: no cover - would be a verifier bug
                raise ScheduleError(
                    f"{instance.name}: makespan {makespan} beats the proven optimum "
                    f"{instance.best_known}")
            known_gaps.append(gap_pct(makespan, instance.best_known))
    mean_gap = float(np.mean(gaps))
    if not math.isfinite(mean_gap):  # pragma: no cover - bounds are positive
        raise ValueError("gap is not finite")
    metrics: dict[str, float] = {
        "combined_score": round(mean_gap, 6),
        "gap_to_lb_pct": round(mean_gap, 6),
        "makespan_total": makespans,
        "num_instances": len(instances),
    }
    if known_gaps:
        metrics["taillard_gap_to_optimum_pct"] = round(float(np.mean(known_gaps)), 6)
    return kit.Scores(metrics, {"instance_scores": [round(g, 6) for g in gaps]})


def evaluate(program_path: str) -> kit.Scores:
    """Score the program on the training split (used during evolution)."""
    with load_priority(program_path) as program:
        return score_program(program, "train")


def evaluate_test(program_path: str) -> kit.Scores:
    """Score the program on the held-out test split."""
    with load_priority(program_path) as program:
        return score_program(program, "test")


# ---------------------------------------------------------------- functional hashing

PROBE_FUNCTION = "priority"
"""Functional hashing calls the evolved ``priority`` directly on :func:`probe_inputs`."""


def probe_inputs() -> list[tuple[np.ndarray, ...]]:
    """Functional hashing inputs: conflict sets like the builder's (2 to 9 operations
    of a 15 x 15 Taillard-like instance), with ties in every feature and last
    operations (``next_p = next_load = 0``), so rules that would schedule
    differently score differently. A few milliseconds."""
    rng = np.random.default_rng(2718)
    inputs = []
    for size in (2, 3, 4, 5, 6, 7, 8, 9, 3, 5, 8, 12):
        p = rng.integers(1, 100, size).astype(float)
        p[-1] = p[0]                                   # a tie on p
        ops_left = rng.integers(1, 16, size).astype(float)
        work_left = p + (ops_left - 1) * rng.integers(1, 100, size)
        est = rng.integers(0, 600, size).astype(float)
        est[1] = est[0]                                # a tie on est
        last = ops_left == 1
        next_p = np.where(last, 0.0, rng.integers(1, 100, size).astype(float))
        next_load = np.where(last, 0.0, rng.integers(0, 1200, size).astype(float))
        inputs.append((p, work_left, ops_left, est, next_p, next_load))
    return inputs
