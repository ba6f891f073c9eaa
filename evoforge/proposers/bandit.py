"""Multi-armed bandits that pick which operator to apply next.

Rewards are in ``[0, 1]`` (the proposers use 1.0 for "the child beat its
parent", 0.0 otherwise). Two policies:

* ``thompson``: Thompson sampling with a Beta(1, 1) prior on each arm's mean
  reward; the posterior is Beta(1 + reward_sum, 1 + pulls - reward_sum).
* ``ucb``: UCB1; arms never pulled are tried first, in list order.

Randomness comes only from the ``random.Random`` passed to :meth:`Bandit.select`,
so a run is reproducible from its seed.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from typing import Any

BANDIT_KINDS = ("thompson", "ucb")


class Bandit:
    """A bandit over named arms.

    Args:
        arms: the arm names, in a fixed order (ties go to the earlier arm).
        kind: ``"thompson"`` or ``"ucb"``.
        exploration: the UCB1 exploration constant ``c`` in
            ``mean + c * sqrt(ln(total) / pulls)``; unused by Thompson sampling.

    Raises:
        ValueError: for an unknown ``kind``, no arms, or duplicate arm names.
    """

    def __init__(self, arms: Iterable[str], kind: str = "thompson",
                 exploration: float = math.sqrt(2.0)) -> None:
        names = list(arms)
        if kind not in BANDIT_KINDS:
            raise ValueError(f"unknown bandit {kind!r}; valid: {', '.join(BANDIT_KINDS)}")
        if not names:
            raise ValueError("a bandit needs at least one arm")
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate arm names in {names}")
        self.arms = names
        self.kind = kind
        self.exploration = exploration
        self._pulls: dict[str, int] = dict.fromkeys(names, 0)
        self._rewards: dict[str, float] = dict.fromkeys(names, 0.0)

    @property
    def total_pulls(self) -> int:
        """Number of updates received, all arms together."""
        return sum(self._pulls.values())

    def pulls(self, arm: str) -> int:
        """Number of updates received by ``arm`` (0 for an unknown arm)."""
        return self._pulls.get(arm, 0)

    def mean(self, arm: str) -> float:
        """Mean observed reward of ``arm`` (0.0 before its first update)."""
        n = self._pulls.get(arm, 0)
        return self._rewards[arm] / n if n else 0.0

    def select(self, rng: random.Random, arms: Iterable[str] | None = None) -> str:
        """Choose an arm.

        Args:
            rng: the only source of randomness.
            arms: restrict the choice to these arms (in the bandit's order);
                None for all of them. Unknown names are ignored.

        Raises:
            ValueError: if the restriction leaves no arm.
        """
        if arms is None:
            candidates = list(self.arms)
        else:
            allowed = set(arms)
            candidates = [a for a in self.arms if a in allowed]
        if not candidates:
            raise ValueError("no arm to select from")
        if self.kind == "ucb":
            return self._select_ucb(candidates)
        return self._select_thompson(candidates, rng)

    def _select_thompson(self, candidates: list[str], rng: random.Random) -> str:
        best = candidates[0]
        best_sample = -1.0
        for arm in candidates:
            successes = self._rewards[arm]
            failures = max(self._pulls[arm] - successes, 0.0)
            sample = rng.betavariate(1.0 + successes, 1.0 + failures)
            if sample > best_sample:
                best, best_sample = arm, sample
        return best

    def _select_ucb(self, candidates: list[str]) -> str:
        for arm in candidates:
            if self._pulls[arm] == 0:
                return arm
        log_total = math.log(max(self.total_pulls, 1))
        best = candidates[0]
        best_score = -math.inf
        for arm in candidates:
            n = self._pulls[arm]
            score = self._rewards[arm] / n + self.exploration * math.sqrt(log_total / n)
            if score > best_score:
                best, best_score = arm, score
        return best

    def update(self, arm: str, reward: float) -> None:
        """Record a reward for ``arm``; clipped to [0, 1], NaN counts as 0.

        An arm the bandit does not know is ignored.
        """
        if arm not in self._pulls:
            return
        value = float(reward)
        if math.isnan(value):
            value = 0.0
        value = min(max(value, 0.0), 1.0)
        self._pulls[arm] += 1
        self._rewards[arm] += value

    def stats(self) -> dict[str, Any]:
        """JSON-able state: the policy and, per arm, pulls, reward_sum and mean."""
        return {
            "kind": self.kind,
            "arms": {
                arm: {
                    "pulls": self._pulls[arm],
                    "reward_sum": self._rewards[arm],
                    "mean": self.mean(arm),
                }
                for arm in self.arms
            },
        }

    def load_stats(self, stats: dict[str, Any]) -> None:
        """Restore counts saved by :meth:`stats`.

        Arms absent from ``stats`` keep no history; arms this bandit does not
        have are ignored, so a run can resume with a changed operator set.
        """
        arms = stats.get("arms", {}) if isinstance(stats, dict) else {}
        if not isinstance(arms, dict):
            return
        for arm in self.arms:
            entry = arms.get(arm)
            if not isinstance(entry, dict):
                self._pulls[arm] = 0
                self._rewards[arm] = 0.0
                continue
            pulls = max(int(entry.get("pulls", 0)), 0)
            reward_sum = float(entry.get("reward_sum", 0.0))
            self._pulls[arm] = pulls
            self._rewards[arm] = min(max(reward_sum, 0.0), float(pulls))
