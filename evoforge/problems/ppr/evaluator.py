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
median CPU time per call (of its own process, read by the evaluator from the
kernel: ``evoforge.problem.kit.time_against_reference``) is compared with that of
the reference implementation (``baselines/numpy_power.py``), timed in the same
evaluation on the same queries, call for call in alternation;
``combined_score`` is the geometric mean over the classes of
``reference_time / program_time`` (higher is better, 1.0 = as fast as the
reference).
"""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from evoforge.problem import kit

HERE = Path(__file__).resolve().parent
REFERENCE_PROGRAM = HERE / "baselines" / "numpy_power.py"

# Calls are timed from this process in CPU seconds of the program's process, read
# from the kernel (evoforge.problem.kit.time_against_reference): a program cannot
# patch that clock, and work moved to other threads is refused.
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
    """Graphs of one size and one kind of personalization, timed together."""

    name: str
    n: int
    avg_degree: float
    kind: str  # "single": one source node; "topic": TOPIC_SIZE weighted nodes


@dataclass(frozen=True)
class Split:
    """A split: its seed, its instance classes, and how each class is timed.

    Each class gets ``1 + max_repeats`` queries: BASE_GRAPHS generated graphs,
    each with its own personalization, used in turn under a fresh random
    relabelling of the nodes (and shuffled edge order) per query, so no two calls
    see the same arrays. The first query is the warm-up call: the program's
    answer is checked before anything is timed, and its CPU time sets the number
    of rounds, ``budget / warm-up time`` clamped to [MIN_REPEATS, max_repeats]
    (to [1, max_repeats] after a warm-up slower than SLOW_CALL). A round runs
    the reference and the program (in alternating order) on the previous query
    (untimed) and on the next one (timed); the medians of the timed calls are
    kept.
    """

    seed: int
    classes: tuple[InstanceClass, ...]
    budget: float  # CPU seconds of timed calls aimed at per class
    max_repeats: int


_KIND_CODE = {"single": 1, "topic": 2}
BASE_GRAPHS = 3
MIN_REPEATS = kit.MIN_REPEATS
SLOW_CALL = kit.SLOW_CALL  # seconds: after a slower warm-up call, a single round may do
SPLITS: dict[str, Split] = {
    "train": Split(20240611, (
        InstanceClass("single_1k", 1000, 5.0, "single"),
        InstanceClass("topic_3k", 3000, 6.0, "topic"),
    ), budget=0.03, max_repeats=12),
    "test": Split(77031, (
        InstanceClass("single_2k", 2000, 5.0, "single"),
        InstanceClass("topic_4k", 4000, 6.0, "topic"),
        InstanceClass("single_8k", 8000, 6.0, "single"),
    ), budget=0.1, max_repeats=20),
}
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


def base_instance(split: str, class_index: int, graph: int) -> Instance:
    """Base graph ``graph`` of class ``class_index`` of ``split``, with its personalization."""
    spec = SPLITS[split]
    cls = spec.classes[class_index]
    rng = np.random.default_rng([spec.seed, class_index, graph, _KIND_CODE[cls.kind]])
    src, dst = power_law_graph(rng, cls.n, cls.avg_degree)
    has_out = np.flatnonzero(np.bincount(src, minlength=cls.n))
    s = np.zeros(cls.n)
    if cls.kind == "single":
        s[rng.choice(has_out)] = 1.0
    else:
        nodes = rng.choice(has_out, size=TOPIC_SIZE, replace=False)
        s[nodes] = rng.dirichlet(np.ones(TOPIC_SIZE))
        s /= s.sum()
    return Instance(f"{split}/{cls.name}/graph{graph}", cls.n, src, dst, s)


def relabel(instance: Instance, rng: np.random.Generator, name: str) -> tuple[Instance,
                                                                               np.ndarray]:
    """The same query with node v renamed ``perm[v]`` and the edges shuffled; (it, perm)."""
    perm = rng.permutation(instance.n)
    order = rng.permutation(len(instance.src))
    s = np.empty(instance.n)
    s[perm] = instance.personalization
    return Instance(name, instance.n, perm[instance.src[order]], perm[instance.dst[order]],
                    s, instance.alpha), perm


def make_queries(split: str, class_index: int) -> tuple[list[Instance], list[np.ndarray]]:
    """The ``1 + max_repeats`` queries of a class and their converged PPR vectors."""
    spec = SPLITS[split]
    bases = [base_instance(split, class_index, g) for g in range(BASE_GRAPHS)]
    base_truths = [true_ppr(b) for b in bases]
    rng = np.random.default_rng([spec.seed, class_index, 999])
    queries: list[Instance] = []
    truths: list[np.ndarray] = []
    for call in range(1 + spec.max_repeats):
        g = call % BASE_GRAPHS
        query, perm = relabel(bases[g], rng, f"{bases[g].name}/call{call}")
        truth = np.empty(query.n)
        truth[perm] = base_truths[g]
        queries.append(query)
        truths.append(truth)
    return queries, truths


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


def load_ppr(program_path: str | Path) -> kit.Program:
    """Start the program at ``program_path`` in its own process (see evoforge.problem.kit)."""
    return kit.load_program(program_path,
                            {"ppr": "ppr(n, src, dst, personalization, alpha)"})


def _arguments(instance: Instance) -> tuple[object, ...]:
    return tuple(instance.args())


@dataclass(frozen=True)
class Timing:
    """How one instance class went: median CPU seconds per call, and checks."""

    reference: float
    program: float
    rounds: int
    max_error: float


def time_against_reference(program: kit.Program, reference: kit.Program,
                           instances: list[Instance], truths: list[np.ndarray],
                           budget: float) -> Timing:
    """Check ``program`` on the queries it runs and time it against ``reference``.

    See :func:`evoforge.problem.kit.time_against_reference`: warm-up, rounds in
    alternation, CPU time of each program's process read from the kernel, every
    answer checked.
    """
    def check(k: int, answer: object) -> float:
        return _checked(instances[k], truths[k], answer)

    timing = kit.time_against_reference("ppr", _arguments, program, reference, instances,
                                         check, budget)
    return Timing(timing.reference, timing.program, timing.rounds, max(timing.checks))


def _checked(instance: Instance, truth: np.ndarray, answer: object,
             who: str = "the program") -> float:
    try:
        return verify_ppr(answer, truth)
    except PPRError as exc:
        if who != "the program":  # pragma: no cover - the reference is tested
            raise RuntimeError(f"{who} failed on {instance.name}: {exc}") from exc
        raise PPRError(f"{instance.name}: {exc}") from None


def score(program_path: str | Path, split: str) -> kit.Scores:
    """Check and time the program against the reference on every class of ``split``.

    The artifact ``instance_scores`` holds the speedup of each instance class, in
    class order (higher is better, like ``combined_score``).
    """
    spec = SPLITS[split]
    query_sets = [make_queries(split, c) for c in range(len(spec.classes))]
    metrics: dict[str, float] = {}
    speedups: list[float] = []
    max_error = 0.0
    with load_ppr(REFERENCE_PROGRAM) as reference, load_ppr(program_path) as program:
        for cls, (queries, truths) in zip(spec.classes, query_sets, strict=True):
            timing = time_against_reference(program, reference, queries, truths, spec.budget)
            speedup = timing.reference / max(timing.program, 1e-9)
            speedups.append(speedup)
            max_error = max(max_error, timing.max_error)
            metrics[f"speedup_{cls.name}"] = round(speedup, 4)
            metrics[f"ms_{cls.name}"] = round(1000 * timing.program, 4)
            metrics[f"reference_ms_{cls.name}"] = round(1000 * timing.reference, 4)
            metrics[f"timed_calls_{cls.name}"] = timing.rounds
    metrics["max_l1_error"] = max_error
    metrics["combined_score"] = round(kit.geometric_mean(speedups), 4)
    return kit.Scores(metrics, {"instance_scores": [round(v, 4) for v in speedups]})


def evaluate(program_path: str) -> kit.Scores:
    """Score the program on the training split (used during evolution)."""
    return score(program_path, "train")


def evaluate_test(program_path: str) -> kit.Scores:
    """Score the program on the held-out test split."""
    return score(program_path, "test")
