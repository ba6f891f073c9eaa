"""Evaluator for text-to-pattern Hamming distances, a speed problem.

The program defines ``hamming(text, pattern)``: for a text T of length n and a
pattern P of length m <= n (both ``bytes``), the number of mismatches between
P and T[i:i + m] for every alignment i = 0 .. n - m, as n - m + 1 integers.

Every output is checked first and must be exact: the right length, integer
values (Python ints or a numpy integer array; floats are refused, so an FFT
result must be rounded and converted), equal to the evaluator's own answer.
Then the score is speed: for each instance class the program's median CPU time
per call (of its own process, read by the evaluator from the kernel:
``evoforge.problem.kit.time_against_reference``) is compared with that of the reference
implementation (``baselines/numpy_sliding.py``), timed in the same evaluation on
the same instances, call for call in alternation; ``combined_score`` is the
geometric mean over the classes of ``reference_time / program_time`` (higher is
better, 1.0 = as fast as the reference).
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from evoforge.problem import kit

HERE = Path(__file__).resolve().parent
REFERENCE_PROGRAM = HERE / "baselines" / "numpy_sliding.py"

# Calls are timed from this process in CPU seconds of the program's process, read
# from the kernel (evoforge.problem.kit.time_against_reference): a program cannot
# patch that clock, and work moved to other threads is refused.
ALPHABETS: dict[str, bytes] = {
    "binary": b"01",
    "dna": b"ACGT",
    "bytes": bytes(range(256)),
}
PLANTED = 3  # approximate occurrences of the pattern copied into each text
PLANT_SUBSTITUTION = 0.1  # fraction of a planted copy's symbols redrawn at random


@dataclass(frozen=True)
class InstanceClass:
    """Instances of one size and alphabet, timed together."""

    name: str
    alphabet: str
    n: int
    m: int


@dataclass(frozen=True)
class Split:
    """A split: its seed, its instance classes, and how each class is timed.

    Each class gets ``1 + max_repeats`` instances. The first is the warm-up
    call: the program's answer is checked before anything is timed, and its CPU
    time sets the number of rounds, ``budget / warm-up time`` clamped to
    [MIN_REPEATS, max_repeats] (to [1, max_repeats] after a warm-up slower than
    SLOW_CALL). A round runs the reference and the program (in alternating order)
    on the previous instance (untimed) and on the next one (timed); the medians
    are kept.
    """

    seed: int
    classes: tuple[InstanceClass, ...]
    budget: float  # CPU seconds of timed calls aimed at per class
    max_repeats: int


MIN_REPEATS = kit.MIN_REPEATS
SLOW_CALL = kit.SLOW_CALL  # seconds: after a slower warm-up call, a single round may do
SPLITS: dict[str, Split] = {
    "train": Split(31415, (
        InstanceClass("binary_4k", "binary", 4000, 100),
        InstanceClass("dna_4k", "dna", 4000, 150),
        InstanceClass("bytes_3k", "bytes", 3000, 200),
    ), budget=0.03, max_repeats=15),
    "test": Split(27182, (
        InstanceClass("binary_12k", "binary", 12000, 200),
        InstanceClass("dna_10k", "dna", 10000, 300),
        InstanceClass("bytes_8k", "bytes", 8000, 400),
    ), budget=0.1, max_repeats=25),
}


@dataclass(frozen=True)
class Instance:
    """One query: a text and a pattern."""

    name: str
    text: bytes
    pattern: bytes


class HammingError(ValueError):
    """An answer that is not the list of Hamming distances of its instance."""


# ---------------------------------------------------------------- instances


def make_text_and_pattern(rng: np.random.Generator, alphabet: bytes, n: int,
                          m: int) -> tuple[bytes, bytes]:
    """A uniform random text and pattern, with PLANTED noisy copies of the pattern.

    Each planted copy overwrites the text at a random alignment, with a fraction
    PLANT_SUBSTITUTION of its symbols redrawn uniformly, so the distances range
    from near 0 up to the random-alignment level.
    """
    symbols = np.frombuffer(alphabet, dtype=np.uint8)
    text = symbols[rng.integers(0, len(symbols), size=n)]
    pattern = symbols[rng.integers(0, len(symbols), size=m)]
    for _ in range(PLANTED):
        copy = pattern.copy()
        redraw = rng.random(m) < PLANT_SUBSTITUTION
        copy[redraw] = symbols[rng.integers(0, len(symbols), size=int(redraw.sum()))]
        start = int(rng.integers(0, n - m + 1))
        text[start:start + m] = copy
    return text.tobytes(), pattern.tobytes()


def make_instance(split: str, class_index: int, call: int) -> Instance:
    """Instance ``call`` of class ``class_index`` of ``split``; always the same."""
    spec = SPLITS[split]
    cls = spec.classes[class_index]
    rng = np.random.default_rng([spec.seed, class_index, call])
    text, pattern = make_text_and_pattern(rng, ALPHABETS[cls.alphabet], cls.n, cls.m)
    return Instance(f"{split}/{cls.name}/{call}", text, pattern)


def make_instances(split: str) -> list[list[Instance]]:
    """The instances of ``split``, one list of ``1 + max_repeats`` per instance class."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {sorted(SPLITS)}")
    spec = SPLITS[split]
    return [[make_instance(split, c, k) for k in range(1 + spec.max_repeats)]
            for c in range(len(spec.classes))]


def true_distances(text: bytes, pattern: bytes) -> np.ndarray:
    """The Hamming distances, counted one pattern position at a time over all alignments."""
    t = np.frombuffer(text, dtype=np.uint8)
    p = np.frombuffer(pattern, dtype=np.uint8)
    n, m = len(t), len(p)
    if not 1 <= m <= n:
        raise ValueError(f"need 1 <= len(pattern) <= len(text), got {m} and {n}")
    alignments = n - m + 1
    distances = np.zeros(alignments, dtype=np.int64)
    for j in range(m):
        distances += t[j:j + alignments] != p[j]
    return distances


# ---------------------------------------------------------------- checking


def verify_distances(answer: object, truth: np.ndarray) -> None:
    """Check ``answer`` against the exact distances ``truth``.

    Raises:
        HammingError: naming the problem: not an array of integers (floats and
            booleans are refused), wrong length, or a wrong distance.
    """
    try:
        values = np.asarray(answer)
    except (TypeError, ValueError) as exc:
        raise HammingError(f"answer is not a sequence of integers ({exc})") from None
    if values.shape != truth.shape:
        raise HammingError(f"answer has shape {values.shape}; expected {truth.shape}, "
                           "one distance per alignment")
    kind = values.dtype.kind
    if kind == "f":
        raise HammingError(f"answer holds floats ({values.dtype}); round and convert to "
                           "integers")
    if kind == "b":
        raise HammingError("answer holds booleans, not integer distances")
    if kind not in "iu":
        raise HammingError(f"answer holds {values.dtype} values, not integers")
    wrong = np.flatnonzero(values != truth)
    if len(wrong):
        i = int(wrong[0])
        raise HammingError(f"{len(wrong)} wrong distance(s); first at alignment {i}: "
                           f"got {values[i]}, expected {truth[i]}")


# ---------------------------------------------------------------- scoring

def load_hamming(program_path: str | Path) -> kit.Program:
    """Start the program at ``program_path`` in its own process (see evoforge.problem.kit)."""
    return kit.load_program(program_path, {"hamming": "hamming(text, pattern)"})


def _arguments(instance: Instance) -> tuple[object, ...]:
    return tuple((instance.text, instance.pattern))


def _checked(instance: Instance, truth: np.ndarray, answer: object) -> None:
    try:
        verify_distances(answer, truth)
    except HammingError as exc:
        raise HammingError(f"{instance.name}: {exc}") from None


Timing = kit.Timing


def time_against_reference(program: kit.Program, reference: kit.Program,
                           instances: list[Instance], truths: list[np.ndarray],
                           budget: float) -> kit.Timing:
    """Check ``program`` on the instances it runs and time it against ``reference``.

    See :func:`evoforge.problem.kit.time_against_reference`: warm-up, rounds in
    alternation, CPU time of each program's process read from the kernel, every
    answer checked.
    """
    return kit.time_against_reference(
        "hamming", _arguments, program, reference, instances,
        lambda k, answer: _checked(instances[k], truths[k], answer), budget)


def score(program_path: str | Path, split: str) -> kit.Scores:
    """Check and time the program against the reference on every class of ``split``.

    The artifact ``instance_scores`` holds the speedup of each instance class, in
    class order (higher is better, like ``combined_score``).
    """
    spec = SPLITS[split]
    instance_sets = make_instances(split)
    truth_sets = [[true_distances(i.text, i.pattern) for i in instances]
                  for instances in instance_sets]
    metrics: dict[str, float] = {}
    speedups: list[float] = []
    with load_hamming(REFERENCE_PROGRAM) as reference, \
            load_hamming(program_path) as program:
        for cls, instances, truths in zip(spec.classes, instance_sets, truth_sets,
                                          strict=True):
            timing = time_against_reference(program, reference, instances, truths,
                                            spec.budget)
            speedup = timing.reference / max(timing.program, 1e-9)
            speedups.append(speedup)
            metrics[f"speedup_{cls.name}"] = round(speedup, 4)
            metrics[f"ms_{cls.name}"] = round(1000 * timing.program, 4)
            metrics[f"reference_ms_{cls.name}"] = round(1000 * timing.reference, 4)
            metrics[f"timed_calls_{cls.name}"] = timing.rounds
    metrics["combined_score"] = round(kit.geometric_mean(speedups), 4)
    return kit.Scores(metrics, {"instance_scores": [round(v, 4) for v in speedups]})


def evaluate(program_path: str) -> kit.Scores:
    """Score the program on the training split (used during evolution)."""
    return score(program_path, "train")


def evaluate_test(program_path: str) -> kit.Scores:
    """Score the program on the held-out test split."""
    return score(program_path, "test")
