"""Evaluator for maximum coverage, a speed problem: choose k sets fast.

The program defines ``max_coverage(sets, n_elements, k) -> list[int]``: given
``sets`` (a list of 1-D int64 numpy arrays, the distinct elements of each set,
each element an id in ``[0, n_elements)``, in no particular order) it returns
``k`` distinct set ids (positions in ``sets``) whose union is large.

Correctness: every answer must cover at least 99% of the elements that the
greedy algorithm covers on the same instance (greedy is computed here, by the
evaluator). Speed: for each instance the evaluator times the reference, the
naive greedy of ``baselines/naive_greedy.py``, and then the candidate, with
:meth:`evoforge.problem.kit.Program.timed_call` (CPU seconds of the program's
own process, read by the evaluator from the kernel; median over
repeats after a warm-up call). The instance's speedup is reference median /
candidate median; ``combined_score`` is the geometric mean of the speedups
(higher is better; the naive greedy scores about 1).

Every timed call gets a fresh copy of the instance with the element ids and
the order of the sets shuffled (no two calls see the same input, so caching
answers between calls does not help), and every call's answer is checked.
"""

import math
import resource
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from evoforge.problem import kit

HERE = Path(__file__).resolve().parent
REFERENCE = HERE / "baselines" / "naive_greedy.py"

MIN_FRACTION_OF_GREEDY = 0.99  # answers must cover at least this share of greedy's coverage

# Instance generator parameters.
SIZE_MEDIAN, SIZE_SIGMA = 12.0, 1.0  # set sizes: lognormal draws (before duplicates go)
LOCAL_SHARE = 0.8  # share of a set's draws from its own community
SETS_PER_COMMUNITY = 50

# Splits: name -> (seed, [(n_sets, n_elements, k), ...]).
SPLITS: dict[str, tuple[int, list[tuple[int, int, int]]]] = {
    "train": (7101, [(500, 4000, 10), (1000, 6000, 20), (1500, 10000, 15)]),
    "test": (31337, [(500, 4000, 10), (1000, 6000, 20), (2000, 12000, 25),
                     (3000, 20000, 40), (4000, 30000, 30)]),
}

# Timing: the reference gets REFERENCE_REPEATS timed calls after one warm-up;
# the candidate gets enough calls to fill CANDIDATE_TARGET_S, within bounds.
REFERENCE_REPEATS = 3
CANDIDATE_TARGET_S = 0.01
CANDIDATE_MIN_REPEATS, CANDIDATE_MAX_REPEATS = 3, 25

Solver = Callable[[list[np.ndarray], int, int], object]


@dataclass(frozen=True)
class Instance:
    """A maximum coverage instance: choose ``k`` of ``sets`` to cover most elements."""

    name: str
    sets: list[np.ndarray]
    n_elements: int
    k: int

    @property
    def n_sets(self) -> int:
        """Number of sets."""
        return len(self.sets)


class SelectionError(ValueError):
    """An answer that is not a valid choice of k sets, or covers too little."""


# ---------------------------------------------------------------- instances


def make_instance(split_seed: int, index: int, n_sets: int, n_elements: int, k: int) -> Instance:
    """One instance, generated from the seed.

    The elements fall into ``n_sets // 50`` (at least 4) communities, contiguous
    blocks of ids with Dirichlet(1) sizes. Each set joins a community with
    probability proportional to 1 / rank (most sets crowd into the first few,
    so large sets overlap), draws a lognormal number of elements (median 12,
    sigma 1: a few sets are much larger than most), 80% of them inside its
    community, skewed towards the block's first ids, the rest from the whole
    universe, strongly skewed towards low ids (globally popular elements).
    Duplicates are dropped.
    """
    rng = np.random.default_rng([split_seed, index])
    n_comm = max(4, n_sets // SETS_PER_COMMUNITY)
    share = rng.dirichlet(np.ones(n_comm))
    bounds = np.rint(np.concatenate([[0.0], np.cumsum(share)]) * n_elements).astype(np.int64)
    popularity = 1.0 / np.arange(1, n_comm + 1)
    community = rng.choice(n_comm, size=n_sets, p=popularity / popularity.sum())
    draws = np.rint(np.exp(rng.normal(np.log(SIZE_MEDIAN), SIZE_SIGMA, size=n_sets)))
    draws = np.clip(draws, 2, n_elements // 4).astype(np.int64)
    owner = np.repeat(np.arange(n_sets), draws)
    position = np.arange(len(owner)) - np.repeat(np.cumsum(draws) - draws, draws)
    local = position < np.rint(LOCAL_SHARE * draws)[owner]
    lo = bounds[community][owner]
    width = np.maximum(bounds[community + 1] - bounds[community], 1)[owner]
    u = rng.random(len(owner))
    element = np.where(local, lo + (width * u**2).astype(np.int64),
                       (n_elements * u**3).astype(np.int64))
    element = np.minimum(element, n_elements - 1)
    keys = np.unique(owner * n_elements + element)
    cuts = np.searchsorted(keys // n_elements, np.arange(1, n_sets))
    sets = [part % n_elements for part in np.split(keys, cuts)]
    return Instance(f"cover_{n_sets}x{n_elements}_k{k}", sets, n_elements, k)


def make_instances(split: str) -> list[Instance]:
    """The instances of ``split`` ("train" or "test"), always the same for a split."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {sorted(SPLITS)}")
    seed, shapes = SPLITS[split]
    return [make_instance(seed, i, *shape) for i, shape in enumerate(shapes)]


@dataclass(frozen=True)
class Shuffled:
    """A copy of an instance with shuffled ids; ``order[j]`` is the original id of set j."""

    sets: list[np.ndarray]
    order: np.ndarray


def shuffled_copy(instance: Instance, rng: np.random.Generator) -> Shuffled:
    """The instance with its element ids permuted and its sets reordered."""
    relabel = rng.permutation(instance.n_elements)
    order = rng.permutation(instance.n_sets)
    chosen = [instance.sets[j] for j in order]
    sizes = np.fromiter((len(s) for s in chosen), dtype=np.int64, count=len(chosen))
    flat = relabel[np.concatenate(chosen)]
    return Shuffled(np.split(flat, np.cumsum(sizes)[:-1]), order)


# ---------------------------------------------------------------- greedy and verifier


def coverage(sets: Sequence[np.ndarray], n_elements: int, chosen: Sequence[int]) -> int:
    """Number of elements in the union of the chosen sets."""
    covered = np.zeros(n_elements, dtype=bool)
    for i in chosen:
        covered[sets[i]] = True
    return int(np.count_nonzero(covered))


def greedy_coverage(instance: Instance) -> int:
    """Coverage of the greedy algorithm (ties to the lowest id), computed vectorised.

    Raises:
        ValueError: if some greedy step gains nothing (the instance is too easy).
    """
    sets = instance.sets
    sizes = np.fromiter((len(s) for s in sets), dtype=np.int64, count=len(sets))
    flat = np.concatenate(sets)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    uncovered = np.ones(instance.n_elements, dtype=np.int64)
    total = 0
    for _ in range(instance.k):
        gains = np.add.reduceat(uncovered[flat], starts)
        best = int(np.argmax(gains))
        if gains[best] <= 0:
            raise ValueError(f"{instance.name}: greedy runs out of new elements before k sets")
        total += int(gains[best])
        uncovered[sets[best]] = 0
    return total


def check_selection(chosen: object, n_sets: int, k: int) -> list[int]:
    """Check that ``chosen`` names exactly ``k`` distinct valid set ids; return them.

    Raises:
        SelectionError: naming the first problem (not a sequence, wrong count,
            an id that is not an integer or out of range, a repeated id).
    """
    if isinstance(chosen, np.ndarray):
        if chosen.ndim != 1:
            raise SelectionError(f"answer has shape {chosen.shape}; return k set ids")
        items = chosen.tolist()
    elif isinstance(chosen, list | tuple):
        items = list(chosen)
    else:
        raise SelectionError(
            f"answer is a {type(chosen).__name__}, not a list of set ids"
        )
    if len(items) != k:
        raise SelectionError(f"answer names {len(items)} sets, expected exactly k = {k}")
    ids: list[int] = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, int | np.integer):
            raise SelectionError(f"set id {item!r} is not an integer")
        if not 0 <= int(item) < n_sets:
            raise SelectionError(f"set id {int(item)} is out of range [0, {n_sets})")
        ids.append(int(item))
    if len(set(ids)) != len(ids):
        repeated = next(i for i in ids if ids.count(i) > 1)
        raise SelectionError(f"set id {repeated} is chosen twice")
    return ids


def verify(chosen: object, instance: Instance, greedy: int) -> int:
    """Check an answer for ``instance``; return its coverage.

    Raises:
        SelectionError: if the answer is invalid, or covers fewer than 99% of
            the ``greedy`` coverage.
    """
    ids = check_selection(chosen, instance.n_sets, instance.k)
    covered = coverage(instance.sets, instance.n_elements, ids)
    if covered < MIN_FRACTION_OF_GREEDY * greedy:
        raise SelectionError(
            f"coverage {covered} is below {MIN_FRACTION_OF_GREEDY:.0%} of greedy's {greedy} "
            f"on {instance.name}"
        )
    return covered


# ---------------------------------------------------------------- timing


def load_solver(program_path: str | Path) -> kit.Program:
    """Start the program at ``program_path`` in its own process (see evoforge.problem.kit)."""
    return kit.load_program(program_path,
                            {"max_coverage": "max_coverage(sets, n_elements, k)"})


class _Feed:
    """Calls a solver on fresh shuffled copies, one per call, and keeps the answers."""

    def __init__(self, solver: kit.Program, instance: Instance, rng: np.random.Generator,
                 label: str) -> None:
        self.solver = solver
        self.instance = instance
        self.rng = rng
        self.label = label
        self.answers: list[tuple[object, Shuffled]] = []

    def run(self, calls: int) -> list[float]:
        """Make ``calls`` calls; the CPU seconds of each, read from the kernel.

        Each copy is made and sent before its call, outside the timed span.
        """
        times = []
        for _ in range(calls):
            copy = shuffled_copy(self.instance, self.rng)
            try:
                answer, seconds = self.solver.timed_call(
                    "max_coverage", copy.sets, self.instance.n_elements, self.instance.k)
            except kit.CandidateError as exc:
                raise ValueError(f"{self.label} raised {type(exc).__name__}: {exc} "
                                 f"({self.instance.name})") from None
            times.append(seconds)
            self.answers.append((answer, copy))
        return times

    def check(self, greedy: int) -> float:
        """Verify every answer so far; return the lowest coverage / greedy ratio."""
        worst = math.inf
        for answer, copy in self.answers:
            try:
                ids = check_selection(answer, self.instance.n_sets, self.instance.k)
                original = [int(copy.order[i]) for i in ids]
                covered = verify(original, self.instance, greedy)
            except SelectionError as exc:
                raise SelectionError(f"{self.label}: {exc}") from None
            worst = min(worst, covered / greedy)
        self.answers.clear()
        return worst


def time_instance(solver: kit.Program, reference: kit.Program, instance: Instance,
                  seed: int) -> dict[str, float]:
    """Time the reference and the candidate on ``instance``; verify every answer.

    Work moved to other threads is refused: over the timed calls, the candidate's
    process CPU time may not exceed its main thread's by more than
    kit.OTHER_THREADS_FACTOR plus kit.OTHER_THREADS_SLACK, nor may it end with
    more threads than it had.
    """
    greedy = greedy_coverage(instance)
    rng = np.random.default_rng([seed, 99])
    ref = _Feed(reference, instance, rng, "the reference")
    ref.run(1)  # warm-up
    ref_samples = ref.run(REFERENCE_REPEATS)
    ref.check(greedy)
    cand = _Feed(solver, instance, rng, "max_coverage")
    first = cand.run(1)[0]  # warm-up, also sizes the number of repeats
    repeats = int(min(CANDIDATE_MAX_REPEATS,
                      max(CANDIDATE_MIN_REPEATS, CANDIDATE_TARGET_S / max(first, 1e-6))))
    threads = solver.thread_count()
    process, thread = solver.process_cpu_seconds(), solver.cpu_seconds()
    cand_samples = cand.run(repeats)
    process, thread = solver.process_cpu_seconds() - process, solver.cpu_seconds() - thread
    if process > kit.OTHER_THREADS_FACTOR * thread + kit.OTHER_THREADS_SLACK:
        raise ValueError(f"the program used {process:.3f} s of CPU time on all threads but "
                         f"only {thread:.3f} s on its own: work on other threads is not allowed")
    if solver.thread_count() > threads:
        raise ValueError("the program started threads that are still running: work on other "
                         "threads is not allowed")
    worst = cand.check(greedy)
    ref_time = float(np.median(ref_samples))
    cand_time = max(float(np.median(cand_samples)), 1e-7)
    return {
        "speedup": ref_time / cand_time,
        "reference_s": ref_time,
        "candidate_s": cand_time,
        "coverage_ratio": worst,
    }


def _cpu_seconds() -> float:
    """CPU seconds of this process (getrusage: fine-grained even under RLIMIT_CPU)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def score_solver(solver: kit.Program, split: str) -> kit.Scores:
    """Time ``solver`` against the reference on every instance of ``split``.

    The artifact ``instance_scores`` holds the speedup on each instance, in instance
    order (higher is better, like ``combined_score``).
    """
    with load_solver(REFERENCE) as reference:
        return _score(solver, reference, split)


def _score(solver: kit.Program, reference: kit.Program, split: str) -> kit.Scores:
    instances = make_instances(split)
    seed = SPLITS[split][0]
    speedups: list[float] = []
    metrics: dict[str, float] = {}
    ref_total = cand_total = 0.0
    worst = math.inf
    start = _cpu_seconds()
    for i, instance in enumerate(instances):
        result = time_instance(solver, reference, instance, seed * 1000 + i)
        speedups.append(result["speedup"])
        metrics[f"speedup_{instance.name}"] = round(result["speedup"], 4)
        ref_total += result["reference_s"]
        cand_total += result["candidate_s"]
        worst = min(worst, result["coverage_ratio"])
    score = math.exp(float(np.mean(np.log(speedups))))
    if not math.isfinite(score):  # pragma: no cover - times are clamped positive
        raise ValueError("speedup is not finite")
    metrics.update({
        "combined_score": round(score, 4),
        "reference_ms": round(1000 * ref_total, 4),
        "candidate_ms": round(1000 * cand_total, 4),
        "min_coverage_vs_greedy": round(worst, 6),
        "evaluation_cpu_s": round(_cpu_seconds() - start, 4),
        "num_instances": len(instances),
    })
    return kit.Scores(metrics, {"instance_scores": [round(v, 4) for v in speedups]})


def evaluate(program_path: str) -> kit.Scores:
    """Score the program on the training split (used during evolution)."""
    with load_solver(program_path) as program:
        return score_solver(program, "train")


def evaluate_test(program_path: str) -> kit.Scores:
    """Score the program on the held-out test split."""
    with load_solver(program_path) as program:
        return score_solver(program, "test")
