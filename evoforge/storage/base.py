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


@dataclass(frozen=True)
class StoredProposal:
    """What :meth:`Storage.add_proposal` stored.

    Attributes:
        id: the new candidate's id.
        seq: the proposal index it was given.
        duplicate_of: the earlier candidate with the same code hash when the proposal
            was stored as a duplicate (it then needs no evaluation), else None.
    """

    id: int
    seq: int
    duplicate_of: int | None


@dataclass(frozen=True)
class SyncBatch:
    """Candidates finished since a cursor, and the cursor to pass next time.

    Attributes:
        candidates: finished candidates in the order their results were committed.
        cursor: pass it to the next :meth:`Storage.candidates_since` call.
    """

    candidates: list[Candidate]
    cursor: int


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
                      cost: float | None = None, owner: str | None = None,
                      reserved: bool = False) -> int:
        """Store a new proposal; returns its id.

        A pending, ok, failed or timeout candidate counts in the run's claim count
        (see :meth:`claim_evaluation`); with ``reserved`` it uses a reservation made
        before instead of adding to the count. ``owner`` marks a pending candidate as
        that process's (see :meth:`heartbeat`). Program text is stored once per
        distinct text, whatever the number of candidates sharing it.
        """

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
        """Record the outcome of an evaluation (or of a functional duplicate).

        A pending candidate finished as ``duplicate`` or ``rejected`` gives its
        evaluation back to the budget (see :meth:`claim_evaluation`).
        """

    @abstractmethod
    def get_candidate(self, candidate_id: int) -> Candidate:
        """One candidate by id."""

    @abstractmethod
    def iter_candidates(self, run_id: int,
                        statuses: tuple[Status, ...] | None = None) -> Iterator[Candidate]:
        """A run's candidates in proposal order, optionally filtered by status."""

    @abstractmethod
    def code_hashes(self, run_id: int) -> dict[str, int]:
        """code hash -> id of the first non-duplicate candidate with it.

        Reads the whole run: for a large run prefer :meth:`find_code_hash` per proposal.
        """

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

    # --- many processes on one run ----------------------------------------------------

    @abstractmethod
    def claim_seq(self, run_id: int, n: int = 1) -> int:
        """Reserve ``n`` consecutive proposal indexes of the run; returns the first.

        Contract:
            * Concurrent callers, in any process, never get overlapping ranges.
            * The range starts past every seq stored so far (by any method), so an
              ``add_candidate`` with a claimed seq never collides.
            * A claimed seq that is never used leaves a gap; nothing reuses it.
        """

    @abstractmethod
    def claim_evaluation(self, run_id: int, budget: int) -> bool:
        """Reserve one evaluation of the run's budget; False when none is left.

        Contract:
            * The run's claim count is the number of candidates that hold or used an
              evaluation (pending, ok, failed, timeout; every insert keeps it) plus
              open reservations; this succeeds, atomically, only while it is below
              ``budget``, so all processes together never exceed ``budget``.
            * A reservation is either used by ``add_candidate(..., reserved=True)``
              or given back with :meth:`release_evaluation`.
        """

    @abstractmethod
    def release_evaluation(self, run_id: int) -> None:
        """Give back a reservation made by :meth:`claim_evaluation`."""

    @abstractmethod
    def claimed_evaluations(self, run_id: int) -> int:
        """The run's claim count (see :meth:`claim_evaluation`); O(1)."""

    @abstractmethod
    def add_proposal(self, run_id: int, *, owner: str, budget: int | None, island: int,
                     parent_ids: list[int], operator: str, code: str, code_hash: str,
                     seed: int | None = None, model: str | None = None,
                     prompt_tokens: int = 0, completion_tokens: int = 0,
                     cost: float | None = None) -> StoredProposal | None:
        """Store a proposal, deduplicated and budgeted atomically across processes.

        Contract:
            * One atomic step: the proposal gets a fresh seq (as :meth:`claim_seq`); if
              a non-duplicate candidate of the run has ``code_hash`` (pending ones
              included, from any process) it is stored as a ``duplicate`` of the
              first such one; otherwise it is stored ``pending``, owned by ``owner``,
              holding one evaluation of ``budget``.
            * When ``budget`` is not None and the claim count has reached it, nothing
              is stored and None is returned (a duplicate is stored regardless: it
              costs no evaluation).
            * Two processes proposing the same code at once: exactly one pending
              candidate results, the other is its duplicate.
        """

    @abstractmethod
    def find_code_hash(self, run_id: int, code_hash: str) -> int | None:
        """Id of the first non-duplicate candidate of the run with ``code_hash``, or None.

        Contract: an index lookup (``O(log n)``), whatever the size of the run.
        """

    @abstractmethod
    def find_functional_hash(self, run_id: int, functional_hash: str) -> int | None:
        """Id of the first evaluated (ok or failed) candidate with ``functional_hash``.

        Contract: an index lookup (``O(log n)``), whatever the size of the run.
        """

    @abstractmethod
    def candidates_since(self, run_id: int, cursor: int = 0,
                         limit: int | None = None) -> SyncBatch:
        """Candidates of the run finished after ``cursor`` (0: all finished ones).

        Contract:
            * Every candidate that leaves ``pending`` (or is stored finished) is
              returned by exactly one call in a chain of calls that passes each
              returned cursor to the next, whichever process finished it: results
              are ordered by commit, so one committed late is not skipped.
            * At most ``limit`` candidates per call; cost is proportional to the
              number returned (an index range scan), not to the run's size.
        """

    @abstractmethod
    def heartbeat(self, run_id: int, owner: str, lease_seconds: float) -> None:
        """Declare ``owner`` (one process) alive on the run for ``lease_seconds`` more.

        Contract: while its lease has not expired, the pending candidates ``owner``
        proposed are not returned by :meth:`claim_orphans` to anyone else.
        """

    @abstractmethod
    def release_owner(self, owner: str) -> None:
        """End ``owner``'s lease now: its pending candidates become orphans."""

    @abstractmethod
    def claim_orphans(self, run_id: int, owner: str, limit: int | None = None,
                      now: float | None = None) -> list[Candidate]:
        """Take over pending candidates whose owner is gone; returns them, oldest first.

        Contract:
            * An orphan is a pending candidate with no owner (stored by
              ``add_candidate``, or by an older evoforge) or whose owner's lease
              expired (a killed process) or was released.
            * Each orphan is handed to exactly one caller, even when several
              processes claim at once; it then belongs to ``owner``.
            * An orphan keeps its budget claim: re-running it costs no new claim.
        """

    @abstractmethod
    def elites(self, run_id: int, limit: int) -> list[Candidate]:
        """The run's ``limit`` best ok candidates, best first (ties: lower id first).

        Contract: reads only those rows (the fitness index), whatever the run's size.
        """

    @abstractmethod
    def iter_summaries(self, run_id: int,
                       statuses: tuple[Status, ...] | None = None) -> Iterator[Candidate]:
        """Like :meth:`iter_candidates` without program text (``code`` is ``""``),
        artifacts or stages: the light stream a resume of a large run replays.

        Contract: same candidates and order as :meth:`iter_candidates`.
        """

    @abstractmethod
    def get_candidates(self, ids: list[int]) -> list[Candidate]:
        """Several candidates by id, in the order asked; StorageError if one is missing."""

    @abstractmethod
    def close(self) -> None:
        """Release connections."""
