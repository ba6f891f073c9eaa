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


def out_neighbours(n, src, dst):
    """Adjacency lists: out[u] holds the targets of u's out-edges."""
    out = [[] for _ in range(n)]
    for u, v in zip(src.tolist(), dst.tolist(), strict=True):
        out[u].append(v)
    return out


def ppr(n, src, dst, personalization, alpha):
    """Plain-Python power iteration over adjacency lists, starting from s."""
    out = out_neighbours(n, src, dst)
    dangling = [u for u in range(n) if not out[u]]
    s = personalization.tolist()
    x = list(s)
    for _ in range(MAX_ITER):
        restart = alpha * sum(x[u] for u in dangling) + (1 - alpha)
        y = [restart * s_u for s_u in s]
        for u in range(n):
            targets = out[u]
            if targets:
                share = alpha * x[u] / len(targets)
                for v in targets:
                    y[v] += share
        change = sum(abs(a - b) for a, b in zip(y, x, strict=True))
        x = y
        if change < 10.0 ** -TOL_DIGITS:
            break
    return x
# EVOLVE-BLOCK-END
