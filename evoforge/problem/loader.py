"""Load a problem folder (evoforge's or OpenEvolve's format) or a built-in problem."""

from __future__ import annotations

import ast
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from evoforge.config import ConfigError, RunConfig, load_config
from evoforge.problem.blocks import (
    END_MARKER,
    START_MARKER,
    BlockError,
    Template,
    parse_blocks,
    whole_file,
)

PROBLEMS_DIR = Path(__file__).resolve().parent.parent / "problems"
PROGRAM_FILE = "initial_program.py"
EVALUATOR_FILE = "evaluator.py"
CONFIG_FILE = "config.yaml"
# other names OpenEvolve's examples use, tried in order when the standard one is absent
_PROGRAM_STEMS = ("initial_program", "init_program", "initial_content")
_CONFIG_NAMES = ("config.yaml", "config.yml")
# suffix -> language, for programs that are not Python
LANGUAGES = {".py": "python", ".rs": "rust", ".r": "r", ".R": "r", ".c": "c", ".cpp": "cpp",
             ".cc": "cpp", ".h": "c", ".js": "javascript", ".ts": "typescript", ".go": "go",
             ".java": "java", ".jl": "julia", ".lua": "lua", ".sh": "bash", ".txt": "text",
             ".md": "text", ".mlir": "mlir", ".metal": "metal", ".cu": "cuda", ".hs": "haskell",
             ".sql": "sql", ".m": "matlab", ".swift": "swift", ".kt": "kotlin", ".rb": "ruby"}


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
        builtin: True for a built-in problem.
        program_path: the initial program's file.
        evaluator_file: the evaluator's file.
        config_path: the config file, or None when there is none.
        language: the program's language (``python``, ``rust``, ...).
        file_suffix: suffix of the file each candidate is written to (``.py``, ``.rs``).
    """

    name: str
    path: Path
    template: Template
    config: RunConfig
    evaluator_functions: frozenset[str]
    baselines: dict[str, Path] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    builtin: bool = False
    program_path: Path = Path(PROGRAM_FILE)
    evaluator_file: Path | None = None
    config_path: Path | None = None
    language: str = "python"
    file_suffix: str = ".py"

    @property
    def initial_program(self) -> str:
        """The initial program's full text."""
        return self.template.source

    @property
    def evaluator_path(self) -> Path:
        """Path of the evaluator (``evaluator.py`` unless named otherwise)."""
        return self.evaluator_file or self.path / EVALUATOR_FILE

    @property
    def config_name(self) -> str:
        """The config file's name for messages (``config.yaml`` when there is none)."""
        return self.config_path.name if self.config_path is not None else CONFIG_FILE

    @property
    def is_python(self) -> bool:
        """True when candidates are Python programs (model-free operators apply)."""
        return self.language == "python"

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


def _find_config(path: Path) -> Path | None:
    """``config.yaml`` (or ``.yml``); else the only ``config*.yaml``; else the first."""
    for name in _CONFIG_NAMES:
        if (path / name).is_file():
            return path / name
    found = sorted(p for p in path.glob("config*.y*ml") if p.is_file())
    return found[0] if found else None


def _find_program(path: Path, suffix: str | None) -> Path | None:
    """The initial program: ``initial_program.<suffix>``, or OpenEvolve's other names."""
    for stem in _PROGRAM_STEMS:
        if suffix and (path / f"{stem}{suffix}").is_file():
            return path / f"{stem}{suffix}"
        found = sorted(p for p in path.glob(f"{stem}.*") if p.is_file())
        if found:
            return found[0]
    # OpenEvolve takes any file: initial_prompt.txt, initial_content_stub.txt, ...
    others = sorted(p for p in [*path.glob("initial_*.*"), *path.glob("init_*.*")]
                    if p.is_file() and p.suffix not in (".json", ".md", ".png", ".yaml"))
    return others[0] if len(others) == 1 else None


def _find_evaluator(path: Path) -> Path:
    """``evaluator.py``, else the only ``evaluator*.py`` (OpenEvolve's ``evaluator_stub.py``)."""
    if (path / EVALUATOR_FILE).is_file():
        return path / EVALUATOR_FILE
    found = sorted(p for p in path.glob("evaluator*.py") if p.is_file())
    return found[0] if len(found) == 1 else path / EVALUATOR_FILE


def _template(program_path: Path, text: str) -> Template:
    """The program cut at its markers; without markers the whole file evolves."""
    if START_MARKER not in text and END_MARKER not in text:
        # OpenEvolve evolves the whole file when it has no EVOLVE-BLOCK markers
        return whole_file(text)
    try:
        return parse_blocks(text)
    except BlockError as exc:
        if str(exc).startswith("no evolve region"):  # the words only, in a string
            return whole_file(text)
        raise ProblemError(f"{program_path}: {exc}") from None


def load_problem(spec: str | Path, *, program: Path | None = None,
                 evaluator: Path | None = None, config: Path | None = None) -> Problem:
    """Load and validate a problem folder or built-in problem.

    Args:
        spec: a folder or a built-in name; ignored when ``program`` is given.
        program: the initial program's file (OpenEvolve's ``openevolve-run
            initial_program.py evaluator.py`` form); the folder is its parent.
        evaluator: the evaluator's file (default: found in the folder).
        config: the config file (default: ``config.yaml`` or the like in the folder).

    Raises:
        ProblemError: with a one-line message naming the file and the fix.
    """
    if program is not None:
        if not program.is_file():
            raise ProblemError(f"{program}: no such file; give the initial program's path")
        program = program.resolve()
        path, builtin = program.parent, False
    else:
        path, builtin = resolve_problem_path(spec)
    if config is not None:
        if not config.is_file():
            raise ProblemError(f"{config}: no such config file")
        config_path: Path | None = config.resolve()
    else:
        config_path = _find_config(path)
    warnings: list[str] = []
    try:
        run_config = load_config(config_path, warnings)
    except ConfigError as exc:
        raise ProblemError(str(exc)) from None
    suffix = run_config.file_suffix
    if suffix and not suffix.startswith("."):
        suffix = "." + suffix
    program_path = program or _find_program(path, suffix)
    evaluator_path = (evaluator.resolve() if evaluator is not None
                      else _find_evaluator(path))
    if program_path is None:
        raise ProblemError(f"{path / PROGRAM_FILE}: missing; add {PROGRAM_FILE} (or "
                           "initial_program.<suffix>) with the starting program")
    if not evaluator_path.is_file():
        raise ProblemError(f"{evaluator_path}: missing; add {evaluator_path.name} with "
                           "evaluate(program_path)")
    suffix = suffix or program_path.suffix or ".py"
    language = (run_config.language or LANGUAGES.get(suffix, suffix.lstrip("."))).lower()
    try:
        text = program_path.read_text()
    except UnicodeDecodeError:
        raise ProblemError(f"{program_path}: is not UTF-8 text; save it as UTF-8") from None
    if language == "python":
        _parse(program_path, "initial program")
    template = dataclasses.replace(_template(program_path, text), language=language)
    functions = _top_level_names(_parse(evaluator_path, "evaluator"))
    if "evaluate" not in functions:
        raise ProblemError(
            f"{evaluator_path}: defines no 'evaluate'; add def evaluate(program_path) "
            "returning a metrics dict"
        )
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
        config=run_config,
        evaluator_functions=functions,
        baselines=baselines,
        warnings=warnings,
        builtin=builtin,
        program_path=program_path,
        evaluator_file=evaluator_path,
        config_path=config_path,
        language=language,
        file_suffix=suffix,
    )
