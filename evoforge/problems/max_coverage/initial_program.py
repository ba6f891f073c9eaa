"""Maximum coverage: choose k sets covering as many elements as possible, fast.

``max_coverage(sets, n_elements, k)`` gets ``sets``, a list of 1-D int64 numpy
arrays (the distinct elements of each set, ids in ``[0, n_elements)``, in no
particular order), and returns ``k`` distinct set ids (positions in ``sets``).
The answer must cover at least 99% of what the greedy algorithm covers; the
score is the speedup over the naive greedy (CPU time, measured by the
evaluator on the same instances).
"""

import heapq  # noqa: F401  (available to the evolved code)

import numpy as np


# EVOLVE-BLOCK-START
def marginal_gain(members, covered):
    """How many elements of one set are not covered yet."""
    return int(np.count_nonzero(~covered[members]))


def max_coverage(sets, n_elements, k):
    """Naive greedy: every step, recompute every set's marginal gain; take the best.

    Ties go to the lowest set id. A set already taken gains nothing, so it is
    never taken again while some set still adds an element.
    """
    covered = np.zeros(n_elements, dtype=bool)
    chosen = []
    for _ in range(k):
        best, best_gain = -1, -1
        for i, members in enumerate(sets):
            gain = marginal_gain(members, covered)
            if gain > best_gain:
                best, best_gain = i, gain
        chosen.append(best)
        covered[sets[best]] = True
    return chosen
# EVOLVE-BLOCK-END
