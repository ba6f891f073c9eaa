"""Evaluator for packing 26 circles in the unit square with the largest sum of radii.

The program's ``construct_packing()`` returns ``(centers, radii)`` (a third
element, e.g. a claimed sum, is allowed and ignored). ``verify_packing`` checks
the packing from scratch in plain Python floats and raises ``PackingError``
naming the first problem: exactly 26 circles, finite numbers, radii >= 0, every
circle inside the square (``x - r >= -tol``, ``x + r <= 1 + tol``, same for
``y``) and no two circles overlapping (``dist(c_i, c_j) >= r_i + r_j - tol``).

``combined_score`` is the sum of the radii (higher is better; the best known
value is about 2.6359). There is no instance distribution: ``evaluate`` and
``evaluate_test`` score the same single packing, the training check with the
tolerance ``tol = 1e-9`` and the test check with ``tol = 0`` (no slack at all).
"""

from collections.abc import Sequence
from math import isfinite, sqrt
from pathlib import Path
from typing import Any

import numpy as np

from evoforge.problem import kit

N_CIRCLES = 26
TRAIN_TOLERANCE = 1e-9
TEST_TOLERANCE = 0.0
BEST_KNOWN = 2.6359  # AlphaEvolve (2025) 2.63586; later reports about 2.63598


class PackingError(ValueError):
    """A packing that is not a valid solution."""


def _as_floats(value: Any, what: str, shape: tuple[int, ...]) -> list[Any]:
    """``value`` as nested lists of Python floats of exactly ``shape``."""
    try:
        array = np.array(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise PackingError(f"{what} is not an array of numbers ({exc})") from None
    if array.shape != shape:
        raise PackingError(
            f"{what} has shape {array.shape}, expected {shape} ({N_CIRCLES} circles)"
        )
    return array.tolist()


def verify_packing(
    centers: Sequence[Sequence[float]] | np.ndarray,
    radii: Sequence[float] | np.ndarray,
    tol: float = TRAIN_TOLERANCE,
) -> float:
    """Check that the circles are a valid packing; return the sum of the radii.

    Args:
        centers: the 26 centres, shape (26, 2).
        radii: the 26 radii, shape (26,); a radius of 0 (a point) is allowed.
        tol: slack allowed in the containment and non-overlap checks.

    Raises:
        PackingError: naming the first problem found.
    """
    points = _as_floats(centers, "centers", (N_CIRCLES, 2))
    sizes = _as_floats(radii, "radii", (N_CIRCLES,))
    for i in range(N_CIRCLES):
        x, y = points[i]
        r = sizes[i]
        if not (isfinite(x) and isfinite(y) and isfinite(r)):
            raise PackingError(f"circle {i} is not finite: center ({x}, {y}), radius {r}")
        if r < 0:
            raise PackingError(f"circle {i} has negative radius {r}")
        if x - r < -tol or x + r > 1 + tol or y - r < -tol or y + r > 1 + tol:
            raise PackingError(
                f"circle {i} (center ({x:.12g}, {y:.12g}), radius {r:.12g}) "
                f"is not inside the unit square (tolerance {tol:g})"
            )
    for i in range(N_CIRCLES):
        xi, yi = points[i]
        for j in range(i + 1, N_CIRCLES):
            dx = xi - points[j][0]
            dy = yi - points[j][1]
            dist = sqrt(dx * dx + dy * dy)
            if dist < sizes[i] + sizes[j] - tol:
                raise PackingError(
                    f"circles {i} and {j} overlap: distance {dist:.12g} < "
                    f"r{i} + r{j} = {sizes[i] + sizes[j]:.12g} (tolerance {tol:g})"
                )
    total = 0.0
    for r in sizes:
        total += r
    return total


def load_program(program_path: str | Path) -> kit.Program:
    """Start the program at ``program_path`` in its own process (see evoforge.problem.kit).

    Calling the result calls its ``construct_packing()`` there.
    """
    return kit.load_program(program_path, {"construct_packing": "construct_packing()"})


def _run(program_path: str, tol: float) -> kit.Scores:
    """Build the packing in the program's process; check and score it here.

    ``instance_scores`` is the one instance's sum of radii.
    """
    with load_program(program_path) as construct:
        return _check(construct, tol)


def _check(construct: kit.Program, tol: float) -> kit.Scores:
    try:
        result = construct()
    except kit.CandidateError as exc:
        raise ValueError(f"construct_packing raised {type(exc).__name__}: {exc}") from exc
    if not isinstance(result, tuple | list) or len(result) not in (2, 3):
        raise PackingError(
            "construct_packing must return (centers, radii), got "
            f"{type(result).__name__}" + (f" of length {len(result)}"
                                          if isinstance(result, tuple | list) else "")
        )
    centers, radii = result[0], result[1]
    total = verify_packing(centers, radii, tol)
    sizes = np.array(radii, dtype=np.float64)
    return kit.Scores({
        "combined_score": total,
        "sum_radii": total,
        "ratio_to_best_known": total / BEST_KNOWN,
        "min_radius": float(sizes.min()),
        "max_radius": float(sizes.max()),
        "tolerance": tol,
    }, {"instance_scores": [total]})


def evaluate(program_path: str) -> kit.Scores:
    """Training score: the sum of radii, checked with tolerance 1e-9."""
    return _run(program_path, TRAIN_TOLERANCE)


def evaluate_test(program_path: str) -> kit.Scores:
    """Test score: the same packing, checked with no tolerance at all."""
    return _run(program_path, TEST_TOLERANCE)


# Functional hashing (config.yaml probe_inputs: one call without arguments) calls
# place_centers by name, whatever the evolved block defines first.
PROBE_FUNCTION = "place_centers"
