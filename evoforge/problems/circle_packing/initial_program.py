"""Circle packing: 26 disjoint circles in the unit square, largest sum of radii.

The evaluator calls ``construct_packing()``, which returns ``(centers, radii)``:
a (26, 2) array of centres and a (26,) array of radii. Only the placement of the
centres is evolved (``place_centers``); the fixed helper ``max_radii`` then gives
those centres the radii with the largest possible sum (a small linear program,
solved exactly) and shrinks them by 1e-12 so that every constraint holds in
floating point. Centres outside the square are clipped onto its sides first
(such a circle gets radius 0). ``place_centers`` must return 26 finite points.
"""

import numpy as np

N_CIRCLES = 26


# EVOLVE-BLOCK-START
def place_centers() -> np.ndarray:
    """One circle in the middle, a ring of 8 around it and a ring of 17 outside that."""
    inner_count = 8
    inner_radius = 0.25
    inner_phase = 0.0
    outer_radius = 0.45
    outer_phase = 0.0
    outer_shape = 2.0  # 2 is a circle; larger values bend the ring towards the square
    centers = [(0.5, 0.5)]
    for k in range(inner_count):
        angle = inner_phase + 2 * np.pi * k / inner_count
        centers.append((0.5 + inner_radius * np.cos(angle), 0.5 + inner_radius * np.sin(angle)))
    outer_count = N_CIRCLES - 1 - inner_count
    for k in range(outer_count):
        angle = outer_phase + 2 * np.pi * k / outer_count
        c, s = np.cos(angle), np.sin(angle)
        scale = outer_radius / (np.abs(c) ** outer_shape + np.abs(s) ** outer_shape) ** (
            1 / outer_shape
        )
        centers.append((0.5 + scale * c, 0.5 + scale * s))
    return np.array(centers)
# EVOLVE-BLOCK-END


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
