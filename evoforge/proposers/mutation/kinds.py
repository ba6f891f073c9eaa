"""A small static shape inference: is an expression a scalar or an array?

The model-free proposer uses it to keep its edits well-typed where a program
says what its values are (type annotations such as ``bins: np.ndarray`` or
``item: float``, and local assignments from those): a replacement keeps the kind
of the sub-expression it replaces, and a proposal whose ``return`` contradicts
the function's return annotation, or that calls ``len()`` of a scalar, indexes a
scalar or reduces a scalar with ``np.max``, is rejected before it is evaluated.

Where nothing is known (no annotations), the kind is ``None`` and every check
passes, so programs without annotations are mutated exactly as before.
"""

from __future__ import annotations

import ast
from typing import Literal

Kind = Literal["scalar", "array"] | None
SCALAR: Kind = "scalar"
ARRAY: Kind = "array"

_ARRAY_TYPES = {"ndarray", "NDArray", "ArrayLike", "array"}
_SCALAR_TYPES = {"float", "int", "bool", "complex", "float64", "int64", "floating", "integer"}
_MODULES = {"np", "numpy", "math"}
# numpy functions that reduce an array to one number when called without ``axis``
_REDUCTIONS = {"max", "min", "mean", "sum", "std", "var", "median", "prod", "ptp", "argmax",
               "argmin", "any", "all", "amax", "amin", "average", "count_nonzero", "nanmax",
               "nanmin", "nanmean", "nansum", "dot", "size"}
# numpy functions that always make an array
_MAKERS = {"arange", "zeros", "ones", "full", "empty", "linspace", "array", "asarray",
           "zeros_like", "ones_like", "full_like", "empty_like", "cumsum", "cumprod", "sort",
           "argsort", "roll", "flatnonzero", "nonzero", "unique", "concatenate", "diff"}
# these turn a scalar into a one-element array, which then breaks shapes
_OF_ARRAY = {"roll", "sort", "argsort", "cumsum", "cumprod", "diff", "flatnonzero", "unique"}
# arguments that must be arrays (these functions fail on a Python scalar)
_NEEDS_ARRAY = {"len"}
_SCALAR_BUILTINS = {"len", "float", "int", "bool", "round", "sum"}


class KindError(ValueError):
    """The expression cannot work: it uses a scalar where an array is required."""


def annotation_kind(annotation: ast.expr | None) -> Kind:
    """The kind an annotation declares: ``np.ndarray`` is an array, ``float`` a scalar."""
    if annotation is None:
        return None
    if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
        try:
            annotation = ast.parse(annotation.value, mode="eval").body
        except SyntaxError:
            return None
    if isinstance(annotation, ast.Subscript):  # NDArray[np.float64]
        annotation = annotation.value
    name = (annotation.attr if isinstance(annotation, ast.Attribute)
            else annotation.id if isinstance(annotation, ast.Name) else None)
    if name in _ARRAY_TYPES:
        return ARRAY
    if name in _SCALAR_TYPES:
        return SCALAR
    return None


def _combine(kinds: list[Kind]) -> Kind:
    """Broadcasting: an array if any operand is one, a scalar if all are."""
    if ARRAY in kinds:
        return ARRAY
    if kinds and all(k == SCALAR for k in kinds):
        return SCALAR
    return None


def infer(node: ast.AST, env: dict[str, Kind]) -> Kind:
    """The kind of expression ``node`` given the kinds of names in ``env``.

    Raises:
        KindError: when ``node`` certainly fails (``len`` or a reduction or an
            index of a scalar).
    """
    if isinstance(node, ast.Constant):
        return SCALAR if isinstance(node.value, int | float | complex | bool) else None
    if isinstance(node, ast.Name):
        return env.get(node.id)
    if isinstance(node, ast.UnaryOp):
        return infer(node.operand, env)
    if isinstance(node, ast.BinOp):
        return _combine([infer(node.left, env), infer(node.right, env)])
    if isinstance(node, ast.Compare):
        return _combine([infer(node.left, env), *(infer(c, env) for c in node.comparators)])
    if isinstance(node, ast.BoolOp):
        return _combine([infer(v, env) for v in node.values])
    if isinstance(node, ast.IfExp):
        infer(node.test, env)
        body, orelse = infer(node.body, env), infer(node.orelse, env)
        return body if body == orelse else None
    if isinstance(node, ast.Subscript):
        base = infer(node.value, env)
        index = node.slice
        if base == SCALAR:
            raise KindError(f"indexing the scalar {ast.unparse(node.value)}")
        if base != ARRAY:
            return None
        if isinstance(index, ast.Slice):
            return ARRAY
        return SCALAR if infer(index, env) == SCALAR else None
    if isinstance(node, ast.Call):
        return _infer_call(node, env)
    if isinstance(node, ast.Attribute):
        if isinstance(node.value, ast.Name) and node.value.id in _MODULES:
            return SCALAR if node.attr in ("pi", "e", "inf", "nan") else None
        return None
    return None


def _infer_call(node: ast.Call, env: dict[str, Kind]) -> Kind:
    args = [infer(a, env) for a in node.args if not isinstance(a, ast.Starred)]
    for kw in node.keywords:
        infer(kw.value, env)
    func = node.func
    keywords = {kw.arg for kw in node.keywords}
    if isinstance(func, ast.Name):
        if func.id in _NEEDS_ARRAY and args and args[0] == SCALAR:
            raise KindError(f"{func.id}() of a scalar")
        if func.id in _SCALAR_BUILTINS:
            return SCALAR
        if func.id == "abs":
            return args[0] if args else None
        if func.id in ("min", "max") and len(args) >= 2:
            return SCALAR if all(a == SCALAR for a in args) else None
        return None
    if not isinstance(func, ast.Attribute):
        return None
    if isinstance(func.value, ast.Name) and func.value.id in _MODULES:
        if func.value.id == "math":
            return SCALAR
        name = func.attr
        if name in _REDUCTIONS:
            if "axis" in keywords or len(args) > (2 if name == "dot" else 1):
                return None
            if args and args[0] == SCALAR and name not in ("dot", "count_nonzero"):
                raise KindError(f"np.{name}() of a scalar")
            return SCALAR if name != "dot" else None
        if name in _OF_ARRAY and args and args[0] == SCALAR:
            raise KindError(f"np.{name}() of a scalar makes a one-element array")
        if name in _MAKERS:
            return ARRAY
        return _combine(args)  # elementwise: abs, sqrt, maximum, where, clip, ...
    base = infer(func.value, env)
    if func.attr in _REDUCTIONS and not node.args and "axis" not in keywords:
        if base == SCALAR:
            return None  # a numpy scalar has .max(); a Python float does not
        return SCALAR if base == ARRAY else None
    if func.attr in ("copy", "astype", "clip", "round"):
        return base
    return None


def function_kinds(func: ast.FunctionDef | ast.AsyncFunctionDef) -> tuple[dict[str, Kind], Kind]:
    """Kinds of the parameters and simple locals of ``func``, and of its return value.

    Locals are taken from single-name assignments in statement order; a name
    assigned values of different kinds gets kind None.
    """
    args = func.args
    env: dict[str, Kind] = {}
    for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs]:
        env[arg.arg] = annotation_kind(arg.annotation)
    for node in ast.walk(func):
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name):
                try:
                    kind = infer(node.value, env)
                except KindError:
                    kind = None
                if target.id in env and env[target.id] != kind:
                    kind = None
                env[target.id] = kind
        elif isinstance(node, ast.AugAssign | ast.For | ast.AnnAssign | ast.NamedExpr):
            target = node.target
            if isinstance(target, ast.Name):
                env[target.id] = (annotation_kind(node.annotation)
                                  if isinstance(node, ast.AnnAssign) else None)
    return env, annotation_kind(func.returns)


def check_program(tree: ast.AST) -> str | None:
    """Why the annotated functions of ``tree`` cannot work, or None if nothing is known wrong.

    Checks every expression statement, assignment and ``return`` of each
    function: no scalar indexed or reduced, and a ``return`` of the kind the
    return annotation declares.
    """
    for func in ast.walk(tree):
        if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        env, returns = function_kinds(func)
        for node in ast.walk(func):
            if node is not func and isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef
                                               | ast.Lambda):
                continue
            value = getattr(node, "value", None) if isinstance(
                node, ast.Return | ast.Assign | ast.AugAssign | ast.Expr) else None
            if not isinstance(value, ast.expr):
                continue
            try:
                kind = infer(value, env)
            except KindError as exc:
                return f"{func.name}(): {exc}"
            if (isinstance(node, ast.Return) and returns is not None and kind is not None
                    and kind != returns):
                return f"{func.name}() returns a {kind} where its annotation says {returns}"
    return None
