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
N_BINS = 5  # difficulty levels, as in Snell et al. (quantiles of the estimate)
MAX_PER_QUESTION = 64  # the most samples one bin's questions may each get


def allocate(estimate, spent, solved, budget_left, rounds_left):
    """Difficulty-bucketed best-of-N, all in round one.

    Questions are split into N_BINS equal-size bins by the quantile of their
    estimate. Every question of a bin gets the same number of samples; the
    numbers are chosen greedily, one more sample for a whole bin at a time, by
    the predicted solves per sample, taking each estimate as the true success
    chance (a question with estimate e and c samples is solved with chance
    1 - (1 - e)^c).
    """
    n = len(estimate)
    order = np.argsort(estimate, kind="stable")
    level = np.empty(n, dtype=np.int64)
    level[order] = np.arange(n) * N_BINS // n
    size = np.bincount(level, minlength=N_BINS)
    c = np.arange(MAX_PER_QUESTION)
    # rate[b][c]: predicted extra solves per sample from the (c + 1)-th sample of bin b
    per_question = estimate[:, None] * (1.0 - estimate[:, None]) ** c[None, :]
    rate = [(per_question[level == b].sum(axis=0) / max(size[b], 1)).tolist()
            for b in range(N_BINS)]
    per_bin = [0] * N_BINS
    left = int(budget_left)
    while True:
        best, best_rate = -1, -1.0
        for b in range(N_BINS):
            fits = 0 < size[b] <= left and per_bin[b] < MAX_PER_QUESTION
            if fits and rate[b][per_bin[b]] > best_rate:
                best, best_rate = b, rate[b][per_bin[b]]
        if best < 0:
            break
        per_bin[best] += 1
        left -= int(size[best])
    counts = np.array(per_bin, dtype=np.int64)[level]
    # samples no whole bin can take go, one each, to the most promising questions
    extra = np.argsort(-estimate * (1.0 - estimate) ** counts, kind="stable")[:left]
    counts[extra] += 1
    return counts
# EVOLVE-BLOCK-END
