"""Tests of the mutation operators and the model-free proposer."""

from __future__ import annotations

import ast
import json
import math
import random
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import evoforge
from evoforge.candidate import Candidate, normalized_hash
from evoforge.config import MutationConfig
from evoforge.problem.blocks import Template, extract_regions, parse_blocks
from evoforge.proposers.base import Proposal
from evoforge.proposers.mutation import OPERATORS, MutationProposer, OpContext
from evoforge.proposers.mutation.fresh import FACTORS, compass_step, new_literal_positions
from evoforge.proposers.mutation.operators import (
    check_primitive,
    numeric_literals,
    parse_region,
    split_indent,
    template_arity,
)
from evoforge.proposers.mutation.proposer import (
    DEFAULT_SIGMA,
    SIGMA_MAX,
    SIGMA_MIN,
    names_bound_outside,
)

# ---------------------------------------------------------------------------
# programs
# ---------------------------------------------------------------------------

BINPACK = '''"""FunSearch-style online bin packing."""
import numpy as np


# EVOLVE-BLOCK-START
def priority(item: float, bins: np.ndarray) -> np.ndarray:
    """Returns priority with which we want to add item to each bin."""
    score = -(bins - item)
    score = np.where(bins - item >= 0, score, -np.inf)
    ratios = item / bins
    log_ratios = np.log(ratios)
    priorities = -log_ratios ** 2 + 0.5 * ratios
    if item > 0.3 and len(bins) > 2:
        priorities = priorities * 1.5
    return priorities
# EVOLVE-BLOCK-END


def solve(items, capacity=1.0):
    """Packs items online; fixed code."""
    bins = []
    for item in items:
        fits = np.array([c for c in bins if c >= item])
        if len(fits) == 0:
            bins.append(capacity - item)
        else:
            best = int(np.argmax(priority(item, fits)))
            bins[bins.index(fits[best])] -= item
    return len(bins)
'''

BODY = '''import math


def heuristic(x, y, *, scale=1.0):
    """The body of this function is evolved, not its signature."""
    # EVOLVE-BLOCK-START
    a = x * 2.5 + y
    b = math.sqrt(abs(a)) - 3
    # swap when out of order
    if a > b:
        a, b = b, a
    total = 0
    for k in range(4):
        total += k * a
    return scale * (a / (b + 1e-9) + total)
    # EVOLVE-BLOCK-END


print(heuristic(1.0, 2.0))
'''

TWO_FUNCS = '''# EVOLVE-BLOCK-START
def helper(v, w):
    """Combine two values."""
    u = v * 0.75 - w
    return u ** 2


def main(values):
    acc = 0.0
    for value in values:
        acc = acc + helper(value, 1.5)
    if acc < 10:
        acc = -acc
    return acc
# EVOLVE-BLOCK-END

RESULT = main([1.0, 2.0, 3.0])
'''

TWO_REGIONS = '''import math

# EVOLVE-BLOCK-START
ALPHA = 0.7
STEPS = 3
# EVOLVE-BLOCK-END


def run(x):
    y = x
    # EVOLVE-BLOCK-START
    for _ in range(STEPS):
        y = y * ALPHA + math.cos(y)
    y = max(y, -2)
    # EVOLVE-BLOCK-END
    return y
'''

NO_CONST = '''# EVOLVE-BLOCK-START
def combine(a, b):
    c = a + b
    d = c * a
    if d > b:
        d = d - c
    return d / b
# EVOLVE-BLOCK-END
'''

BROKEN_REGION = '''# EVOLVE-BLOCK-START
def f(x):
# EVOLVE-BLOCK-END
    return x + 1


def g(y):
    # EVOLVE-BLOCK-START
    z = y * 3 + 1.5
    w = y - 1
    z = z * w
    return z - 2
    # EVOLVE-BLOCK-END
'''

PROGRAMS = {
    "binpack": BINPACK,
    "body": BODY,
    "two_funcs": TWO_FUNCS,
    "two_regions": TWO_REGIONS,
    "no_const": NO_CONST,
    "broken_region": BROKEN_REGION,
}

# crossover mates: same structure, different content
MATES = {
    "binpack": BINPACK.replace("score = -(bins - item)", "score = bins * item")
    .replace("priorities = priorities * 1.5", "priorities = priorities - item"),
    "body": BODY.replace("a = x * 2.5 + y", "a = x - y")
    .replace("return scale * (a / (b + 1e-9) + total)", "return scale * (a - b)"),
    "two_funcs": TWO_FUNCS.replace("u = v * 0.75 - w", "u = v + w")
    .replace("acc = -acc", "acc = acc / 2"),
    "two_regions": TWO_REGIONS.replace("ALPHA = 0.7", "ALPHA = 0.2")
    .replace("y = max(y, -2)", "y = y + 1"),
    "no_const": NO_CONST.replace("c = a + b", "c = a - b").replace("return d / b", "return d"),
    "broken_region": BROKEN_REGION.replace("z = y * 3 + 1.5", "z = y")
    .replace("return z - 2", "return z * z"),
}

SEEDS = range(40)


def np_errstate() -> np.errstate:
    """Silence numpy's floating-point warnings in mutants that are run."""
    return np.errstate(all="ignore")


def _template(name: str) -> Template:
    return parse_blocks(PROGRAMS[name])


def _ctx(name: str, seed: int, **kwargs: object) -> OpContext:
    template = _template(name)
    ctx = OpContext(rng=random.Random(seed),
                    names_outside=names_bound_outside(template, template.source))
    for key, value in kwargs.items():
        setattr(ctx, key, value)
    return ctx


def _apply(op: str, name: str, seed: int, **kwargs: object) -> list[str] | None:
    template = _template(name)
    if op == "crossover" and "other" not in kwargs:
        kwargs["other"] = extract_regions(template, MATES[name])
    return OPERATORS[op](list(template.regions), _ctx(name, seed, **kwargs))


def _check(name: str, regions: list[str]) -> str:
    """The rendered program; asserts it is valid and fixed text is untouched."""
    template = _template(name)
    assert len(regions) == len(template.regions)
    code = template.render(regions)
    ast.parse(code)
    assert extract_regions(template, code) == [
        r if not r or r.endswith("\n") else r + "\n" for r in regions
    ]
    for old, new in zip(template.regions, regions, strict=True):
        if parse_region(old) is None:
            assert new == old, "an unparseable region was changed"
        else:
            assert parse_region(new) is not None
    return code


def _literals(node: ast.AST) -> Iterator[int | float]:
    """Numeric literals in source order; ``-3`` is one literal."""
    if (isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub)
            and isinstance(node.operand, ast.Constant)
            and type(node.operand.value) in (int, float)):
        yield -node.operand.value
        return
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        yield node.value
        return
    for child in ast.iter_child_nodes(node):
        yield from _literals(child)


def _region_literals(regions: list[str] | tuple[str, ...]) -> list[int | float]:
    out: list[int | float] = []
    for region in regions:
        tree = parse_region(region)
        if tree is not None:
            out.extend(_literals(tree))
    return out


def _operators(regions: list[str] | tuple[str, ...]) -> list[str]:
    out: list[str] = []
    for region in regions:
        tree = parse_region(region)
        if tree is None:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.BinOp | ast.AugAssign | ast.BoolOp | ast.UnaryOp):
                out.append(type(node.op).__name__)
            elif isinstance(node, ast.Compare):
                out.extend(type(op).__name__ for op in node.ops)
    return out


def _store_names(regions: list[str] | tuple[str, ...]) -> list[str]:
    out: list[str] = []
    for region in regions:
        tree = parse_region(region)
        if tree is not None:
            out.extend(n.id for n in ast.walk(tree)
                       if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store))
    return sorted(out)


def _def_names(regions: list[str] | tuple[str, ...]) -> list[str]:
    out: list[str] = []
    for region in regions:
        tree = parse_region(region)
        if tree is not None:
            out.extend(n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef))
    return sorted(out)


# ---------------------------------------------------------------------------
# region handling
# ---------------------------------------------------------------------------


def test_split_indent_of_a_function_body() -> None:
    region = _template("body").regions[0]
    indent, dedented = split_indent(region)
    assert indent == "    "
    assert dedented.startswith("a = x * 2.5 + y\n")
    assert dedented == textwrap.dedent(region)
    assert parse_region(region) is not None


def test_split_indent_ignores_comment_lines() -> None:
    indent, dedented = split_indent("    x = 1\n# note\n    y = 2\n")
    assert indent == "    "
    assert ast.parse(dedented)


def test_multiline_strings_keep_their_value() -> None:
    program = (
        "def f(x):\n"
        "    # EVOLVE-BLOCK-START\n"
        '    """Doc\n'
        "    more\n"
        '"""\n'
        '    s = """a\n'
        '  b"""\n'
        "    return x * 1.5\n"
        "    # EVOLVE-BLOCK-END\n"
    )
    template = parse_blocks(program)
    for seed in range(10):
        result = OPERATORS["constant"](list(template.regions), OpContext(rng=random.Random(seed)))
        assert result is not None
        code = template.render(result)
        func = ast.parse(code).body[0]
        assert isinstance(func, ast.FunctionDef)
        assert ast.get_docstring(func, clean=False) == "Doc\n    more\n"
        assign = func.body[1]
        assert isinstance(assign, ast.Assign) and isinstance(assign.value, ast.Constant)
        assert assign.value.value == "a\n  b"


def test_names_bound_outside() -> None:
    template = _template("body")
    names = names_bound_outside(template, template.source)
    assert {"math", "x", "y", "scale", "heuristic"} <= names
    assert not {"a", "b", "total", "k"} & names
    template = _template("binpack")
    names = names_bound_outside(template, template.source)
    assert {"np", "solve"} <= names
    # the parameters and locals of a fixed function are not visible to the region
    assert not {"items", "capacity", "fits"} & names
    assert "priority" not in names  # defined inside the region
    assert names_bound_outside(template, "not a rendering") == set()
    # a region in a function body sees that function's parameters and locals, every
    # kind of parameter included, and the module's names; not another function's
    source = ("import math\ndef f(x, y=2, *a, k, **kw):\n    z = 1\n"
              "    # EVOLVE-BLOCK-START\n    w = x + z\n    # EVOLVE-BLOCK-END\n"
              "    return w\ndef g(q):\n    r = [v for v in q]\n    return r\n")
    assert names_bound_outside(parse_blocks(source), source) == {
        "math", "f", "g", "x", "y", "a", "k", "kw", "z"}


# ---------------------------------------------------------------------------
# every operator on every program
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(PROGRAMS))
@pytest.mark.parametrize("op", list(OPERATORS))
def test_operator_output_is_valid(op: str, name: str) -> None:
    template = _template(name)
    changed = 0
    applicable = 0
    for seed in SEEDS:
        result = _apply(op, name, seed)
        if result is None:
            continue
        applicable += 1
        code = _check(name, result)
        if code != template.source:
            changed += 1
        # statement operators never remove or add a function
        assert _def_names(result) == _def_names(template.regions)
    no_literals = not _region_literals(template.regions)
    if op in ("constant", "tune") and no_literals:
        assert applicable == 0
        return
    assert applicable >= len(SEEDS) // 2, f"{op} rarely applies to {name}"
    assert changed >= 0.9 * applicable, f"{op} rarely changes {name}"


@pytest.mark.parametrize("op", list(OPERATORS))
def test_operators_are_deterministic(op: str) -> None:
    for seed in range(5):
        assert _apply(op, "binpack", seed) == _apply(op, "binpack", seed)


def test_unparseable_region_is_left_alone() -> None:
    template = _template("broken_region")
    assert parse_region(template.regions[0]) is None
    for op in OPERATORS:
        for seed in range(10):
            result = _apply(op, "broken_region", seed)
            if result is not None:
                assert result[0] == template.regions[0]


def test_untouched_regions_are_kept_byte_for_byte() -> None:
    template = _template("two_regions")
    touched = [0, 0]
    for seed in SEEDS:
        result = _apply("constant", "two_regions", seed)
        assert result is not None
        diffs = [i for i in range(2) if result[i] != template.regions[i]]
        assert len(diffs) == 1
        touched[diffs[0]] += 1
    assert all(touched), touched


# ---------------------------------------------------------------------------
# constant
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["binpack", "body", "two_funcs", "two_regions"])
def test_constant_changes_exactly_one_literal(name: str) -> None:
    template = _template(name)
    before = _region_literals(template.regions)
    for seed in SEEDS:
        result = _apply("constant", name, seed)
        assert result is not None
        after = _region_literals(result)
        assert len(after) == len(before)
        diffs = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
        assert len(diffs) == 1, diffs
        old, new = diffs[0]
        assert type(old) is type(new)
        assert math.isfinite(new)


def test_constant_never_touches_bools() -> None:
    program = "# EVOLVE-BLOCK-START\nflag = True\nlimit = 4\n# EVOLVE-BLOCK-END\n"
    template = parse_blocks(program)
    for seed in range(20):
        result = OPERATORS["constant"](list(template.regions),
                                       OpContext(rng=random.Random(seed)))
        assert result is not None
        assert result[0].startswith("flag = True\n")
    assert OPERATORS["constant"](["flag = True\n"], OpContext(rng=random.Random(0))) is None


def test_constant_handles_negative_literals() -> None:
    template = parse_blocks("# EVOLVE-BLOCK-START\nx = -3\n# EVOLVE-BLOCK-END\n")
    values = set()
    for seed in range(40):
        result = OPERATORS["constant"](list(template.regions), OpContext(rng=random.Random(seed)))
        assert result is not None
        ast.parse(template.render(result))
        values.update(_region_literals(result))
    assert -3 not in values
    assert any(v < 0 for v in values)


def test_constant_does_not_apply_without_literals() -> None:
    assert _apply("constant", "no_const", 0) is None


# ---------------------------------------------------------------------------
# operator_swap
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["binpack", "body", "two_funcs", "no_const"])
def test_operator_swap_changes_an_operator(name: str) -> None:
    template = _template(name)
    before = _operators(template.regions)
    for seed in SEEDS:
        result = _apply("operator_swap", name, seed)
        assert result is not None
        assert _operators(result) != before
        # names are untouched
        assert _store_names(result) == _store_names(template.regions)


def test_operator_swap_kinds() -> None:
    seen: set[str] = set()
    template = _template("binpack")
    before = " ".join(_operators(template.regions))
    for seed in range(200):
        result = _apply("operator_swap", "binpack", seed)
        assert result is not None
        after = _operators(result)
        seen.update(set(after) - set(before.split()))
        if len(after) < len(before.split()):
            seen.add("removed-unary")
        if "not " in result[0] and "not " not in template.regions[0]:
            seen.add("added-not")
    assert {"Or", "removed-unary", "added-not"} <= seen
    assert seen & {"Lt", "LtE", "Eq", "NotEq"}
    assert seen & {"Mult", "Div", "FloorDiv", "Mod", "Pow"}


# ---------------------------------------------------------------------------
# statement operators
# ---------------------------------------------------------------------------


def _stmt_count(regions: list[str] | tuple[str, ...]) -> int:
    count = 0
    for region in regions:
        tree = parse_region(region)
        if tree is not None:
            count += sum(isinstance(n, ast.stmt) for n in ast.walk(tree))
    return count


@pytest.mark.parametrize("name", ["binpack", "body", "two_funcs", "no_const"])
def test_statement_counts(name: str) -> None:
    template = _template(name)
    n = _stmt_count(template.regions)
    done = {"stmt_delete": 0, "stmt_duplicate": 0, "stmt_swap": 0}
    for seed in SEEDS:
        deleted = _apply("stmt_delete", name, seed)
        if deleted is not None:
            done["stmt_delete"] += 1
            # fewer, or the same when the body got a ``pass``
            assert _stmt_count(deleted) <= n
        duplicated = _apply("stmt_duplicate", name, seed)
        if duplicated is not None:
            done["stmt_duplicate"] += 1
            assert _stmt_count(duplicated) > n
        swapped = _apply("stmt_swap", name, seed)
        if swapped is not None:
            done["stmt_swap"] += 1
            assert _stmt_count(swapped) == n
            assert swapped != list(template.regions)
    assert min(done.values()) >= 0.75 * len(SEEDS), done


def _unbound_locals(code: str) -> list[str]:
    """Names read by a function of ``code`` before any statement binds them."""
    problems = []
    for func in ast.walk(ast.parse(code)):
        if not isinstance(func, ast.FunctionDef):
            continue
        bound = {a.arg for a in func.args.args + func.args.kwonlyargs}
        stored = {n.id for n in ast.walk(func) if isinstance(n, ast.Name)
                  and isinstance(n.ctx, ast.Store)}
        for stmt in func.body:
            loads = [n.id for n in ast.walk(stmt)
                     if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)]
            if not isinstance(stmt, ast.For):
                problems += [n for n in loads if n in stored and n not in bound]
            bound |= {n.id for n in ast.walk(stmt) if isinstance(n, ast.Name)
                      and isinstance(n.ctx, ast.Store)}
    return problems


@pytest.mark.parametrize("op", ["stmt_delete", "stmt_duplicate", "stmt_swap"])
@pytest.mark.parametrize("name", ["binpack", "two_funcs", "no_const"])
def test_statement_operators_keep_names_bound(op: str, name: str) -> None:
    template = _template(name)
    assert not _unbound_locals(template.source)
    for seed in SEEDS:
        result = _apply(op, name, seed)
        if result is not None:
            assert not _unbound_locals(template.render(result)), result


def test_statement_operators_run() -> None:
    """Mutants of the bin-packing heuristic still run (no NameError, no None result)."""
    template = _template("binpack")
    for op in ("stmt_delete", "stmt_duplicate", "stmt_swap"):
        for seed in range(20):
            result = _apply(op, "binpack", seed)
            if result is None:
                continue
            namespace: dict[str, object] = {}
            exec(template.render(result), namespace)
            solve = namespace["solve"]
            assert callable(solve)
            with np_errstate():
                assert solve([0.3, 0.5, 0.2, 0.7, 0.1] * 4) >= 1


def test_stmt_delete_leaves_pass_in_an_emptied_body() -> None:
    program = "def f(x):\n    # EVOLVE-BLOCK-START\n    x = x + 1\n    # EVOLVE-BLOCK-END\n"
    template = parse_blocks(program)
    result = OPERATORS["stmt_delete"](list(template.regions), OpContext(rng=random.Random(0)))
    assert result == ["    pass\n"]
    ast.parse(template.render(result))


def test_statement_operators_keep_docstrings_first() -> None:
    for op in ("stmt_duplicate", "stmt_swap", "stmt_delete"):
        for seed in SEEDS:
            result = _apply(op, "binpack", seed)
            if result is None:
                continue
            tree = parse_region(result[0])
            assert tree is not None
            func = tree.body[0]
            assert isinstance(func, ast.FunctionDef)
            assert ast.get_docstring(func) is not None


# ---------------------------------------------------------------------------
# expr_replace
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["binpack", "body", "two_funcs", "two_regions", "no_const"])
def test_expr_replace_keeps_assignment_targets(name: str) -> None:
    template = _template(name)
    for seed in SEEDS:
        result = _apply("expr_replace", name, seed)
        assert result is not None
        assert _store_names(result) == _store_names(template.regions)


def test_expr_replace_uses_a_custom_primitive() -> None:
    hits = 0
    for seed in range(80):
        result = _apply("expr_replace", "binpack", seed,
                        primitives=["soft_clip({0}, {1})", "{0}.max()"])
        assert result is not None
        code = _check("binpack", result)
        if "soft_clip(" in code:
            hits += 1
        assert "np.maximum" not in code  # custom primitives replace the defaults
    assert hits >= 3


def test_expr_replace_default_primitives_follow_imports() -> None:
    numpy_hits = 0
    for seed in range(80):
        result = _apply("expr_replace", "binpack", seed)
        assert result is not None
        after = result[0].count("np.")
        if after > _template("binpack").regions[0].count("np."):
            numpy_hits += 1
    assert numpy_hits >= 3
    for seed in range(80):
        result = _apply("expr_replace", "no_const", seed)
        assert result is not None
        assert "np." not in result[0] and "math." not in result[0]


def test_expr_replace_only_uses_names_in_scope() -> None:
    # names generated in ``main`` must be bound there, in parameters or globals
    allowed = {"values", "acc", "value", "helper", "v", "w", "u", "abs", "min", "max"}
    for seed in range(80):
        result = _apply("expr_replace", "two_funcs", seed)
        assert result is not None
        tree = parse_region(result[0])
        assert tree is not None
        loads = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        assert loads <= allowed, loads - allowed


def test_expr_replace_never_touches_the_call_target() -> None:
    template = _template("binpack")
    callees = {"np.where", "np.log", "len", "np.abs", "np.sqrt", "np.log1p", "np.exp",
               "np.square", "np.maximum", "np.minimum", "abs", "min", "max"}
    for seed in range(80):
        result = _apply("expr_replace", "binpack", seed)
        assert result is not None
        tree = parse_region(result[0])
        assert tree is not None
        called = {ast.unparse(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
        assert called <= callees, called - callees
        # the signature line, outside any function body, is never changed
        assert result[0].split("\n")[0] == template.regions[0].split("\n")[0]


def test_expr_replace_without_functions_does_not_apply() -> None:
    template = parse_blocks("# EVOLVE-BLOCK-START\nA = 1\nB = A + 2\n# EVOLVE-BLOCK-END\n")
    assert OPERATORS["expr_replace"](list(template.regions),
                                     OpContext(rng=random.Random(0))) is None


def test_primitive_templates() -> None:
    assert template_arity("np.maximum({0}, {1})") == 2
    assert template_arity("np.where({0} < {1}, {2}, {3})") == 4
    assert template_arity("{0}.max()") == 1
    assert template_arity("f({}, {})") == 2
    assert template_arity("np.pi") == 0
    assert check_primitive("np.maximum({0}, {1})") is None
    assert check_primitive("f({x})") is not None
    assert check_primitive("f({0}, ") is not None


# ---------------------------------------------------------------------------
# crossover
# ---------------------------------------------------------------------------


def _lines(regions: list[str] | tuple[str, ...]) -> set[str]:
    out: set[str] = set()
    for region in regions:
        tree = parse_region(region)
        if tree is not None:
            out.update(line.strip() for line in ast.unparse(tree).splitlines())
    return out


@pytest.mark.parametrize("name", ["binpack", "body", "two_funcs", "two_regions", "no_const"])
def test_crossover_mixes_both_parents(name: str) -> None:
    template = _template(name)
    mine = _lines(template.regions)
    theirs = _lines(extract_regions(template, MATES[name]))
    only_mine, only_theirs = mine - theirs, theirs - mine
    assert only_mine and only_theirs
    for seed in SEEDS:
        result = _apply("crossover", name, seed)
        assert result is not None
        child = _lines(result)
        assert child & only_mine, "nothing left of the parent"
        assert child & only_theirs, "nothing taken from the other parent"


def test_crossover_takes_a_function_from_the_other_parent() -> None:
    template = _template("two_funcs")
    other = extract_regions(template, MATES["two_funcs"])
    seen_function = False
    for seed in SEEDS:
        result = _apply("crossover", "two_funcs", seed, other=other)
        assert result is not None
        tree = parse_region(result[0])
        their_tree = parse_region(other[0])
        assert tree is not None and their_tree is not None
        if ast.dump(tree.body[0]) == ast.dump(their_tree.body[0]):
            seen_function = True
    assert seen_function


def test_crossover_needs_a_second_parent() -> None:
    template = _template("binpack")
    assert OPERATORS["crossover"](list(template.regions), _ctx("binpack", 0)) is None
    same = OPERATORS["crossover"](list(template.regions),
                                  _ctx("binpack", 0, other=list(template.regions)))
    assert same is None


# ---------------------------------------------------------------------------
# tune
# ---------------------------------------------------------------------------


def test_tune_moves_every_float_literal() -> None:
    template = _template("binpack")
    before = _region_literals(template.regions)
    for seed in SEEDS:
        result = _apply("tune", "binpack", seed, sigma=0.2)
        assert result is not None
        after = _region_literals(result)
        assert len(after) == len(before)
        for old, new in zip(before, after, strict=True):
            assert type(old) is type(new)
            if isinstance(old, float):
                assert new != old


def test_tune_changes_all_literals_with_a_large_step() -> None:
    program = "# EVOLVE-BLOCK-START\nA = 10\nB = 0.0\nC = -2.5\nD = 300\n# EVOLVE-BLOCK-END\n"
    template = parse_blocks(program)
    changed_all = 0
    for seed in SEEDS:
        ctx = OpContext(rng=random.Random(seed), sigma=1.0)
        result = OPERATORS["tune"](list(template.regions), ctx)
        assert result is not None
        after = _region_literals(result)
        assert [type(v) for v in after] == [int, float, float, int]
        if all(a != b for a, b in zip(after, [10, 0.0, -2.5, 300], strict=True)):
            changed_all += 1
    assert changed_all >= 0.8 * len(SEEDS)


def test_tune_moves_small_ints_now_and_then_and_without_bias() -> None:
    """Ints round at random: at sigma 0.1 a 0 still moves (it never did, rounded to the
    nearest), and an int moves by the step on average."""
    template = parse_blocks("# EVOLVE-BLOCK-START\nROUNDS = 0\nCOUNT = 8\n"
                            "# EVOLVE-BLOCK-END\n")
    zero_moved, count_moves = 0, []
    for seed in range(2000):
        result = OPERATORS["tune"](list(template.regions),
                                   OpContext(rng=random.Random(seed), sigma=0.1))
        # None: nothing moved
        rounds, count = _region_literals(result) if result is not None else (0, 8)
        assert isinstance(rounds, int) and isinstance(count, int)
        zero_moved += rounds != 0
        count_moves.append(count - 8)
    # E|step| = 0.1 * sqrt(2 / pi) = 0.08 for the 0
    assert 0.05 < zero_moved / 2000 < 0.11, zero_moved
    assert abs(sum(count_moves) / 2000) < 0.1  # unbiased (step sd 0.8)
    assert 0.4 < sum(m != 0 for m in count_moves) / 2000 < 0.8


def test_tune_step_scales_with_sigma() -> None:
    template = _template("body")
    before = [v for v in _region_literals(template.regions) if isinstance(v, float)]

    def spread(sigma: float) -> float:
        total = 0.0
        for seed in SEEDS:
            result = _apply("tune", "body", seed, sigma=sigma)
            if result is None:
                continue
            after = [v for v in _region_literals(result) if isinstance(v, float)]
            total += sum(abs(a - b) / max(abs(b), 0.1)
                         for a, b in zip(after, before, strict=True))
        return total

    assert spread(0.01) < spread(0.5)


def test_tune_without_literals() -> None:
    assert _apply("tune", "no_const", 0) is None


# ---------------------------------------------------------------------------
# the proposer
# ---------------------------------------------------------------------------


def _candidate(code: str, cid: int = 1, fitness: float | None = 1.0) -> Candidate:
    return Candidate(id=cid, seq=cid, island=0, parent_ids=(), operator="initial",
                     code=code, code_hash=normalized_hash(code), fitness=fitness)


@pytest.mark.parametrize("name", [n for n in PROGRAMS if n != "broken_region"])
def test_proposals_are_valid(name: str) -> None:
    template = _template(name)
    proposer = MutationProposer(template, MutationConfig())
    parent = _candidate(template.source)
    mate = _candidate(MATES[name], cid=2)
    rng = random.Random(0)
    operators = set()
    for _ in range(60):
        proposal = proposer.propose(parent, [mate], rng)
        assert proposal is not None
        assert proposal.code != parent.code
        ast.parse(proposal.code)
        extract_regions(template, proposal.code)
        assert proposal.operator in (*OPERATORS, "cmaes")
        operators.add(proposal.operator)
        if proposal.operator == "crossover":
            assert proposal.parent_ids == [1, 2]
        else:
            assert proposal.parent_ids == [1]
        proposer.feedback(proposal, 1.0, 0.5)
    assert len(operators) >= 4


@pytest.mark.parametrize("bandit", ["thompson", "ucb"])
def test_same_seed_same_proposals(bandit: str) -> None:
    def run(seed: int) -> list[tuple[str, str]]:
        template = _template("binpack")
        proposer = MutationProposer(template, MutationConfig(bandit=bandit))
        parent = _candidate(template.source)
        mates = [_candidate(MATES["binpack"], cid=2)]
        rng = random.Random(seed)
        outcomes = random.Random(seed + 1)
        out = []
        for _ in range(30):
            proposal = proposer.propose(parent, mates, rng)
            assert proposal is not None
            out.append((proposal.operator, proposal.code))
            proposer.feedback(proposal, 1.0, outcomes.choice([0.5, 2.0, None]))
        return out

    assert run(3) == run(3)
    assert run(3) != run(4)


def test_unknown_operator_is_a_value_error() -> None:
    template = _template("binpack")
    with pytest.raises(ValueError) as info:
        MutationProposer(template, MutationConfig(operators=["constant", "frobnicate"]))
    message = str(info.value)
    assert "frobnicate" in message and "tune" in message and "\n" not in message


def test_bad_primitive_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="primitives"):
        MutationProposer(_template("binpack"), MutationConfig(primitives=["f({name})"]))


def test_operator_subset_and_non_applicable_operators() -> None:
    template = _template("no_const")
    parent = _candidate(template.source)
    proposer = MutationProposer(template, MutationConfig(operators=["constant", "tune"]))
    assert proposer.propose(parent, [], random.Random(0)) is None
    proposer = MutationProposer(template, MutationConfig(operators=["constant", "stmt_swap"]))
    for seed in range(10):
        proposal = proposer.propose(parent, [], random.Random(seed))
        assert proposal is not None and proposal.operator == "stmt_swap"


@pytest.mark.parametrize("bandit", ["thompson", "ucb"])
def test_crossover_needs_an_inspiration(bandit: str) -> None:
    template = _template("binpack")
    parent = _candidate(template.source)
    config = MutationConfig(operators=["crossover"], bandit=bandit)
    proposer = MutationProposer(template, config)
    assert proposer.propose(parent, [], random.Random(0)) is None
    assert proposer.propose(parent, [_candidate(template.source, cid=5)],
                            random.Random(0)) is None
    mate = _candidate(MATES["binpack"], cid=7)
    proposal = proposer.propose(parent, [mate], random.Random(0))
    assert proposal is not None
    assert proposal.operator == "crossover" and proposal.parent_ids == [1, 7]
    # with other operators available, a missing inspiration falls back to them
    proposer = MutationProposer(template, MutationConfig(operators=["crossover", "constant"],
                                                         bandit=bandit))
    for seed in range(10):
        proposal = proposer.propose(parent, [], random.Random(seed))
        assert proposal is not None and proposal.operator == "constant"


def test_parent_with_changed_fixed_text_is_refused() -> None:
    template = _template("binpack")
    proposer = MutationProposer(template, MutationConfig())
    tampered = _candidate(template.source.replace("Packs items online", "Changed"))
    assert proposer.propose(tampered, [], random.Random(0)) is None


def test_feedback_rewards_improvements() -> None:
    template = _template("binpack")
    proposer = MutationProposer(template, MutationConfig(operators=["constant", "stmt_swap"]))
    parent = _candidate(template.source)
    proposal = proposer.propose(parent, [], random.Random(0))
    assert proposal is not None
    op = proposal.operator
    proposer.feedback(proposal, 1.0, 2.0)
    proposer.feedback(proposal, 1.0, 0.5)
    proposer.feedback(proposal, 1.0, None)
    proposer.feedback(proposal, None, 3.0)
    proposer.feedback(proposal, 1.0, 1.0)
    arm = proposer.stats()["bandit"]["arms"][op]
    assert arm["pulls"] == 5
    assert arm["reward_sum"] == 1.0


def test_bandit_learns_which_operator_pays() -> None:
    template = _template("binpack")
    proposer = MutationProposer(template, MutationConfig(bandit="thompson"))
    parent = _candidate(template.source)
    rng = random.Random(1)
    counts: dict[str, int] = {}
    for i in range(300):
        proposal = proposer.propose(parent, [], rng)
        assert proposal is not None
        good = proposal.operator == "operator_swap"
        proposer.feedback(proposal, 1.0, 2.0 if good else 0.0)
        if i >= 200:
            counts[proposal.operator] = counts.get(proposal.operator, 0) + 1
    assert counts.get("operator_swap", 0) > 60


def test_tune_step_size_follows_the_one_fifth_rule() -> None:
    template = _template("binpack")
    proposer = MutationProposer(template, MutationConfig(operators=["tune"], initial_sweep=0))
    parent = _candidate(template.source)
    proposal = proposer.propose(parent, [], random.Random(0))
    assert proposal is not None and proposal.operator == "tune"
    assert proposal.meta["sigma"] == DEFAULT_SIGMA
    key = proposal.meta["sigma_key"]
    proposer.feedback(proposal, 1.0, 0.5)
    assert proposer.sigmas[key] == pytest.approx(DEFAULT_SIGMA * math.exp(-0.2))
    proposer.feedback(proposal, 1.0, 2.0)
    assert proposer.sigmas[key] == pytest.approx(DEFAULT_SIGMA * math.exp(0.6))
    # the improved child starts from the adapted step
    assert proposer.sigmas[normalized_hash(proposal.code)] == pytest.approx(
        DEFAULT_SIGMA * math.exp(0.6))
    # the next proposal for this parent uses the adapted step
    again = proposer.propose(parent, [], random.Random(1))
    assert again is not None
    assert again.meta["sigma"] == pytest.approx(DEFAULT_SIGMA * math.exp(0.6))
    for _ in range(100):
        proposer.feedback(proposal, 1.0, 0.0)
    assert proposer.sigmas[key] == SIGMA_MIN
    for _ in range(100):
        proposer.feedback(proposal, 1.0, 5.0)
    assert proposer.sigmas[key] == SIGMA_MAX


def test_tune_step_grows_after_a_duplicate_and_shrinks_after_a_failure() -> None:
    """A step that changed nothing (a duplicate: no fitness, no error) was too small."""
    template = _template("binpack")
    proposer = MutationProposer(template, MutationConfig(operators=["tune"]))
    proposal = proposer.propose(_candidate(template.source), [], random.Random(0))
    assert proposal is not None
    key = proposal.meta["sigma_key"]
    proposer.feedback(proposal, 1.0, None)
    assert proposer.sigmas[key] == pytest.approx(DEFAULT_SIGMA * math.exp(0.4))
    proposer.feedback(proposal, 1.0, None, "ZeroDivisionError: division by zero")
    assert proposer.sigmas[key] == pytest.approx(DEFAULT_SIGMA * math.exp(0.2))


def test_stats_round_trip() -> None:
    template = _template("binpack")
    # no sweep of the initial program: its steps are tune proposals without a step size
    proposer = MutationProposer(template, MutationConfig(bandit="ucb", initial_sweep=0))
    parent = _candidate(template.source)
    rng = random.Random(0)
    for i in range(40):
        proposal = proposer.propose(parent, [_candidate(MATES["binpack"], cid=2)], rng)
        assert proposal is not None
        proposer.feedback(proposal, 1.0, 2.0 if i % 3 == 0 else 0.0)
    stats = json.loads(json.dumps(proposer.stats()))
    assert stats["bandit"]["arms"]
    assert stats["tune_sigma"] or "tune" not in {
        a for a, s in stats["bandit"]["arms"].items() if s["pulls"]}
    restored = MutationProposer(template, MutationConfig(bandit="ucb", initial_sweep=0))
    restored.load_stats(stats)
    assert restored.stats() == proposer.stats()
    a = proposer.propose(parent, [], random.Random(5))
    b = restored.propose(parent, [], random.Random(5))
    assert a is not None and b is not None
    assert (a.operator, a.code) == (b.operator, b.code)


KITCHEN_SINK = '''import math
from functools import lru_cache

COUNTER = 0


# EVOLVE-BLOCK-START
class Scorer:
    """A class with methods."""

    weight: float = 0.5

    def __init__(self, k=3, *args, scale: float = 1.0, **kwargs):
        self.k = k
        self.scale = scale

    @lru_cache(maxsize=None)
    def score(self, x):
        global COUNTER
        COUNTER += 1
        total = sum(v ** 2 for v in range(self.k) if v % 2 == 0)
        label = f"{x:.2f}-{total!r}"
        squares = {i: i * i for i in range(4)}
        try:
            y = math.log(x) if x > 0 else -1.0
        except ValueError as exc:
            y = float(len(str(exc)))
        finally:
            total += 1
        with open(__file__) as handle:
            first = handle.readline()
        if (n := len(first)) > 2 and not label:
            y = y + n
        match x:
            case 0:
                y = 0.0
            case [a, *rest]:
                y = a + len(rest)
            case _:
                pass
        f = lambda t, u=2: t * u + y  # noqa: E731
        return f(self.weight * y + squares[2]) * self.scale


async def agen(values):
    async for v in values:
        yield -v
    await something()
# EVOLVE-BLOCK-END
'''


def test_operators_survive_unusual_syntax() -> None:
    template = parse_blocks(KITCHEN_SINK)
    outside = names_bound_outside(template, template.source)
    other = [template.regions[0].replace("y + n", "y - n").replace("scale = scale", "scale = 2")]
    for op, func in OPERATORS.items():
        changed = 0
        for seed in range(30):
            ctx = OpContext(rng=random.Random(seed), names_outside=outside, other=other,
                            primitives=["np.tanh({0})", "{0}.clip(0, 1)"])
            result = func(list(template.regions), ctx)
            if result is None:
                continue
            code = template.render(result)
            ast.parse(code)
            extract_regions(template, code)
            changed += code != template.source
        assert changed > 0, op


# ---------------------------------------------------------------------------
# wasted proposals and stagnation
# ---------------------------------------------------------------------------


def test_programs_made_before_count_as_failures_of_their_operator() -> None:
    template = _template("binpack")
    proposer = MutationProposer(template, MutationConfig(operators=["constant", "stmt_swap"]))
    parent = _candidate(template.source)
    rng = random.Random(3)
    made: set[str] = set()
    # every program stmt_swap makes is known from then on: it keeps re-making them
    proposer.is_known = made.__contains__
    proposals = swaps = 0
    for _ in range(60):
        proposal = proposer.propose(parent, [], rng)
        if proposal is None:
            continue
        proposals += 1
        if proposal.operator == "stmt_swap":
            swaps += 1
            made.add(normalized_hash(proposal.code))
        proposer.feedback(proposal, 1.0, 0.5)
    arms = proposer.stats()["bandit"]["arms"]
    assert proposer.rejected_early > 0
    # one pull per outcome told, one per program caught as made before
    assert arms["constant"]["pulls"] + arms["stmt_swap"]["pulls"] == (
        proposals + proposer.rejected_early)
    assert arms["stmt_swap"]["reward_sum"] == 0.0
    # stmt_swap has few distinct children: its re-makes were charged to it
    assert arms["stmt_swap"]["pulls"] > swaps


def test_a_functional_duplicate_is_a_failure_of_its_operator() -> None:
    template = _template("binpack")
    proposer = MutationProposer(template, MutationConfig(operators=["operator_swap"]))
    parent = _candidate(template.source)
    proposal = proposer.propose(parent, [], random.Random(0))
    assert proposal is not None
    proposer.feedback(proposal, 1.0, 2.0)  # improved
    proposer.feedback(proposal, 1.0, None)  # what the loop reports for a functional duplicate
    arm = proposer.stats()["bandit"]["arms"]["operator_swap"]
    assert (arm["pulls"], arm["reward_sum"]) == (2, 1.0)


def test_a_stalled_run_draws_few_tuning_operators() -> None:
    template = _template("binpack")
    ops = ["constant", "tune", "operator_swap", "expr_replace"]
    proposer = MutationProposer(template, MutationConfig(operators=ops, stall_after=20,
                                                         initial_sweep=0))
    parent = _candidate(template.source)
    rng = random.Random(5)

    def tuning_share(n: int) -> float:
        tuning = 0
        for _ in range(n):
            proposal = proposer.propose(parent, [], rng)
            assert proposal is not None
            tuning += proposal.operator in ("constant", "tune")
            proposer.feedback(proposal, 1.0, 0.5)  # never a new best after the first
        return tuning / n

    proposer.feedback(proposer.propose(parent, [], rng), 1.0, 1.0)  # type: ignore[arg-type]
    before = tuning_share(19)
    assert not proposer.stalled and proposer.stalled_proposals == 0
    proposer.feedback(proposer.propose(parent, [], rng), 1.0, 0.5)  # type: ignore[arg-type]
    assert proposer.stalled
    during = tuning_share(300)
    assert proposer.stalled_proposals == 300
    assert during < 0.2 < before
    # a new best ends the stall
    proposal = proposer.propose(parent, [], rng)
    assert proposal is not None
    proposer.feedback(proposal, 1.0, 5.0)
    assert not proposer.stalled and proposer.since_best == 0
    saved = proposer.stats()["stall"]
    again = MutationProposer(template, MutationConfig(operators=ops, stall_after=20))
    again.load_stats(proposer.stats())
    assert again.stats()["stall"] == saved


def test_stall_after_zero_never_stalls() -> None:
    template = _template("binpack")
    proposer = MutationProposer(template, MutationConfig(stall_after=0))
    parent = _candidate(template.source)
    proposal = proposer.propose(parent, [], random.Random(0))
    assert proposal is not None
    for _ in range(1000):
        proposer.feedback(proposal, 1.0, None)
    assert not proposer.stalled


FRESH_PROGRAM = """import numpy as np

# EVOLVE-BLOCK-START
def priority(item: float, bins: np.ndarray) -> np.ndarray:
    return -(bins - item) + np.where(bins - item < 0.3 * bins[-1], 1.0, 0.0)
# EVOLVE-BLOCK-END
"""


def _fresh_tunes(fresh_tuning: int) -> tuple[list[Proposal], MutationProposer]:
    """Proposals of a run that found a new structure (candidate 42) below its best."""
    proposer = MutationProposer(parse_blocks(FRESH_PROGRAM), MutationConfig(
        operators=["operator_swap", "tune"], fresh_tuning=fresh_tuning, initial_sweep=0))
    best = Candidate(id=1, seq=1, island=0, parent_ids=(), operator="initial",
                     code=FRESH_PROGRAM, code_hash=normalized_hash(FRESH_PROGRAM), fitness=2.0)
    rng = random.Random(3)
    proposer.feedback(Proposal(code=FRESH_PROGRAM, operator="tune", parent_ids=[1],
                               candidate_id=1), None, 2.0)  # the best so far
    # an expr_replace that added the bound 0.2 of a band
    before = extract_regions(proposer.template, FRESH_PROGRAM.replace("0.3 * ", ""))
    after = extract_regions(proposer.template, FRESH_PROGRAM.replace("0.3", "0.2"))
    meta: dict[str, Any] = {}
    proposer.fresh.mark("expr_replace", before, after, meta)
    assert [numeric_literals(after)[i] for i in meta["new_literals"]] == [0.2]
    fresh = Proposal(code=FRESH_PROGRAM.replace("0.3", "0.2"), operator="expr_replace",
                     parent_ids=[1], meta=meta, candidate_id=42)
    proposer.feedback(fresh, 2.0, 1.5)  # new literals, below the best: waits for tuning
    made = [proposer.propose(best, [], rng) for _ in range(200)]
    return [p for p in made if p is not None], proposer


def test_a_new_structure_below_the_best_gets_tuning_proposals() -> None:
    made, proposer = _fresh_tunes(4)
    of_fresh = [p for p in made if p.parent_ids == [42]]
    fresh_literals = of_fresh[0].meta["fresh_literals"]
    assert len(of_fresh) == 4 == proposer.fresh.proposals
    assert all(p.operator == "tune" for p in of_fresh)
    # compass steps of the new literal only (0.2): halved, doubled, x0.8, x1.25
    body = "-(bins - item) + np.where(bins - item < {} * bins[-1], 1.0, 0.0)"
    assert all(body.format(v) in p.code for v, p in zip(("0.1", "0.4", "0.16", "0.25"),
                                                          of_fresh, strict=True))
    assert all(p.meta["fresh_fitness"] == 1.5 for p in of_fresh)
    assert proposer.stats()["fresh"] == {"proposals": 4, "waiting": 0, "swept": True,
                                         "queue": []}
    # a tuned child that beats the new structure (still below the best) waits in turn
    better = of_fresh[0]
    better.candidate_id = 43
    proposer.feedback(better, 1.0, 1.8)
    assert [(e.candidate_id, e.literals) for e in proposer.fresh.waiting] == [
        (43, fresh_literals)]
    rng = random.Random(5)
    parent = Candidate(id=1, seq=1, island=0, parent_ids=(), operator="initial",
                       code=FRESH_PROGRAM, code_hash=normalized_hash(FRESH_PROGRAM), fitness=2.0)
    again = [proposer.propose(parent, [], rng) for _ in range(200)]
    assert sum(p is not None and p.parent_ids == [43] for p in again) == 4
    none, plain = _fresh_tunes(0)
    assert not any(p.parent_ids == [42] for p in none) and plain.fresh.proposals == 0


def test_compass_steps_and_the_literals_an_edit_added() -> None:
    assert [compass_step(0.1, f) for f in FACTORS] == [0.05, 0.2, 0.08, 0.125]
    assert compass_step(0.0, 0.5) == -0.05 and compass_step(0.0, 2.0) == 0.05
    # an int stays an int and always moves, away from or towards zero as asked
    assert [compass_step(1, f) for f in FACTORS] == [0, 2, 0, 2]
    assert compass_step(-1, 0.8) == 0 and compass_step(-1, 1.25) == -2
    assert compass_step(0, 0.5) == -1 and isinstance(compass_step(3, 2.0), int)
    # inserted or changed literals; kept ones are not
    assert new_literal_positions([1.0, 0.0], [0.05, 1.0, 0.0]) == [0]
    assert new_literal_positions([1.0, 0.0], [1.0, 0.1, 0.3, 0.0]) == [1, 2]
    assert new_literal_positions([1.0, 0.0], [1.0, 2.0, 3.0]) == [1, 2]


CIRCLE = Path(evoforge.__file__).parent / "problems" / "circle_packing" / "initial_program.py"


def _initial(code: str, fitness: float = 1.0) -> Candidate:
    return Candidate(id=7, seq=0, island=0, parent_ids=(), operator="initial", code=code,
                     code_hash=normalized_hash(code), fitness=fitness)


def _sweep_steps(proposer: MutationProposer, code: str, rng: random.Random, steps: int,
                 after: int = 40, limit: int = 400) -> list[Proposal]:
    """Proposals of the initial program until the sweep has made ``steps`` steps, then
    ``after`` more (a sweep must not start again), at most ``limit``; the sweep steps."""
    made: list[Proposal | None] = []
    left = after
    while len(made) < limit and left > 0:
        made.append(proposer.propose(_initial(code), [], rng))
        left -= proposer.fresh.proposals >= steps
    return [p for p in made if p is not None and "fresh_fitness" in p.meta]


def test_the_initial_programs_literals_are_swept_one_at_a_time() -> None:
    code = CIRCLE.read_text()
    proposer = MutationProposer(parse_blocks(code), MutationConfig())
    before = numeric_literals(extract_regions(proposer.template, code))
    assert len(before) == 18 and before[:2] == [0, 0.003]  # RELAX_ROUNDS, RELAX_RATE
    swept = _sweep_steps(proposer, code, random.Random(1), 2 * 18)
    assert len(swept) == 2 * 18 == proposer.fresh.proposals
    assert all(p.operator == "tune" and p.parent_ids == [7] for p in swept)
    steps = []
    for p in swept:
        after = numeric_literals(extract_regions(proposer.template, p.code))
        changed = [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b]
        assert len(changed) == 1  # one literal at a time, the others as they were
        steps.append((changed[0], after[changed[0]]))
    # each literal halved, then doubled, in program order; the switch 0 goes to -1, then 1
    assert steps[:4] == [(0, -1), (0, 1), (1, 0.0015), (1, 0.006)]
    assert [i for i, _ in steps] == [i // 2 for i in range(36)]
    assert proposer.stats()["fresh"]["swept"] is True
    # drawn at random when the program has more literals than the sweep takes
    few = MutationProposer(parse_blocks(code), MutationConfig(initial_sweep=5))
    rng = random.Random(2)
    assert len(_sweep_steps(few, code, rng, 10, limit=200)) == 10
    off = MutationProposer(parse_blocks(code), MutationConfig(initial_sweep=0))
    # the sweep's first steps come within a few proposals (a fifth of them while it waits)
    assert not _sweep_steps(off, code, rng, 1, limit=60)


def test_a_resumed_run_goes_on_with_the_sweep_and_does_not_start_it_again() -> None:
    code = CIRCLE.read_text()
    first = MutationProposer(parse_blocks(code), MutationConfig())
    rng = random.Random(1)
    while first.fresh.proposals < 5:
        first.propose(_initial(code), [], rng)
    stats = json.loads(json.dumps(first.stats()))
    resumed = MutationProposer(parse_blocks(code), MutationConfig())
    resumed.load_stats(stats)
    assert resumed.stats() == stats
    swept = _sweep_steps(resumed, code, rng, 36)
    assert len(swept) == 36 - 5 and resumed.fresh.proposals == 36  # the rest, once
    before = numeric_literals(extract_regions(resumed.template, code))
    after = numeric_literals(extract_regions(resumed.template, swept[0].code))
    assert [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b] == [2]
