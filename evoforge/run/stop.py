"""The stop rule: when a run session ends (budget, time, target, cost, tokens, stalled)."""

from __future__ import annotations

import time
from dataclasses import dataclass

# A proposer that only yields duplicates or nothing must not spin forever.
MAX_IDLE_PROPOSALS = 500


@dataclass
class StopRule:
    """The limits of one session; :meth:`reason` names the first one reached.

    Attributes:
        budget: evaluations for the whole run.
        deadline: ``time.monotonic()`` at which the session ends, or None.
        target: stop when the best objective reaches this, or None.
        maximize: whether a larger objective is better.
        max_cost: dollars the models may cost the run, or None.
        max_tokens: model tokens (prompt + completion) for the run, or None.
    """

    budget: int
    deadline: float | None = None
    target: float | None = None
    maximize: bool = True
    max_cost: float | None = None
    max_tokens: int | None = None

    def reason(self, *, evaluated: int, best_score: float | None, cost: float,
               tokens: int, idle: int) -> str | None:
        """Why the session must stop now, or None to go on."""
        if evaluated >= self.budget:
            return "budget"
        if self.deadline is not None and time.monotonic() >= self.deadline:
            return "time"
        if self.target is not None and best_score is not None and (
                best_score >= self.target if self.maximize else best_score <= self.target):
            return "target"
        if self.max_cost is not None and cost >= self.max_cost:
            return "cost"
        if self.max_tokens is not None and tokens >= self.max_tokens:
            return "tokens"
        if idle >= MAX_IDLE_PROPOSALS:
            return "stalled (only duplicates or no proposals)"
        return None

    def seconds_left(self) -> float | None:
        """Seconds to the deadline (at least 10 ms), or None without one."""
        if self.deadline is None:
            return None
        return max(self.deadline - time.monotonic(), 0.01)
