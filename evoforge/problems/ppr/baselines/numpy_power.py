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
TOL_DIGITS = 10  # stop when an iteration changes x by less than 10**-TOL_DIGITS (L1)
MAX_ITER = 100


def ppr(n, src, dst, personalization, alpha):
    """Power iteration on the edge list: gather x[src], scatter-add with np.bincount."""
    out_degree = np.bincount(src, minlength=n)
    dangling = out_degree == 0
    weight = 1.0 / np.maximum(out_degree, 1)[src]  # 1 / out-degree of each edge's source
    s = personalization
    x = s.copy()
    tol = 10.0 ** -TOL_DIGITS
    for _ in range(MAX_ITER):
        y = alpha * np.bincount(dst, weights=x[src] * weight, minlength=n)
        y += (alpha * x[dangling].sum() + (1.0 - alpha)) * s
        change = np.abs(y - x).sum()
        x = y
        if change < tol:
            break
    return x
# EVOLVE-BLOCK-END
