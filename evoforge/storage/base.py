"""The storage plug point: one narrow interface over runs and candidates."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from evoforge.candidate import Candidate, Status


class StorageError(RuntimeError):
    """A storage URL that cannot be opened, or a request it cannot serve."""


@dataclass(frozen=True)
class RunRecord:
    """One evolution run.

    Attributes:
        id: storage id.
        name: unique, human-chosen or generated name.
        problem: problem name.
        problem_path: folder the problem was loaded from.
        config: the run configuration as a JSON-able dict.
        seed: random seed.
        budget: evaluation budget (total, initial program included).
        status: created, running, stopped (budget, time, target, interrupt) or failed.
        created_at: UNIX time.
        updated_at: UNIX time of the last change.
        elapsed_seconds: wall-clock seconds spent running, over all sessions.
        proposer_stats: what the proposer learned (bandit statistics).
        summary: end-of-run facts (stop reason, test-split score, baselines).
    """

    id: int
    name: str
    problem: str
    problem_path: str
    config: dict[str, Any]
    seed: int
    budget: int
    status: str
    created_at: float
    updated_at: float
    elapsed_seconds: float
    proposer_stats: dict[str, Any] | None
    summary: dict[str, Any] | None


class Storage(ABC):
    """Persistence of runs and candidates.

    Contract:
        * Every write is durable when the call returns (committed).
        * ``add_candidate`` assigns ids that increase with time within a run,
          and rejects a second candidate with the same ``(run_id, seq)``.
        * Reads see every write made before them, from any process.
        * Methods raise :class:`StorageError` for a missing run or candidate.
    """

    @abstractmethod
    def create_run(self, *, name: str, problem: str, problem_path: str,
                   config: dict[str, Any], seed: int, budget: int) -> RunRecord:
        """Create a run; StorageError if the name is taken."""

    @abstractmethod
    def get_run(self, name: str) -> RunRecord | None:
        """The run called ``name``, or None."""

    @abstractmethod
    def latest_run(self) -> RunRecord | None:
        """The most recently created run, or None."""

    @abstractmethod
    def list_runs(self) -> list[RunRecord]:
        """All runs, oldest first."""

    @abstractmethod
    def update_run(self, run_id: int, **fields: Any) -> None:
        """Set some of a run's columns (status, budget, elapsed_seconds, ...)."""

    @abstractmethod
    def add_candidate(self, run_id: int, *, seq: int, island: int, parent_ids: list[int],
                      operator: str, code: str, code_hash: str, status: Status,
                      seed: int | None = None, duplicate_of: int | None = None,
                      error: str | None = None, model: str | None = None,
                      prompt_tokens: int = 0, completion_tokens: int = 0,
                      cost: float | None = None) -> int:
        """Store a new proposal; returns its id."""

    @abstractmethod
    def finish_candidate(self, candidate_id: int, *, status: Status,
                         score: float | None = None, fitness: float | None = None,
                         metrics: dict[str, Any] | None = None,
                         features: dict[str, float] | None = None,
                         artifacts: dict[str, Any] | None = None,
                         error: str | None = None,
                         eval_seconds: float | None = None,
                         functional_hash: str | None = None,
                         stages: list[dict[str, Any]] | None = None,
                         duplicate_of: int | None = None) -> None:
        """Record the outcome of an evaluation (or of a functional duplicate)."""

    @abstractmethod
    def get_candidate(self, candidate_id: int) -> Candidate:
        """One candidate by id."""

    @abstractmethod
    def iter_candidates(self, run_id: int,
                        statuses: tuple[Status, ...] | None = None) -> Iterator[Candidate]:
        """A run's candidates in proposal order, optionally filtered by status."""

    @abstractmethod
    def code_hashes(self, run_id: int) -> dict[str, int]:
        """code hash -> id of the first non-duplicate candidate with it."""

    @abstractmethod
    def functional_hashes(self, run_id: int) -> dict[str, int]:
        """functional hash -> id of the first evaluated (ok or failed) candidate with it."""

    @abstractmethod
    def usage(self, run_id: int) -> dict[str, float]:
        """Model usage summed over a run: cost, prompt_tokens, completion_tokens."""

    @abstractmethod
    def model_stats(self, run_id: int) -> dict[str, dict[str, dict[str, float]]]:
        """model -> operator (proposal mode) -> status counts, tokens and cost."""

    @abstractmethod
    def functional_stats(self, run_id: int) -> dict[str, float]:
        """Functional hashing: hits, probed candidates, hit_rate, seconds_saved."""

    @abstractmethod
    def next_seq(self, run_id: int) -> int:
        """One past the highest proposal index of the run (0 when empty)."""

    @abstractmethod
    def counts(self, run_id: int) -> dict[str, int]:
        """Number of candidates by status."""

    @abstractmethod
    def operator_counts(self, run_id: int) -> dict[str, dict[str, int]]:
        """operator -> status -> count."""

    @abstractmethod
    def best(self, run_id: int) -> Candidate | None:
        """The ok candidate with the highest fitness (earliest on ties)."""

    @abstractmethod
    def close(self) -> None:
        """Release connections."""
