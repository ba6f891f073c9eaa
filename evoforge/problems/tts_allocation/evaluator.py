"""Evaluator for test-time compute allocation: spend a sampling budget across questions.

A batch of questions is answered by an LLM by sampling. Question ``i`` has a
hidden per-sample success probability ``p[i]`` (drawn from a mixture of
easy, medium, hard and impossible questions); a question counts as solved once
one of its samples succeeds (a perfect verifier, i.e. pass@k). The policy sees a
noisy estimate of each ``p[i]``, the samples it has spent on each question, and
which questions are solved so far. It spends the budget in at most ``rounds``
rounds: in each round the evaluator calls

    allocate(estimate, spent, solved, budget_left, rounds_left) -> counts

and the policy returns the number of samples each question gets this round, a
vector of non-negative integers (one per question id, ``0 .. n - 1``) whose sum
is at most ``budget_left``. The fixed simulator then draws the outcomes.

Each setting (budget, rounds) is played on many independent batches, each a
fresh draw of questions, so a program cannot learn individual questions from
one call to the next. Outcomes come from seeded random numbers shared by all
programs (common random numbers): in batch ``b``, question ``i`` is solved by
its ``G[b, i]``-th sample, ``G`` geometric with parameter ``p[b, i]`` (never
for ``p = 0``). The
outcomes of the last round that spends anything decide nothing further, so
that round is scored by its expectation, ``1 - (1 - p[i])^count`` for each
question still unsolved; a policy that spends its whole budget in one round is
therefore scored exactly. ``combined_score`` is the mean fraction of questions
solved over the split's settings and batches (higher is better).
"""

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from evoforge.problem import kit

HERE = Path(__file__).resolve().parent

# The question mixture: (name, weight, Beta a, Beta b) of the per-sample success
# probability. Impossible questions have p = 0 but look like hard ones to the
# difficulty estimator.
CATEGORIES: tuple[tuple[str, float, float, float], ...] = (
    ("easy", 0.30, 5.0, 2.0),
    ("medium", 0.30, 2.0, 8.0),
    ("hard", 0.25, 1.0, 40.0),
    ("impossible", 0.15, 1.0, 40.0),
)
ESTIMATE_NOISE = 1.0  # standard deviation of the estimate's noise, in logit units
P_CLIP = 0.002  # the estimator's view of p is clipped to [P_CLIP, 1 - P_CLIP]
N_QUESTIONS = 200

# Settings: (samples per question on average, rounds).
SETTINGS: tuple[tuple[int, int], ...] = ((2, 2), (4, 4), (8, 6))

# Splits: name -> (seed, batches of questions per setting).
SPLITS: dict[str, tuple[int, int]] = {
    "train": (5150, 256),
    "test": (60613, 1024),
}

NEVER = np.iinfo(np.int64).max  # G of a question that can never be solved

Policy = Callable[..., object]


@dataclass(frozen=True)
class Instance:
    """One setting: its budget and rounds, and independent batches of questions.

    Every batch is a fresh draw of ``N_QUESTIONS`` questions with their own
    outcomes, so nothing a program could remember between calls carries over
    from one batch to the next. Arrays are indexed ``[batch, question]``.

    Attributes:
        name: identifies the setting, e.g. ``b4_r4``.
        p: hidden per-sample success probability of each question.
        category: category index of each question (into CATEGORIES).
        estimate: what the policy sees, a noisy estimate of ``p`` in (0, 1).
        budget: total samples the policy may spend on one batch.
        rounds: the most rounds it may spend them in.
        first_success: ``G[b, i]``, the sample of question ``i`` of batch ``b``
            that first succeeds (NEVER if none does).
    """

    name: str
    p: np.ndarray
    category: np.ndarray
    estimate: np.ndarray
    budget: int
    rounds: int
    first_success: np.ndarray

    @property
    def n(self) -> int:
        """Number of questions per batch."""
        return self.p.shape[1]

    @property
    def batches(self) -> int:
        """Number of batches."""
        return self.p.shape[0]


class AllocationError(ValueError):
    """An allocation that breaks the rules."""


# ---------------------------------------------------------------- instances


def _logit(x: np.ndarray) -> np.ndarray:
    return np.log(x) - np.log1p(-x)


def make_instance(split_seed: int, setting: int, batches: int) -> Instance:
    """The batches of ``SETTINGS[setting]`` for a split, generated from its seed."""
    per_question, rounds = SETTINGS[setting]
    shape = (batches, N_QUESTIONS)
    rng = np.random.default_rng([split_seed, setting])
    weights = np.array([c[1] for c in CATEGORIES])
    category = rng.choice(len(CATEGORIES), size=shape, p=weights / weights.sum())
    a = np.array([c[2] for c in CATEGORIES])[category]
    b = np.array([c[3] for c in CATEGORIES])[category]
    apparent = rng.beta(a, b)  # the p the estimator believes in
    impossible = np.array([c[0] == "impossible" for c in CATEGORIES])[category]
    p = np.where(impossible, 0.0, apparent)
    noise = rng.normal(0.0, ESTIMATE_NOISE, size=shape)
    z = _logit(np.clip(apparent, P_CLIP, 1 - P_CLIP)) + noise
    estimate = 1.0 / (1.0 + np.exp(-z))
    outcome_rng = np.random.default_rng([split_seed, setting, 1])
    draws = outcome_rng.geometric(np.where(p > 0, p, 0.5))
    first_success = np.where(p > 0, draws, NEVER).astype(np.int64)
    return Instance(
        name=f"b{per_question}_r{rounds}",
        p=p,
        category=category,
        estimate=estimate,
        budget=per_question * N_QUESTIONS,
        rounds=rounds,
        first_success=first_success,
    )


def make_instances(split: str) -> list[Instance]:
    """The instances of ``split`` ("train" or "test"), always the same for a split."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {sorted(SPLITS)}")
    seed, batches = SPLITS[split]
    return [make_instance(seed, s, batches) for s in range(len(SETTINGS))]


# ---------------------------------------------------------------- verifier


def check_allocation(counts: object, n_questions: int, budget_left: int) -> np.ndarray:
    """Check one round's allocation; return it as an int64 array.

    Args:
        counts: what the policy returned: one sample count per question id.
        n_questions: the number of questions (valid ids are 0 .. n - 1).
        budget_left: samples not yet spent.

    Raises:
        AllocationError: naming the first rule broken (not an array of
            integers, wrong length, a negative count, over budget).
    """
    try:
        arr = np.asarray(counts)
    except Exception as exc:  # e.g. a ragged sequence
        raise AllocationError(f"allocation is not an array: {exc}") from None
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
        raise AllocationError(
            f"allocation must be integers, got dtype {arr.dtype} (one count per question)"
        )
    if arr.shape != (n_questions,):
        raise AllocationError(
            f"allocation has shape {arr.shape}, expected ({n_questions},): "
            f"one count per question id 0..{n_questions - 1}"
        )
    if (arr < 0).any():
        i = int(np.flatnonzero(arr < 0)[0])
        raise AllocationError(f"allocation gives question {i} a negative count {int(arr[i])}")
    total = int(arr.sum(dtype=np.int64))
    if total > budget_left:
        raise AllocationError(f"allocation spends {total} samples but only {budget_left} are left")
    return arr.astype(np.int64)


# ---------------------------------------------------------------- simulation


def run_policy(instance: Instance, allocate: Policy, batch: int) -> tuple[float, int]:
    """Run ``allocate`` on one batch of questions.

    Returns:
        The expected number of questions solved, and the samples spent.

    Raises:
        ValueError: if ``allocate`` raises or breaks the rules.
    """
    n = instance.n
    p = instance.p[batch]
    g = instance.first_success[batch]
    estimate = instance.estimate[batch]
    spent = np.zeros(n, dtype=np.int64)
    solved = np.zeros(n, dtype=bool)
    budget_left = instance.budget
    where = f"{instance.name}, batch {batch}"
    for t in range(instance.rounds):
        rounds_left = instance.rounds - t
        try:
            raw = allocate(estimate.copy(), spent.copy(), solved.copy(), budget_left, rounds_left)
        except Exception as exc:
            raise ValueError(
                f"allocate raised {type(exc).__name__}: {exc} ({where}, round {t + 1})"
            ) from exc
        try:
            counts = check_allocation(raw, n, budget_left)
        except AllocationError as exc:
            raise AllocationError(f"{exc} ({where}, round {t + 1})") from None
        budget_left -= int(counts.sum())
        if rounds_left == 1 or budget_left == 0:
            # the last round: its outcomes decide nothing, so score its expectation
            fresh = np.where(solved, 0, counts)
            gain = -np.expm1(fresh * np.log1p(-p))
            return float(solved.sum() + gain.sum()), instance.budget - budget_left
        spent += counts
        solved |= spent >= g
    raise AssertionError("unreachable: the last round returns")  # pragma: no cover


# ---------------------------------------------------------------- scoring


def load_policy(program_path: str | Path) -> kit.Program:
    """Start the program at ``program_path`` in its own process (see evoforge.problem.kit).

    Calling the result calls its ``allocate`` there.
    """
    return kit.load_program(
        program_path,
        {"allocate": "allocate(estimate, spent, solved, budget_left, rounds_left)"})


def score_policy(allocate: Policy, split: str) -> kit.Scores:
    """Run ``allocate`` on every batch of every setting of ``split``; return the metrics.

    The simulation (hidden success probabilities, outcome draws) stays here; with a
    program from :func:`load_policy`, only each round's inputs go to its process.
    The artifact ``instance_scores`` holds the solved fraction of each setting, in
    setting order (higher is better, like ``combined_score``).
    """
    instances = make_instances(split)
    fractions: list[float] = []
    used: list[float] = []
    per_setting: dict[str, float] = {}
    for instance in instances:
        runs = [run_policy(instance, allocate, b) for b in range(instance.batches)]
        fraction = float(np.mean([solved for solved, _ in runs])) / instance.n
        fractions.append(fraction)
        used.append(float(np.mean([spent for _, spent in runs])) / instance.budget)
        per_setting[f"solved_{instance.name}"] = fraction
    mean = float(np.mean(fractions))
    if not math.isfinite(mean):  # pragma: no cover - counts are finite
        raise ValueError("score is not finite")
    metrics: dict[str, float] = {
        "combined_score": round(mean, 6),
        "budget_used": round(float(np.mean(used)), 6),
        "num_batches": sum(instance.batches for instance in instances),
    }
    for key, value in per_setting.items():
        metrics[key] = round(value, 6)
    return kit.Scores(metrics, {"instance_scores": [round(f, 6) for f in fractions]})


def evaluate(program_path: str) -> kit.Scores:
    """Score the program on the training split (used during evolution)."""
    with load_policy(program_path) as program:
        return score_policy(program, "train")


def evaluate_test(program_path: str) -> kit.Scores:
    """Score the program on the held-out test split."""
    with load_policy(program_path) as program:
        return score_policy(program, "test")


# ---------------------------------------------------------------- functional hashing

PROBE_SEED, PROBE_BATCHES = 4242, 2
"""The probe's instances: seed (neither split's) and batches per setting."""


def probe_program(program: object) -> list[object]:
    """Functional hashing: the program's ``allocate`` runs every round of
    :data:`PROBE_BATCHES` batches of each setting (its own seed, :data:`PROBE_SEED`)
    through the evaluator's own simulation, and the expected solved counts and samples
    spent are hashed.

    Closed-loop: each round sees the samples spent and the questions solved that the
    program's own earlier rounds led to. One fixed round per setting (the probe before
    this one) took programs that score the train split otherwise for duplicates: 36
    of 120 functional duplicates sampled from two runs of 2,000 evaluations; this probe
    tells 34 of them apart (``bench/probe_check.py``). A few milliseconds.
    """
    allocate = program.allocate  # type: ignore[attr-defined]
    instances = [make_instance(PROBE_SEED, s, PROBE_BATCHES) for s in range(len(SETTINGS))]
    return [run_policy(instance, allocate, batch)
            for instance in instances for batch in range(PROBE_BATCHES)]
