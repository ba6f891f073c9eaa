"""Evaluator for personalised PageRank (PPR), a speed problem.

The program defines ``ppr(n, src, dst, personalization, alpha)``: the PPR
vector of a directed graph with ``n`` nodes and edges ``src[k] -> dst[k]``. It
is the unique solution of

    x = alpha * (P^T x + (sum of x over dangling nodes) * s) + (1 - alpha) * s

where ``P`` moves a walker from a node to one of its out-neighbours chosen
uniformly, ``s`` is the personalization vector (non-negative, sums to 1) and a
node without out-edges (dangling) sends its mass back to ``s``, like a restart.

Every output is checked first: it must be ``n`` finite numbers within L1
distance ``L1_TOLERANCE`` of the evaluator's own power iteration run to
convergence. Then the score is speed: for each instance class the program's
median CPU time (``evoforge.measure.measure``) is compared with that of the
reference implementation (``baselines/numpy_power.py``) measured in the same
evaluation on the same graphs; ``combined_score`` is the geometric mean over the
classes of ``reference_time / program_time`` (higher is better, 1.0 = as fast as
the reference).
"""

import importlib.util
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from evoforge.measure import measure

HERE = Path(__file__).resolve().parent
REFERENCE_PROGRAM = HERE / "baselines" / "numpy_power.py"

ALPHA = 0.85
L1_TOLERANCE = 1e-4
"""Largest L1 distance from the converged PPR vector an answer may have."""
TRUTH_TOL = 1e-13
"""The evaluator's own power iteration stops when an iteration moves x by less (L1)."""
TRUTH_MAX_ITER = 10_000

# Chung-Lu style directed power-law graphs.
GAMMA_IN, GAMMA_OUT = 2.2, 2.6  # exponents of the in- and out-degree distributions
DANGLING_FRACTION = 0.08  # nodes given no out-edges at all
TOPIC_SIZE = 10  # nodes carrying a "topic" personalization


@dataclass(frozen=True)
class InstanceClass:
    """Graphs of one size and one kind of personalization, timed together.

    ``calls`` graphs are generated; the first is the warm-up call (its answer is
    checked before anything is timed), the rest are timed and the median kept.
    """

    name: str
    n: int
    avg_degree: float
    kind: str  # "single": one source node; "topic": TOPIC_SIZE weighted nodes
    calls: int


SPLITS: dict[str, tuple[int, tuple[InstanceClass, ...]]] = {
    "train": (20240611, (
        InstanceClass("single_1k", 1000, 5.0, "single", 4),
        InstanceClass("topic_3k", 3000, 6.0, "topic", 4),
    )),
    "test": (77031, (
        InstanceClass("single_2k", 2000, 5.0, "single", 6),
        InstanceClass("topic_8k", 8000, 6.0, "topic", 4),
        InstanceClass("single_20k", 20000, 6.0, "single", 3),
    )),
}
_KIND_CODE = {"single": 1, "topic": 2}


@dataclass(frozen=True)
class Instance:
    """One PPR query: a graph as an edge list and a personalization vector."""

    name: str
    n: int
    src: np.ndarray
    dst: np.ndarray
    personalization: np.ndarray
    alpha: float = ALPHA

    def args(self) -> tuple:
        """Fresh copies of the arguments, so a program cannot alter the originals."""
        return (self.n, self.src.copy(), self.dst.copy(), self.personalization.copy(),
                self.alpha)


class PPRError(ValueError):
    """An answer that is not the PPR vector of its instance."""


# ---------------------------------------------------------------- instances


def power_law_graph(rng: np.random.Generator, n: int,
                    avg_degree: float) -> tuple[np.ndarray, np.ndarray]:
    """A directed Chung-Lu graph with power-law in- and out-degrees.

    ``n * avg_degree`` edges are drawn, each with its source chosen with
    probability proportional to an out-weight ``rank ** (-1 / (GAMMA_OUT - 1))``
    and its target proportional to an in-weight ``rank ** (-1 / (GAMMA_IN - 1))``
    (ranks randomly assigned, independently for in and out). A fraction
    ``DANGLING_FRACTION`` of the nodes gets out-weight 0, so it has no out-edge.
    Self-loops are dropped and parallel edges merged; the edges come in random
    order.
    """
    ranks = np.arange(1, n + 1, dtype=np.float64)
    w_in = (ranks ** (-1.0 / (GAMMA_IN - 1.0)))[rng.permutation(n)]
    w_out = (ranks ** (-1.0 / (GAMMA_OUT - 1.0)))[rng.permutation(n)]
    w_out[rng.random(n) < DANGLING_FRACTION] = 0.0
    m = int(round(n * avg_degree))
    src = rng.choice(n, size=m, p=w_out / w_out.sum())
    dst = rng.choice(n, size=m, p=w_in / w_in.sum())
    keep = src != dst
    keys = np.unique(src[keep] * n + dst[keep])
    keys = keys[rng.permutation(len(keys))]
    return (keys // n).astype(np.int64), (keys % n).astype(np.int64)


def make_instance(split: str, class_index: int, call: int) -> Instance:
    """Graph ``call`` of class ``class_index`` of ``split``; always the same."""
    seed, classes = SPLITS[split]
    cls = classes[class_index]
    rng = np.random.default_rng([seed, class_index, call, _KIND_CODE[cls.kind]])
    src, dst = power_law_graph(rng, cls.n, cls.avg_degree)
    has_out = np.flatnonzero(np.bincount(src, minlength=cls.n))
    s = np.zeros(cls.n)
    if cls.kind == "single":
        s[rng.choice(has_out)] = 1.0
    else:
        nodes = rng.choice(has_out, size=TOPIC_SIZE, replace=False)
        s[nodes] = rng.dirichlet(np.ones(TOPIC_SIZE))
        s /= s.sum()
    return Instance(f"{split}/{cls.name}/{call}", cls.n, src, dst, s)


def make_instances(split: str) -> list[list[Instance]]:
    """The instances of ``split``, one list per instance class."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {sorted(SPLITS)}")
    _, classes = SPLITS[split]
    return [[make_instance(split, c, k) for k in range(cls.calls)]
            for c, cls in enumerate(classes)]


def true_ppr(instance: Instance) -> np.ndarray:
    """PPR by power iteration until an iteration moves x by less than TRUTH_TOL (L1)."""
    n, src, dst, s, alpha = instance.args()
    out_deg = np.bincount(src, minlength=n)
    dangling = out_deg == 0
    weight = 1.0 / out_deg[src]
    x = s.copy()
    for _ in range(TRUTH_MAX_ITER):
        y = alpha * np.bincount(dst, weights=x[src] * weight, minlength=n)
        y += (alpha * x[dangling].sum() + (1.0 - alpha)) * s
        change = float(np.abs(y - x).sum())
        x = y
        if change < TRUTH_TOL:
            return x
    raise RuntimeError(f"{instance.name}: the reference power iteration did not converge")


# ---------------------------------------------------------------- checking


def verify_ppr(answer: object, truth: np.ndarray, tolerance: float = L1_TOLERANCE) -> float:
    """Check ``answer`` against the converged PPR vector ``truth``; return the L1 error.

    Raises:
        PPRError: naming the problem: not numbers, wrong shape, NaN or infinite
            entries, or L1 distance above ``tolerance``.
    """
    n = len(truth)
    try:
        x = np.asarray(answer, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise PPRError(f"answer is not a sequence of numbers ({exc})") from None
    if x.shape != (n,):
        raise PPRError(f"answer has shape {x.shape}; expected ({n},), one value per node")
    bad = ~np.isfinite(x)
    if bad.any():
        node = int(np.flatnonzero(bad)[0])
        raise PPRError(f"answer has {int(bad.sum())} non-finite value(s), first at node {node}"
                       f" ({x[node]})")
    error = float(np.abs(x - truth).sum())
    if not error <= tolerance:
        raise PPRError(f"answer is off by L1 distance {error:.3g} > tolerance {tolerance:g}")
    return error


# ---------------------------------------------------------------- scoring

PPR = Callable[..., object]


def load_ppr(program_path: str | Path) -> PPR:
    """Import the program at ``program_path`` and return its ``ppr`` function."""
    path = Path(program_path)
    spec = importlib.util.spec_from_file_location(f"_ppr_program_{uuid.uuid4().hex}", path)
    if spec is None or spec.loader is None:
        raise ValueError(f"{path}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    fn = getattr(module, "ppr", None)
    if not callable(fn):
        raise ValueError(f"{path}: defines no function ppr(n, src, dst, personalization, alpha)")
    return fn


def _call(fn: PPR, instance: Instance) -> object:
    try:
        return fn(*instance.args())
    except Exception as exc:
        raise ValueError(f"ppr raised {type(exc).__name__}: {exc} (on {instance.name})") from exc


def time_program(fn: PPR, instances: list[Instance], truths: list[np.ndarray],
                 ) -> tuple[float, float]:
    """Check ``fn`` on every instance and time it; (median CPU seconds, max L1 error).

    The first instance is the warm-up: its answer is checked before anything is
    timed. The others are timed one call each with ``evoforge.measure.measure``.
    """
    errors = [_checked(instances[0], truths[0], _call(fn, instances[0]))]
    queue = iter(instances[1:])
    answers: list[object] = []

    def timed_call() -> None:
        answers.append(_call(fn, next(queue)))

    result = measure(timed_call, warmup=0, repeats=len(instances) - 1)
    errors += [_checked(i, t, a) for i, t, a in zip(instances[1:], truths[1:], answers,
                                                     strict=True)]
    return result.median, max(errors)


def _checked(instance: Instance, truth: np.ndarray, answer: object) -> float:
    try:
        return verify_ppr(answer, truth)
    except PPRError as exc:
        raise PPRError(f"{instance.name}: {exc}") from None


_PROCESS_TIME = time.process_time


def score(program_path: str | Path, split: str) -> dict[str, float]:
    """Check and time the program against the reference on every class of ``split``."""
    _, classes = SPLITS[split]
    instance_sets = make_instances(split)
    # The answers to check against and the reference timings come first, before
    # the program is even imported, so that nothing it does can change them.
    truth_sets = [[true_ppr(i) for i in instances] for instances in instance_sets]
    reference = load_ppr(REFERENCE_PROGRAM)
    ref_times = [time_program(reference, instances, truths)[0]
                 for instances, truths in zip(instance_sets, truth_sets, strict=True)]
    candidate = load_ppr(program_path)
    metrics: dict[str, float] = {}
    log_speedups: list[float] = []
    max_error = 0.0
    for cls, instances, truths, ref_time in zip(classes, instance_sets, truth_sets, ref_times,
                                                strict=True):
        cand_time, error = time_program(candidate, instances, truths)
        if time.process_time is not _PROCESS_TIME:
            raise ValueError("the program replaced time.process_time")
        speedup = ref_time / max(cand_time, 1e-9)
        log_speedups.append(math.log(speedup))
        max_error = max(max_error, error)
        metrics[f"speedup_{cls.name}"] = round(speedup, 4)
        metrics[f"ms_{cls.name}"] = round(1000 * cand_time, 4)
        metrics[f"reference_ms_{cls.name}"] = round(1000 * ref_time, 4)
    metrics["max_l1_error"] = max_error
    metrics["combined_score"] = round(math.exp(sum(log_speedups) / len(log_speedups)), 4)
    return metrics


def evaluate(program_path: str) -> dict[str, float]:
    """Score the program on the training split (used during evolution)."""
    return score(program_path, "train")


def evaluate_test(program_path: str) -> dict[str, float]:
    """Score the program on the held-out test split."""
    return score(program_path, "test")
