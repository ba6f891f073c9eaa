"""Problems: folders with an initial program, an evaluator and an optional config."""

from evoforge.problem.blocks import BlockError, Template, extract_regions, parse_blocks
from evoforge.problem.loader import (
    Problem,
    ProblemError,
    builtin_problems,
    load_problem,
    resolve_problem_path,
)

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
