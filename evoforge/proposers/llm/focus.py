"""Focused proposals for small models: one function, or one return expression.

A small model cannot be trusted to copy a whole program or to write SEARCH/REPLACE
edits, but it can rewrite one short function when shown only that function, and
it can write one expression. This module finds the functions of the evolve
regions (:func:`region_functions`), builds the start of the answer a local model
continues from (:func:`answer_prefix`), decides when such a reply is complete
(:func:`function_done`, :func:`expression_done`), and splices a reply back into
the program (:func:`apply_function`, :func:`apply_expression`): only the chosen
function changes, the rest of the program is kept byte for byte.
"""

from __future__ import annotations

import ast
import re
import textwrap
from collections.abc import Callable
from dataclasses import dataclass

from evoforge.problem.blocks import END_MARKER, START_MARKER, Template
from evoforge.proposers.llm.apply import (
    PYTHON_LANGUAGES,
    ApplyError,
    ApplyResult,
    _check_result,
    _scan_fences,
)

__all__ = [
    "FunctionTarget",
    "answer_prefix",
    "apply_expression",
    "apply_function",
    "expression_done",
    "function_done",
    "region_functions",
]

_RETURN_RE = re.compile(r"^[ \t]*return\b(?P<rest>.*)$")
# continuation lines read after a return line before giving up on it parsing
_MAX_EXPRESSION_LINES = 6


@dataclass(frozen=True)
class FunctionTarget:
    """A top-level function inside an evolve region.

    Attributes:
        name: the function's name.
        first: its first line (1-based; the first decorator if any).
        last: its last line (1-based).
        indent: the indentation of its ``def`` line.
        source: its text, dedented.
        header: its ``def`` line(s) up to the body, dedented.
        returns: whether its last statement is ``return EXPR`` (an expression target).
    """

    name: str
    first: int
    last: int
    indent: str
    source: str
    header: str
    returns: bool


def _region_lines(code: str) -> list[tuple[int, int]]:
    """1-based inclusive line ranges strictly between START and END marker lines."""
    ranges: list[tuple[int, int]] = []
    start: int | None = None
    for number, line in enumerate(code.splitlines(), start=1):
        text = line.strip()
        if text.startswith("#") and START_MARKER in text:
            start = number + 1
        elif text.startswith("#") and END_MARKER in text and start is not None:
            ranges.append((start, number - 1))
            start = None
    return ranges


def region_functions(code: str) -> list[FunctionTarget]:
    """The top-level functions (``def``/``async def``) lying wholly in an evolve region.

    Returns an empty list when the program does not parse.
    """
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return []
    lines = code.splitlines(keepends=True)
    ranges = _region_lines(code)
    found: list[FunctionTarget] = []
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        first = min([node.lineno] + [d.lineno for d in node.decorator_list])
        last = node.end_lineno or node.lineno
        if not any(lo <= first and last <= hi for lo, hi in ranges):
            continue
        text = "".join(lines[first - 1:last])
        indent = lines[node.lineno - 1][: len(lines[node.lineno - 1])
                                        - len(lines[node.lineno - 1].lstrip(" \t"))]
        body_start = node.body[0].lineno
        # a docstring stays in the prompt's function but not in the answer's start
        header = "".join(lines[first - 1:body_start - 1])
        tail = node.body[-1]
        returns = isinstance(tail, ast.Return) and tail.value is not None
        found.append(FunctionTarget(node.name, first, last, indent, textwrap.dedent(text),
                                    textwrap.dedent(header), returns))
    return found


def answer_prefix(target: FunctionTarget, mode: str, extend: str | None = None) -> str:
    """The start of the answer a local model continues: an open fence and the
    function's ``def`` line(s), plus ``return`` in the expression mode.

    Args:
        target: the function.
        mode: ``function``, ``crossover`` or ``expression``.
        extend: in the expression mode, an operator (``+``, ``-``, ``*``): the answer
            starts with the current return expression and that operator, so the
            model adds one term to it (a value of the same kind, more often than a
            small model's new expression is).
    """
    # the body's indentation too: a small model given only the def line tends to
    # close the fence at once or start another def
    prefix = "```python\n" + target.header + "    "
    if mode == "expression":
        prefix += "return "
        current = current_return(target)
        if extend and current:
            prefix += f"({current}) {extend} "
    return prefix


def current_return(target: FunctionTarget) -> str | None:
    """The expression of the target's final ``return`` (None if it has none)."""
    node = ast.parse(target.source).body[0]
    assert isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    tail = node.body[-1]
    if isinstance(tail, ast.Return) and tail.value is not None:
        return ast.unparse(tail.value)
    return None


def _closed_python_bodies(text: str) -> list[str]:
    return [f.body for f in _scan_fences(text)
            if f.closed and f.lang in PYTHON_LANGUAGES and f.body.strip()]


def _find_function(body: str, name: str) -> str | None:
    """The source of function ``name`` in a code block that parses, dedented."""
    try:
        tree = ast.parse(textwrap.dedent(body))
    except SyntaxError:
        return None
    lines = textwrap.dedent(body).splitlines(keepends=True)
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name:
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            return "".join(lines[first - 1:node.end_lineno or node.lineno])
    return None


def _open_body(text: str) -> str | None:
    """The body of a Python fence left open at the end of the reply, if any."""
    fences = _scan_fences(text)
    if fences and not fences[-1].closed and fences[-1].lang in PYTHON_LANGUAGES:
        body = fences[-1].body
        # the scan ends every line; a reply that stops mid-line has an unfinished one
        return body if text.endswith(("\n", "\r")) else body.removesuffix("\n")
    return None


def _complete_prefix(body: str, name: str) -> str | None:
    """Function ``name`` from a block cut off after a top-level ``return`` of its body.

    The reply's last, unfinished line is dropped; of the rest, the longest start
    that parses and defines ``name`` with a ``return`` directly in its body gives
    the function up to that first return (whatever came after it would never run).
    """
    lines = textwrap.dedent(body).split("\n")
    lines = lines[:-1]  # the last line is unfinished (or empty after a final newline)
    for k in range(len(lines), 0, -1):
        text = "\n".join(lines[:k]) + "\n"
        try:
            tree = ast.parse(text)
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name:
                ret = next((s for s in node.body if isinstance(s, ast.Return)), None)
                if ret is None:
                    return None
                first = min([node.lineno] + [d.lineno for d in node.decorator_list])
                end = ret.end_lineno or ret.lineno
                return "".join(line + "\n" for line in lines[first - 1:end])
        return None
    return None


def function_done(name: str) -> Callable[[str], bool]:
    """A stop test for a streaming reply: True once a closed block holds ``name``, or
    an open block holds it up to a complete top-level ``return``."""

    def done(text: str) -> bool:
        if any(_find_function(body, name) for body in _closed_python_bodies(text)):
            return True
        body = _open_body(text)
        return body is not None and _complete_prefix(body, name) is not None

    return done


def _splice(template: Template, parent_code: str, target: FunctionTarget,
            new_source: str) -> ApplyResult:
    lines = parent_code.splitlines(keepends=True)
    newline = "\r\n" if "\r\n" in parent_code else "\n"
    body = textwrap.indent(new_source.rstrip("\r\n") + "\n", target.indent,
                           lambda line: bool(line.strip()))
    if newline != "\n":
        body = body.replace("\n", newline)
    code = "".join(lines[: target.first - 1]) + body + "".join(lines[target.last:])
    _check_result(template, code, parent_code)
    return ApplyResult(code=code, edits=1)


def apply_function(template: Template, parent_code: str, text: str,
                   target: FunctionTarget, *, finish_reason: str | None = None
                   ) -> ApplyResult:
    """Replace ``target`` in the parent by the first complete version in the reply.

    The reply's closed Python code blocks are read in order; the first that parses
    and defines a function of the target's name gives the new function (anything
    else in the block, or after it, is ignored). A block left open by a cut-off
    reply is used only when the function in it is complete up to a ``return``
    directly in its body (the code after that return would never run).

    Raises:
        ApplyError: ``truncated`` (cut off before a complete block), ``no_code``,
            ``syntax_error``, ``unchanged`` or ``outside_regions``.
    """
    bodies = _closed_python_bodies(text)
    for body in bodies:
        source = _find_function(body, target.name)
        if source is not None:
            return _splice(template, parent_code, target, source)
    open_body = _open_body(text)
    if open_body is not None:
        # cut off (or stopped) inside the function after its top-level return: the
        # function is complete up to there
        source = _complete_prefix(open_body, target.name)
        if source is not None:
            return _splice(template, parent_code, target, source)
    if not bodies and (finish_reason in ("length", "max_tokens")
                       or any(not f.closed for f in _scan_fences(text))):
        raise ApplyError("truncated", "the reply was cut off (or ended) before its first "
                         "complete code block")
    if not bodies:
        raise ApplyError("no_code", "the reply has no fenced Python code block")
    for body in bodies:
        try:
            ast.parse(textwrap.dedent(body))
        except SyntaxError as exc:
            raise ApplyError("syntax_error", f"the code block does not parse: line "
                             f"{exc.lineno}: {exc.msg}") from None
    raise ApplyError("no_code", f"no code block defines the function {target.name}()")


def _first_return(text: str) -> str | None:
    """The expression of the first ``return`` line that parses (with up to a few
    continuation lines), unparsed to one canonical line."""
    lines = text.replace("\r\n", "\n").split("\n")
    for i, line in enumerate(lines):
        match = _RETURN_RE.match(line)
        if match is None:
            continue
        parts = [match["rest"]]
        for extra in [None, *lines[i + 1:i + _MAX_EXPRESSION_LINES]]:
            if extra is not None:
                if extra.strip().startswith("```"):
                    break
                parts.append(extra)
            candidate = "\n".join(parts).strip().rstrip(";")
            if not candidate:
                break
            try:
                expr = ast.parse(candidate, mode="eval")
            except SyntaxError:
                continue
            return ast.unparse(expr.body)
    return None


def expression_done(text: str) -> bool:
    """A stop test for a streaming reply in the expression mode: a return line that
    parses, followed by a line end (or a closed fence)."""
    return "\n" in text.split("return", 1)[-1] and _first_return(text) is not None


def apply_expression(template: Template, parent_code: str, text: str,
                     target: FunctionTarget) -> ApplyResult:
    """Replace the final ``return`` of ``target`` by the reply's first return expression.

    Raises:
        ApplyError: ``no_code`` (no return line that parses), ``syntax_error``,
            ``unchanged`` or ``outside_regions``.
    """
    expr = _first_return(text)
    if expr is None:
        raise ApplyError("no_code", "the reply has no 'return EXPRESSION' line that parses")
    tree = ast.parse(target.source)
    node = tree.body[0]
    assert isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    tail = node.body[-1]
    lines = target.source.splitlines(keepends=True)
    indent = lines[tail.lineno - 1][: tail.col_offset]
    new = ("".join(lines[: tail.lineno - 1]) + f"{indent}return {expr}\n"
           + "".join(lines[tail.end_lineno or tail.lineno:]))
    return _splice(template, parent_code, target, new)
