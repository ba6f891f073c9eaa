"""Tests of the operator-selection bandits."""

from __future__ import annotations

import json
import random

import pytest

from evoforge.proposers.bandit import Bandit

PROBS = {"a": 0.2, "b": 0.8, "c": 0.3}


def _run(bandit: Bandit, seed: int, pulls: int = 300) -> list[str]:
    rng = random.Random(seed)
    env = random.Random(seed + 1000)
    chosen = []
    for _ in range(pulls):
        arm = bandit.select(rng)
        chosen.append(arm)
        bandit.update(arm, 1.0 if env.random() < PROBS[arm] else 0.0)
    return chosen


@pytest.mark.parametrize("kind", ["thompson", "ucb"])
@pytest.mark.parametrize("seed", range(5))
def test_converges_on_the_better_arm(kind: str, seed: int) -> None:
    bandit = Bandit(list(PROBS), kind)
    _run(bandit, seed)
    pulls = {arm: bandit.pulls(arm) for arm in bandit.arms}
    assert sum(pulls.values()) == 300
    assert pulls["b"] > 0.6 * 300, pulls
    assert bandit.mean("b") > bandit.mean("a")
    # the late choices are mostly the good arm
    late = _run(bandit, seed + 50, pulls=100)
    assert late.count("b") > 70


@pytest.mark.parametrize("kind", ["thompson", "ucb"])
def test_same_seed_same_choices(kind: str) -> None:
    assert _run(Bandit(list(PROBS), kind), 7) == _run(Bandit(list(PROBS), kind), 7)


def test_thompson_depends_on_the_seed() -> None:
    runs = {tuple(_run(Bandit(list(PROBS), "thompson"), seed, pulls=30)) for seed in range(4)}
    assert len(runs) > 1


def test_ucb_tries_untried_arms_first_in_order() -> None:
    bandit = Bandit(["x", "y", "z"], "ucb")
    rng = random.Random(0)
    order = []
    for _ in range(3):
        arm = bandit.select(rng)
        order.append(arm)
        bandit.update(arm, 0.0)
    assert order == ["x", "y", "z"]


def test_ucb_prefers_the_higher_mean_after_equal_pulls() -> None:
    bandit = Bandit(["x", "y"], "ucb")
    for _ in range(5):
        bandit.update("x", 0.1)
        bandit.update("y", 0.9)
    assert bandit.select(random.Random(0)) == "y"


@pytest.mark.parametrize("kind", ["thompson", "ucb"])
def test_select_can_be_restricted(kind: str) -> None:
    bandit = Bandit(list(PROBS), kind)
    for _ in range(20):
        bandit.update("b", 1.0)
    rng = random.Random(3)
    for _ in range(20):
        assert bandit.select(rng, ["a", "c"]) in {"a", "c"}
    with pytest.raises(ValueError):
        bandit.select(rng, [])


def test_update_clips_and_ignores_unknown_arms() -> None:
    bandit = Bandit(["a", "b"], "thompson")
    bandit.update("a", 5.0)
    bandit.update("a", -2.0)
    bandit.update("a", float("nan"))
    bandit.update("nope", 1.0)
    stats = bandit.stats()
    assert stats["arms"]["a"]["pulls"] == 3
    assert stats["arms"]["a"]["reward_sum"] == 1.0
    assert "nope" not in stats["arms"]
    assert bandit.total_pulls == 3


@pytest.mark.parametrize("kind", ["thompson", "ucb"])
def test_stats_round_trip(kind: str) -> None:
    bandit = Bandit(list(PROBS), kind)
    _run(bandit, 1, pulls=80)
    stats = json.loads(json.dumps(bandit.stats()))
    restored = Bandit(list(PROBS), kind)
    restored.load_stats(stats)
    assert restored.stats() == bandit.stats()
    # the restored bandit continues exactly like the original
    assert _run(restored, 9, pulls=40) == _run(bandit, 9, pulls=40)


def test_load_stats_tolerates_changed_arms() -> None:
    old = Bandit(["a", "b"], "thompson")
    old.update("a", 1.0)
    old.update("b", 0.0)
    new = Bandit(["b", "c"], "thompson")
    new.load_stats(old.stats())
    assert new.pulls("b") == 1
    assert new.pulls("c") == 0
    new.load_stats({})
    assert new.total_pulls == 0


def test_invalid_construction() -> None:
    with pytest.raises(ValueError):
        Bandit(["a"], "greedy")
    with pytest.raises(ValueError):
        Bandit([], "ucb")
    with pytest.raises(ValueError):
        Bandit(["a", "a"], "ucb")
