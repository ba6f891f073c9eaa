"""Evaluator for online bin packing with an evolved priority function.

Items arrive one at a time and must be placed at once. For each item the
program's ``priority(item, bins)`` is called with the remaining capacities of
the open bins the item fits in (in the order they were opened), followed by one
fresh, empty bin; the item goes to the highest-scoring bin (ties go to the
earliest-opened bin; choosing the last entry opens a new bin).

The score of an instance is its excess over the L1 lower bound,
``100 * (bins_used - L1) / L1`` with ``L1 = ceil(sum(sizes) / capacity)``;
``combined_score`` is minus the mean excess over the split's instances, so
higher is better and 0 is optimal. Every packing is re-checked from scratch
(each item placed exactly once, no bin over capacity) before it is scored.
"""

import importlib.util
import math
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from evoforge.evaluation import EvaluationResult

HERE = Path(__file__).resolve().parent

# Decimals the priority scores are rounded to before argmax, so that float noise
# cannot decide between two bins the program scores equally.
SCORE_DECIMALS = 6

# Instance families: (items per instance, capacity).
OR_ITEMS, OR_CAPACITY, OR_MIN_SIZE, OR_MAX_SIZE = 500, 150, 20, 100
WEIBULL_ITEMS, WEIBULL_CAPACITY = 5000, 100
WEIBULL_SHAPE, WEIBULL_SCALE, WEIBULL_MAX_SIZE = 3.0, 45.0, 100

# Splits: name -> (seed of the split, OR instances, Weibull instances).
SPLITS: dict[str, tuple[int, int, int]] = {
    "train": (20231214, 4, 2),
    "test": (90210, 20, 5),
}
_FAMILY_CODE = {"or": 1, "weibull": 2}

Priority = Callable[[float, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Instance:
    """One bin packing instance: integer item sizes in arrival order, and the capacity."""

    name: str
    family: str
    sizes: np.ndarray
    capacity: int

    @property
    def lower_bound(self) -> int:
        """The L1 bound: ceil(total size / capacity)."""
        return -(-int(self.sizes.sum()) // self.capacity)


class PackingError(ValueError):
    """A packing that is not a valid solution of its instance."""


# ---------------------------------------------------------------- instances


def _rng(split_seed: int, family: str, index: int) -> np.random.Generator:
    return np.random.default_rng([split_seed, _FAMILY_CODE[family], index])


def or_instance(split_seed: int, index: int) -> Instance:
    """OR-Library style: 500 integer sizes uniform in [20, 100], capacity 150."""
    rng = _rng(split_seed, "or", index)
    sizes = rng.integers(OR_MIN_SIZE, OR_MAX_SIZE + 1, size=OR_ITEMS).astype(np.int64)
    return Instance(f"or_{split_seed}_{index}", "or", sizes, OR_CAPACITY)


def weibull_instance(split_seed: int, index: int) -> Instance:
    """Weibull: 5,000 sizes from Weibull(shape 3, scale 45), rounded, in [1, 100]; capacity 100."""
    rng = _rng(split_seed, "weibull", index)
    raw = WEIBULL_SCALE * rng.weibull(WEIBULL_SHAPE, size=WEIBULL_ITEMS)
    sizes = np.clip(np.rint(raw), 1, WEIBULL_MAX_SIZE).astype(np.int64)
    return Instance(f"weibull_{split_seed}_{index}", "weibull", sizes, WEIBULL_CAPACITY)


def make_instances(split: str) -> list[Instance]:
    """The instances of ``split`` ("train" or "test"), always the same for a split."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {sorted(SPLITS)}")
    seed, n_or, n_weibull = SPLITS[split]
    return [or_instance(seed, i) for i in range(n_or)] + [
        weibull_instance(seed, i) for i in range(n_weibull)
    ]


# ---------------------------------------------------------------- packing


def pack(instance: Instance, priority: Priority) -> list[list[int]]:
    """Pack the items of ``instance`` online with ``priority``.

    Returns:
        The packing: one list of item indices per bin, bins in opening order.

    Raises:
        ValueError: if ``priority`` raises, or returns the wrong shape or NaN.
    """
    sizes = instance.sizes
    capacity = float(instance.capacity)
    n = len(sizes)
    caps = np.empty(n, dtype=np.float64)  # remaining capacity of each open bin
    assignment = np.empty(n, dtype=np.int64)
    n_open = 0
    for i in range(n):
        item = float(sizes[i])
        fits = np.flatnonzero(caps[:n_open] >= item)
        k = len(fits)
        bins = np.empty(k + 1, dtype=np.float64)
        bins[:k] = caps[fits]
        bins[k] = capacity
        try:
            raw = priority(item, bins)
            scores = np.asarray(raw, dtype=np.float64)
        except Exception as exc:
            raise ValueError(
                f"priority raised {type(exc).__name__}: {exc} "
                f"(item {i} of {instance.name}, size {item:g}, {k + 1} bins)"
            ) from exc
        if scores.shape != (k + 1,):
            raise ValueError(
                f"priority returned shape {scores.shape} for {k + 1} bins "
                f"(item {i} of {instance.name}); return one score per bin"
            )
        if np.isnan(scores).any():
            raise ValueError(
                f"priority returned NaN for item {i} of {instance.name} "
                f"(size {item:g}, {k + 1} bins)"
            )
        choice = int(np.argmax(np.round(scores, SCORE_DECIMALS)))
        if choice == k:
            target = n_open
            caps[target] = capacity
            n_open += 1
        else:
            target = int(fits[choice])
        caps[target] -= item
        assignment[i] = target
    packing: list[list[int]] = [[] for _ in range(n_open)]
    for i, b in enumerate(assignment.tolist()):
        packing[b].append(i)
    return packing


def verify_packing(
    sizes: Sequence[int] | np.ndarray, capacity: int, packing: Sequence[Sequence[int]]
) -> int:
    """Check that ``packing`` is a valid solution; return the number of bins it uses.

    Args:
        sizes: the item sizes (integers), indexed by item.
        capacity: the capacity of every bin.
        packing: one sequence of item indices per bin.

    Raises:
        PackingError: naming the first problem found (item out of range, item
            placed twice, item never placed, empty bin, or bin over capacity).
    """
    sizes_list = [int(s) for s in sizes]
    n = len(sizes_list)
    seen = [-1] * n
    for b, contents in enumerate(packing):
        if len(contents) == 0:
            raise PackingError(f"bin {b} is empty")
        load = 0
        for raw_item in contents:
            try:
                item = int(raw_item)
            except (TypeError, ValueError):
                item = -1
            if item != raw_item or not 0 <= item < n:
                raise PackingError(f"bin {b} holds item {raw_item!r}, not an index in [0, {n})")
            if seen[item] >= 0:
                raise PackingError(f"item {item} is placed twice (bins {seen[item]} and {b})")
            seen[item] = b
            load += sizes_list[item]
        if load > capacity:
            raise PackingError(f"bin {b} is over capacity: load {load} > capacity {capacity}")
    missing = [i for i in range(n) if seen[i] < 0]
    if missing:
        shown = ", ".join(map(str, missing[:5])) + (", ..." if len(missing) > 5 else "")
        raise PackingError(f"{len(missing)} item(s) never placed: {shown}")
    return len(packing)


# ---------------------------------------------------------------- scoring


def load_priority(program_path: str | Path) -> Priority:
    """Import the program at ``program_path`` and return its ``priority`` function."""
    path = Path(program_path)
    spec = importlib.util.spec_from_file_location(f"_bp_program_{uuid.uuid4().hex}", path)
    if spec is None or spec.loader is None:
        raise ValueError(f"{path}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    priority = getattr(module, "priority", None)
    if not callable(priority):
        raise ValueError(f"{path}: defines no function priority(item, bins)")
    return priority


def excess_pct(instance: Instance, bins_used: int) -> float:
    """Percent of bins used above the L1 lower bound."""
    bound = instance.lower_bound
    return 100.0 * (bins_used - bound) / bound


def score_priority(priority: Priority, split: str,
                   instance_scores: list[float] | None = None) -> dict[str, float]:
    """Pack every instance of ``split`` with ``priority`` and return the metrics.

    ``instance_scores``, if given, receives minus each instance's excess, in order.
    """
    instances = make_instances(split)
    per_family: dict[str, list[float]] = {family: [] for family in _FAMILY_CODE}
    excesses: list[float] = []
    bins_total = 0
    bound_total = 0
    for instance in instances:
        packing = pack(instance, priority)
        used = verify_packing(instance.sizes, instance.capacity, packing)
        excess = excess_pct(instance, used)
        excesses.append(excess)
        per_family[instance.family].append(excess)
        bins_total += used
        bound_total += instance.lower_bound
    mean_excess = float(np.mean(excesses))
    if not math.isfinite(mean_excess):  # pragma: no cover - bounds are positive
        raise ValueError("excess is not finite")
    metrics: dict[str, float] = {
        "combined_score": round(-mean_excess, 6),
        "excess_pct": round(mean_excess, 6),
        "bins_used": bins_total,
        "l1_bound": bound_total,
        "num_instances": len(instances),
    }
    for family, values in per_family.items():
        if values:
            metrics[f"{family}_excess_pct"] = round(float(np.mean(values)), 6)
    if instance_scores is not None:
        instance_scores.extend(round(-e, 6) for e in excesses)
    return metrics


def evaluate(program_path: str) -> EvaluationResult:
    """Score the program on the training split (used during evolution)."""
    scores: list[float] = []
    metrics = score_priority(load_priority(program_path), "train", scores)
    return EvaluationResult(metrics, {"instance_scores": scores})


def evaluate_test(program_path: str) -> dict[str, float]:
    """Score the program on the held-out test split."""
    return score_priority(load_priority(program_path), "test")
