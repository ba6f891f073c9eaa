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
def max_coverage(sets, n_elements, k):
    """Vectorised greedy: all marginal gains of a step in one numpy pass.

    The sets are concatenated once into one array of memberships; each step
    gathers the uncovered flags of all memberships and sums them per set with
    np.add.reduceat, then takes the first set with the largest gain (ties to the
    lowest id, as in the naive greedy).
    """
    sizes = np.fromiter((len(members) for members in sets), dtype=np.int64, count=len(sets))
    flat = np.concatenate(sets)
    starts = np.zeros(len(sets), dtype=np.int64)
    np.cumsum(sizes[:-1], out=starts[1:])
    uncovered = np.ones(n_elements, dtype=np.int64)
    chosen = []
    for _ in range(k):
        gains = np.add.reduceat(uncovered[flat], starts)
        gains[sizes == 0] = 0  # reduceat reads the next set's first entry for an empty set
        best = int(np.argmax(gains))
        chosen.append(best)
        uncovered[sets[best]] = 0
    return chosen
# EVOLVE-BLOCK-END
