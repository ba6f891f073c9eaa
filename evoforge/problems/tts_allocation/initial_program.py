"""Test-time compute allocation: spend a sampling budget across questions.

The evaluator calls ``allocate(estimate, spent, solved, budget_left,
rounds_left)`` once per round, for at most a fixed number of rounds. Per
question id ``i`` (arrays of length n): ``estimate[i]`` is a noisy estimate of
the chance that one sample solves question i, ``spent[i]`` the samples spent on
it so far, ``solved[i]`` whether one of them succeeded. ``budget_left`` is the
number of samples not yet spent and ``rounds_left`` counts this round (1 in the
last round). It returns the number of new samples per question for this round:
non-negative integers summing to at most ``budget_left``. A question counts as
solved once one of its samples succeeds; the goal is to solve as many as
possible.
"""

import numpy as np


def share(weights, amount):
    """Split ``amount`` samples over the questions in proportion to ``weights``.

    Negative weights count as zero; the integer parts are handed out first and
    the leftover samples go to the largest remainders (ties to the lower id).
    All-zero weights, or ``amount < 1``, give no samples.
    """
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 1:
        raise ValueError(f"weights must be one number per question, got shape {w.shape}")
    if not np.isfinite(w).all():
        raise ValueError("weights must be finite (no NaN or inf)")
    amount = float(amount)
    if not np.isfinite(amount):
        raise ValueError(f"amount must be finite, got {amount}")
    w = np.maximum(w, 0.0)
    total = w.sum()
    counts = np.zeros(len(w), dtype=np.int64)
    amount = int(amount)
    if amount < 1 or total <= 0.0:
        return counts
    exact = amount * (w / total)
    counts[:] = np.floor(exact)
    rest = amount - int(counts.sum())
    if rest > 0:
        order = np.argsort(-(exact - counts), kind="stable")
        counts[order[:rest]] += 1
    return counts


# EVOLVE-BLOCK-START
SPREAD = 0.0  # each round spends budget_left / rounds_left ** SPREAD samples
EASE = 0.0    # an unsolved question's weight grows as estimate ** EASE ...
DECAY = 0.0   # ... and shrinks as (1 + spent) ** -DECAY with its failed samples


def round_budget(estimate, spent, solved, budget_left, rounds_left):
    """Samples to spend this round.

    SPREAD = 0 spends the whole budget in the first round (best-of-N, no
    adaptivity); SPREAD = 1 would spend an equal part of what is left per round
    left. The last round (rounds_left = 1) always gets everything that is left.
    """
    return budget_left / rounds_left ** SPREAD


def weights(estimate, spent, solved, budget_left, rounds_left):
    """Relative share of this round's samples: nothing for a solved question.

    EASE = DECAY = 0 gives every unsolved question the same share; EASE > 0
    favours questions that look easy, DECAY > 0 gives up on those that keep failing.
    """
    return np.where(solved, 0.0, estimate ** EASE / (1.0 + spent) ** DECAY)


def allocate(estimate, spent, solved, budget_left, rounds_left):
    """Uniform best-of-N: every question gets budget / n samples in round one."""
    amount = round_budget(estimate, spent, solved, budget_left, rounds_left)
    return share(weights(estimate, spent, solved, budget_left, rounds_left), amount)
# EVOLVE-BLOCK-END
