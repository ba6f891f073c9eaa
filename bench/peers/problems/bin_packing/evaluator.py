"""bin_packing (evoforge/problems/bin_packing) in OpenEvolve's format, for the peer benchmarks.

Numpy only, so every framework's own interpreter runs it: the same train instances and
score as the built-in evaluator (the packing loop is the built-in ``harness.py``, loaded
from the repository), but the candidate is imported into the evaluation process, as
OpenEvolve's evaluators do. The held-out test split is scored afterwards by evoforge's
built-in evaluator, the same for every framework.
"""

import importlib.util
from pathlib import Path

import numpy as np

_HARNESS = Path(__file__).resolve().parents[4] / "evoforge/problems/bin_packing/harness.py"
OR_ITEMS, OR_CAPACITY, OR_MIN_SIZE, OR_MAX_SIZE = 500, 150, 20, 100
WEIBULL_ITEMS, WEIBULL_CAPACITY = 5000, 100
WEIBULL_SHAPE, WEIBULL_SCALE, WEIBULL_MAX_SIZE = 3.0, 45.0, 100
TRAIN_SEED, TRAIN_OR, TRAIN_WEIBULL = 20231214, 4, 2


def _load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def train_instances():
    """(sizes, capacity) of the train split, as evoforge's evaluator makes them."""
    out = []
    for i in range(TRAIN_OR):
        rng = np.random.default_rng([TRAIN_SEED, 1, i])
        sizes = rng.integers(OR_MIN_SIZE, OR_MAX_SIZE + 1, size=OR_ITEMS).astype(np.int64)
        out.append((sizes, OR_CAPACITY))
    for i in range(TRAIN_WEIBULL):
        rng = np.random.default_rng([TRAIN_SEED, 2, i])
        raw = WEIBULL_SCALE * rng.weibull(WEIBULL_SHAPE, size=WEIBULL_ITEMS)
        sizes = np.clip(np.rint(raw), 1, WEIBULL_MAX_SIZE).astype(np.int64)
        out.append((sizes, WEIBULL_CAPACITY))
    return out


def evaluate(program_path):
    """Minus the mean percent of bins above the L1 bound over the train split."""
    harness = _load(_HARNESS, "bin_packing_harness")
    program = _load(program_path, "candidate")
    excesses = []
    for sizes, capacity in train_instances():
        assignment = harness.assign(program, sizes, capacity)
        loads = np.bincount(assignment, weights=sizes)
        if len(assignment) != len(sizes) or loads.max() > capacity or (loads == 0).any():
            raise ValueError("invalid packing")
        bound = -(-int(sizes.sum()) // capacity)
        excesses.append(100.0 * (len(loads) - bound) / bound)
    mean = float(np.mean(excesses))
    return {"combined_score": round(-mean, 6), "excess_pct": round(mean, 6)}
