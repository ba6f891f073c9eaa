"""Evaluator for text-to-pattern Hamming distances, a speed problem.

The program defines ``hamming(text, pattern)``: for a text T of length n and a
pattern P of length m <= n (both ``bytes``), the number of mismatches between
P and T[i:i + m] for every alignment i = 0 .. n - m, as n - m + 1 integers.

Every output is checked first and must be exact: the right length, integer
values (Python ints or a numpy integer array; floats are refused, so an FFT
result must be rounded and converted), equal to the evaluator's own answer.
Then the score is speed: for each instance class the program's median CPU time
per call (``evoforge.measure.measure``) is compared with that of the reference
implementation (``baselines/numpy_sliding.py``), timed in the same evaluation on
the same instances, call for call in alternation; ``combined_score`` is the
geometric mean over the classes of ``reference_time / program_time`` (higher is
better, 1.0 = as fast as the reference).
"""

import builtins
import importlib.util
import math
import os
import statistics
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from evoforge.measure import measure

HERE = Path(__file__).resolve().parent
REFERENCE_PROGRAM = HERE / "baselines" / "numpy_sliding.py"

# Calls are timed in CPU seconds of the calling thread (time.thread_time): the
# process CPU clock can be as coarse as a scheduler tick (4 ms) when the sandbox
# sets a CPU-time limit, the thread clock stays fine-grained. Work moved to other
# threads would escape it, so over all the rounds of a class the process clock
# must not exceed the thread clock by more than this factor plus this slack.
_THREAD_TIME = time.thread_time
_PROCESS_TIME = time.process_time
OTHER_THREADS_FACTOR = 1.25
OTHER_THREADS_SLACK = 0.02


def _thread_count() -> int:
    """Threads of this process (the OS's count where /proc has it)."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return threading.active_count()


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


MIN_REPEATS = 3
SLOW_CALL = 0.5  # seconds: after a slower warm-up call, a single round may do
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

Hamming = Callable[[bytes, bytes], object]


def load_hamming(program_path: str | Path) -> Hamming:
    """Import the program at ``program_path`` and return its ``hamming`` function."""
    path = Path(program_path)
    spec = importlib.util.spec_from_file_location(f"_hamming_program_{uuid.uuid4().hex}",
                                                  path)
    if spec is None or spec.loader is None:
        raise ValueError(f"{path}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    fn = getattr(module, "hamming", None)
    if not callable(fn):
        raise ValueError(f"{path}: defines no function hamming(text, pattern)")
    return fn


def _call(fn: Hamming, instance: Instance) -> object:
    try:
        return fn(instance.text, instance.pattern)
    except Exception as exc:
        raise ValueError(f"hamming raised {type(exc).__name__}: {exc} "
                         f"(on {instance.name})") from exc


def _checked(instance: Instance, truth: np.ndarray, answer: object,
             who: str = "the program") -> None:
    try:
        verify_distances(answer, truth)
    except HammingError as exc:
        if who != "the program":  # pragma: no cover - the reference is tested
            raise RuntimeError(f"{who} failed on {instance.name}: {exc}") from exc
        raise HammingError(f"{instance.name}: {exc}") from None


@dataclass(frozen=True)
class Timing:
    """How one instance class went: median CPU seconds per call."""

    reference: float
    program: float
    rounds: int


def time_against_reference(program: Hamming, reference: Hamming, instances: list[Instance],
                           truths: list[np.ndarray], budget: float) -> Timing:
    """Check ``program`` on the instances it runs and time it against ``reference``.

    The first instance is the warm-up of both; the program's answer is checked
    before anything is timed, and its CPU time sets the number of rounds
    (``budget`` divided by it, clamped to [MIN_REPEATS, len(instances) - 1], or
    to [1, ...] after a warm-up slower than SLOW_CALL). A round calls the
    reference on the previous instance (untimed, so that whatever the program
    left in the caches does not count against it), times it on the next instance
    with ``evoforge.measure.measure``, then does the same with the program (odd
    rounds; even rounds the program goes first); so both see the same load and
    the same kind of cache state. Every answer of the program is checked.
    """
    _checked(instances[0], truths[0], _call(reference, instances[0]), "the reference")
    start = _THREAD_TIME()
    answer = _call(program, instances[0])
    warm_up = _THREAD_TIME() - start
    _checked(instances[0], truths[0], answer)
    fewest = MIN_REPEATS if warm_up < SLOW_CALL else 1
    rounds = min(len(instances) - 1, max(fewest, int(budget / max(warm_up, 1e-9))))
    reference_times: list[float] = []
    program_times: list[float] = []
    answers: list[object] = []
    threads_before = _thread_count()
    process_start, thread_start = _PROCESS_TIME(), _THREAD_TIME()
    for k in range(1, 1 + rounds):
        for who in ((reference, program) if k % 2 else (program, reference)):
            _call(who, instances[k - 1])  # untimed: whatever the other left in the caches
            timed = measure(_call, who, instances[k], warmup=0, repeats=1, clock=_THREAD_TIME)
            if who is reference:
                reference_times.append(timed.samples[0])
            else:
                program_times.append(timed.samples[0])
                answers.append(timed.result)
    # one span for both clocks: the process clock may only tick every 4 ms
    process = _PROCESS_TIME() - process_start
    thread = _THREAD_TIME() - thread_start
    if process > OTHER_THREADS_FACTOR * thread + OTHER_THREADS_SLACK:
        raise ValueError(f"the program used {process:.3f} s of CPU time on all threads but "
                         f"only {thread:.3f} s on its own: work on other threads is not allowed")
    if _thread_count() > threads_before:
        raise ValueError("the program started threads that are still running: work on other "
                         "threads is not allowed")
    for instance, truth, answer in zip(instances[1:], truths[1:], answers, strict=False):
        _checked(instance, truth, answer)
    return Timing(statistics.median(reference_times), statistics.median(program_times), rounds)


def _guarded() -> dict[str, object]:
    """What the reference relies on: numpy's module attributes and a few builtins."""
    objects: dict[str, object] = {f"numpy.{k}": v for k, v in vars(np).items()}
    for name in ("len", "range", "sum", "zip"):
        objects[f"builtins.{name}"] = getattr(builtins, name)
    return objects


def _check_untouched(before: dict[str, object]) -> None:
    now = _guarded()
    changed = [name for name, obj in before.items() if now.get(name) is not obj]
    if changed:
        raise ValueError(f"the program replaced {changed[0]}; programs may not modify numpy "
                         "or builtins")


def score(program_path: str | Path, split: str) -> dict[str, float]:
    """Check and time the program against the reference on every class of ``split``."""
    spec = SPLITS[split]
    instance_sets = make_instances(split)
    # The answers to check against are computed before the program is imported.
    truth_sets = [[true_distances(i.text, i.pattern) for i in instances]
                  for instances in instance_sets]
    reference = load_hamming(REFERENCE_PROGRAM)
    before = _guarded()
    program = load_hamming(program_path)
    _check_untouched(before)
    metrics: dict[str, float] = {}
    log_speedups: list[float] = []
    for cls, instances, truths in zip(spec.classes, instance_sets, truth_sets, strict=True):
        timing = time_against_reference(program, reference, instances, truths, spec.budget)
        _check_untouched(before)
        speedup = timing.reference / max(timing.program, 1e-9)
        log_speedups.append(math.log(speedup))
        metrics[f"speedup_{cls.name}"] = round(speedup, 4)
        metrics[f"ms_{cls.name}"] = round(1000 * timing.program, 4)
        metrics[f"reference_ms_{cls.name}"] = round(1000 * timing.reference, 4)
        metrics[f"timed_calls_{cls.name}"] = timing.rounds
    metrics["combined_score"] = round(math.exp(sum(log_speedups) / len(log_speedups)), 4)
    return metrics


def evaluate(program_path: str) -> dict[str, float]:
    """Score the program on the training split (used during evolution)."""
    return score(program_path, "train")


def evaluate_test(program_path: str) -> dict[str, float]:
    """Score the program on the held-out test split."""
    return score(program_path, "test")
