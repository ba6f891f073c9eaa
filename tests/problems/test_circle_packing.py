"""The built-in circle_packing problem: verifier, LP helper, baselines and README."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.problems.readme_scores import (
    Scores,
    assert_readme_matches,
    load_evaluator,
    problem_dir,
    score_programs,
)
from tests.problems.readme_scores import load_module as _load

PROBLEM = problem_dir("circle_packing")
INITIAL = PROBLEM / "initial_program.py"
TOLERANCE = 0.001

ev = load_evaluator("circle_packing")
program = _load(INITIAL, "_circle_packing_initial")


@pytest.fixture(scope="module")
def scores() -> Scores:
    return score_programs(PROBLEM, ev)


def test_readme_table_matches_computed_scores(scores):
    assert_readme_matches(PROBLEM, scores, TOLERANCE)


def test_baseline_ordering(scores):
    initial = scores["initial_program.py"]
    grid = scores["baselines/grid.py"]
    descent = scores["baselines/penalty_descent.py"]
    for metrics in (initial, grid, descent):
        # no instance distribution: train and test score the same packing
        assert metrics["train"]["combined_score"] == metrics["test"]["combined_score"]
        assert metrics["train"]["tolerance"] == 1e-9 and metrics["test"]["tolerance"] == 0.0
    assert initial["test"]["combined_score"] < grid["test"]["combined_score"]
    assert grid["test"]["combined_score"] < descent["test"]["combined_score"] < ev.BEST_KNOWN
    # the grid with LP radii: 25 circles of 0.1 and one of (sqrt(2) - 1) / 10
    assert grid["test"]["combined_score"] == pytest.approx(2.5 + (math.sqrt(2) - 1) / 10, abs=1e-9)


# ------------------------------------------------------------------ verifier


def _grid() -> tuple[np.ndarray, np.ndarray]:
    """A valid packing: the 5 x 5 grid of radius 0.1 plus a circle in one gap."""
    centers = [(0.1 + 0.2 * i, 0.1 + 0.2 * j) for j in range(5) for i in range(5)]
    centers.append((0.2, 0.2))
    radii = [0.1] * 25 + [0.04]
    return np.array(centers), np.array(radii)


def test_verifier_accepts_valid_packing():
    centers, radii = _grid()
    assert ev.verify_packing(centers, radii) == pytest.approx(2.54)
    assert ev.verify_packing(centers.tolist(), radii.tolist()) == pytest.approx(2.54)
    # 0.1 + 0.2 * i is not exact in binary: without tolerance the grid needs a margin
    with pytest.raises(ev.PackingError, match="overlap"):
        ev.verify_packing(centers, radii, tol=0.0)
    assert ev.verify_packing(centers, radii - 1e-12, tol=0.0) == pytest.approx(2.54)


def test_touching_circles_and_zero_radius_pass_without_tolerance():
    # a 4 x 4 grid of radius 1/8 (exact in binary) touches its neighbours and the sides
    centers = [(0.125 + 0.25 * i, 0.125 + 0.25 * j) for j in range(4) for i in range(4)]
    centers += [(0.0, 0.0), (1.0, 1.0), (0.25, 0.25)] + [(0.5, 0.0)] * 7  # points: radius 0
    radii = [0.125] * 16 + [0.0] * 10
    assert ev.verify_packing(centers, radii, tol=0.0) == 2.0


def _cheat_4_01() -> tuple[np.ndarray, np.ndarray]:
    """26 circles of radius 0.15423 (sum 4.01) stacked in the middle of the square."""
    return np.full((26, 2), 0.5), np.full(26, 4.01 / 26)


def _bad(kind: str) -> tuple[object, object]:
    centers, radii = _grid()
    if kind == "overlap":
        centers[-1] = (0.25, 0.2)
    elif kind == "overlap_1e-6":
        radii[-1] = math.sqrt(0.02) - 0.1 + 1e-6
    elif kind == "left":
        centers[0] = (0.09, 0.1)
    elif kind == "top":
        radii[24] = 0.1 + 1e-6
    elif kind == "outside":
        centers[-1] = (1.5, 0.5)
    elif kind == "negative":
        radii[3] = -0.01
    elif kind == "nan_center":
        centers[5, 1] = np.nan
    elif kind == "inf_radius":
        radii[7] = np.inf
    elif kind == "too_many":
        centers = np.vstack([centers, [(0.4, 0.4)]])
        radii = np.append(radii, 0.01)
    elif kind == "too_few":
        centers, radii = centers[:25], radii[:25]
    elif kind == "radii_column":
        radii = radii[:, None]
    elif kind == "centers_3d":
        centers = np.hstack([centers, np.zeros((26, 1))])
    elif kind == "text":
        radii = ["big"] * 26
    elif kind == "ragged":
        centers = [(0.1, 0.1)] * 25 + [(0.2,)]
    elif kind == "cheat_4_01":
        centers, radii = _cheat_4_01()
    elif kind == "cheat_4_01_spread":
        # the same sum with centres spread on a grid: overlaps and sticks out
        centers = np.array([(0.1 + 0.2 * (k % 5), 0.1 + 0.2 * (k // 5)) for k in range(26)])
        radii = np.full(26, 4.01 / 26)
    return centers, radii


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("overlap", r"circles 1 and 25 overlap: distance 0.1118"),
        ("overlap_1e-6", r"circles \d+ and 25 overlap"),
        ("left", r"circle 0 .* is not inside the unit square"),
        ("top", r"circle 24 .* is not inside the unit square"),
        ("outside", r"circle 25 .* is not inside the unit square"),
        ("negative", r"circle 3 has negative radius -0.01"),
        ("nan_center", r"circle 5 is not finite"),
        ("inf_radius", r"circle 7 is not finite"),
        ("too_many", r"centers has shape \(27, 2\), expected \(26, 2\)"),
        ("too_few", r"centers has shape \(25, 2\), expected \(26, 2\)"),
        ("radii_column", r"radii has shape \(26, 1\), expected \(26,\)"),
        ("centers_3d", r"centers has shape \(26, 3\)"),
        ("text", r"radii is not an array of numbers"),
        ("ragged", r"centers is not an array of numbers"),
        ("cheat_4_01", r"circles 0 and 1 overlap"),
        ("cheat_4_01_spread", r"not inside the unit square|overlap"),
    ],
)
def test_verifier_rejects_invalid_packing(kind, message):
    centers, radii = _bad(kind)
    with pytest.raises(ev.PackingError, match=message):
        ev.verify_packing(centers, radii)


def test_tolerance_is_explicit():
    centers, radii = _grid()
    gap = math.sqrt(0.02) - 0.1  # the largest radius for the circle in the gap
    radii[-1] = gap + 5e-10  # overlaps by 5e-10: inside the training tolerance only
    assert ev.verify_packing(centers, radii, tol=1e-9) == pytest.approx(2.5 + gap)
    with pytest.raises(ev.PackingError, match="overlap"):
        ev.verify_packing(centers, radii, tol=0.0)
    radii[-1] = gap + 2e-9
    with pytest.raises(ev.PackingError, match="overlap"):
        ev.verify_packing(centers, radii, tol=1e-9)


# ------------------------------------------------------------ LP radii helper


def test_max_radii_is_valid_without_tolerance_and_optimal():
    rng = np.random.default_rng(3)
    layouts = [rng.random((26, 2)) for _ in range(5)]
    layouts.append(np.round(rng.random((26, 2)) * 4) / 4)  # coincident points, sides
    for centers in layouts:
        radii = program.max_radii(centers)
        total = ev.verify_packing(centers, radii, tol=0.0)
        # maximal: no circle can grow by more than the 1e-12 safety margin
        dist = np.sqrt(((centers[:, None] - centers[None]) ** 2).sum(-1))
        np.fill_diagonal(dist, np.inf)
        wall = np.minimum(np.minimum(centers[:, 0], 1 - centers[:, 0]),
                          np.minimum(centers[:, 1], 1 - centers[:, 1]))
        room = np.minimum(wall, (dist - radii[None, :]).min(axis=1)) - radii
        assert room.max() < 1e-9
        assert total > 0
    # LP optimum, not just maximal: three points in a row at distance 0.3
    centers = np.tile([0.5, 0.5], (26, 1))
    centers[:3] = [(0.2, 0.5), (0.5, 0.5), (0.8, 0.5)]
    centers[3:] = 0.0  # points in the corner: radius 0
    radii = program.max_radii(centers)
    assert radii[:3] == pytest.approx([0.2, 0.1, 0.2], abs=1e-9)  # 0.5, not 0.45


# ------------------------------------------------------------- bad programs


def _program_with_block(tmp_path: Path, block: str) -> str:
    text = INITIAL.read_text()
    start = text.index("# EVOLVE-BLOCK-START\n") + len("# EVOLVE-BLOCK-START\n")
    end = text.index("# EVOLVE-BLOCK-END")
    path = tmp_path / "candidate.py"
    path.write_text(text[:start] + block + text[end:])
    return str(path)


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ("def place_centers():\n    return np.full((25, 2), 0.5)\n",
         r"place_centers returned shape \(25, 2\), expected \(26, 2\)"),
        ("def place_centers():\n    return np.full((26, 2), np.nan)\n",
         r"place_centers returned a non-finite coordinate"),
        ("def place_centers():\n    raise RuntimeError('boom')\n",
         r"construct_packing raised RuntimeError: boom"),
    ],
)
def test_bad_place_centers_raises(tmp_path, block, message):
    with pytest.raises(ValueError, match=message):
        ev.evaluate(_program_with_block(tmp_path, block))


def _write(tmp_path: Path, body: str) -> str:
    path = tmp_path / "raw.py"
    path.write_text(f"import numpy as np\n\n\ndef construct_packing():\n    {body}\n")
    return str(path)


def test_program_that_bypasses_the_helper_is_checked(tmp_path):
    cheat = "return np.full((26, 2), 0.5), np.full(26, 4.01 / 26)"
    with pytest.raises(ev.PackingError, match="circles 0 and 1 overlap"):
        ev.evaluate(_write(tmp_path, cheat))
    with pytest.raises(ev.PackingError, match="must return \\(centers, radii\\)"):
        ev.evaluate(_write(tmp_path, "return 4.01"))
    with pytest.raises(ev.PackingError, match="radii has shape"):
        ev.evaluate(_write(tmp_path, "return np.full((26, 2), 0.5), np.zeros(27)"))
    # a claimed sum is ignored
    grid = (
        "c = [(0.1 + 0.2 * i, 0.1 + 0.2 * j) for j in range(5) for i in range(5)] + [(0.2, 0.2)]\n"
        "    return np.array(c), np.array([0.1] * 25 + [0.04]), 4.01"
    )
    assert ev.evaluate(_write(tmp_path, grid))["combined_score"] == pytest.approx(2.54)


def test_training_tolerance_does_not_carry_to_test(tmp_path):
    body = (
        "c = [(0.1 + 0.2 * i, 0.1 + 0.2 * j) for j in range(5) for i in range(5)] + [(0.2, 0.2)]\n"
        "    return np.array(c), np.array([0.1] * 25 + [0.02 ** 0.5 - 0.1 + 5e-10])"
    )
    path = _write(tmp_path, body)
    assert ev.evaluate(path)["combined_score"] == pytest.approx(2.5414, abs=1e-4)
    with pytest.raises(ev.PackingError, match="overlap"):
        ev.evaluate_test(path)


def test_program_without_construct_packing_raises(tmp_path):
    path = tmp_path / "empty.py"
    path.write_text("x = 1\n")
    with pytest.raises(ValueError, match="defines no function construct_packing"):
        ev.evaluate(str(path))


# --------------------------------------------------------------------- config


def test_primitives_are_valid_scalar_expressions():
    config = yaml.safe_load((PROBLEM / "config.yaml").read_text())
    primitives = config["mutation"]["primitives"]
    assert primitives
    namespace = {"np": np, "abs": abs, "min": min, "max": max, "x": 0.3, "N_CIRCLES": 26}
    for template in primitives:
        arity = len(set(re.findall(r"\{(\d+)\}", template)))
        value = eval(template.format(*(["x"] * arity)), namespace)  # trusted config text
        assert np.ndim(value) == 0 and math.isfinite(float(value)), template


def test_problem_loads_as_builtin():
    from evoforge.problem.loader import load_problem

    problem = load_problem("circle_packing")
    assert problem.builtin and problem.has_test_split
    assert set(problem.baselines) == {"grid", "penalty_descent"}
    assert problem.config.maximize and problem.config.score_round == 6
    assert problem.warnings == []


# ------------------------------------------------------------ the relax building block


def test_one_constant_mutation_turns_the_descent_on(tmp_path: Path) -> None:
    """RELAX_ROUNDS = 0 leaves the rings; 2 rounds of the in-block descent (one constant
    mutation) reach the penalty_descent baseline's level, as the README says."""
    assert program.RELAX_ROUNDS == 0
    text = INITIAL.read_text()
    assert "RELAX_ROUNDS = 0 " in text
    relaxed = tmp_path / "relaxed.py"
    relaxed.write_text(text.replace("RELAX_ROUNDS = 0 ", "RELAX_ROUNDS = 2 ", 1))
    start = ev.evaluate(str(INITIAL))["combined_score"]
    score = ev.evaluate(str(relaxed))["combined_score"]
    assert start == pytest.approx(2.145, abs=TOLERANCE)
    assert score == pytest.approx(2.591, abs=TOLERANCE)
    assert score > 2.58 > start
