"""Shape-aware mutation: the scalar/array inference and what the proposer does with it."""

from __future__ import annotations

import ast
import random
from pathlib import Path

import numpy as np
import pytest
import yaml

from evoforge.candidate import Candidate, normalized_hash
from evoforge.config import MutationConfig
from evoforge.problem.blocks import parse_blocks
from evoforge.proposers.mutation import MutationProposer, OpContext
from evoforge.proposers.mutation.kinds import (
    ARRAY,
    SCALAR,
    KindError,
    annotation_kind,
    check_program,
    function_kinds,
    infer,
)
from evoforge.proposers.mutation.operators import op_constant, op_expr_replace, op_tune

BIN_PACKING = Path(__file__).resolve().parents[2] / "evoforge" / "problems" / "bin_packing"
ENV = {"item": SCALAR, "bins": ARRAY}


def _kind(text: str) -> object:
    return infer(ast.parse(text, mode="eval").body, ENV)


@pytest.mark.parametrize(("text", "kind"), [
    ("bins - item", ARRAY),
    ("item * 2 + 1", SCALAR),
    ("bins[-1]", SCALAR),
    ("bins[1:]", ARRAY),
    ("np.max(bins)", SCALAR),
    ("bins.mean()", SCALAR),
    ("np.max(bins, axis=0)", None),
    ("np.where(bins < item, 0.0, bins)", ARRAY),
    ("np.maximum(item, 1.0)", SCALAR),
    ("np.arange(len(bins), dtype=float)", ARRAY),
    ("len(bins)", SCALAR),
    ("math.sqrt(item)", SCALAR),
    ("unknown_name + 1", None),
])
def test_infer(text: str, kind: object) -> None:
    assert _kind(text) == kind


@pytest.mark.parametrize("text", ["len(item)", "np.max(item)", "item[0]", "np.roll(1.0, 1)"])
def test_infer_rejects_what_cannot_work(text: str) -> None:
    with pytest.raises(KindError):
        _kind(text)


def test_annotations_and_locals() -> None:
    func = ast.parse(
        "def f(a: np.ndarray, b: float, c) -> 'np.ndarray':\n"
        "    gap = a - b\n    top = gap.max()\n    return gap / top\n"
    ).body[0]
    assert isinstance(func, ast.FunctionDef)
    env, returns = function_kinds(func)
    assert (env["a"], env["b"], env["c"], env["gap"], env["top"]) == (ARRAY, SCALAR, None,
                                                                      ARRAY, SCALAR)
    assert returns == ARRAY
    assert annotation_kind(ast.parse("list[int]", mode="eval").body) is None


def test_check_program() -> None:
    ok = "def f(item: float, bins: np.ndarray) -> np.ndarray:\n    return bins - item\n"
    scalar = "def f(item: float, bins: np.ndarray) -> np.ndarray:\n    return np.max(bins)\n"
    bad_len = "def f(item: float, bins: np.ndarray) -> np.ndarray:\n    return bins * len(item)\n"
    plain = "def f(x, y):\n    return len(x) + y\n"
    assert check_program(ast.parse(ok)) is None
    assert check_program(ast.parse(plain)) is None
    assert "returns a scalar" in str(check_program(ast.parse(scalar)))
    assert "len() of a scalar" in str(check_program(ast.parse(bad_len)))


def _bin_packing() -> tuple[str, list[str]]:
    code = (BIN_PACKING / "initial_program.py").read_text()
    config = yaml.safe_load((BIN_PACKING / "config.yaml").read_text())
    return code, list(config["mutation"]["primitives"])


def test_expr_replace_keeps_bin_packing_shapes() -> None:
    """Every kind-checked replacement returns one score per bin when really run."""
    code, primitives = _bin_packing()
    template = parse_blocks(code)
    regions = list(template.regions)
    shape_errors = 0
    made = 0
    for seed in range(150):
        ctx = OpContext(rng=random.Random(seed), primitives=primitives,
                        names_outside={"np", "item", "bins"})
        out = op_expr_replace(regions, ctx)
        if out is None:
            continue
        made += 1
        namespace: dict[str, object] = {}
        exec(compile(template.render(out), "<candidate>", "exec"), namespace)  # noqa: S102
        priority = namespace["priority"]
        for bins in (np.array([100.0]), np.array([30.0, 70.0, 150.0])):
            try:
                with np.errstate(all="ignore"):
                    scores = np.asarray(priority(20.0, bins), dtype=float)  # type: ignore[operator]
            except (ZeroDivisionError, IndexError, ValueError, TypeError):
                continue
            shape_errors += scores.shape != bins.shape
    assert made > 100
    assert shape_errors == 0


def test_constant_and_tune_leave_indices_alone() -> None:
    regions = ["def f(bins: np.ndarray) -> np.ndarray:\n    return bins / bins[-1]\n"]
    assert op_constant(regions, OpContext(rng=random.Random(0))) is None
    assert op_tune(regions, OpContext(rng=random.Random(0), sigma=1.0)) is None


def test_proposer_does_not_propose_known_programs() -> None:
    code, primitives = _bin_packing()
    proposer = MutationProposer(parse_blocks(code),
                                MutationConfig(primitives=primitives, operators=["expr_replace"]))
    known: set[str] = set()
    proposer.is_known = known.__contains__
    parent = Candidate(id=1, seq=0, island=0, parent_ids=(), operator="initial", code=code,
                       code_hash=normalized_hash(code))
    rng = random.Random(3)
    for _ in range(60):
        proposal = proposer.propose(parent, [], rng)
        if proposal is None:
            continue
        key = normalized_hash(proposal.code)
        assert key not in known
        known.add(key)
    assert len(known) > 40


def test_cmaes_tunes_a_constant_towards_the_optimum() -> None:
    """CMA-ES children, told their fitness, move the literal to the best value."""
    code = "# EVOLVE-BLOCK-START\ndef f() -> float:\n    return 5.0 * 1\n# EVOLVE-BLOCK-END\n"
    proposer = MutationProposer(parse_blocks(code), MutationConfig(operators=["cmaes"]))

    def fitness(program: str) -> float:
        namespace: dict[str, object] = {}
        exec(compile(program, "<candidate>", "exec"), namespace)  # noqa: S102
        return -(namespace["f"]() - 6.3) ** 2  # type: ignore[operator]

    parent = Candidate(id=1, seq=0, island=0, parent_ids=(), operator="initial", code=code,
                       code_hash=normalized_hash(code), fitness=fitness(code))
    rng = random.Random(5)
    best = parent.fitness
    assert best is not None
    for _ in range(120):
        proposal = proposer.propose(parent, [], rng)
        if proposal is None:
            break
        assert proposal.parent_ids == [1] and proposal.operator == "cmaes"
        value = fitness(proposal.code)
        best = max(best, value)
        proposer.feedback(proposal, parent.fitness, value)
    assert proposer.tuner.generations >= 5
    assert best > -0.01  # within 0.1 of 6.3, from 5.0
