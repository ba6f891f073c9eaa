"""Evaluator for ordering a batch of conflicting transactions to minimise makespan.

Each transaction has an integer duration, a set of keys it reads and a set of
keys it writes (a key both read and written counts as written). Two
transactions conflict when one writes a key the other reads or writes.

The program's ``schedule(durations, reads, writes)`` returns an order: a
permutation of the transaction ids. The simulator dispatches the transactions
in that order, each at the earliest time at which every *earlier-ordered*
transaction it conflicts with has finished; transactions that do not conflict
run in parallel, without limit. So the order fixes, for every conflicting pair,
which one goes first (the schedule is conflict-serializable, equivalent to the
serial order given); the makespan is the finish time of the last transaction.

The score of a workload is its excess over a lower bound,
``100 * (makespan - LB) / LB``, where ``LB`` is the largest, over keys, of the
total duration of the key's writers plus the longest transaction that only
reads it (writers of a key run one at a time, and no reader overlaps a
writer), or the longest transaction if that is larger. ``combined_score`` is
minus the mean excess over the split's workloads: higher is better, 0 would be
optimal. Every order is checked to be a permutation before it is simulated.
"""

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from evoforge.problem import kit

# Workload families: name -> (write probability per key access, Zipf exponent of key popularity).
FAMILIES: dict[str, tuple[float, float]] = {
    "read_heavy": (0.2, 1.1),
    "balanced": (0.5, 0.9),
    "write_heavy": (0.8, 0.7),
}
NUM_TXNS = 100
NUM_KEYS = 200
MIN_KEYS, MAX_KEYS = 2, 8  # keys accessed per transaction (distinct)
MAX_EXTRA = 9  # duration = keys accessed + uniform integer extra work in [0, MAX_EXTRA]

# Splits: name -> (seed of the split, workloads per family).
SPLITS: dict[str, tuple[int, int]] = {
    "train": (20250611, 3),
    "test": (31415926, 10),
}
_FAMILY_CODE = {name: k + 1 for k, name in enumerate(FAMILIES)}

Schedule = Callable[[list[int], list[list[int]], list[list[int]]], Any]


@dataclass(frozen=True)
class Workload:
    """A batch of transactions: durations and read-only / written key sets (sorted)."""

    name: str
    family: str
    durations: tuple[int, ...]
    reads: tuple[tuple[int, ...], ...]
    writes: tuple[tuple[int, ...], ...]
    num_keys: int

    def __len__(self) -> int:
        return len(self.durations)

    @property
    def lower_bound(self) -> int:
        """max(longest transaction, max over keys of writers' total + longest pure reader)."""
        writers = [0] * self.num_keys
        readers = [0] * self.num_keys
        for d, rs, ws in zip(self.durations, self.reads, self.writes, strict=True):
            for k in ws:
                writers[k] += d
            for k in rs:
                readers[k] = max(readers[k], d)
        per_key = max(w + r for w, r in zip(writers, readers, strict=True) if w > 0)
        return max(per_key, max(self.durations))


class ScheduleError(ValueError):
    """An order that is not a permutation of the transactions."""


# ---------------------------------------------------------------- workloads


def make_workload(split_seed: int, family: str, index: int) -> Workload:
    """One workload of ``family``: NUM_TXNS transactions over NUM_KEYS keys, Zipf popularity.

    Each transaction accesses 2 to 8 distinct keys drawn without replacement with
    probability proportional to ``1 / rank ** exponent`` (Gumbel top-k), writes
    each with the family's write probability, and lasts one time unit per key
    plus an integer in [0, 9] of other work.
    """
    write_prob, exponent = FAMILIES[family]
    rng = np.random.default_rng([split_seed, _FAMILY_CODE[family], index])
    log_popularity = -exponent * np.log(np.arange(1, NUM_KEYS + 1))
    key_of_rank = rng.permutation(NUM_KEYS)  # hot keys get random ids
    counts = rng.integers(MIN_KEYS, MAX_KEYS + 1, size=NUM_TXNS)
    ranked = np.argsort(-(log_popularity + rng.gumbel(size=(NUM_TXNS, NUM_KEYS))), axis=1)
    written = rng.random((NUM_TXNS, MAX_KEYS)) < write_prob
    extra = rng.integers(0, MAX_EXTRA + 1, size=NUM_TXNS)
    durations: list[int] = []
    reads: list[tuple[int, ...]] = []
    writes: list[tuple[int, ...]] = []
    for t in range(NUM_TXNS):
        count = int(counts[t])
        keys = key_of_rank[ranked[t, :count]]
        mask = written[t, :count]
        reads.append(tuple(sorted(int(k) for k in keys[~mask])))
        writes.append(tuple(sorted(int(k) for k in keys[mask])))
        durations.append(count + int(extra[t]))
    name = f"{family}_{split_seed}_{index}"
    return Workload(name, family, tuple(durations), tuple(reads), tuple(writes), NUM_KEYS)


def make_workloads(split: str) -> list[Workload]:
    """The workloads of ``split`` ("train" or "test"), always the same for a split."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {sorted(SPLITS)}")
    seed, per_family = SPLITS[split]
    return [make_workload(seed, family, i) for family in FAMILIES for i in range(per_family)]


# ---------------------------------------------------------------- checking


def verify_order(num_txns: int, order: Any) -> list[int]:
    """Check that ``order`` is a permutation of ``range(num_txns)``; return it as ints.

    Raises:
        ScheduleError: naming the first problem found (not a sequence, an entry
            that is not an integer id, an id out of range, an id twice, ids missing).
    """
    if isinstance(order, np.ndarray):
        if order.ndim != 1:
            raise ScheduleError(f"order must be one-dimensional, got shape {order.shape}")
        order = order.tolist()
    if isinstance(order, str | bytes) or not isinstance(order, Sequence):
        raise ScheduleError(
            f"order must be a list of transaction ids, got {type(order).__name__}"
        )
    position = [-1] * num_txns
    ids: list[int] = []
    for pos, raw in enumerate(order):
        if isinstance(raw, bool) or not isinstance(raw, int | np.integer):
            raise ScheduleError(f"position {pos} holds {raw!r}, not an integer transaction id")
        tid = int(raw)
        if not 0 <= tid < num_txns:
            raise ScheduleError(
                f"position {pos} holds {tid}, not a transaction id in [0, {num_txns})"
            )
        if position[tid] >= 0:
            raise ScheduleError(
                f"transaction {tid} is scheduled twice (positions {position[tid]} and {pos})"
            )
        position[tid] = pos
        ids.append(tid)
    missing = [t for t in range(num_txns) if position[t] < 0]
    if missing:
        shown = ", ".join(map(str, missing[:5])) + (", ..." if len(missing) > 5 else "")
        raise ScheduleError(f"{len(missing)} transaction(s) never scheduled: {shown}")
    return ids


def simulate(workload: Workload, order: Sequence[int]) -> tuple[int, list[int]]:
    """Dispatch ``order`` (a verified permutation); return (makespan, start time per txn).

    A transaction starts when every earlier-ordered transaction it conflicts with
    has finished: after the last writer of each key it reads, and after the last
    writer and last reader of each key it writes.
    """
    write_end = [0] * workload.num_keys
    read_end = [0] * workload.num_keys
    starts = [0] * len(workload)
    makespan = 0
    for tid in order:
        rs, ws = workload.reads[tid], workload.writes[tid]
        start = 0
        for k in rs:
            start = max(start, write_end[k])
        for k in ws:
            start = max(start, write_end[k], read_end[k])
        finish = start + workload.durations[tid]
        for k in rs:
            read_end[k] = max(read_end[k], finish)
        for k in ws:
            write_end[k] = finish
        starts[tid] = start
        makespan = max(makespan, finish)
    return makespan, starts


# ---------------------------------------------------------------- scoring


def load_schedule(program_path: str | Path) -> kit.Program:
    """Start the program at ``program_path`` in its own process (see evoforge.problem.kit).

    Calling the result calls its ``schedule`` there.
    """
    return kit.load_program(program_path, {"schedule": "schedule(durations, reads, writes)"})


def excess_pct(workload: Workload, makespan: int) -> float:
    """Percent by which ``makespan`` exceeds the workload's lower bound."""
    bound = workload.lower_bound
    return 100.0 * (makespan - bound) / bound


def order_workload(schedule: Schedule, workload: Workload) -> Any:
    """What ``schedule`` returns for ``workload`` (called with plain lists, as it is
    documented to get them)."""
    return schedule(list(workload.durations), [list(keys) for keys in workload.reads],
                    [list(keys) for keys in workload.writes])


def score_schedule(schedule: Schedule, workloads: Sequence[Workload]) -> kit.Scores:
    """Order every workload with ``schedule`` and return the metrics.

    The artifact ``instance_scores`` holds minus each workload's excess, in
    workload order (the direction of ``combined_score``).
    """
    per_family: dict[str, list[float]] = {w.family: [] for w in workloads}
    excesses: list[float] = []
    makespan_total = 0
    bound_total = 0
    for workload in workloads:
        try:
            order = order_workload(schedule, workload)
        except Exception as exc:
            raise ValueError(
                f"schedule raised {type(exc).__name__}: {exc} (workload {workload.name})"
            ) from exc
        try:
            ids = verify_order(len(workload), order)
        except ScheduleError as exc:
            raise ScheduleError(f"{exc} (workload {workload.name})") from None
        makespan, _ = simulate(workload, ids)
        excess = excess_pct(workload, makespan)
        excesses.append(excess)
        per_family[workload.family].append(excess)
        makespan_total += makespan
        bound_total += workload.lower_bound
    mean_excess = sum(excesses) / len(excesses)
    if not math.isfinite(mean_excess):  # pragma: no cover - bounds are positive
        raise ValueError("excess is not finite")
    metrics: dict[str, float] = {
        "combined_score": round(-mean_excess, 6),
        "excess_pct": round(mean_excess, 6),
        "makespan": makespan_total,
        "lower_bound": bound_total,
        "num_workloads": len(workloads),
    }
    for family, values in per_family.items():
        metrics[f"{family}_excess_pct"] = round(sum(values) / len(values), 6)
    return kit.Scores(metrics, {"instance_scores": [round(-e, 6) for e in excesses]})


def evaluate(program_path: str) -> kit.Scores:
    """Score the program on the training split (used during evolution)."""
    workloads = make_workloads("train")
    with load_schedule(program_path) as program:
        return score_schedule(program, workloads)


def evaluate_test(program_path: str) -> kit.Scores:
    """Score the program on the held-out test split."""
    workloads = make_workloads("test")
    with load_schedule(program_path) as program:
        return score_schedule(program, workloads)


# ---------------------------------------------------------------- functional hashing

PROBE_SEED = 1618
"""Seed of the probe's workloads (neither split's)."""


def probe_program(program: object) -> list[object]:
    """Functional hashing: the program orders one workload of each family (its own
    seed, :data:`PROBE_SEED`) with its ``schedule``, and the orders are hashed.

    Closed-loop: each ``priority`` call sees the state the program's own earlier
    choices made (running makespan, key release times). Fixed feature sets (the
    probe before this one: six calls of ``priority``) took programs that order the
    train split otherwise for duplicates: 7 of 120 functional duplicates sampled from
    two 2,000-evaluation runs (``bench/probe_check.py``). A few tens of milliseconds.
    """
    schedule = program.schedule  # type: ignore[attr-defined]
    return [list(order_workload(schedule, make_workload(PROBE_SEED, family, 0)))
            for family in FAMILIES]

