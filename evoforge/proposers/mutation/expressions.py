"""The ``expr_replace`` operator and its primitives: shape- and kind-aware expressions."""

from __future__ import annotations

import ast
import copy
import random
import string
from dataclasses import dataclass

from evoforge.proposers.mutation.kinds import Kind, KindError, function_kinds, infer
from evoforge.proposers.mutation.regions import (
    _DEFS,
    _NO_DESCEND_SCOPE,
    OpContext,
    _emit,
    _imported_names,
    _is_number,
    _number_node,
    _numeric_sites,
    _parse_all,
    _Slot,
    _slots,
    _walk_scope,
    index_nodes,
)

# ---------------------------------------------------------------------------
# expr_replace
# ---------------------------------------------------------------------------

NUMPY_PRIMITIVES = (
    "np.abs({0})",
    "np.sqrt(np.abs({0}))",
    "np.log1p(np.abs({0}))",
    "np.exp(-np.abs({0}))",
    "np.square({0})",
    "np.maximum({0}, {1})",
    "np.minimum({0}, {1})",
    "np.where({0} < {1}, {2}, {3})",
)
MATH_PRIMITIVES = (
    "math.sqrt(abs({0}))",
    "math.log1p(abs({0}))",
    "math.exp(-abs({0}))",
)
BUILTIN_PRIMITIVES = ("abs({0})", "min({0}, {1})", "max({0}, {1})")
_BASE_CONSTANTS: tuple[int | float, ...] = (0, 1, 2, 0.5)
_GEN_OPS: tuple[type[ast.operator], ...] = (ast.Add, ast.Sub, ast.Mult, ast.Div)


def template_arity(template: str) -> int:
    """Number of arguments a primitive template takes.

    ``{}`` placeholders count one each; numbered ones count up to the highest.

    Raises:
        ValueError: for a named placeholder, or a mix of ``{}`` and ``{0}``.
    """
    fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    if not fields:
        return 0
    if all(f == "" for f in fields):
        return len(fields)
    numbers: set[int] = set()
    for f in fields:
        if not f.isdigit():
            raise ValueError(f"placeholder {{{f}}} is not positional")
        numbers.add(int(f))
    return max(numbers) + 1


def check_primitive(template: str) -> str | None:
    """Why ``template`` is not a usable primitive, or None when it is."""
    try:
        arity = template_arity(template)
        text = template.format(*[f"x{i}" for i in range(arity)])
        ast.parse(text, mode="eval")
    except (ValueError, IndexError, KeyError, SyntaxError) as exc:
        return f"{template!r} is not a Python expression template ({exc})"
    return None


def default_primitives(available: set[str]) -> list[str]:
    """The default primitives given the module names ``available`` in the program."""
    out: list[str] = []
    if "np" in available:
        out.extend(NUMPY_PRIMITIVES)
    if "math" in available:
        out.extend(MATH_PRIMITIVES)
    out.extend(BUILTIN_PRIMITIVES)
    return out


def _apply_template(template: str, args: list[ast.expr]) -> ast.expr | None:
    try:
        text = template.format(*[f"({ast.unparse(a)})" for a in args])
        return ast.parse(text, mode="eval").body
    except (ValueError, IndexError, KeyError, SyntaxError, RecursionError):
        return None


@dataclass
class _Scope:
    """Names an expression generated inside one function body may use."""

    always: set[str]  # parameters, globals
    locals_first_line: dict[str, int]  # local name -> first line assigning it
    containers: set[str]  # iterated over and never computed with: not operands

    def names_at(self, line: int) -> list[str]:
        """Operand names for an expression in the statement starting at ``line``."""
        names = sorted(self.always) + sorted(
            n for n, first in self.locals_first_line.items() if first < line)
        return [n for n in dict.fromkeys(names) if n not in self.containers]


def _value_loads(body: list[ast.stmt]) -> set[str]:
    """Names loaded as values: not only as a call's function or an attribute's base."""
    skip: set[int] = set()
    names: set[str] = set()
    for node in _walk_scope(body, _DEFS):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            skip.add(id(node.func))
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            skip.add(id(node.value))
    for node in _walk_scope(body, _DEFS):
        if (isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)
                and id(node) not in skip):
            names.add(node.id)
    return names


_OPERAND_FIELDS = ("left", "right", "operand", "target", "value")


def _make_scope(body: list[ast.stmt], params: set[str], module_names: set[str],
                names_outside: set[str], body_is_region: bool) -> _Scope:
    stores: dict[str, int] = {}
    loaded: set[str] = set()
    for node in _walk_scope(body, _NO_DESCEND_SCOPE):
        if isinstance(node, ast.Name):
            if isinstance(node.ctx, ast.Store):
                stores[node.id] = min(stores.get(node.id, node.lineno), node.lineno)
            elif isinstance(node.ctx, ast.Load):
                loaded.add(node.id)
    for node in _walk_scope(body, _DEFS):  # names loaded in comprehensions, lambdas
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            loaded.add(node.id)
    outside = _value_loads(body) & names_outside
    always = set(params) | {n for n in module_names if n not in stores}
    always |= {n for n in outside if n not in stores or body_is_region}
    locals_first = {n: line for n, line in stores.items() if n in loaded and n not in always}
    iterated: set[str] = set()
    computed: set[str] = set()
    for node in _walk_scope(body, _DEFS):
        if isinstance(node, ast.For | ast.AsyncFor | ast.comprehension):
            if isinstance(node.iter, ast.Name):
                iterated.add(node.iter.id)
        elif isinstance(node, ast.BinOp | ast.Compare | ast.UnaryOp | ast.AugAssign):
            values = [getattr(node, f) for f in _OPERAND_FIELDS if hasattr(node, f)]
            if isinstance(node, ast.Compare):
                values += node.comparators
            computed.update(v.id for v in values if isinstance(v, ast.Name))
    return _Scope(always=always, locals_first_line=locals_first,
                  containers=iterated - computed)


_SKIP_FIELDS = {"targets", "target", "annotation", "returns", "decorator_list", "func",
                "optional_vars", "type", "type_params"}
_NO_DESCEND_EXPR = (*_DEFS, ast.arguments, ast.JoinedStr, ast.Starred, ast.pattern)
_NOT_REPLACEABLE = (ast.Slice, ast.Yield, ast.YieldFrom, ast.Await, ast.Lambda,
                    ast.Tuple, ast.List, ast.Set, ast.Dict, ast.ListComp, ast.SetComp,
                    ast.DictComp, ast.GeneratorExp)


def _expr_sites(body: list[ast.stmt], variables: set[str]) -> list[tuple[_Slot, ast.stmt]]:
    """Replaceable sub-expressions of ``body``, each with its innermost statement.

    Indices (:func:`index_nodes`) are not replaceable.
    """
    sites: list[tuple[_Slot, ast.stmt]] = []
    indices: set[int] = set()
    for stmt in body:
        indices |= index_nodes(stmt)

    def visit(node: ast.AST, stmt: ast.stmt) -> None:
        for slot in _slots(node):
            child = slot.get()
            if slot.name in _SKIP_FIELDS or isinstance(child, _NO_DESCEND_EXPR):
                continue
            if isinstance(child, ast.keyword) and child.arg is None:
                continue
            if isinstance(getattr(child, "ctx", None), ast.Store | ast.Del):
                continue
            if isinstance(child, ast.stmt):
                visit(child, child)
                continue
            if _shape_call(child):
                continue  # range(), len(), np.arange() ... fix shapes: leave them alone
            # what is iterated over, or evaluated only for its effect, stays as is
            keep = slot.name == "iter" or (isinstance(node, ast.Expr) and slot.name == "value")
            if (isinstance(child, ast.expr) and not keep and id(child) not in indices
                    and _replaceable(child, variables)):
                sites.append((slot, stmt))
            visit(child, stmt)

    for stmt in body:
        if not isinstance(stmt, _DEFS):
            visit(stmt, stmt)
    return sites


_SHAPE_BUILTINS = {"range", "len"}
_SHAPE_NUMPY = {"arange", "zeros", "ones", "empty", "full", "linspace", "reshape"}


def _shape_call(node: ast.AST) -> bool:
    """A call whose arguments decide a length or a shape (changing them breaks shapes)."""
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    if isinstance(func, ast.Name):
        return func.id in _SHAPE_BUILTINS
    return isinstance(func, ast.Attribute) and func.attr in _SHAPE_NUMPY


def _replaceable(node: ast.expr, variables: set[str]) -> bool:
    if isinstance(node, _NOT_REPLACEABLE):
        return False
    if isinstance(node, ast.Constant):
        return _is_number(node)
    if isinstance(node, ast.Name):
        return node.id in variables
    return True


class _ExprBuilder:
    """Random expressions from names, constants, arithmetic and primitives."""

    def __init__(self, rng: random.Random, names: list[str],
                 constants: list[int | float], primitives: list[tuple[str, int]]) -> None:
        self.rng = rng
        self.names = names
        self.constants = constants
        self.primitives = primitives

    def leaf(self) -> ast.expr:
        if self.names and self.rng.random() < 0.6:
            return ast.Name(id=self.rng.choice(self.names), ctx=ast.Load())
        return _number_node(self.rng.choice(self.constants))

    def binop(self, left: ast.expr, right: ast.expr) -> ast.expr:
        return ast.BinOp(left=left, op=self.rng.choice(_GEN_OPS)(), right=right)

    def primitive(self, args: list[ast.expr] | None, depth: int,
                  fixed: ast.expr | None = None) -> ast.expr | None:
        if not self.primitives:
            return None
        template, arity = self.rng.choice(self.primitives)
        if args is None:
            args = [self.build(depth) for _ in range(arity)]
        if fixed is not None:
            if arity == 0:
                return None
            args[self.rng.randrange(arity)] = fixed
        return _apply_template(template, args)

    def build(self, depth: int) -> ast.expr:
        """A random expression of at most ``depth`` operator levels."""
        rng = self.rng
        if depth <= 0 or rng.random() < 0.3:
            return self.leaf()
        r = rng.random()
        if r < 0.45:
            return self.binop(self.build(depth - 1), self.build(depth - 1))
        if r < 0.55:
            return ast.UnaryOp(op=ast.USub(), operand=self.build(depth - 1))
        made = self.primitive(None, depth - 1)
        return made if made is not None else self.leaf()

    def grow(self, original: ast.expr) -> ast.expr:
        """A new expression that uses ``original`` as one operand."""
        rng = self.rng
        r = rng.random()
        if r < 0.5:
            other = self.build(1)
            if rng.random() < 0.5:
                return self.binop(original, other)
            return self.binop(other, original)
        if r < 0.6:
            return ast.UnaryOp(op=ast.USub(), operand=original)
        made = self.primitive(None, 0, fixed=original)
        return made if made is not None else self.binop(original, self.leaf())


def op_expr_replace(regions: list[str], ctx: OpContext) -> list[str] | None:
    """Replace a sub-expression of a function body by a random expression.

    The new expression (depth at most 2) is built from names in scope, numeric
    constants, ``+ - * /``, unary minus and the primitives; half the time it
    keeps the old sub-expression as an operand. A region that is indented
    counts as a function body. Returns None when no sub-expression qualifies.
    """
    rng = ctx.rng
    parsed = _parse_all(regions)
    trees = [r.tree for r in parsed if r.tree is not None]
    module_names: set[str] = set()
    for region in parsed:
        if region.tree is not None and not region.indent:
            for node in _walk_scope(region.tree.body, _NO_DESCEND_SCOPE):
                if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                    module_names.add(node.id)
    constants: list[int | float] = list(_BASE_CONSTANTS)
    for tree in trees:
        constants.extend(abs(value) for _, value in _numeric_sites(tree))
    constants = list(dict.fromkeys(constants))

    sites: list[tuple[_Slot, ast.stmt, _Scope, dict[str, Kind]]] = []
    for region in parsed:
        if region.tree is None:
            continue
        bodies: list[tuple[list[ast.stmt], set[str], bool, dict[str, Kind]]] = []
        if region.indent:
            bodies.append((region.tree.body, set(), True, {}))
        for node in ast.walk(region.tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                args = node.args
                params = {a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs]}
                params |= {a.arg for a in (args.vararg, args.kwarg) if a is not None}
                bodies.append((node.body, params, False, function_kinds(node)[0]))
        for body, params, is_region, kinds in bodies:
            scope = _make_scope(body, params, module_names, ctx.names_outside, is_region)
            variables = scope.always | set(scope.locals_first_line)
            sites.extend((slot, stmt, scope, kinds)
                         for slot, stmt in _expr_sites(body, variables))
    if not sites:
        return None

    templates = ctx.primitives or default_primitives(ctx.names_outside | _imported_names(trees))
    primitives: list[tuple[str, int]] = []
    for template in templates:
        if check_primitive(template) is None:
            primitives.append((template, template_arity(template)))

    slot, stmt, scope, kinds = rng.choice(sites)
    builder = _ExprBuilder(rng, scope.names_at(stmt.lineno), constants, primitives)
    original = slot.get()
    before = ast.dump(original)
    want = _kind_or_none(original, kinds)
    for _ in range(EXPR_TRIES):
        if rng.random() < 0.5:
            new = builder.grow(copy.deepcopy(original))
        else:
            new = builder.build(rng.randint(0, 2))
        if ast.dump(new) == before:
            continue
        # keep the shape: an array stays an array, a scalar a scalar (when known)
        try:
            got = infer(new, kinds)
        except KindError:
            continue
        if want is not None and got is not None and got != want:
            continue
        slot.set(new)
        return _emit(parsed)
    return None


EXPR_TRIES = 30
"""Random expressions ``expr_replace`` draws for one site before giving up."""


def _kind_or_none(node: ast.expr, kinds: dict[str, Kind]) -> Kind:
    try:
        return infer(node, kinds)
    except KindError:
        return None
