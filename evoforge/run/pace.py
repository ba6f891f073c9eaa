"""How far model requests run ahead of the evaluators (issue 11), within the caps."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from evoforge.run.controller import Evolution

__all__ = ["LOOKAHEAD_PER_WORKER", "affordable", "lookahead", "moving_average"]

# without max_concurrency, model requests in flight are at most this many per worker
LOOKAHEAD_PER_WORKER = 4


def lookahead(evo: Evolution, evaluating: int) -> int:
    """How many model requests and ready proposals to keep (issue 11).

    ``llm.reproducible``: none beyond the free workers, so a request starts only
    when a worker is free and sees every earlier result. Else ``llm.max_concurrency``,
    or enough to keep the workers busy: workers * model latency / evaluation time,
    from what this session observed, between workers and
    ``LOOKAHEAD_PER_WORKER * workers``.

    Args:
        evo: the session.
        evaluating: evaluations running now.
    """
    workers = evo.executor.max_workers
    llm = evo.config.llm
    if llm.reproducible:
        return max(workers - evaluating, 0)
    if llm.max_concurrency is not None:
        return llm.max_concurrency
    if evo._request_seconds is None or evo._eval_seconds is None:
        return workers
    ratio = evo._request_seconds / max(evo._eval_seconds, 1e-3)
    return min(max(math.ceil(workers * ratio), workers), workers * LOOKAHEAD_PER_WORKER)

def affordable(evo: Evolution, requests: int) -> bool:
    """Whether one more request fits the cost and token caps, counting the ones in
    flight at the average so far: look-ahead must not overshoot a cap by more than
    one request (the first request always goes, so that a cap is reached)."""
    if not requests or not evo._requests_done:
        return True
    after = (requests + 1) / evo._requests_done
    return ((evo.max_cost is None
             or evo.cost_spent * (1 + after) < evo.max_cost + 1e-12)
            and (evo.max_tokens is None
                 or evo.tokens_spent * (1 + after) < evo.max_tokens))


def moving_average(previous: float | None, value: float) -> float:
    """An exponential moving average that follows changes within a few samples."""
    return value if previous is None else 0.8 * previous + 0.2 * value
