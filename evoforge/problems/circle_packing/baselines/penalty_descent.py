"""Circle packing: 26 disjoint circles in the unit square, largest sum of radii.

The evaluator calls ``construct_packing()``, which returns ``(centers, radii)``:
a (26, 2) array of centres and a (26,) array of radii. Only the placement of the
centres is evolved (``place_centers``); the fixed helper ``max_radii`` then gives
those centres the radii with the largest possible sum (a small linear program,
solved exactly) and shrinks them by 1e-12 so that every constraint holds in
floating point. Centres outside the square are clipped onto its sides first
(such a circle gets radius 0). ``place_centers`` must return 26 finite points.
The fixed helper ``relax(centers, rounds, rate)`` is a building block the evolved
code may call: a penalty descent that moves given centres apart (no step at 0 rounds).
"""

import numpy as np

N_CIRCLES = 26


# EVOLVE-BLOCK-START
def place_centers() -> np.ndarray:
    """Penalty descent from the 5 x 5 grid (plus one circle in a gap).

    Centres and radii move together by Adam on ``-sum(r) + mu * (overlap^2 + wall
    violation^2)`` with ``mu`` growing geometrically from 10 to 1e5, from the grid
    jittered with a fixed seed; only the centres are kept (``max_radii`` then picks
    the radii). Deterministic.
    """
    rng = np.random.default_rng(0)
    grid = [(0.1 + 0.2 * i, 0.1 + 0.2 * j) for j in range(5) for i in range(5)] + [(0.2, 0.2)]
    # 2,000 Adam steps at rate 0.003: the problem's own relax(), the same descent
    return relax(np.array(grid) + rng.normal(0.0, 0.01, (N_CIRCLES, 2)), rounds=2, rate=0.003)
# EVOLVE-BLOCK-END


def relax(centers: np.ndarray, rounds: int, rate: float) -> np.ndarray:
    """Penalty descent from ``centers``: ``rounds * 1000`` Adam steps (none at 0).

    Centres and radii (from 0.08) move together on ``-sum(r) + mu * (overlap^2 +
    wall violation^2)`` with ``mu`` growing geometrically from 10 to 1e5; only the
    centres are kept (``max_radii`` then picks the radii). Deterministic.
    """
    steps = 1000 * rounds
    x = np.concatenate([np.asarray(centers, dtype=float).ravel(), np.full(N_CIRCLES, 0.08)])
    first, second = np.zeros_like(x), np.zeros_like(x)
    iu, ju = np.triu_indices(N_CIRCLES, 1)
    for t in range(1, steps + 1):
        mu = 10.0 * 1e4 ** (t / steps)
        c = x[: 2 * N_CIRCLES].reshape(N_CIRCLES, 2)
        r = x[2 * N_CIRCLES :]
        delta = c[iu] - c[ju]
        dist = np.sqrt((delta**2).sum(axis=1)) + 1e-12
        push = 2 * mu * np.maximum(r[iu] + r[ju] - dist, 0.0)
        grad_r = -np.ones(N_CIRCLES)
        grad_c = np.zeros((N_CIRCLES, 2))
        np.add.at(grad_r, iu, push)
        np.add.at(grad_r, ju, push)
        unit = delta / dist[:, None]
        np.add.at(grad_c, iu, -push[:, None] * unit)
        np.add.at(grad_c, ju, push[:, None] * unit)
        low = np.maximum(r[:, None] - c, 0.0)
        high = np.maximum(c + r[:, None] - 1, 0.0)
        grad_r += 2 * mu * (low + high).sum(axis=1)
        grad_c += 2 * mu * (high - low)
        grad = np.concatenate([grad_c.ravel(), grad_r])
        first = 0.9 * first + 0.1 * grad
        second = 0.999 * second + 0.001 * grad**2
        step = (first / (1 - 0.9**t)) / (np.sqrt(second / (1 - 0.999**t)) + 1e-12)
        x -= rate * (1 - 0.9 * t / steps) * step
        x[2 * N_CIRCLES :] = np.maximum(x[2 * N_CIRCLES :], 0.0)
    return x[: 2 * N_CIRCLES].reshape(N_CIRCLES, 2)


def max_radii(centers: np.ndarray) -> np.ndarray:
    """The radii with the largest sum for fixed centres in the unit square.

    Solves the linear program ``max sum(r)`` subject to ``r_i + r_j <= |c_i - c_j|``,
    ``r_i <= distance from c_i to the nearest side`` and ``r >= 0`` with a dense
    simplex (Bland's rule, so it cannot cycle), then shrinks every radius by 1e-12
    so the packing passes a check with no tolerance at all.
    """
    c = np.asarray(centers, dtype=float)
    n = len(c)
    wall = np.minimum(np.minimum(c[:, 0], 1 - c[:, 0]), np.minimum(c[:, 1], 1 - c[:, 1]))
    dist = np.sqrt(((c[:, None, :] - c[None, :, :]) ** 2).sum(axis=-1))
    iu, ju = np.triu_indices(n, 1)
    m = n + len(iu)
    # tableau: constraint rows [A | I | b], objective row [-1 ... | 0 | 0]
    tab = np.zeros((m + 1, n + m + 1))
    tab[np.arange(n), np.arange(n)] = 1.0
    pair_rows = n + np.arange(len(iu))
    tab[pair_rows, iu] = 1.0
    tab[pair_rows, ju] = 1.0
    tab[np.arange(m), n + np.arange(m)] = 1.0
    tab[:m, -1] = np.concatenate([wall, dist[iu, ju]])
    tab[m, :n] = -1.0
    basis = n + np.arange(m)
    for _ in range(20 * m):
        entering = np.flatnonzero(tab[m, :-1] < -1e-12)
        if len(entering) == 0:
            break
        e = entering[0]
        column = tab[:m, e]
        rows = np.flatnonzero(column > 1e-12)
        ratios = tab[rows, -1] / column[rows]
        ties = rows[ratios <= ratios.min() + 1e-15]
        leave = ties[np.argmin(basis[ties])]
        tab[leave] /= tab[leave, e]
        factors = tab[:, e].copy()
        factors[leave] = 0.0
        tab -= np.outer(factors, tab[leave])
        tab[:m, -1] = np.maximum(tab[:m, -1], 0.0)
        basis[leave] = e
    values = np.zeros(n + m)
    values[basis] = tab[:m, -1]
    radii = np.clip(values[:n], 0.0, wall)
    # undo any rounding error of the pivots: scale each circle so all its pairs fit
    total = radii[:, None] + radii[None, :]
    ratio = np.where(total > dist, dist / np.where(total > 0, total, 1.0), 1.0)
    np.fill_diagonal(ratio, 1.0)
    radii = radii * ratio.min(axis=1)
    return np.maximum(radii - 1e-12, 0.0)


def construct_packing() -> tuple[np.ndarray, np.ndarray]:
    """The packing the evaluator scores: (centers (26, 2), radii (26,))."""
    centers = np.asarray(place_centers(), dtype=float)
    if centers.shape != (N_CIRCLES, 2):
        raise ValueError(f"place_centers returned shape {centers.shape}, expected (26, 2)")
    if not np.isfinite(centers).all():
        raise ValueError("place_centers returned a non-finite coordinate")
    centers = np.clip(centers, 0.0, 1.0)
    return centers, max_radii(centers)
