"""Kinds of edit and the avoidance of kinds that mostly made wasted children."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from evoforge.candidate import Candidate, normalized_hash
from evoforge.config import MutationConfig
from evoforge.problem.blocks import parse_blocks
from evoforge.proposers.base import Proposal
from evoforge.proposers.mutation import MutationProposer
from evoforge.proposers.mutation.edits import (
    MIN_KEEP,
    MIN_OUTCOMES,
    EditWaste,
    describe_edit,
    edit_kind,
)

PROGRAM = """import numpy as np

# EVOLVE-BLOCK-START
def priority(item: float, bins: np.ndarray) -> np.ndarray:
    return (bins - item) * 2.0 + np.where(bins < item * 1.5, 1.0, 0.0)
# EVOLVE-BLOCK-END
"""


@pytest.mark.parametrize(("before", "after", "kind"), [
    ("x = a < b\n", "x = a <= b\n", "swap Compare:Lt -> Compare:LtE"),
    ("x = f(a - b, c)\n", "x = f(a + b, c)\n", "swap BinOp:Sub -> BinOp:Add"),
    ("x = f(a, c)\n", "x = f(np.sqrt(a), c)\n", "swap Name -> Call:np.sqrt"),
    ("x = f(a, 1.0)\n", "x = f(a, 2.0)\n", "swap Constant -> Constant"),
    ("x = a\ny = b\n", "x = a\ny = -b\n", "swap Name -> UnaryOp:USub"),
    ("x = a\ny = b\n", "y = b\n", "swap Module -> Module"),  # a statement less
])
def test_edit_kind_names_the_smallest_changed_subtree(before: str, after: str,
                                                     kind: str) -> None:
    assert edit_kind("swap", ["a = 1\n", before], ["a = 1\n", after]) == kind


def test_edit_kind_of_several_regions_unchanged_or_unparsed() -> None:
    assert edit_kind("op", ["a = 1\n", "b = 2\n"], ["a = 3\n", "b = 4\n"]) == "op 2 regions"
    assert edit_kind("op", ["a = 1\n"], ["a = 1\n"]) is None
    assert edit_kind("op", ["a = 1\n"], ["a = (\n"]) == "op unparsed"


def test_waste_estimate_learns_per_kind_from_the_run_wide_share() -> None:
    waste = EditWaste(power=2.0)
    assert waste.keep_probability("bad") == 1.0  # nothing seen yet: nothing is avoided
    for i in range(30):
        waste.observe("bad", wasted=True)
        waste.observe("good", wasted=i % 10 == 0)
    assert waste.total == [60, 33]
    assert waste.waste("bad") == pytest.approx((30 + 2 * 33 / 60) / 32)
    assert waste.keep_probability("bad") == MIN_KEEP  # never ruled out entirely
    assert waste.keep_probability("good") == pytest.approx((1 - (3 + 1.1) / 32) ** 2)
    # an unseen kind sits at the run's average
    assert waste.keep_probability("new") == pytest.approx((1 - 33 / 60) ** 2)
    assert EditWaste(power=0).keep_probability("bad") == 1.0
    rng = random.Random(1)
    kept = sum(waste.keep("bad", rng) for _ in range(2000))
    assert 40 < kept < 170 and waste.redrawn == 2000 - kept


def test_waste_waits_for_enough_outcomes_and_forgets_the_oldest_kinds() -> None:
    waste = EditWaste()
    for _ in range(MIN_OUTCOMES - 1):
        waste.observe("bad", wasted=True)
    assert waste.keep_probability("bad") == 1.0
    waste.observe("bad", wasted=True)
    assert waste.keep_probability("bad") == MIN_KEEP


def test_waste_statistics_round_trip_and_skip_malformed_entries() -> None:
    waste = EditWaste()
    for i in range(12):
        waste.observe(f"k{i % 3}", wasted=i % 2 == 0)
    waste.redrawn = 7
    restored = EditWaste()
    restored.load_stats(waste.stats())
    assert restored.stats() == waste.stats()
    restored.load_stats({"kinds": {"a": [1, 2], "b": [3, 1], "c": "x"}, "total": [1],
                         "redrawn": "no"})
    assert restored.counts == {"b": [3, 1]} and restored.total == waste.total


def _late_share(config: MutationConfig, seed: int,
                wasted: Callable[[Proposal], bool]) -> tuple[float, MutationProposer]:
    """The share of proposals that ``wasted`` calls wasted in the second half of 400,
    each reported back to the proposer as wasted (a duplicate) or not."""
    proposer = MutationProposer(parse_blocks(PROGRAM), config)
    parent = Candidate(id=1, seq=0, island=0, parent_ids=(), operator="initial", code=PROGRAM,
                       code_hash=normalized_hash(PROGRAM), fitness=2.0)
    rng = random.Random(seed)
    late = wasteful = 0
    for i in range(400):
        proposal = proposer.propose(parent, [], rng)
        assert proposal is not None
        waste = wasted(proposal)
        proposer.feedback(proposal, 2.0, None if waste else 1.0)
        if i >= 200:
            late += 1
            wasteful += waste
    return wasteful / late, proposer


def _share_of_wasteful_kind(avoidance: float) -> tuple[float, MutationProposer]:
    """Proposals of a kind that is always wasted (every change of the comparison is a
    functional duplicate, say)."""
    return _late_share(
        MutationConfig(operators=["operator_swap"], waste_avoidance=avoidance,
                       site_avoidance=0), 4,
        lambda p: str(p.meta["edit_kind"]).startswith("operator_swap Compare:"))


def test_proposer_draws_wasteful_kinds_of_edit_less_often() -> None:
    plain, plain_proposer = _share_of_wasteful_kind(0.0)
    avoided, proposer = _share_of_wasteful_kind(2.0)
    assert plain > 0.1  # one of the program's few operators is the comparison
    assert avoided < plain / 3
    assert plain_proposer.edits.kinds.redrawn == 0 and proposer.edits.kinds.redrawn > 50
    # redraws are not failures of the operator, and what was learned survives a resume
    stats = proposer.stats()
    assert stats["edits"]["redrawn"] == proposer.edits.kinds.redrawn
    resumed = MutationProposer(parse_blocks(PROGRAM), MutationConfig(operators=["operator_swap"]))
    resumed.load_stats(stats)
    assert resumed.edits.kinds.counts == proposer.edits.kinds.counts


def test_an_operator_redrawn_three_times_gives_way_to_the_others() -> None:
    """tune's edits of one expression are all one kind: after three redraws in one
    proposal the other operators are tried instead of redrawing tune to the limit."""
    proposer = MutationProposer(parse_blocks(PROGRAM), MutationConfig(
        operators=["tune", "operator_swap"], waste_avoidance=2.0, site_avoidance=0))
    parent = Candidate(id=1, seq=0, island=0, parent_ids=(), operator="initial", code=PROGRAM,
                       code_hash=normalized_hash(PROGRAM), fitness=2.0)
    rng = random.Random(2)
    for _ in range(30):  # every tune child wasted, every swap child fine
        proposal = proposer.propose(parent, [], rng)
        assert proposal is not None
        proposer.feedback(proposal, 2.0, None if proposal.operator == "tune" else 1.0)
    for _ in range(200):  # the bandit now strongly prefers tune
        proposer.bandit.update("tune", 1.0)
    made = [proposer.propose(parent, [], rng) for _ in range(100)]
    tuned = sum(p is not None and p.operator == "tune" for p in made)
    assert all(p is not None for p in made)
    # kept with probability 0.05 per draw: well under a third of 100 proposals, where
    # redrawing tune up to max_redraws times would keep it in about two thirds
    assert tuned < 30


CONDITION = "np.where(bins < item * 1.5"


def _region(program: str) -> str:
    return program.split("# EVOLVE-BLOCK-START\n")[1].split("# EVOLVE-BLOCK-END")[0]


def test_sites_name_every_subtree_from_the_statement_down_to_the_change() -> None:
    region = _region(PROGRAM)
    inside = [region.replace("1.5", "2.5"), region.replace("bins < item", "bins <= item")]
    outside = region.replace("* 2.0", "* 3.0")
    site_sets = [set(describe_edit("op", [region], [r])[1]) for r in [*inside, outside]]
    # the two changes inside the condition share its sub-tree (and those above it) ...
    shared = site_sets[0] & site_sets[1]
    assert len(shared) >= 3  # statement, sum, np.where call, condition: not the constant
    assert all(site.startswith("r0:") for site in shared)
    # ... which a change of the other term is not inside
    assert len(shared - site_sets[2]) >= 2
    # a sub-tree is known by its content: the same condition in a relative is the same site
    relative = region.replace("* 2.0", "* 7.0")
    in_relative = set(describe_edit("op", [relative], [relative.replace("1.5", "2.5")])[1])
    assert len(shared & in_relative) >= 2
    assert describe_edit("op", [region, region], [outside, outside])[1] == []


def _share_inside_the_condition(avoidance: float) -> tuple[float, MutationProposer]:
    """Proposals that change the np.where condition (any change in there is a duplicate,
    say); operators of several kinds reach into it."""
    return _late_share(
        MutationConfig(operators=["operator_swap", "constant", "expr_replace"],
                       site_avoidance=avoidance), 5,
        lambda p: CONDITION not in p.code)


def test_proposer_edits_less_where_edits_were_mostly_wasted() -> None:
    plain, plain_proposer = _share_inside_the_condition(0.0)
    avoided, proposer = _share_inside_the_condition(2.0)
    assert plain > 0.2
    assert avoided < plain / 2
    assert plain_proposer.edits.sites.redrawn == 0 and proposer.edits.sites.redrawn > 50
    stats = proposer.stats()
    assert stats["sites"]["redrawn"] == proposer.edits.sites.redrawn
    resumed = MutationProposer(parse_blocks(PROGRAM), MutationConfig())
    resumed.load_stats(stats)
    assert resumed.edits.sites.counts == proposer.edits.sites.counts
