"""Load a problem folder (evoforge's or OpenEvolve's format) or a built-in problem."""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

from evoforge.config import ConfigError, RunConfig, load_config
from evoforge.problem.blocks import BlockError, Template, parse_blocks

PROBLEMS_DIR = Path(__file__).resolve().parent.parent / "problems"
PROGRAM_FILE = "initial_program.py"
EVALUATOR_FILE = "evaluator.py"
CONFIG_FILE = "config.yaml"


class ProblemError(ValueError):
    """A problem folder that cannot be used; the message is one line naming file and fix."""


@dataclass
class Problem:
    """A loaded, validated problem.

    Attributes:
        name: folder name (or built-in name).
        path: the folder.
        template: the initial program cut at its evolve regions.
        config: the run configuration from ``config.yaml`` (defaults if absent).
        evaluator_functions: the evaluator's top-level function names.
        baselines: name -> program path, from the folder's ``baselines/``.
        warnings: config keys that were ignored, one line each.
    """

    name: str
    path: Path
    template: Template
    config: RunConfig
    evaluator_functions: frozenset[str]
    baselines: dict[str, Path] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    builtin: bool = False

    @property
    def initial_program(self) -> str:
        """The initial program's full text."""
        return self.template.source

    @property
    def evaluator_path(self) -> Path:
        """Path of ``evaluator.py``."""
        return self.path / EVALUATOR_FILE

    @property
    def has_test_split(self) -> bool:
        """True when the evaluator scores a held-out split (``evaluate_test``)."""
        return "evaluate_test" in self.evaluator_functions


def builtin_problems() -> dict[str, Path]:
    """Built-in problem name -> folder."""
    if not PROBLEMS_DIR.is_dir():
        return {}
    return {
        p.name: p
        for p in sorted(PROBLEMS_DIR.iterdir())
        if p.is_dir() and (p / PROGRAM_FILE).exists()
    }


def resolve_problem_path(spec: str | Path) -> tuple[Path, bool]:
    """Turn a folder path or a built-in name into a folder; True if built-in."""
    path = Path(spec)
    if path.is_dir():
        return path.resolve(), False
    builtins = builtin_problems()
    if str(spec) in builtins:
        return builtins[str(spec)], True
    known = ", ".join(builtins) or "none"
    raise ProblemError(
        f"{spec}: no such problem folder or built-in problem (built-ins: {known})"
    )


def _parse(path: Path, what: str) -> ast.Module:
    try:
        text = path.read_text()
    except UnicodeDecodeError:
        raise ProblemError(f"{path}: is not UTF-8 text; save it as UTF-8") from None
    try:
        return ast.parse(text, filename=str(path))
    except SyntaxError as exc:
        where = f"line {exc.lineno}: " if exc.lineno else ""
        raise ProblemError(f"{path}: {where}{exc.msg}; fix the syntax of the {what}") from None
    except ValueError as exc:  # e.g. NUL bytes
        raise ProblemError(f"{path}: {exc}; fix the {what}") from None


def _top_level_names(tree: ast.Module) -> frozenset[str]:
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.ImportFrom | ast.Import):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return frozenset(names)


def load_problem(spec: str | Path) -> Problem:
    """Load and validate a problem folder or built-in problem.

    Raises:
        ProblemError: with a one-line message naming the file and the fix.
    """
    path, builtin = resolve_problem_path(spec)
    program_path = path / PROGRAM_FILE
    evaluator_path = path / EVALUATOR_FILE
    for required, role in ((program_path, "the starting program"),
                           (evaluator_path, "evaluate(program_path)")):
        if not required.is_file():
            raise ProblemError(f"{required}: missing; add {required.name} with {role}")
    _parse(program_path, "initial program")
    try:
        template = parse_blocks(program_path.read_text())
    except BlockError as exc:
        raise ProblemError(f"{program_path}: {exc}") from None
    functions = _top_level_names(_parse(evaluator_path, "evaluator"))
    if "evaluate" not in functions:
        raise ProblemError(
            f"{evaluator_path}: defines no 'evaluate'; add def evaluate(program_path) "
            "returning a metrics dict"
        )
    warnings: list[str] = []
    try:
        config = load_config(path / CONFIG_FILE, warnings)
    except ConfigError as exc:
        raise ProblemError(str(exc)) from None
    baselines_dir = path / "baselines"
    baselines = (
        {p.stem: p for p in sorted(baselines_dir.glob("*.py")) if not p.name.startswith("_")}
        if baselines_dir.is_dir()
        else {}
    )
    return Problem(
        name=path.name,
        path=path,
        template=template,
        config=config,
        evaluator_functions=functions,
        baselines=baselines,
        warnings=warnings,
        builtin=builtin,
    )
