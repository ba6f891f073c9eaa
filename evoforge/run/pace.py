"""How far model requests run ahead of the evaluators (issue 11), within the caps."""

from __future__ import annotations

import math

from evoforge.config import LLMConfig
from evoforge.run.spec import RunSpec

__all__ = ["LOOKAHEAD_PER_WORKER", "Pace", "moving_average"]

# without max_concurrency, model requests in flight are at most this many per worker: a
# 2 s model keeps 2 workers of instant evaluations busy at 16 per worker, a 30 s reasoning
# model 2 workers of 4 s evaluations at 4; the cap bounds what a stopped run has paid for
LOOKAHEAD_PER_WORKER = 16


def moving_average(previous: float | None, value: float) -> float:
    """An exponential moving average that follows changes within a few samples."""
    return value if previous is None else 0.8 * previous + 0.2 * value


class Pace:
    """What this session observed of model requests and evaluations, and what follows.

    Args:
        workers: the evaluators.
        llm: the run's model settings (``reproducible``, ``max_concurrency``).
        spec: the session's limits (its cost and token caps).
    """

    def __init__(self, workers: int, llm: LLMConfig, spec: RunSpec) -> None:
        self.workers = workers
        self.llm = llm
        self.spec = spec
        self.request_seconds: float | None = None
        self.eval_seconds: float | None = None
        self.requests_done = 0

    def requested(self, seconds: float) -> None:
        """A model request took ``seconds``."""
        self.request_seconds = moving_average(self.request_seconds, seconds)
        self.requests_done += 1

    def evaluated(self, seconds: float) -> None:
        """An evaluation (the evaluator's own time) took ``seconds``."""
        self.eval_seconds = moving_average(self.eval_seconds, seconds)

    def lookahead(self, evaluating: int) -> int:
        """How many model requests and ready proposals to keep (issue 11).

        ``llm.reproducible``: none beyond the free workers, so a request starts only
        when a worker is free and sees every earlier result. Else ``llm.max_concurrency``,
        or enough to keep the workers busy: workers * model latency / evaluation time,
        from what this session observed, between workers and
        ``LOOKAHEAD_PER_WORKER * workers``.

        Args:
            evaluating: evaluations running now.
        """
        workers = self.workers
        if self.llm.reproducible:
            return max(workers - evaluating, 0)
        if self.llm.max_concurrency is not None:
            return self.llm.max_concurrency
        if self.request_seconds is None or self.eval_seconds is None:
            return workers
        ratio = self.request_seconds / max(self.eval_seconds, 1e-3)
        return min(max(math.ceil(workers * ratio), workers), workers * LOOKAHEAD_PER_WORKER)

    def affordable(self, requests: int, cost_spent: float, tokens_spent: int) -> bool:
        """Whether one more request fits the cost and token caps.

        The ``requests`` in flight count at the average so far: look-ahead must not
        overshoot a cap by more than one request (the first request always goes, so
        that a cap is reached).
        """
        if not requests or not self.requests_done:
            return True
        after = (requests + 1) / self.requests_done
        max_cost, max_tokens = self.spec.max_cost, self.spec.max_tokens
        return ((max_cost is None or cost_spent * (1 + after) < max_cost + 1e-12)
                and (max_tokens is None or tokens_spent * (1 + after) < max_tokens))
