"""Obvious equalities: a canonical form of a program under which ``x + 0`` is ``x``.

The model-free operators often make a program that differs from one already made
only by an identity: ``x + 0``, ``1 * x``, ``--x``, ``np.maximum(x, x)``,
``np.abs(-x)``, a comparison written the other way round (``1 > x`` for
``x < 1``), ``2 * 0.5`` for ``1.0``. Such a program behaves exactly like the
earlier one, so evaluating it (or probing it) is waste. :func:`canonical_hash`
rewrites these identities away before hashing, so the proposer can drop them
before they are proposed.

Every rewrite keeps the value (and the array shape and dtype) of numbers and numpy
arrays of numbers; nothing that depends on what a name holds is assumed beyond
that (no commutation of ``+``, which concatenates lists and strings; ``x + 0.0`` is
kept, it turns an int into a float; ``x * 1`` is kept when ``x`` is a comparison,
which makes a bool array an int one).
"""

from __future__ import annotations

import ast
import copy
import functools
import hashlib
import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_FOLD: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}
_FOLD_LIMIT = 1e12
"""Constants folded only while both operands and the result are below this in size."""
_SAME_ARGS = {"minimum", "maximum", "fmin", "fmax"}
"""numpy functions ``f`` with ``f(x, x) == x``."""
_EVEN = {"abs", "absolute", "fabs", "square"}
"""Functions ``f`` with ``f(-x) == f(x)``, as builtins (``abs``) or numpy's."""
_IDEMPOTENT = {"abs", "absolute", "fabs"}
"""Functions ``f`` with ``f(f(x)) == f(x)``."""
_FLIP = {ast.Gt: ast.Lt, ast.GtE: ast.LtE}
_MODULES = {"np", "numpy", "math"}


def _number(node: ast.AST) -> int | float | None:
    if (isinstance(node, ast.Constant) and isinstance(node.value, int | float)
            and not isinstance(node.value, bool)):
        return node.value
    return None


def _is_int(node: ast.AST, value: int) -> bool:
    return type(getattr(node, "value", None)) is int and _number(node) == value


def _func_name(node: ast.expr) -> str | None:
    """``abs`` for ``abs`` or ``np.abs`` (``math.fabs``), None for anything else."""
    if isinstance(node, ast.Name):
        return node.id
    if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
            and node.value.id in _MODULES):
        return node.attr
    return None


def _is_boolish(node: ast.expr) -> bool:
    return isinstance(node, ast.Compare | ast.BoolOp) or (
        isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not | ast.Invert)) or (
        isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitAnd | ast.BitOr))


def _identity_operand(op: ast.operator, left: ast.expr, right: ast.expr) -> ast.expr | None:
    """``x`` for ``x + 0``, ``0 + x``, ``x - 0``, ``x * 1``, ``1 * x``, ``x ** 1``, else None.

    Not when ``x`` is a comparison: arithmetic turns its bool array into an int one.
    """
    if ((isinstance(op, ast.Add | ast.Sub) and _is_int(right, 0)
            or isinstance(op, ast.Mult | ast.Pow) and _is_int(right, 1))
            and not _is_boolish(left)):
        return left
    if ((isinstance(op, ast.Add) and _is_int(left, 0)
            or isinstance(op, ast.Mult) and _is_int(left, 1))
            and not _is_boolish(right)):
        return right
    return None


class _Canonical(ast.NodeTransformer):
    """Rewrites the identities of the module docstring, innermost first."""

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.expr:
        self.generic_visit(node)
        if isinstance(node.op, ast.UAdd) and _number(node.operand) is not None:
            return node.operand
        if isinstance(node.op, ast.USub):
            value = _number(node.operand)
            if value is not None:
                return ast.Constant(value=-value)
            inner = node.operand
            if isinstance(inner, ast.UnaryOp) and isinstance(inner.op, ast.USub):
                return inner.operand
        return node

    def visit_BinOp(self, node: ast.BinOp) -> ast.expr:
        self.generic_visit(node)
        left, right, op = node.left, node.right, node.op
        a, b = _number(left), _number(right)
        fold = _FOLD.get(type(op))
        if fold is not None and a is not None and b is not None:
            folded = _fold(fold, a, b)
            if folded is not None:
                return ast.Constant(value=folded)
        kept = _identity_operand(op, left, right)
        if kept is not None:
            return kept
        if isinstance(op, ast.Add | ast.Sub) and b is not None and b < 0:  # x + -1 is x - 1
            flipped = ast.Sub() if isinstance(op, ast.Add) else ast.Add()
            return ast.BinOp(left=left, op=flipped, right=ast.Constant(value=-b))
        if (isinstance(op, ast.Add | ast.Sub) and isinstance(right, ast.UnaryOp)
                and isinstance(right.op, ast.USub)):  # x - (-y) is x + y, x + (-y) is x - y
            flipped = ast.Sub() if isinstance(op, ast.Add) else ast.Add()
            return ast.BinOp(left=left, op=flipped, right=right.operand)
        if (isinstance(op, ast.BitAnd | ast.BitOr)
                and ast.dump(left) == ast.dump(right)):
            return left
        return node

    def visit_Compare(self, node: ast.Compare) -> ast.expr:
        self.generic_visit(node)
        if len(node.ops) == 1 and type(node.ops[0]) in _FLIP:
            flipped = _FLIP[type(node.ops[0])]()
            return ast.Compare(left=node.comparators[0], ops=[flipped],
                               comparators=[node.left])
        return node

    def visit_Call(self, node: ast.Call) -> ast.expr:
        self.generic_visit(node)
        name = _func_name(node.func)
        if name is None or node.keywords:
            return node
        args = node.args
        if (len(args) == 2 and name in _SAME_ARGS and isinstance(node.func, ast.Attribute)
                and ast.dump(args[0]) == ast.dump(args[1])):
            return args[0]
        if len(args) != 1:
            return node
        arg = args[0]
        if name in _EVEN and isinstance(arg, ast.UnaryOp) and isinstance(arg.op, ast.USub):
            return ast.Call(func=node.func, args=[arg.operand], keywords=[])
        if (name in _IDEMPOTENT and isinstance(arg, ast.Call)
                and ast.dump(arg.func) == ast.dump(node.func)):
            return arg
        return node


def _fold(fold: Callable[[Any, Any], Any], a: int | float, b: int | float) -> int | float | None:
    if max(abs(a), abs(b)) > _FOLD_LIMIT:
        return None
    try:
        value = fold(a, b)
    except (ArithmeticError, ValueError):
        return None
    if not isinstance(value, int | float) or not math.isfinite(value) or abs(value) > _FOLD_LIMIT:
        return None
    return value


def _same(a: ast.AST, b: ast.AST) -> bool:
    return ast.dump(a) == ast.dump(b)


def _collapses(node: ast.AST) -> bool:
    """True when ``node`` is a constant in disguise (or always fails), whatever its operands.

    ``x - x``, ``x / x``, ``x % x``, ``x // x``, ``0 * x``, ``x / 0``, ``0 / x``,
    ``x ** 0``, ``x < x``, ``1 < 2``: an edit that makes one mostly turns a program into
    one that behaves like a simpler program made before, or into an error.
    """
    if isinstance(node, ast.BinOp):
        op, left, right = node.op, node.left, node.right
        if isinstance(op, ast.Sub | ast.Div | ast.Mod | ast.FloorDiv) and _same(left, right):
            return True
        if isinstance(op, ast.Mult) and 0 in (_number(left), _number(right)):
            return True
        if isinstance(op, ast.Div | ast.Mod | ast.FloorDiv) and 0 in (_number(left),
                                                                      _number(right)):
            return True
        return isinstance(op, ast.Pow) and _number(right) == 0
    if isinstance(node, ast.Compare) and len(node.ops) == 1:
        left, right = node.left, node.comparators[0]
        return _same(left, right) or (_number(left) is not None
                                      and _number(right) is not None)
    return False


@dataclass(frozen=True)
class Canonical:
    """A program's canonical form, hashed, and how many collapsed sub-expressions it has."""

    hash: str
    collapsed: int


def canonical_tree(tree: ast.AST) -> ast.AST:
    """A copy of ``tree`` with the identities of the module docstring rewritten away."""
    out = copy.deepcopy(tree)
    before = None
    text = ast.dump(out)
    for _ in range(8):  # a rewrite can expose another (--(x + 0)); stop at the fixpoint
        if text == before:
            break
        before = text
        out = ast.fix_missing_locations(_Canonical().visit(out))
        text = ast.dump(out)
    return out


@functools.lru_cache(maxsize=1024)
def canonical(code: str) -> Canonical | None:
    """The canonical form of ``code``; None if it does not parse.

    Cached: the proposer asks for a program's form when it checks it and again when it
    remembers it, and for the same parent's form on every proposal made from it.
    """
    try:
        tree = canonical_tree(ast.parse(code))
        key = ast.dump(tree, annotate_fields=False, include_attributes=False)
        collapsed = sum(1 for node in ast.walk(tree) if _collapses(node))
    except (SyntaxError, ValueError, RecursionError):
        return None
    return Canonical(hashlib.sha256(key.encode()).hexdigest()[:32], collapsed)
