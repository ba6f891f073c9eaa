"""Model proposals run ahead of the evaluators (issue 11 part 1), through the real loop:
FakeLLMServer over HTTP, local worker processes, a SQLite file."""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any

from evoforge.candidate import Status
from evoforge.problem import load_problem
from evoforge.run import Events, Progress, create_run, execute
from evoforge.storage import SQLStorage
from evoforge.testing import VALUE_EVALUATOR, FakeLLMServer, Reply, write_problem

DELAY = 1.0  # long next to a loaded machine's evaluation time
PROGRAM = """# EVOLVE-BLOCK-START
def value():
    return 0
# EVOLVE-BLOCK-END
"""


def trivial_problem(tmp_path: Path, url: str, **llm: Any) -> Path:
    """A problem whose evaluation takes milliseconds, driven by the fake model."""
    config = {"random_seed": 3, "llm": {
        "models": [{"name": "fake-model", "api_base": url, "api_key_env": None,
                    "timeout": 5.0, "max_retries": 0}],
        "modes": ["rewrite"], "mutation_operators": False, **llm}}
    return write_problem(tmp_path / "trivial", PROGRAM, config=config)


def counting_rewrites() -> Any:
    """A reply function: a new program every time, after DELAY seconds."""
    counter = itertools.count(1)

    def reply(request: dict[str, Any]) -> Reply:
        code = f"def value():\n    return {next(counter)}\n"
        return Reply.slow(DELAY, Reply.rewrite(code))
    return reply


class FirstEvaluation(Events):
    """Notes when the initial program is evaluated: model requests start then."""

    def __init__(self) -> None:
        self.at: float | None = None

    def progress(self, progress: Progress) -> None:
        if self.at is None and progress.evaluated:
            self.at = time.monotonic()


def run(tmp_path: Path, budget: int, workers: int,
        **llm: Any) -> tuple[float, Any, list, int]:
    """Seconds from the initial evaluation to the end (worker start-up left out), the
    result, the stored candidates and the most model requests that were in flight."""
    with FakeLLMServer(counting_rewrites()) as server:
        problem = load_problem(trivial_problem(tmp_path, server.base_url, **llm))
        storage = SQLStorage(str(tmp_path / "runs.db"))
        record = create_run(storage, problem, budget=budget, workers=workers)
        events = FirstEvaluation()
        result = execute(storage, record, workers=workers, summarize=False, events=events)
        assert events.at is not None
        seconds = time.monotonic() - events.at
        rows = list(storage.iter_candidates(record.id))
        return seconds, result, rows, server.max_in_flight


def test_requests_run_ahead_and_the_budget_is_exact(tmp_path: Path) -> None:
    """2 workers, a model that takes 1 s, an instant evaluator, no max_concurrency
    given: more requests are in flight than there are workers, and the run evaluates
    exactly the budget (the time this saves is measured in bench/peers, not here)."""
    budget = 21  # the initial program and 20 model proposals
    _, result, rows, in_flight = run(tmp_path, budget, 2)
    assert result.stop_reason == "budget"
    evaluated = [r for r in rows if r.status in (Status.OK, Status.FAILED, Status.TIMEOUT)]
    assert len(evaluated) == budget
    assert not [r for r in rows if r.status == Status.PENDING]
    assert in_flight > 2


def test_reproducible_makes_no_request_ahead(tmp_path: Path) -> None:
    """llm.reproducible: one request per free worker, so the run takes the serial time
    and never asks the model more often than it evaluates."""
    budget = 4
    seconds, result, rows, in_flight = run(tmp_path, budget, 1, reproducible=True)
    assert result.stop_reason == "budget"
    assert len(rows) == budget  # no proposal made that was not evaluated
    assert in_flight == 1
    assert seconds >= (budget - 1) * DELAY


def test_proposals_left_when_time_runs_out_are_stored_as_not_evaluated(
        tmp_path: Path) -> None:
    """A time limit with proposals still queued: each is stored with the reason, and no
    evaluation goes past the budget."""
    with FakeLLMServer(counting_rewrites()) as server:
        problem = load_problem(trivial_problem(tmp_path, server.base_url, max_concurrency=6))
        storage = SQLStorage(str(tmp_path / "runs.db"))
        # a slow evaluator: proposals pile up in the queue while one worker evaluates
        slow = VALUE_EVALUATOR.replace("    spec =", "    import time\n    time.sleep(1.0)\n"
                                 "    spec =")
        (Path(problem.path) / "evaluator.py").write_text(slow)
        problem = load_problem(problem.path)
        record = create_run(storage, problem, budget=100, workers=1)
        result = execute(storage, record, workers=1, max_time=6.0, summarize=False)
        rows = list(storage.iter_candidates(record.id))
    assert result.stop_reason == "time"
    left = [r for r in rows if r.error and r.error.startswith("not evaluated")]
    assert left and all(r.status == Status.REJECTED for r in left)
    assert "(time)" in (left[0].error or "")
