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
    """Lazy greedy (Minoux 1978): a heap of upper bounds on the marginal gains.

    Gains only shrink as more elements are covered, so a gain computed at an
    earlier step bounds the gain now. Pop the largest bound: if it was computed
    at this step it is the true best gain (ties to the lowest id, as in the
    naive greedy), so take that set; otherwise recompute it and push it back.
    At the start the bound of a set is its size.
    """
    covered = np.zeros(n_elements, dtype=bool)
    heap = [(-len(members), i, -1) for i, members in enumerate(sets)]
    heapq.heapify(heap)
    chosen = []
    step = 0
    while len(chosen) < k and heap:
        _, i, computed_at = heapq.heappop(heap)
        if computed_at == step:
            chosen.append(i)
            covered[sets[i]] = True
            step += 1
        else:
            heapq.heappush(heap, (-marginal_gain(sets[i], covered), i, step))
    return chosen
# EVOLVE-BLOCK-END
