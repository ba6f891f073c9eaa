"""Problems: folders with an initial program, an evaluator and an optional config.

The names below load on first use: an evaluation worker imports ``evoforge.problem.kit``
without the loader and its config models, so the process it forks for every candidate
is smaller and forks faster (issue 11).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from evoforge.problem.blocks import BlockError, Template, extract_regions, parse_blocks
    from evoforge.problem.loader import (
        Problem,
        ProblemError,
        builtin_problems,
        load_problem,
        resolve_problem_path,
    )

_HOMES = {
    "BlockError": "blocks", "Template": "blocks", "extract_regions": "blocks",
    "parse_blocks": "blocks", "Problem": "loader", "ProblemError": "loader",
    "builtin_problems": "loader", "load_problem": "loader", "resolve_problem_path": "loader",
}

__all__ = [
    "BlockError",
    "Problem",
    "ProblemError",
    "Template",
    "builtin_problems",
    "extract_regions",
    "load_problem",
    "parse_blocks",
    "resolve_problem_path",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'evoforge.problem' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"evoforge.problem.{home}"), name)
    globals()[name] = value
    return value
