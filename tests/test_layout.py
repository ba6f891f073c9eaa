"""Size limits on the package's source (issue 16): no class over 400 lines, no module over 600.

Large classes and modules are where responsibilities pile up unnoticed; the limits make a
split a deliberate decision instead of an afterthought. The walk covers every ``.py`` file
under ``evoforge/``, the built-in problem folders' evaluators and baselines included.
"""

from __future__ import annotations

import ast
from pathlib import Path

import evoforge

PACKAGE = Path(evoforge.__file__).resolve().parent
MAX_CLASS_LINES = 400
MAX_MODULE_LINES = 600


def _oversized_text(text: str, where: str) -> list[str]:
    """What in the source ``text`` of ``where`` breaks a limit, one line each."""
    found = []
    lines = len(text.splitlines())
    if lines > MAX_MODULE_LINES:
        found.append(f"{where}: module has {lines} lines (limit {MAX_MODULE_LINES})")
    for node in ast.walk(ast.parse(text, filename=where)):
        if isinstance(node, ast.ClassDef):
            assert node.end_lineno is not None
            size = node.end_lineno - node.lineno + 1
            if size > MAX_CLASS_LINES:
                found.append(f"{where}: class {node.name} has {size} lines "
                             f"(limit {MAX_CLASS_LINES})")
    return found


def _oversized(path: Path) -> list[str]:
    return _oversized_text(path.read_text(encoding="utf-8"),
                           path.relative_to(PACKAGE).as_posix())


def _sources() -> list[Path]:
    paths = sorted(PACKAGE.rglob("*.py"))
    assert len(paths) > 50  # the walk found the package, problem folders included
    assert any(p.parent.parent.name == "problems" for p in paths)
    return paths


def test_no_class_over_400_lines_no_module_over_600() -> None:
    problems = [line for path in _sources() for line in _oversized(path)]
    assert problems == [], "\n".join(problems)


def test_oversized_is_found() -> None:
    """The check itself sees an oversized class and module (so a pass means something)."""
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_CLASS_LINES))
    text = f"class Big:\n{body}\n" + "y = 0\n" * MAX_MODULE_LINES
    assert _oversized_text(text, "probe.py") == [
        f"probe.py: module has {MAX_MODULE_LINES + MAX_CLASS_LINES + 1} lines "
        f"(limit {MAX_MODULE_LINES})",
        f"probe.py: class Big has {MAX_CLASS_LINES + 1} lines (limit {MAX_CLASS_LINES})"]
    small = f"class Fits:\n{body[:body.rindex(chr(10))]}\n"
    assert _oversized_text(small, "fits.py") == []
