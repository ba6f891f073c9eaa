"""Bloat control of the model-free proposer (``mutation.max_nodes``)."""

from __future__ import annotations

import random

from evoforge.candidate import Candidate, normalized_hash
from evoforge.config import MutationConfig
from evoforge.problem.blocks import extract_regions, parse_blocks
from evoforge.proposers.mutation import MutationProposer
from evoforge.proposers.mutation.regions import (
    NODE_LIMIT_FLOOR,
    node_limit,
    oversized,
    region_nodes,
)

PROGRAM = '''import numpy as np


# EVOLVE-BLOCK-START
def priority(start, duration, contention, tid):
    """First come, first served."""
    return -tid
# EVOLVE-BLOCK-END
'''

PRIMITIVES = [
    "(start + duration)",
    "({0} + {1})",
    "({0} - {1})",
    "({0} * {1})",
    "({0} / (np.abs({1}) + 1.0))",
    "np.where({0} < {1}, {2}, {3})",
    "np.maximum({0}, {1})",
]


def test_region_nodes_counts_the_ast_and_refuses_what_does_not_parse() -> None:
    # Module, Return, UnaryOp, USub, Name, Load
    assert region_nodes(["    return -tid\n"]) == 6
    assert region_nodes(["    return -tid\n", "x = 1\n"]) == 6 + 5
    assert region_nodes(["    return -(\n"]) is None
    # a literal moved across zero keeps the size: tune and CMA-ES never grow a program
    assert region_nodes(["x = -0.5 * y\n"]) == region_nodes(["x = 0.5 * y\n"])


def test_the_default_limit_follows_the_initial_program() -> None:
    small = ["    return -tid\n"]
    large = ["x = " + " + ".join(["a"] * 40) + "\n"]
    assert node_limit(None, small) == NODE_LIMIT_FLOOR
    size = region_nodes(large)
    assert size is not None and 4 * size > NODE_LIMIT_FLOOR
    assert node_limit(None, large) == 4 * size
    assert node_limit(50, small) == 50
    assert node_limit(0, small) is None  # 0: no limit
    assert node_limit(None, ["    return -(\n"]) is None


def test_only_growth_past_the_limit_is_oversized() -> None:
    parent = ["y = a + b\n"]
    child = ["y = a + b + c\n"]
    assert region_nodes(parent) == 10 and region_nodes(child) == 14
    assert oversized(12, child, parent)
    assert not oversized(14, child, parent)  # within the limit
    assert not oversized(5, child, child)  # past it, but no larger than its parent
    assert not oversized(5, parent, child)  # shrinking is always allowed
    assert not oversized(None, child, parent)


def _walk(max_nodes: int, steps: int = 300) -> tuple[list[int], MutationProposer]:
    """Each child becomes the next parent (a run where every child is the new best):
    the sizes of the proposals, and the proposer."""
    template = parse_blocks(PROGRAM)
    proposer = MutationProposer(template, MutationConfig(primitives=PRIMITIVES,
                                                         max_nodes=max_nodes))
    rng = random.Random(5)
    parent = Candidate(id=1, seq=1, island=0, parent_ids=(), operator="initial", code=PROGRAM,
                       code_hash=normalized_hash(PROGRAM), fitness=0.0)
    sizes = []
    for step in range(steps):
        proposal = proposer.propose(parent, [], rng)
        if proposal is None:
            continue
        size = region_nodes(extract_regions(template, proposal.code))
        assert size is not None
        sizes.append(size)
        fitness = float(step + 1)
        proposer.feedback(proposal, parent.fitness, fitness)
        parent = Candidate(id=step + 2, seq=step + 2, island=0, parent_ids=(parent.id,),
                           operator=proposal.operator, code=proposal.code,
                           code_hash=normalized_hash(proposal.code), fitness=fitness)
    return sizes, proposer


def test_a_run_of_growing_programs_stays_within_the_limit() -> None:
    free, unlimited = _walk(0)
    assert max(free) > 28, "the walk must grow past the limit when nothing holds it"
    assert unlimited.oversized == 0
    held, limited = _walk(28)
    assert len(held) > 250  # the operators still find children within the limit
    assert max(held) <= 28
    assert limited.oversized > 0
    assert limited.stats()["oversized"] == limited.oversized
    restored = MutationProposer(parse_blocks(PROGRAM), MutationConfig(max_nodes=28))
    restored.load_stats(limited.stats())
    assert restored.oversized == limited.oversized
