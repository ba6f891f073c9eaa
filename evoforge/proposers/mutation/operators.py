"""Mutation operators on the source texts of a program's evolve regions.

Each operator takes the region texts of one program (``list[str]``, in template
order) and an :class:`OpContext`, and returns new region texts, or None when it
does not apply (for example: no numeric literal to perturb).

A region is handled as a unit of Python code: its common indentation is removed
(a region may be the indented body of a function whose ``def`` line lies in the
fixed text), it is parsed with :mod:`ast`, mutated, unparsed and indented back.
A region that does not parse on its own is never changed; regions an operator
did not touch are returned byte for byte. Every region an operator returns
parses under the same rule.
"""

from __future__ import annotations

import ast
import builtins
import copy
import io
import math
import random
import string
import tokenize
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from evoforge.proposers.mutation.kinds import Kind, KindError, function_kinds, infer

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
        dump = ast.dump(tree) if tree is not None else ""
        return cls(text=text, indent=indent, tree=tree, dump=dump)


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


# ---------------------------------------------------------------------------
# constant
# ---------------------------------------------------------------------------


def _perturb(value: int | float, neighbours: list[int | float],
             rng: random.Random) -> int | float | None:
    is_int = isinstance(value, int)
    for _ in range(20):
        new: float
        r = rng.random()
        try:
            if r < 0.1:
                pool: list[float] = [0, 1, *neighbours]
                new = rng.choice(pool)
            elif is_int:
                if r < 0.75:
                    new = value + rng.choice((-3, -2, -1, 1, 2, 3))
                else:
                    new = value * math.exp(rng.gauss(0.0, 0.5))
            elif r < 0.6:
                new = value * math.exp(rng.gauss(0.0, 0.5))
            elif r < 0.9:
                new = value + rng.gauss(0.0, 0.1 * max(abs(value), 1.0))
            else:
                new = -value
        except OverflowError:
            continue
        if not math.isfinite(new):
            continue
        result: int | float = int(round(new)) if is_int else _round_sig(float(new), 4)
        if result != value:
            return result
    return None


def op_constant(regions: list[str], ctx: OpContext) -> list[str] | None:
    """Perturb one numeric literal.

    Floats are scaled by ``exp(N(0, 0.5))``, shifted, or sign-flipped; ints move
    by 1 to 3 or are scaled; now and then a literal becomes 0, 1 or the value of
    a neighbouring literal. Returns None when there is no numeric literal.
    """
    parsed = _parse_all(regions)
    sites: list[tuple[int, _Slot, int | float]] = []
    for i, region in enumerate(parsed):
        if region.tree is not None:
            sites.extend((i, slot, value) for slot, value in _numeric_sites(region.tree))
    if not sites:
        return None
    k = ctx.rng.randrange(len(sites))
    _, slot, value = sites[k]
    neighbours = [sites[j][2] for j in (k - 1, k + 1) if 0 <= j < len(sites)]
    new = _perturb(value, neighbours, ctx.rng)
    if new is None:
        return None
    slot.set(_number_node(new))
    return _emit(parsed)


# ---------------------------------------------------------------------------
# operator_swap
# ---------------------------------------------------------------------------

_ARITH: tuple[type[ast.operator], ...] = (
    ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow,
)
_CMP: tuple[type[ast.cmpop], ...] = (ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.Eq, ast.NotEq)
_NEGATABLE = (ast.Name, ast.Call, ast.BinOp, ast.Attribute, ast.Subscript)


def _other_op(op: ast.AST, group: tuple[type[Any], ...], rng: random.Random) -> Any:
    choices = [kind for kind in group if not isinstance(op, kind)]
    return rng.choice(choices)()


def op_operator_swap(regions: list[str], ctx: OpContext) -> list[str] | None:
    """Swap one operator.

    An arithmetic operator (``+ - * / // % **``, also in augmented
    assignments) for another, a comparison (``< <= > >= == !=``) for another,
    ``and`` for ``or`` or back; or toggle a unary minus or ``not`` (remove an
    existing one, negate a condition, or negate a returned value).
    """
    rng = ctx.rng
    parsed = _parse_all(regions)
    actions: list[Callable[[], None]] = []

    def set_op(node: Any, group: tuple[type[Any], ...]) -> Callable[[], None]:
        return lambda: setattr(node, "op", _other_op(node.op, group, rng))

    def set_cmp(node: ast.Compare, index: int) -> Callable[[], None]:
        def run() -> None:
            node.ops[index] = _other_op(node.ops[index], _CMP, rng)
        return run

    def replace(slot: _Slot, make: Callable[[Any], ast.expr]) -> Callable[[], None]:
        return lambda: slot.set(make(slot.get()))

    for region in parsed:
        if region.tree is None:
            continue
        for slot in _all_slots(region.tree):
            node = slot.get()
            if isinstance(node, ast.BinOp | ast.AugAssign) and isinstance(node.op, _ARITH):
                actions.append(set_op(node, _ARITH))
            elif isinstance(node, ast.Compare):
                for index, cmp in enumerate(node.ops):
                    if isinstance(cmp, _CMP):
                        actions.append(set_cmp(node, index))
            elif isinstance(node, ast.BoolOp):
                actions.append(set_op(node, (ast.And, ast.Or)))
            if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.Not):
                actions.append(replace(slot, lambda n: n.operand))
            if (slot.name == "test" and isinstance(slot.parent, ast.If | ast.While | ast.IfExp)
                    and not (isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not))):
                actions.append(replace(slot, lambda n: ast.UnaryOp(op=ast.Not(), operand=n)))
            if (slot.name == "value" and isinstance(slot.parent, ast.Return)
                    and isinstance(node, _NEGATABLE)):
                actions.append(replace(slot, lambda n: ast.UnaryOp(op=ast.USub(), operand=n)))
    if not actions:
        return None
    rng.choice(actions)()
    return _emit(parsed)


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


# ---------------------------------------------------------------------------
# name resolution: which names a region reads before (or without) binding them
# ---------------------------------------------------------------------------

_ALWAYS_BOUND = frozenset(dir(builtins)) | {
    "__name__", "__file__", "__doc__", "__spec__", "__loader__", "__package__",
    "__builtins__",
}
_FUNCS = (ast.FunctionDef, ast.AsyncFunctionDef)


def _pattern_names(pattern: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(pattern):
        if isinstance(node, ast.MatchAs | ast.MatchStar) and node.name:
            names.add(node.name)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            names.add(node.rest)
    return names


def _scope_bindings(body: list[ast.stmt]) -> set[str]:
    """Names bound directly in the scope whose statements are ``body``."""
    names: set[str] = set()
    for node in _walk_scope(body, _NO_DESCEND_SCOPE):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, _DEFS):
            names.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update(a.asname or a.name.split(".")[0] for a in node.names if a.name != "*")
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
        elif isinstance(node, ast.match_case):
            names |= _pattern_names(node.pattern)
    return names


def _declared_global(body: list[ast.stmt]) -> set[str]:
    names: set[str] = set()
    for node in _walk_scope(body, _DEFS):
        if isinstance(node, ast.Global | ast.Nonlocal):
            names.update(node.names)
    return names


class _Flow:
    """Walks one scope in execution order, noting names read while unbound.

    An approximation: branches are taken in source order and loops once, so
    a name bound in either branch of an ``if`` counts as bound after it.
    """

    def __init__(self, local: set[str], defined: set[str], known: set[str]) -> None:
        self.local = local
        self.defined = set(defined)
        self.known = known
        self.problems: set[str] = set()

    def load(self, name: str) -> None:
        if name in self.local:
            if name not in self.defined:
                self.problems.add(name)
        elif name not in self.known:
            self.problems.add(name)

    def stmts(self, body: list[ast.stmt]) -> None:
        for stmt in body:
            self.stmt(stmt)

    def stmt(self, node: ast.stmt) -> None:
        if isinstance(node, _FUNCS):
            for expr in [*node.decorator_list, *node.args.defaults,
                         *[d for d in node.args.kw_defaults if d is not None]]:
                self.expr(expr)
            self.defined.add(node.name)
        elif isinstance(node, ast.ClassDef):
            for part in [*node.decorator_list, *node.bases, *node.keywords]:
                self.expr(part)
            self.defined.add(node.name)
        elif isinstance(node, ast.Assign):
            self.expr(node.value)
            for target in node.targets:
                self.target(target)
        elif isinstance(node, ast.AugAssign):
            if isinstance(node.target, ast.Name):
                self.load(node.target.id)
            self.expr(node.value)
            self.target(node.target)
        elif isinstance(node, ast.AnnAssign):
            if node.value is not None:
                self.expr(node.value)
                self.target(node.target)
        elif isinstance(node, ast.For | ast.AsyncFor):
            self.expr(node.iter)
            self.target(node.target)
            self.stmts(node.body)
            self.stmts(node.orelse)
        elif isinstance(node, ast.While | ast.If):
            self.expr(node.test)
            self.stmts(node.body)
            self.stmts(node.orelse)
        elif isinstance(node, ast.With | ast.AsyncWith):
            for item in node.items:
                self.expr(item.context_expr)
                if item.optional_vars is not None:
                    self.target(item.optional_vars)
            self.stmts(node.body)
        elif isinstance(node, ast.Try | getattr(ast, "TryStar", ast.Try)):
            self.stmts(node.body)
            for handler in node.handlers:
                if handler.type is not None:
                    self.expr(handler.type)
                if handler.name:
                    self.defined.add(handler.name)
                self.stmts(handler.body)
            self.stmts(node.orelse)
            self.stmts(node.finalbody)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            self.defined.update(a.asname or a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.Match):
            self.expr(node.subject)
            for case in node.cases:
                for sub in ast.walk(case.pattern):
                    if isinstance(sub, ast.MatchValue):
                        self.expr(sub.value)
                    elif isinstance(sub, ast.MatchClass):
                        self.expr(sub.cls)
                self.defined |= _pattern_names(case.pattern)
                if case.guard is not None:
                    self.expr(case.guard)
                self.stmts(case.body)
        else:
            for child in ast.iter_child_nodes(node):
                self.expr(child)

    def target(self, node: ast.expr) -> None:
        if isinstance(node, ast.Name):
            self.defined.add(node.id)
        elif isinstance(node, ast.Tuple | ast.List):
            for elt in node.elts:
                self.target(elt)
        elif isinstance(node, ast.Starred):
            self.target(node.value)
        else:
            self.expr(node)

    def expr(self, node: ast.AST, shadow: frozenset[str] = frozenset()) -> None:
        if isinstance(node, ast.Name):
            if isinstance(node.ctx, ast.Load) and node.id not in shadow:
                self.load(node.id)
            elif isinstance(node.ctx, ast.Store):
                self.defined.add(node.id)
        elif isinstance(node, ast.NamedExpr):
            self.expr(node.value, shadow)
            self.defined.add(node.target.id)
        elif isinstance(node, ast.Lambda):
            args = node.args
            for default in [*args.defaults, *[d for d in args.kw_defaults if d is not None]]:
                self.expr(default, shadow)
            params = {a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs]}
            params |= {a.arg for a in (args.vararg, args.kwarg) if a is not None}
            self.expr(node.body, shadow | params)
        elif isinstance(node, ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp):
            bound = set(shadow)
            for gen in node.generators:
                self.expr(gen.iter, frozenset(bound))
                bound |= {n.id for n in ast.walk(gen.target) if isinstance(n, ast.Name)}
                for cond in gen.ifs:
                    self.expr(cond, frozenset(bound))
            parts = [node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt]
            for part in parts:
                self.expr(part, frozenset(bound))
        elif not isinstance(node, ast.stmt):
            for child in ast.iter_child_nodes(node):
                self.expr(child, shadow)


def _function_problems(func: ast.FunctionDef | ast.AsyncFunctionDef, known: set[str],
                       key: str, problems: set[tuple[str, str]]) -> None:
    args = func.args
    params = {a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs]}
    params |= {a.arg for a in (args.vararg, args.kwarg) if a is not None}
    declared = _declared_global(func.body)
    local = (_scope_bindings(func.body) | params) - declared
    flow = _Flow(local, params, known | declared)
    flow.stmts(func.body)
    problems.update((key, name) for name in flow.problems)
    for node in _walk_scope(func.body, _FUNCS):
        if isinstance(node, _FUNCS):
            _function_problems(node, known | local, f"{key}.{node.name}", problems)


def _unbound_reads(parsed: list[_Region], names_outside: set[str]) -> set[tuple[str, str]]:
    """``(scope, name)`` for each name a scope of the regions reads while unbound.

    Operators compare this before and after a change and refuse changes that
    add an entry (a statement moved above the one defining its input, the only
    definition of a name deleted, ...).
    """
    module_names: set[str] = set()
    for region in parsed:
        if region.tree is not None and not region.indent:
            module_names |= _scope_bindings(region.tree.body)
    known = set(_ALWAYS_BOUND) | names_outside | module_names
    problems: set[tuple[str, str]] = set()
    for i, region in enumerate(parsed):
        if region.tree is None:
            continue
        body = region.tree.body
        local = _scope_bindings(body)
        defined = local & names_outside if region.indent else set()
        flow = _Flow(local, defined, known)
        flow.stmts(body)
        problems.update((str(i), name) for name in flow.problems)
        inner = known | local
        for node in _walk_scope(body, _FUNCS):
            if isinstance(node, _FUNCS):
                _function_problems(node, inner, f"{i}.{node.name}", problems)
    return problems


# ---------------------------------------------------------------------------
# statement operators
# ---------------------------------------------------------------------------

_NO_DELETE = (*_DEFS, ast.Import, ast.ImportFrom, ast.Pass, ast.Global, ast.Nonlocal)
_NO_DUPLICATE = (*_NO_DELETE, ast.Return, ast.Raise, ast.Break, ast.Continue)
_TERMINAL = (ast.Return, ast.Raise, ast.Break, ast.Continue)
_STMT_TRIES = 10

_Mutation = Callable[[list[_Region], random.Random], bool]


def _function_bodies(region: _Region) -> set[int]:
    """ids of the statement lists that are function bodies (also an indented region)."""
    assert region.tree is not None
    ids = {id(n.body) for n in ast.walk(region.tree) if isinstance(n, _FUNCS)}
    if region.indent:
        ids.add(id(region.tree.body))
    return ids


def _stmt_sites(parsed: list[_Region], excluded: tuple[type[Any], ...],
                keep_final_return: bool = False) -> list[tuple[list[ast.stmt], int]]:
    sites: list[tuple[list[ast.stmt], int]] = []
    for region in parsed:
        if region.tree is None:
            continue
        function_bodies = _function_bodies(region) if keep_final_return else set()
        for body in _bodies(region.tree):
            for index, stmt in enumerate(body):
                if isinstance(stmt, excluded) or _is_docstring(body, index):
                    continue
                if (id(body) in function_bodies and index == len(body) - 1
                        and isinstance(stmt, ast.Return) and stmt.value is not None):
                    continue  # the function would return None
                sites.append((body, index))
    return sites


def _checked(regions: list[str], ctx: OpContext, mutate: _Mutation) -> list[str] | None:
    """Apply ``mutate`` to fresh parses until a change leaves no new unbound read."""
    baseline = _unbound_reads(_parse_all(regions), ctx.names_outside)
    for _ in range(_STMT_TRIES):
        parsed = _parse_all(regions)
        if not mutate(parsed, ctx.rng):
            return None
        if _unbound_reads(parsed, ctx.names_outside) <= baseline:
            result = _emit(parsed)
            if result is not None:
                return result
    return None


def _delete(parsed: list[_Region], rng: random.Random) -> bool:
    sites = _stmt_sites(parsed, _NO_DELETE, keep_final_return=True)
    if not sites:
        return False
    body, index = rng.choice(sites)
    del body[index]
    if not body:
        body.append(ast.Pass())
    return True


def statement_deletions(regions: list[str]) -> Iterator[list[str]]:
    """Every version of ``regions`` with one statement removed, in source order.

    The same statements as :func:`op_stmt_delete` may remove (the simplification
    pass of the loop tries them one by one).
    """
    count = len(_stmt_sites(_parse_all(regions), _NO_DELETE, keep_final_return=True))
    for index in range(count):
        parsed = _parse_all(regions)
        body, at = _stmt_sites(parsed, _NO_DELETE, keep_final_return=True)[index]
        del body[at]
        if not body:
            body.append(ast.Pass())
        result = _emit(parsed)
        if result is not None:
            yield result


def op_stmt_delete(regions: list[str], ctx: OpContext) -> list[str] | None:
    """Delete one statement.

    Never a ``def``, ``class``, import, docstring, nor the final ``return`` of
    a function; never the statement binding a name that is read later and
    bound nowhere else before. A body left empty gets ``pass``.
    """
    return _checked(regions, ctx, _delete)


def _duplicate(parsed: list[_Region], rng: random.Random) -> bool:
    sites = _stmt_sites(parsed, _NO_DUPLICATE)
    if not sites:
        return False
    body, index = rng.choice(sites)
    start = 1 if _is_docstring(body, 0) else 0
    end = next((i for i, s in enumerate(body) if isinstance(s, _TERMINAL)), len(body))
    end = max(end, index + 1)
    position = rng.randint(start, end)
    body.insert(position, copy.deepcopy(body[index]))
    return True


def op_stmt_duplicate(regions: list[str], ctx: OpContext) -> list[str] | None:
    """Copy one statement to a random place of the same body.

    The copy lands after the docstring, if any, before the first
    ``return``/``raise``/``break``/``continue`` of the body (so it is never dead
    code), and not above the statements binding the names it reads.
    """
    return _checked(regions, ctx, _duplicate)


def _swap(parsed: list[_Region], rng: random.Random) -> bool:
    choices: list[tuple[list[ast.stmt], list[int]]] = []
    for region in parsed:
        if region.tree is None:
            continue
        for body in _bodies(region.tree):
            indices = [i for i in range(len(body)) if not _is_docstring(body, i)]
            if len({ast.dump(body[i]) for i in indices}) >= 2:
                choices.append((body, indices))
    if not choices:
        return False
    body, indices = rng.choice(choices)
    for _ in range(20):
        if rng.random() < 0.5:
            k = rng.randrange(len(indices) - 1)
            i, j = indices[k], indices[k + 1]
        else:
            i, j = rng.sample(indices, 2)
        if ast.dump(body[i]) != ast.dump(body[j]):
            body[i], body[j] = body[j], body[i]
            return True
    return True  # unchanged this time; the caller tries again


def op_stmt_swap(regions: list[str], ctx: OpContext) -> list[str] | None:
    """Swap two different statements of the same body (docstrings stay first).

    Swaps that make a statement read a name before it is bound are refused.
    """
    return _checked(regions, ctx, _swap)


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
    """Replaceable sub-expressions of ``body``, each with its innermost statement."""
    sites: list[tuple[_Slot, ast.stmt]] = []

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
            if isinstance(child, ast.expr) and not keep and _replaceable(child, variables):
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


# ---------------------------------------------------------------------------
# crossover
# ---------------------------------------------------------------------------


def _function_places(tree: ast.Module) -> dict[str, tuple[list[ast.stmt], int]]:
    """Top-level functions and methods of top-level classes: qualified name -> place."""
    places: dict[str, tuple[list[ast.stmt], int]] = {}
    for index, node in enumerate(tree.body):
        if isinstance(node, _FUNCS):
            places[node.name] = (tree.body, index)
        elif isinstance(node, ast.ClassDef):
            for k, item in enumerate(node.body):
                if isinstance(item, _FUNCS):
                    places[f"{node.name}.{item.name}"] = (node.body, k)
    return places


def _top_functions(tree: ast.Module) -> dict[str, ast.FunctionDef | ast.AsyncFunctionDef]:
    """Top-level functions and methods of top-level classes, by qualified name."""
    out: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = {}
    for name, (body, index) in _function_places(tree).items():
        node = body[index]
        assert isinstance(node, _FUNCS)
        out[name] = node
    return out


def _body_dump(body: list[ast.stmt]) -> str:
    return "\n".join(ast.dump(s) for s in body)


def _one_point(a: list[ast.stmt], b: list[ast.stmt]) -> list[list[ast.stmt]]:
    """Distinct one-point crossovers of two statement lists, other than ``a`` and ``b``."""
    seen = {_body_dump(a), _body_dump(b)}
    children: list[list[ast.stmt]] = []
    for k in range(max(len(a), len(b)) + 1):
        for head, tail in ((a, b), (b, a)):
            child = [copy.deepcopy(s) for s in head[:k] + tail[k:]]
            key = _body_dump(child)
            if child and key not in seen:
                seen.add(key)
                children.append(child)
    return children


def op_crossover(regions: list[str], ctx: OpContext) -> list[str] | None:
    """Mix the regions with those of a second parent (``ctx.other``).

    One of, at random among those that make a child different from both
    parents: a whole region taken from the other parent (programs with several
    regions); one function (or method of a top-level class) of the other
    parent replacing the same-named one (function level); one statement list
    (a region's top level, or the body of a function both define) cut at one
    point and completed from the other parent's (statement level). Returns None
    without a second parent, or when the parents share nothing to mix. A child
    that reads a name before it is bound where neither parent did is not
    returned.
    """
    rng = ctx.rng
    if not ctx.other or len(ctx.other) != len(regions):
        return None
    mine = _parse_all(regions)
    theirs = _parse_all(ctx.other)
    other_key = [r.dump if r.tree is not None else r.text for r in theirs]

    actions: list[tuple[str, int, str | None]] = []
    for i, (a, b) in enumerate(zip(mine, theirs, strict=True)):
        if a.tree is None or b.tree is None or a.dump == b.dump:
            continue
        actions.append(("region", i, None))
        if _body_dump(a.tree.body) != _body_dump(b.tree.body):
            actions.append(("body", i, None))
        fa, fb = _top_functions(a.tree), _top_functions(b.tree)
        for fname, fdef in fa.items():
            if fname in fb and ast.dump(fdef) != ast.dump(fb[fname]):
                actions.append(("function", i, fname))
                if _body_dump(fdef.body) != _body_dump(fb[fname].body):
                    actions.append(("body", i, fname))
    # a child may read unbound only what one of its parents already did
    allowed = (_unbound_reads(mine, ctx.names_outside)
               | _unbound_reads(theirs, ctx.names_outside))
    rng.shuffle(actions)
    for kind, i, name in actions:
        if kind == "region":
            mixed = list(mine)
            mixed[i] = theirs[i]
            keys = [r.dump if r.tree is not None else r.text for r in mixed]
            if keys != other_key and _unbound_reads(mixed, ctx.names_outside) <= allowed:
                out = list(regions)
                out[i] = theirs[i].text
                return out
            continue
        for option in _crossover_options(regions, theirs, kind, i, name, rng):
            keys = [ast.dump(r.tree) if r.tree is not None else r.text for r in option]
            if keys == other_key:
                continue  # a copy of the other parent
            if not _unbound_reads(option, ctx.names_outside) <= allowed:
                continue
            result = _emit(option)
            if result is not None:
                return result
    return None


def _crossover_options(regions: list[str], theirs: list[_Region], kind: str, i: int,
                       name: str | None, rng: random.Random) -> list[list[_Region]]:
    """Children of one function-level or statement-level crossover action."""
    tree_b = theirs[i].tree
    assert tree_b is not None
    if kind == "function":
        assert name is not None
        attempt = _parse_all(regions)
        tree_a = attempt[i].tree
        assert tree_a is not None
        body, index = _function_places(tree_a)[name]
        body[index] = copy.deepcopy(_top_functions(tree_b)[name])
        return [attempt]
    base = _parse_all(regions)[i].tree
    assert base is not None
    if name is None:
        children = _one_point(base.body, tree_b.body)
    else:
        children = _one_point(_top_functions(base)[name].body,
                              _top_functions(tree_b)[name].body)
    rng.shuffle(children)
    options: list[list[_Region]] = []
    for child in children:
        option = _parse_all(regions)
        target = option[i].tree
        assert target is not None
        if name is None:
            target.body = child
        else:
            _top_functions(target)[name].body = child
        options.append(option)
    return options


# ---------------------------------------------------------------------------
# tune
# ---------------------------------------------------------------------------


def op_tune(regions: list[str], ctx: OpContext) -> list[str] | None:
    """Move every numeric literal at once: ``x + sigma * max(|x|, 0.1) * N(0, 1)``.

    Ints are rounded and stay ints; floats keep 6 significant digits; bools are
    not numbers here. Returns None when the regions have no numeric literal.
    """
    parsed = _parse_all(regions)
    sites: list[tuple[_Slot, int | float]] = []
    for region in parsed:
        if region.tree is not None:
            sites.extend(_numeric_sites(region.tree))
    if not sites:
        return None
    for slot, value in sites:
        try:
            step = ctx.sigma * max(abs(value), 0.1) * ctx.rng.gauss(0.0, 1.0)
            moved = value + step
        except OverflowError:
            continue
        if not math.isfinite(moved):
            continue
        new: int | float = int(round(moved)) if isinstance(value, int) else _round_sig(moved, 6)
        if new != value:
            slot.set(_number_node(new))
    return _emit(parsed)


def numeric_literals(regions: list[str]) -> list[int | float]:
    """The numeric literals of ``regions`` that ``constant`` and ``tune`` may move, in order."""
    values: list[int | float] = []
    for region in _parse_all(regions):
        if region.tree is not None:
            values.extend(value for _, value in _numeric_sites(region.tree))
    return values


def with_numeric_literals(regions: list[str], values: list[int | float]) -> list[str] | None:
    """``regions`` with their numeric literals (see :func:`numeric_literals`) set to ``values``.

    Returns:
        The new regions, or None when nothing changed or the count does not match.
    """
    parsed = _parse_all(regions)
    sites: list[_Slot] = []
    for region in parsed:
        if region.tree is not None:
            sites.extend(slot for slot, _ in _numeric_sites(region.tree))
    if len(sites) != len(values):
        return None
    for slot, value in zip(sites, values, strict=True):
        if math.isfinite(value):
            slot.set(_number_node(value))
    return _emit(parsed)


OPERATORS: dict[str, Operator] = {
    "constant": op_constant,
    "operator_swap": op_operator_swap,
    "stmt_delete": op_stmt_delete,
    "stmt_duplicate": op_stmt_duplicate,
    "stmt_swap": op_stmt_swap,
    "expr_replace": op_expr_replace,
    "crossover": op_crossover,
    "tune": op_tune,
}
"""The operators by name, in the order the proposer lists them."""
