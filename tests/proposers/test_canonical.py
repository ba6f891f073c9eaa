"""Waste cut before proposing: canonical forms, collapsed expressions, untouched indices."""

from __future__ import annotations

import ast
import random

import numpy as np
import pytest

from evoforge.candidate import Candidate, normalized_hash
from evoforge.config import MutationConfig
from evoforge.problem.blocks import extract_regions, parse_blocks
from evoforge.proposers.mutation import MutationProposer, OpContext
from evoforge.proposers.mutation.canonical import canonical
from evoforge.proposers.mutation.operators import op_expr_replace, op_operator_swap
from evoforge.proposers.mutation.proposer import names_bound_outside
from evoforge.proposers.mutation.regions import index_nodes

ENV = {"x": np.array([3.0, -1.5, 0.0, 7.25]), "y": np.array([2.0, 5.0, -4.0, 0.5]),
       "item": 2.0, "np": np}


def _form(text: str) -> str:
    made = canonical(text)
    assert made is not None
    return made.hash


@pytest.mark.parametrize(("text", "same"), [
    ("x + 0", "x"),
    ("0 + x", "x"),
    ("x - 0", "x"),
    ("1 * x", "x"),
    ("x * 1", "x"),
    ("x ** 1", "x"),
    ("--x", "x"),
    ("np.maximum(x, x)", "x"),
    ("np.minimum(x + 0, x)", "x"),
    ("np.abs(-x)", "np.abs(x)"),
    ("np.abs(np.abs(x))", "np.abs(x)"),
    ("np.square(-x)", "np.square(x)"),
    ("1 > x", "x < 1"),
    ("item >= x", "x <= item"),
    ("x + -1", "x - 1"),
    ("x - -y", "x + y"),
    ("2 * 0.5 * x", "1.0 * x"),
    ("x + (3 - 3)", "x"),
    ("-(-(x + 0) * 1)", "x"),
])
def test_identities_share_a_canonical_form(text: str, same: str) -> None:
    assert _form(text) == _form(same)
    # and they are identities: the same values
    assert np.array_equal(eval(text, ENV), eval(same, ENV))  # noqa: S307


@pytest.mark.parametrize(("text", "other"), [
    ("x + 0.0", "x"),          # an int becomes a float
    ("(x < y) * 1", "x < y"),  # a bool array becomes an int one
    ("x + y", "y + x"),        # + concatenates lists and strings
    ("x / 1", "x"),            # an int becomes a float
    ("max(x, x)", "x"),        # the builtin fails on an array
    ("x - x", "0"),
    ("x * 2", "x + x"),
])
def test_what_is_not_an_identity_keeps_its_form(text: str, other: str) -> None:
    assert _form(text) != _form(other)


@pytest.mark.parametrize(("text", "collapsed"), [
    ("x - y", 0),
    ("x - x", 1),
    ("x / x + item % item", 2),
    ("0 * x", 1),
    ("x * (0.5 - 0.5)", 1),
    ("x / 0", 1),
    ("np.where(x < x, 1, y)", 1),
    ("np.where(0.5 == 0, 1, y)", 1),
    ("x ** 0", 1),
    ("np.where(x < 1, 0, y)", 0),
])
def test_collapsed_sub_expressions_are_counted(text: str, collapsed: int) -> None:
    made = canonical(text)
    assert made is not None and made.collapsed == collapsed


def test_code_that_does_not_parse_has_no_form() -> None:
    assert canonical("def (") is None


BINS = '''import numpy as np


# EVOLVE-BLOCK-START
def priority(item: float, bins: np.ndarray) -> np.ndarray:
    """Best fit, with the fresh bin scored apart."""
    return -(bins - item) + bins[-1] * 0.5 + bins[1:3].sum()
# EVOLVE-BLOCK-END
'''


def _indices(code: str) -> list[str]:
    return [ast.unparse(node.slice) for node in ast.walk(ast.parse(code))
            if isinstance(node, ast.Subscript)]


def test_index_nodes_are_inside_brackets_but_not_call_arguments() -> None:
    tree = ast.parse("y = x[-1] + x[i + 1:] + x[np.argmax(v - 1)] + (a - 2)")
    inside = {ast.unparse(node) for node in ast.walk(tree) if id(node) in index_nodes(tree)}
    assert {"-1", "1", "i + 1", "i", "np.argmax(v - 1)"} <= inside
    assert not inside & {"v - 1", "v", "a - 2", "x[-1]", "x"}


@pytest.mark.parametrize("operator", [op_expr_replace, op_operator_swap])
def test_expr_replace_and_operator_swap_leave_indices_alone(operator: object) -> None:
    # bins[-1] -> bins[-item] raises on every call: a waste of an evaluation
    template = parse_blocks(BINS)
    names = names_bound_outside(template, template.source)
    changed = 0
    for seed in range(150):
        ctx = OpContext(rng=random.Random(seed), names_outside=names)
        regions = operator(list(template.regions), ctx)  # type: ignore[operator]
        assert regions is not None
        code = template.render(regions)
        changed += code != template.source
        # a whole subscript may be replaced; what stays indexes as before
        assert set(_indices(code)) <= {"-1", "1:3"}, code
    assert changed > 100


PARENT = '''import numpy as np


# EVOLVE-BLOCK-START
def priority(item: float, bins: np.ndarray) -> np.ndarray:
    """Best fit."""
    return -(bins - item)
# EVOLVE-BLOCK-END
'''


def _proposals(skip: bool, count: int = 150) -> tuple[MutationProposer, list[str]]:
    template = parse_blocks(PARENT)
    proposer = MutationProposer(template, MutationConfig(
        operators=["expr_replace", "operator_swap", "constant"], skip_equivalent=skip))
    parent = Candidate(id=1, seq=0, island=0, parent_ids=(), operator="initial",
                       code=PARENT, code_hash=normalized_hash(PARENT), fitness=1.0)
    made: set[str] = set()
    proposer.is_known = made.__contains__  # as the run loop does: no text twice
    rng = random.Random(7)
    codes = []
    for _ in range(count):
        proposal = proposer.propose(parent, [], rng)
        if proposal is None:
            continue
        made.add(normalized_hash(proposal.code))
        codes.append(proposal.code)
        extract_regions(template, proposal.code)  # a rendering of the template
    return proposer, codes


def test_proposer_drops_equivalent_and_collapsed_programs() -> None:
    proposer, codes = _proposals(skip=True)
    parent = canonical(PARENT)
    assert parent is not None
    forms = [canonical(code) for code in codes]
    assert all(form is not None for form in forms)
    hashes = [form.hash for form in forms if form is not None]
    assert parent.hash not in hashes  # no parent in disguise (-(bins - item) * 1 ...)
    assert len(set(hashes)) == len(hashes)  # no two proposals the same up to identities
    assert all(form.collapsed == 0 for form in forms if form is not None)
    assert proposer.equivalents > 0
    assert proposer.stats()["equivalent"] == proposer.equivalents


def test_without_skip_equivalent_such_programs_are_proposed() -> None:
    proposer, codes = _proposals(skip=False)
    forms = [canonical(code) for code in codes]
    hashes = [form.hash for form in forms if form is not None]
    collapsed = sum(1 for form in forms if form is not None and form.collapsed)
    assert len(set(hashes)) < len(hashes) or collapsed > 0
    assert proposer.equivalents == 0


def test_equivalent_count_survives_load_stats() -> None:
    proposer, _ = _proposals(skip=True, count=40)
    restored = MutationProposer(parse_blocks(PARENT), MutationConfig())
    restored.load_stats(proposer.stats())
    assert restored.equivalents == proposer.equivalents > 0
