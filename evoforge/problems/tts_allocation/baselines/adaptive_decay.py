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
def round_budget(estimate, spent, solved, budget_left, rounds_left):
    """Samples to spend this round: an equal part of what is left per round left."""
    return budget_left // rounds_left


def weights(estimate, spent, solved, budget_left, rounds_left):
    """Nothing for solved questions; the rest by estimate, discounted by failures.

    Every failed sample is evidence that a question is harder than estimated,
    so its share shrinks as 1 / (1 + spent): easy questions first, medium and
    hard ones while they still look promising, lost causes fade out.
    """
    return np.where(solved, 0.0, estimate / (1.0 + spent))


def allocate(estimate, spent, solved, budget_left, rounds_left):
    """Adaptive: spread the budget over the rounds, stop spending on solved questions."""
    amount = round_budget(estimate, spent, solved, budget_left, rounds_left)
    return share(weights(estimate, spent, solved, budget_left, rounds_left), amount)
# EVOLVE-BLOCK-END
