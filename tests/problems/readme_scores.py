"""Helpers the built-in problems' tests share.

They load a problem's evaluator, score its programs, and check the baseline table in its
README against those scores. A plain module, not a conftest: the test modules import it as
``tests.problems.readme_scores``; pytest's importlib import mode makes ``tests`` and
``tests.problems`` importable for them (neither folder has an ``__init__.py``).
Its checks carry their own messages, as pytest does not rewrite the asserts of a module
that is not a test module or a conftest.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest

PROBLEMS = Path(__file__).resolve().parents[2] / "evoforge" / "problems"

Scores = dict[str, dict[str, dict[str, float]]]
"""Program path (relative to the problem folder) -> split ("train", "test") -> metrics."""

# a README baseline row: | `baselines/x.py` | train score | test score | ...
_ROW = re.compile(r"^\|\s*`([^`]+\.py)`\s*\|\s*(-?[\d.]+)\s*\|\s*(-?[\d.]+)\s*\|")


def problem_dir(name: str) -> Path:
    """The folder of a built-in problem.

    Args:
        name: The problem's name, e.g. ``"bin_packing"``.

    Returns:
        ``evoforge/problems/<name>`` in this checkout.
    """
    return PROBLEMS / name


def load_module(path: Path, name: str) -> ModuleType:
    """Import a Python file by its path.

    The module is not put in ``sys.modules``, as a harness loading it by path might not
    either.

    Args:
        path: The ``.py`` file.
        name: The module's ``__name__``.

    Returns:
        The executed module.
    """
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_evaluator(name: str) -> ModuleType:
    """Import a built-in problem's ``evaluator.py`` as ``_<name>_evaluator``.

    Args:
        name: The problem's name.

    Returns:
        The evaluator module (not put in ``sys.modules``).
    """
    return load_module(problem_dir(name) / "evaluator.py", f"_{name}_evaluator")


def program_names(problem: Path) -> list[str]:
    """The programs a problem ships: its initial program, then its baselines by name.

    Args:
        problem: The problem folder.

    Returns:
        Paths relative to ``problem``: ``initial_program.py``, ``baselines/<x>.py``, ...
    """
    return ["initial_program.py"] + [
        f"baselines/{p.name}" for p in sorted((problem / "baselines").glob("*.py"))
    ]


def score_programs(
    problem: Path, evaluator: ModuleType, programs: list[str] | None = None
) -> Scores:
    """Score programs on the training split and the test split.

    Each program is scored by the evaluator's ``evaluate`` (train) and ``evaluate_test``
    (test).

    Args:
        problem: The problem folder.
        evaluator: The problem's evaluator module.
        programs: Paths relative to ``problem``; by default :func:`program_names`.

    Returns:
        Program path -> {"train": metrics, "test": metrics}.
    """
    if programs is None:
        programs = program_names(problem)
    return {
        name: {
            "train": evaluator.evaluate(str(problem / name)),
            "test": evaluator.evaluate_test(str(problem / name)),
        }
        for name in programs
    }


def readme_table(problem: Path) -> dict[str, tuple[float, float]]:
    """The baseline rows of a problem's README.

    A row is a table line that starts with a program path in backticks and two numbers,
    e.g. ``| `baselines/x.py` | -1.25 | -1.5 |``; other lines are passed over.

    Args:
        problem: The problem folder.

    Returns:
        Program path -> (train score, test score), as the README states them.
    """
    rows: dict[str, tuple[float, float]] = {}
    for line in (problem / "README.md").read_text().splitlines():
        match = _ROW.match(line)
        if match:
            rows[match.group(1)] = (float(match.group(2)), float(match.group(3)))
    return rows


def assert_readme_matches(problem: Path, scores: Scores, tolerance: float) -> None:
    """Check that a problem's README baseline table states the computed scores.

    Args:
        problem: The problem folder.
        scores: The computed scores (:func:`score_programs`).
        tolerance: The largest absolute difference allowed between a README number and
            the computed ``combined_score``.

    Raises:
        AssertionError: The table does not list exactly the scored programs, or a number
            in it differs from the computed score by more than ``tolerance``.
    """
    table = readme_table(problem)
    assert set(table) == set(scores), (
        "README baseline table must list every program: "
        f"missing {sorted(set(scores) - set(table))}, extra {sorted(set(table) - set(scores))}"
    )
    for name, stated in table.items():
        for split, readme in zip(("train", "test"), stated, strict=True):
            computed = scores[name][split]["combined_score"]
            assert computed == pytest.approx(readme, abs=tolerance), (
                f"{name} ({split}): computed {computed}, README states {readme}"
            )
