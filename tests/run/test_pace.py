"""How far model requests run ahead of the evaluators (run/pace.py), from what a
session observed: the arithmetic the loop relies on, with real config objects."""

from __future__ import annotations

from evoforge.config import LLMConfig
from evoforge.run.pace import LOOKAHEAD_PER_WORKER, Pace
from evoforge.run.spec import RunSpec

SPEC = RunSpec(budget=1000, workers=2)


def observed(pace: Pace, request: float, evaluation: float) -> Pace:
    for _ in range(30):  # enough samples for the moving averages to settle
        pace.requested(request)
        pace.evaluated(evaluation)
    return pace


def test_before_anything_is_observed_one_request_per_worker() -> None:
    assert Pace(2, LLMConfig(), SPEC).lookahead(0) == 2


def test_a_slow_model_and_instant_evaluations_fill_the_cap() -> None:
    """A 2 s model with 5 ms evaluations would need 800 requests: the cap holds, and it
    is high enough for 2 workers to evaluate 16 proposals a second."""
    pace = observed(Pace(2, LLMConfig(), SPEC), 2.0, 0.005)
    assert pace.lookahead(0) == 2 * LOOKAHEAD_PER_WORKER
    assert pace.lookahead(0) / 2.0 >= 16


def test_requests_follow_the_ratio_of_model_to_evaluation_time() -> None:
    # 10 s model, 2 s evaluations: 5 requests per worker keep it busy
    assert observed(Pace(2, LLMConfig(), SPEC), 10.0, 2.0).lookahead(0) == 10
    # a model faster than the evaluations: one per worker
    assert observed(Pace(3, LLMConfig(), SPEC), 0.5, 4.0).lookahead(1) == 3


def test_max_concurrency_and_reproducible_override_the_observation() -> None:
    slow = (2.0, 0.005)
    assert observed(Pace(2, LLMConfig(max_concurrency=5), SPEC), *slow).lookahead(0) == 5
    reproducible = observed(Pace(2, LLMConfig(reproducible=True), SPEC), *slow)
    assert reproducible.lookahead(0) == 2
    assert reproducible.lookahead(1) == 1
    assert reproducible.lookahead(2) == 0
