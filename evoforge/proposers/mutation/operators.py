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

This module holds ``constant``, ``operator_swap``, ``crossover`` and ``tune`` and
the registry; the rest live beside it: region handling in :mod:`.regions`, name
resolution in :mod:`.scope`, the statement operators in :mod:`.statements` and
``expr_replace`` in :mod:`.expressions`. Their public names are re-exported here.
"""

from __future__ import annotations

import ast
import copy
import math
import random
from collections.abc import Callable, Iterator
from typing import Any

from evoforge.proposers.mutation.expressions import (
    BUILTIN_PRIMITIVES,
    EXPR_TRIES,
    MATH_PRIMITIVES,
    NUMPY_PRIMITIVES,
    check_primitive,
    default_primitives,
    op_expr_replace,
    template_arity,
)
from evoforge.proposers.mutation.regions import (
    OpContext,
    Operator,
    _all_slots,
    _emit,
    _number_node,
    _numeric_sites,
    _parse_all,
    _Region,
    _round_sig,
    _Slot,
    index_nodes,
    parse_region,
    split_indent,
    unparse_region,
)
from evoforge.proposers.mutation.scope import (
    _FUNCS,
    _unbound_reads,
)
from evoforge.proposers.mutation.statements import (
    op_stmt_delete,
    op_stmt_duplicate,
    op_stmt_swap,
    statement_deletions,
)

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
        indices = index_nodes(region.tree)  # bins[-1] stays bins[-1]
        for slot in _all_slots(region.tree):
            node = slot.get()
            if id(node) in indices:
                continue
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
    """Distinct one-point crossovers of two statement lists, other than ``a`` and ``b``.

    The children share their statements with ``a`` and ``b``: copy before changing them.
    """
    dump_a, dump_b = [ast.dump(s) for s in a], [ast.dump(s) for s in b]
    seen = {"\n".join(dump_a), "\n".join(dump_b)}
    children: list[list[ast.stmt]] = []
    for k in range(max(len(a), len(b)) + 1):
        for head, tail, key_head, key_tail in ((a, b, dump_a, dump_b), (b, a, dump_b, dump_a)):
            key = "\n".join(key_head[:k] + key_tail[k:])
            child = head[:k] + tail[k:]
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
    if not actions:  # nothing to mix (common: one-statement programs)
        return None
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
                       name: str | None, rng: random.Random) -> Iterator[list[_Region]]:
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
        yield attempt
        return
    base = _parse_all(regions)[i].tree
    assert base is not None
    if name is None:
        children = _one_point(base.body, tree_b.body)
    else:
        children = _one_point(_top_functions(base)[name].body,
                              _top_functions(tree_b)[name].body)
    rng.shuffle(children)
    # made one at a time: the caller usually takes the first, and each costs a parse
    for child in children:
        option = _parse_all(regions)
        target = option[i].tree
        assert target is not None
        body = [copy.deepcopy(s) for s in child]
        if name is None:
            target.body = body
        else:
            _top_functions(target)[name].body = body
        yield option


# ---------------------------------------------------------------------------
# tune
# ---------------------------------------------------------------------------


def literal_scale(value: int | float) -> float:
    """What a step of 1 in ``tune`` and CMA-ES means for a literal: ``|x|``, at least 1
    for an int (its grain; scaled by ``|x|`` alone a 0 would never move) and 0.1 for a
    float."""
    return max(abs(value), 1 if isinstance(value, int) else 0.1)


def op_tune(regions: list[str], ctx: OpContext) -> list[str] | None:
    """Move every numeric literal at once: ``x + sigma * max(|x|, 0.1) * N(0, 1)``.

    Ints move by ``sigma * max(|x|, 1) * N(0, 1)``, rounded at random (up with the
    probability of the fraction) so that they stay ints: a step much smaller than 1
    still moves an int now and then, by the step on average (rounded to the nearest,
    ``0``, ``1`` and ``2`` would never move at the usual sigma, and a switch such as
    ``ROUNDS = 0`` would stay off). Floats keep 6 significant digits; bools are not
    numbers here. Returns None when the regions have no numeric literal.
    """
    parsed = _parse_all(regions)
    sites: list[tuple[_Slot, int | float]] = []
    for region in parsed:
        if region.tree is not None:
            sites.extend(_numeric_sites(region.tree))
    if not sites:
        return None
    for slot, value in sites:
        whole = isinstance(value, int)
        try:
            step = ctx.sigma * literal_scale(value) * ctx.rng.gauss(0.0, 1.0)
            moved = value + step
        except OverflowError:
            continue
        if not math.isfinite(moved):
            continue
        new: int | float = (math.floor(moved + ctx.rng.random()) if whole
                            else _round_sig(moved, 6))
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

__all__ = [
    "BUILTIN_PRIMITIVES",
    "EXPR_TRIES",
    "MATH_PRIMITIVES",
    "NUMPY_PRIMITIVES",
    "OPERATORS",
    "OpContext",
    "Operator",
    "check_primitive",
    "default_primitives",
    "numeric_literals",
    "op_constant",
    "op_crossover",
    "op_expr_replace",
    "op_operator_swap",
    "op_stmt_delete",
    "op_stmt_duplicate",
    "op_stmt_swap",
    "op_tune",
    "parse_region",
    "split_indent",
    "literal_scale",
    "statement_deletions",
    "template_arity",
    "unparse_region",
    "with_numeric_literals",
]
