"""Region handling and AST helpers shared by the mutation operators.

A region is parsed on its own after its common indentation is removed; see
:mod:`evoforge.proposers.mutation.operators` for the rules every operator keeps.
"""

from __future__ import annotations

import ast
import functools
import io
import math
import random
import tokenize
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

# ---------------------------------------------------------------------------
# context and region handling
# ---------------------------------------------------------------------------


@dataclass
class OpContext:
    """What an operator may use besides the regions.

    Attributes:
        rng: the only source of randomness.
        primitives: ``str.format`` templates with positional placeholders used
            by ``expr_replace`` (e.g. ``"np.maximum({0}, {1})"``); empty for the
            default set.
        names_outside: names bound in the program outside the regions (imports,
            parameters of a function whose body is a region, ...).
        other: the regions of a second parent, for ``crossover``.
        sigma: the relative step size of ``tune``.
    """

    rng: random.Random
    primitives: list[str] = field(default_factory=list)
    names_outside: set[str] = field(default_factory=set)
    other: list[str] | None = None
    sigma: float = 0.1


Operator = Callable[[list[str], OpContext], list[str] | None]


def _continuation_lines(code: str) -> set[int]:
    """1-based numbers of the lines that continue a multi-line token (a string)."""
    inside: set[int] = set()
    try:
        for tok in tokenize.generate_tokens(io.StringIO(code).readline):
            if tok.end[0] > tok.start[0]:
                inside.update(range(tok.start[0] + 1, tok.end[0] + 1))
    except (tokenize.TokenError, SyntaxError):
        pass
    return inside


@functools.lru_cache(maxsize=1024)  # pure; proposals re-split the same regions often
def split_indent(text: str) -> tuple[str, str]:
    """Split a region into its common indentation and its dedented text.

    The indentation is the longest whitespace prefix shared by all lines that
    hold code (blank and comment-only lines do not count; they are stripped).
    Lines inside a multi-line string are kept as they are, so that string
    values do not change.

    Returns:
        ``(indent, dedented)``.
    """
    lines = text.splitlines(keepends=True)
    inside = _continuation_lines(text)
    margin: str | None = None
    for number, line in enumerate(lines, start=1):
        stripped = line.lstrip(" \t")
        if number in inside or not stripped.strip() or stripped.startswith("#"):
            continue
        lead = line[: len(line) - len(stripped)]
        if margin is None:
            margin = lead
        else:
            n = 0
            while n < min(len(margin), len(lead)) and margin[n] == lead[n]:
                n += 1
            margin = margin[:n]
    if not margin:
        return "", text
    out: list[str] = []
    for number, line in enumerate(lines, start=1):
        if number in inside:
            out.append(line)
        elif line.startswith(margin):
            out.append(line[len(margin):])
        else:  # blank or comment-only line with less indentation
            out.append(line.lstrip(" \t"))
    return margin, "".join(out)


def parse_region(text: str) -> ast.Module | None:
    """Parse a region under the dedent rule; None when it does not parse."""
    _, dedented = split_indent(text)
    try:
        return ast.parse(dedented)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


NODE_LIMIT_FLOOR = 64
"""The smallest default size limit (AST nodes of the evolve regions): a 16-node rule such
as ``-tid`` may grow to 64, room for a linear mix of four or five features."""
NODE_LIMIT_FACTOR = 4
"""The default size limit is this many times the initial program's size (at least the
floor), so a problem that starts from a large program is not held to the floor."""


def region_nodes(regions: list[str] | tuple[str, ...]) -> int | None:
    """The AST nodes of ``regions`` together, or None when one of them does not parse.

    A negative literal (``-0.5``: a minus on a constant) counts as one node, so moving a
    literal across zero, as ``tune`` and CMA-ES do, never changes a program's size.
    """
    total = 0
    for text in regions:
        tree = parse_region(text)
        if tree is None:
            return None
        for node in ast.walk(tree):
            negative = isinstance(node, ast.UnaryOp) and isinstance(node.operand, ast.Constant)
            # a minus on a literal: -1 here, +1 for its USub, +1 for the literal: 1 in all
            total += -1 if negative else 1
    return total


def node_limit(setting: int | None, initial: list[str] | tuple[str, ...]) -> int | None:
    """The size limit of a run: ``setting`` (0: none), or by default
    :data:`NODE_LIMIT_FACTOR` times the size of the ``initial`` regions, at least
    :data:`NODE_LIMIT_FLOOR` (none when they do not parse)."""
    if setting is not None:
        return setting or None
    size = region_nodes(initial)
    return None if size is None else max(NODE_LIMIT_FLOOR, NODE_LIMIT_FACTOR * size)


def oversized(limit: int | None, child: list[str], parent: list[str]) -> bool:
    """True for a child past ``limit`` that is also larger than its parent: bloat control
    stops growth, it never blocks the edits of a program already past the limit that
    keep or reduce its size."""
    if limit is None:
        return False
    size = region_nodes(child)
    if size is None or size <= limit:
        return False
    before = region_nodes(parent)
    return before is None or size > before


def unparse_region(tree: ast.Module, indent: str) -> str:
    """Render ``tree`` as region text indented by ``indent``, ending with a newline.

    Lines that continue a multi-line string literal are not indented, so string
    values are kept.
    """
    code = ast.unparse(ast.fix_missing_locations(tree))
    if not code.strip():
        return ""
    lines = code.splitlines()
    if indent:
        inside = _continuation_lines(code + "\n")
        lines = [
            line if (not line or number in inside) else indent + line
            for number, line in enumerate(lines, start=1)
        ]
    return "\n".join(lines) + "\n"


@dataclass
class _Region:
    text: str
    indent: str
    tree: ast.Module | None
    dump: str

    @classmethod
    def parse(cls, text: str) -> _Region:
        indent, _ = split_indent(text)
        tree = parse_region(text)
        return cls(text=text, indent=indent, tree=tree,
                   dump=_region_dump(text) if tree is not None else "")


@functools.lru_cache(maxsize=1024)
def _region_dump(text: str) -> str:
    """``ast.dump`` of a region that parses (the tree callers get is their own)."""
    tree = parse_region(text)
    assert tree is not None
    return ast.dump(tree)


def _parse_all(regions: list[str]) -> list[_Region]:
    return [_Region.parse(text) for text in regions]


def _emit(parsed: list[_Region]) -> list[str] | None:
    """Render regions whose tree changed; None if none changed or one is broken."""
    out: list[str] = []
    changed = False
    for region in parsed:
        if region.tree is None:
            out.append(region.text)
            continue
        try:
            dump = ast.dump(region.tree)
        except RecursionError:
            return None
        if dump == region.dump:
            out.append(region.text)
            continue
        try:
            text = unparse_region(region.tree, region.indent)
        except (ValueError, TypeError, AttributeError, RecursionError):
            return None
        if parse_region(text) is None:
            return None
        out.append(text)
        changed = True
    return out if changed else None


# ---------------------------------------------------------------------------
# AST helpers
# ---------------------------------------------------------------------------


@dataclass
class _Slot:
    """A place in the tree holding one node: ``parent.field`` or ``parent.field[index]``."""

    parent: ast.AST
    name: str
    index: int | None = None

    def get(self) -> Any:
        value = getattr(self.parent, self.name)
        return value if self.index is None else value[self.index]

    def set(self, node: ast.AST) -> None:
        if self.index is None:
            setattr(self.parent, self.name, node)
        else:
            getattr(self.parent, self.name)[self.index] = node


def _slots(node: ast.AST) -> Iterator[_Slot]:
    for name, value in ast.iter_fields(node):
        if isinstance(value, ast.AST):
            yield _Slot(node, name)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                if isinstance(item, ast.AST):
                    yield _Slot(node, name, index)


def _all_slots(tree: ast.AST) -> Iterator[_Slot]:
    stack = [tree]
    while stack:
        node = stack.pop()
        children = list(_slots(node))
        yield from children
        stack.extend(reversed([slot.get() for slot in children]))


def index_nodes(tree: ast.AST) -> set[int]:
    """``id()`` of every node that computes an index: inside a subscript's brackets.

    A call there (``x[np.argmax(v)]``) decides the index's type itself, so its
    arguments do not count. Changing an index mostly makes a float or an out-of-range
    index, a program that raises (``bins[-1]`` -> ``bins[-item]``), so the operators
    leave indices alone, as ``constant`` and ``tune`` leave index literals.
    """
    found: set[int] = set()
    stack: list[tuple[ast.AST, bool]] = [(tree, False)]
    while stack:
        node, inside = stack.pop()
        if inside:
            found.add(id(node))
        for slot in _slots(node):
            child = slot.get()
            if isinstance(node, ast.Subscript) and slot.name == "slice":
                stack.append((child, True))
            elif isinstance(node, ast.Call):
                stack.append((child, False))
            else:
                stack.append((child, inside))
    return found


def _is_number(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and type(node.value) in (int, float)


def _literal_value(node: ast.AST) -> int | float | None:
    """The value of a numeric literal (``-3`` counts as one literal), else None."""
    if isinstance(node, ast.Constant) and _is_number(node):
        assert isinstance(node.value, int | float)
        return node.value
    if (isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub)
            and isinstance(node.operand, ast.Constant) and _is_number(node.operand)):
        assert isinstance(node.operand.value, int | float)
        return -node.operand.value
    return None


def _number_node(value: int | float) -> ast.expr:
    """A literal for ``value``; negative numbers become ``-<literal>``."""
    if value == 0:
        value = type(value)(0)  # no -0.0
    if value < 0:
        return ast.UnaryOp(op=ast.USub(), operand=ast.Constant(value=-value))
    return ast.Constant(value=value)


def _numeric_sites(tree: ast.AST) -> list[tuple[_Slot, int | float]]:
    """Every numeric literal of ``tree`` (not bools), in source order."""
    sites: list[tuple[_Slot, int | float]] = []
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        later: list[ast.AST] = []
        for slot in _slots(node):
            child = slot.get()
            if isinstance(node, ast.Subscript) and slot.name == "slice":
                continue  # an index: another value is mostly out of bounds
            value = _literal_value(child)
            if value is not None:
                sites.append((slot, value))
            else:
                later.append(child)
        stack.extend(reversed(later))
    return sites


def _round_sig(value: float, digits: int) -> float:
    if value == 0 or not math.isfinite(value):
        return value
    return float(f"{value:.{digits}g}")


def _is_docstring(body: list[ast.stmt], index: int) -> bool:
    if index != 0 or not body:
        return False
    stmt = body[0]
    return (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)
            and isinstance(stmt.value.value, str))


def _bodies(tree: ast.AST) -> list[list[ast.stmt]]:
    """Every non-empty statement list of ``tree`` (module, function, loop, branch ...)."""
    found: list[list[ast.stmt]] = []
    for node in ast.walk(tree):
        for name in ("body", "orelse", "finalbody"):
            value = getattr(node, name, None)
            if (isinstance(value, list) and value
                    and all(isinstance(s, ast.stmt) for s in value)):
                found.append(value)
    return found


_DEFS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def _imported_names(trees: list[ast.Module]) -> set[str]:
    names: set[str] = set()
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                for alias in node.names:
                    if alias.name != "*":
                        names.add(alias.asname or alias.name.split(".")[0])
    return names



_NO_DESCEND_SCOPE = (*_DEFS, ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp,
                     ast.GeneratorExp)


def _walk_scope(body: list[ast.stmt], stop: tuple[type[Any], ...]) -> Iterator[ast.AST]:
    """Walk ``body`` in source order; nodes of the types ``stop`` are yielded, not entered."""
    stack: list[ast.AST] = list(reversed(body))
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, stop):
            continue
        stack.extend(reversed(list(ast.iter_child_nodes(node))))
