"""Personalised PageRank: return the PPR vector of a directed graph, fast.

``ppr(n, src, dst, personalization, alpha)`` gets a graph with nodes 0..n-1 and
edges ``src[k] -> dst[k]`` (int64 numpy arrays, random order, no self-loops, no
parallel edges), the personalization vector ``s`` (float64, length n,
non-negative, sums to 1) and the damping factor ``alpha`` (0.85). It returns the
n values x solving

    x = alpha * (P^T x + (mass on dangling nodes) * s) + (1 - alpha) * s

where P moves to a uniformly chosen out-neighbour and a node without out-edges
(dangling) sends its mass back to s. Any answer within L1 distance 1e-4 of the
exact vector is correct; the score is speed relative to a numpy reference.
"""

import numpy as np  # noqa: F401  (available to the evolved code)

# EVOLVE-BLOCK-START
TARGET_ERROR = 2e-5  # L1 error guaranteed at the stop (the check allows 1e-4)
MAX_ITER = 100
SPARSE_STEPS = 3  # first steps from a sparse s only touch the edges of nodes with mass


def ppr(n, src, dst, personalization, alpha):
    """Power iteration that stops as soon as the L1 error provably is below TARGET_ERROR.

    One step is an alpha-contraction in L1, so after a step that moved x by d
    the remaining error is at most d * alpha / (1 - alpha).
    """
    out_degree = np.bincount(src, minlength=n)
    dangling = np.flatnonzero(out_degree == 0)
    weight = alpha / out_degree[src]  # alpha / out-degree of each edge's source
    s = personalization
    restart = 1.0 - alpha
    tol = TARGET_ERROR * (1.0 - alpha) / alpha
    x = s
    for step in range(MAX_ITER):
        if step < SPARSE_STEPS:
            live = np.flatnonzero(x[src])  # edges whose source holds mass
            y = np.bincount(dst[live], weights=x[src[live]] * weight[live], minlength=n)
        else:
            y = np.bincount(dst, weights=x[src] * weight, minlength=n)
        y += (alpha * x[dangling].sum() + restart) * s
        change = np.abs(y - x).sum()
        x = y
        if change < tol:
            break
    return x
# EVOLVE-BLOCK-END
