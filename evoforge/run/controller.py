"""The search loop: propose, evaluate, tell the archive; budgets, stopping, resume.

Model proposals run ahead of the evaluators: requests fill a bounded queue of ready
proposals while the workers evaluate (see :meth:`Evolution.run_session`).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import time
from collections import deque
from dataclasses import dataclass, replace
from typing import Any, Protocol

from evoforge.archive import Archive, FeatureSpace
from evoforge.candidate import Candidate, Status, normalized_hash
from evoforge.config import RunConfig
from evoforge.executors.base import Executor
from evoforge.problem.loader import Problem
from evoforge.proposers.base import Proposal, ProposalFilter, Proposer
from evoforge.proposers.filters import NoveltyFilter
from evoforge.proposers.mutation import MutationProposer
from evoforge.run.assess import Assessor
from evoforge.run.events import (
    Events,
    Progress,
    ProgressCallback,
    RunError,
    RunResult,
    initial_failure,
)
from evoforge.run.objective import error_text, fitness_of, objective_of
from evoforge.run.pace import affordable, lookahead, moving_average
from evoforge.run.report import evaluated_of
from evoforge.run.shared import BudgetFull, RunSync
from evoforge.run.simplify import SIMPLIFY, Simplifier
from evoforge.run.stop import MAX_IDLE_PROPOSALS, StopRule
from evoforge.storage.base import RunRecord, Storage

__all__ = ["MAX_IDLE_PROPOSALS", "Events", "Evolution", "Progress", "ProgressCallback",
           "RunError", "RunResult", "fitness_of", "objective_of"]

STATS_EVERY = 10


@dataclass
class _Pending:
    candidate: Candidate
    parent_fitness: float | None
    proposal: Proposal | None


class NoveltyChecker(Protocol):
    """What the loop needs of a novelty gate (see ``evoforge.proposers.llm.novelty``)."""

    def add(self, candidate_id: int, code: str) -> None:
        """Remember an evaluated candidate."""

    def check(self, code: str) -> tuple[int, float] | None:
        """(id, similarity) of a stored near-twin of ``code``, or None."""


class Evolution:
    """One session of a run: resumes whatever the storage holds, then evolves.

    Args:
        problem: the loaded problem.
        storage: where the run lives.
        run: the run record (new or resumed).
        executor: where evaluations run.
        config: the run's configuration (as stored with the run).
        max_time: seconds for this session, or None.
        target: stop when the best objective reaches this, or None.
        events: progress callbacks.
        proposer: defaults to the model-free :class:`MutationProposer`.
        max_cost: stop once the models cost this many dollars (known prices only).
        novelty: a gate that skips near-twins of evaluated programs, for a proposer
            that declares no filters of its own.
        max_tokens: stop once the models used this many tokens (prompt + completion).
        sync: share the run with other processes (``--join``, see ``run/shared.py``).
    """

    def __init__(self, problem: Problem, storage: Storage, run: RunRecord, executor: Executor,
                 config: RunConfig, *, max_time: float | None = None,
                 target: float | None = None, events: Events | None = None,
                 proposer: Proposer | None = None, max_cost: float | None = None,
                 novelty: NoveltyChecker | None = None,
                 max_tokens: int | None = None, sync: RunSync | None = None) -> None:
        self.problem = problem
        self.sync = sync  # None: this process alone runs the run
        self.storage = storage
        self.run = run
        self.executor = executor
        self.config = config
        # the flags win; else config.yaml's max_time and target (OpenEvolve's keys)
        self.max_time = max_time if max_time is not None else config.max_time
        self.target = target if target is not None else config.target
        self.max_cost = max_cost
        self.cost_spent = 0.0
        self.max_tokens = max_tokens  # model tokens (prompt + completion) for the run
        self.tokens_spent = 0
        self.events = events or Events()
        self.proposer = proposer or MutationProposer(problem.template, config.mutation)
        self.filters: list[ProposalFilter] = list(self.proposer.filters)
        if novelty is not None and not self.filters:
            self.filters.append(NoveltyFilter(novelty))
        self.features = FeatureSpace(config.database, problem.initial_program)
        self.assessor = Assessor(problem, config, executor, self.features)
        self.archive = Archive(config.database, self.features, maximize=config.maximize)
        self.progress = Progress(budget=run.budget)
        self._stop_reason: str | None = None
        self._idle = 0
        self._since_stats = 0
        self._best: Candidate | None = None
        self._initial: Candidate | None = None
        self._failed_initial: Candidate | None = None
        self._stopping: asyncio.Event | None = None
        # an ok candidate with a nonzero score, and one with a zero score (for the
        # warning when every score is 0.0: usually a broken evaluation, not a bad program)
        self._nonzero_seen = False
        self._zero_example: Candidate | None = None
        self._hashes: dict[str, int] = {}
        self._requeue: list[Candidate] = []
        self._next_seq = 0
        self._func_hashes: dict[str, int] = {}
        self.func_hits = 0
        self.func_saved_seconds = 0.0
        self.probing = self.assessor.probing
        self.simplifier = Simplifier(problem.template, config.mutation.simplify_every,
                                     self.probing)
        # proposals ready for a free evaluator, and what requests and evaluations take
        self._ready: deque[_Pending] = deque()
        self._request_seconds: float | None = None
        self._requests_done = 0
        self._eval_seconds: float | None = None
        # joined processes share a seed: each draws its own stream
        self.rng = random.Random(run.seed if sync is None else f"{run.seed}:{sync.owner}")
        # the mutation proposer skips programs already made instead of proposing duplicates
        for mutation in (self.proposer, getattr(self.proposer, "mutation", None)):
            if isinstance(mutation, MutationProposer):
                mutation.is_known = self._known

    @property
    def simplifications(self) -> int:
        """Statement deletions that kept behaviour and score, in this session."""
        return self.simplifier.simplifications

    def _known(self, code_hash: str) -> bool:
        return code_hash in self._hashes or (self.sync is not None
                                             and self.sync.known(code_hash))

    # ------------------------------------------------------------------ setup
    def _restore(self) -> None:
        """Rebuild archive, counters and proposer state from storage."""
        if self.sync is not None:
            return self.sync.restore(self)
        counts = self.storage.counts(self.run.id)
        p = self.progress
        p.ok = counts.get(Status.OK, 0)
        p.failed = counts.get(Status.FAILED, 0)
        p.timeouts = counts.get(Status.TIMEOUT, 0)
        p.duplicates = counts.get(Status.DUPLICATE, 0)
        p.rejected = counts.get(Status.REJECTED, 0)
        p.evaluated = evaluated_of(counts)
        usage = self.storage.usage(self.run.id)
        self.cost_spent = usage["cost"]
        self.tokens_spent = int(usage["prompt_tokens"] + usage["completion_tokens"])
        self._hashes = self.storage.code_hashes(self.run.id)
        self._func_hashes = self.storage.functional_hashes(self.run.id)
        self._next_seq = self.storage.next_seq(self.run.id)
        replay_rng = random.Random(f"replay:{self.run.seed}")
        done = 0
        for cand in self.storage.iter_candidates(self.run.id):
            if cand.status == Status.PENDING:
                self._requeue.append(cand)
                continue
            if cand.status in (Status.DUPLICATE, Status.REJECTED):
                continue
            for check in self.filters:
                check.remember(cand.id, cand.code)
            done += 1
            if cand.status == Status.OK:
                self._place(cand)
            elif cand.seq == 0 and self.config.allow_failing_initial:
                self._adopt_failed_initial(cand)
            elif cand.seq == 0:
                self._failed_initial = cand
            self.archive.on_evaluated(done, replay_rng)
        if self.run.proposer_stats:
            self.proposer.load_stats(self.run.proposer_stats)
        if self._next_seq:
            # a resumed session continues with its own deterministic stream
            self.rng = random.Random(f"{self.run.seed}:{self._next_seq}")

    def _adopt_failed_initial(self, cand: Candidate) -> None:
        """Use a failed initial program as the first parent (``allow_failing_initial``).

        It enters the archive in memory only, ranked below every ok candidate; the
        stored record stays failed.
        """
        try:
            features = self.features.compute(cand.code, {**cand.metrics, "score": 0.0})
        except (KeyError, TypeError):
            features = {name: 0.0 for name in self.features.names}
        parent = replace(cand, status=Status.OK, fitness=-math.inf, features=features)
        self._initial = parent
        self.archive.add_initial(parent)

    def _initial_failure(self, cand: Candidate) -> str:
        return initial_failure(self.problem, cand)

    def _zero_warning(self) -> str | None:
        """A warning when every ok candidate scored exactly 0.0."""
        cand = self._zero_example
        if self._nonzero_seen or cand is None:
            return None
        reported = error_text(cand.metrics, cand.artifacts)
        why = f"; candidate {cand.id} reports: {reported}" if reported else ""
        return (f"every score was 0.0{why}; the evaluation may be broken "
                f"(see 'evoforge show {cand.id}')")

    def _place(self, cand: Candidate) -> None:
        if cand.score is not None:
            if cand.score != 0.0:
                self._nonzero_seen = True
            elif self._zero_example is None:
                self._zero_example = cand
        if cand.seq == 0:
            self._initial = cand
            self.progress.initial_score = cand.score
            self.archive.add_initial(cand)
        else:
            self.archive.add(cand)
        if cand.fitness is not None and (self._best is None or self._best.fitness is None
                                         or cand.fitness > self._best.fitness):
            self._best = cand
            self.progress.best_score = cand.score

    # ------------------------------------------------------------- proposals
    def _new_candidate(self, *, island: int, parent_ids: list[int], operator: str, code: str,
                       code_hash: str, proposal: Proposal | None = None,
                       status: Status | None = None, duplicate_of: int | None = None,
                       error: str | None = None) -> Candidate:
        seq = self._next_seq
        self._next_seq += 1
        if self.sync is not None:
            if status is None:
                return self.sync.new_candidate(self, island=island, parent_ids=parent_ids,
                                               operator=operator, code=code,
                                               code_hash=code_hash, proposal=proposal)
            seq = self.storage.claim_seq(self.run.id)
        if status is None:
            duplicate_of = self._hashes.get(code_hash)
            status = Status.DUPLICATE if duplicate_of is not None else Status.PENDING
        usage = proposal.usage() if proposal is not None else {}
        cid = self.storage.add_candidate(
            self.run.id, seq=seq, island=island, parent_ids=parent_ids, operator=operator,
            code=code, code_hash=code_hash, status=status, seed=self.run.seed,
            duplicate_of=duplicate_of, error=error, **usage,
        )
        if status == Status.PENDING:
            self._hashes[code_hash] = cid
        return Candidate(id=cid, seq=seq, island=island, parent_ids=tuple(parent_ids),
                         operator=operator, code=code, code_hash=code_hash, status=status,
                         duplicate_of=duplicate_of)

    def _propose_simplification(self) -> _Pending | bool:
        """The next statement deletion of the best program; False when none is due."""
        step = self.simplifier.next(self._best)
        if step is None:
            return False
        base, code = step
        cand = self._new_candidate(island=base.island, parent_ids=[base.id], operator=SIMPLIFY,
                                   code=code, code_hash=normalized_hash(code))
        if cand.status == Status.DUPLICATE:
            self.progress.duplicates += 1
            return True
        return _Pending(cand, base.fitness, None)

    def _select(self, ahead: int = 0) -> tuple[int, Candidate, list[Candidate]]:
        """A parent and inspirations from the archive as it is now.

        ``ahead`` counts the requests already in flight, so that concurrent requests
        spread over the islands as consecutive candidates do.
        """
        island = (self._next_seq + ahead) % self.config.database.num_islands
        parent = self.archive.sample_parent(island, self.rng)
        return island, parent, self.archive.inspirations(island, parent, self.rng)

    def _propose(self) -> _Pending | None:
        """Make one proposal now (model-free); None when it was a duplicate or nothing."""
        simplification = self._propose_simplification()
        if simplification is not False:
            return simplification if isinstance(simplification, _Pending) else None
        island, parent, inspirations = self._select()
        return self._register(island, parent, self.proposer.propose(parent, inspirations,
                                                                     self.rng))

    async def _request(self, island: int, parent: Candidate, inspirations: list[Candidate],
                       rng: random.Random) -> _Pending | None:
        """Ask an asynchronous proposer (a model) and store what it proposed."""
        started = time.monotonic()
        proposal = await self.proposer.propose_async(parent, inspirations, rng)
        self._request_seconds = moving_average(self._request_seconds, time.monotonic() - started)
        self._requests_done += 1
        with contextlib.suppress(BudgetFull):  # another process claimed the rest
            return self._register(island, parent, proposal)
        return None

    def _register(self, island: int, parent: Candidate,
                  proposal: Proposal | None) -> _Pending | None:
        """Store a proposal: pending, or at once a duplicate or rejected one (None)."""
        if proposal is None:
            self._idle += 1
            return None
        self.cost_spent += proposal.cost or 0.0
        self.tokens_spent += proposal.prompt_tokens + proposal.completion_tokens
        code_hash = normalized_hash(proposal.code)
        stopped: tuple[str, int | None] | None = None
        if proposal.rejected is not None:
            stopped = (proposal.rejected, None)
        elif code_hash not in self._hashes:  # an exact copy is a duplicate, not a rejection
            stopped = next((s for s in (f.check(proposal) for f in self.filters) if s), None)
        if stopped is not None:
            self._new_candidate(island=island, parent_ids=proposal.parent_ids,
                                operator=proposal.operator, code=proposal.code,
                                code_hash=code_hash, proposal=proposal,
                                status=Status.REJECTED, duplicate_of=stopped[1],
                                error=stopped[0])
            self._not_evaluated(proposal, parent, rejected=True)
            return None
        cand = self._new_candidate(island=island, parent_ids=proposal.parent_ids,
                                   operator=proposal.operator, code=proposal.code,
                                   code_hash=code_hash, proposal=proposal)
        if cand.status == Status.DUPLICATE:
            self._not_evaluated(proposal, parent, rejected=False)
            return None
        self._idle = 0
        return _Pending(cand, parent.fitness, proposal)

    def _not_evaluated(self, proposal: Proposal, parent: Candidate, *,
                       rejected: bool) -> None:
        self._idle += 1
        if rejected:
            self.progress.rejected += 1
        else:
            self.progress.duplicates += 1
        self.proposer.feedback(proposal, parent.fitness, None)
        self.events.progress(self.progress)

    # ------------------------------------------------------------ evaluation
    async def _evaluate(self, pending: _Pending) -> tuple[_Pending, dict[str, Any]]:
        code = pending.candidate.code
        functional_hash, probe_seconds = await self.assessor.probe(code)
        simplify = pending.candidate.operator == SIMPLIFY
        original_id = self._func_hashes.get(functional_hash) if functional_hash else None
        if original_id is None and functional_hash and self.sync is not None:
            original_id = self.sync.find_functional(functional_hash)
        if original_id is not None and not simplify:
            original = self.storage.get_candidate(original_id)
            self.func_hits += 1
            self.func_saved_seconds += max((original.eval_seconds or 0.0) - probe_seconds, 0.0)
            return pending, {
                "status": Status.DUPLICATE, "duplicate_of": original_id,
                "functional_hash": functional_hash, "score": original.score,
                "fitness": original.fitness, "metrics": original.metrics or None,
                "error": f"functional duplicate of candidate {original_id}",
                "eval_seconds": probe_seconds,
            }
        fields = await self.assessor.assess(code)
        fields["functional_hash"] = functional_hash
        fields["eval_seconds"] = (fields.get("eval_seconds") or 0.0) + probe_seconds
        # the evaluator's own seconds: a worker's start-up is not the evaluation time
        self._eval_seconds = moving_average(self._eval_seconds, fields["eval_seconds"])
        return pending, fields

    def _admit(self, cand: Candidate) -> None:
        """Count a finished candidate (this process's or a joined one's); archive, filters."""
        p = self.progress
        p.evaluated += 1
        for check in self.filters:
            check.remember(cand.id, cand.code)
        if cand.status == Status.OK:
            p.ok += 1
            self._place(cand)
        elif cand.status == Status.TIMEOUT:
            p.timeouts += 1
        else:
            p.failed += 1

    def _finish(self, pending: _Pending, fields: dict[str, Any]) -> Candidate:
        base = pending.candidate
        if self.sync is not None:
            self.sync.mine.add(base.id)
            self.sync.fitness[base.id] = fields.get("fitness")
        self.storage.finish_candidate(base.id, **fields)
        if fields["status"] == Status.DUPLICATE:  # functional: not an evaluation
            self.progress.duplicates += 1
            if pending.proposal is not None:
                self.proposer.feedback(pending.proposal, pending.parent_fitness, None)
            self.events.progress(self.progress)
            return replace(base, status=Status.DUPLICATE, duplicate_of=fields["duplicate_of"])
        if fields.get("functional_hash") and fields["status"] in (Status.OK, Status.FAILED):
            self._func_hashes.setdefault(fields["functional_hash"], base.id)
        cand = Candidate(
            id=base.id, seq=base.seq, island=base.island, parent_ids=base.parent_ids,
            operator=base.operator, code=base.code, code_hash=base.code_hash,
            status=fields["status"], score=fields.get("score"), fitness=fields.get("fitness"),
            metrics=fields.get("metrics") or {}, features=fields.get("features") or {},
            artifacts=fields.get("artifacts") or {}, error=fields.get("error"),
            eval_seconds=fields.get("eval_seconds"),
            functional_hash=fields.get("functional_hash"), stages=fields.get("stages"),
        )
        p = self.progress
        p.own += 1
        previous_best = self._best
        self._admit(cand)
        if pending.proposal is not None:
            self.proposer.feedback(pending.proposal, pending.parent_fitness, cand.fitness,
                                   cand.error)
        self.archive.on_evaluated(p.evaluated, self.rng)
        self.simplifier.observe(cand)
        self._since_stats += 1
        if self._since_stats >= STATS_EVERY:
            self._save_stats()
        if self._best is not previous_best and self._best is cand and cand.seq > 0:
            self.events.new_best(cand, p)
        self.events.progress(p)
        return cand

    def _save_stats(self) -> None:
        self._since_stats = 0
        self.storage.update_run(self.run.id, proposer_stats=self.proposer.stats())

    # ----------------------------------------------------------------- loop
    def request_stop(self, reason: str = "interrupted") -> None:
        """Ask the loop to stop: no new proposals; running evaluations are cancelled."""
        if self._stop_reason is None:
            self._stop_reason = reason
        if self._stopping is not None:  # wake the loop even while evaluations run
            self._stopping.set()

    def _check_stop(self, rule: StopRule) -> None:
        if self._stop_reason is None:
            p = self.progress
            self._stop_reason = rule.reason(evaluated=p.evaluated, best_score=p.best_score,
                                            cost=self.cost_spent, tokens=self.tokens_spent,
                                            idle=self._idle)

    def _next_evaluation(self) -> _Pending | None | bool:
        """What a free worker evaluates next; None: nothing this time; False: wait."""
        if self._requeue:
            return _Pending(self._requeue.pop(0), None, None)
        if self.sync is not None and (self.sync.full or self._initial is None):
            return False  # the budget is claimed, or another process runs the initial
        if self._initial is None:
            return False  # wait for the initial program before mutating it
        try:
            if self.proposer.asynchronous:
                # simplification needs no model: it runs in LLM-driven runs too
                simplification = self._propose_simplification()
                if simplification is not False:
                    return simplification if isinstance(simplification, _Pending) else None
                return self._ready.popleft() if self._ready else False
            return self._propose()
        except BudgetFull:
            return False

    def _abandon_ready(self, reason: str) -> None:
        """Store the proposals no evaluator took as not evaluated (their cost is counted)."""
        while self._ready:
            pending = self._ready.popleft()
            self.storage.finish_candidate(
                pending.candidate.id, status=Status.REJECTED,
                error=f"not evaluated: the run stopped ({reason})")
            self.progress.rejected += 1

    async def run_session(self) -> RunResult:
        """Run until a budget, the target or an interrupt stops it.

        Evaluations start while workers are free and the budget allows (never beyond
        it); model requests run ahead of them, up to
        :func:`~evoforge.run.pace.lookahead`, each drawing its parent from the archive
        as it is when the request starts.

        Raises:
            RunError: if the initial program fails its evaluation.
        """
        self._restore()
        if self._failed_initial is not None:  # resuming a run whose initial program failed
            raise RunError(self._initial_failure(self._failed_initial))
        started = time.monotonic()
        rule = StopRule(self.run.budget, None if self.max_time is None
                        else started + self.max_time, self.target, self.config.maximize,
                        self.max_cost, self.max_tokens)
        session_evals = 0
        self.storage.update_run(self.run.id, status="running")
        in_flight: dict[asyncio.Task[tuple[_Pending, dict[str, Any]]], int] = {}
        requests: set[asyncio.Task[_Pending | None]] = set()
        # a stop request (Ctrl-C) must not wait for a long evaluation to finish
        self._stopping = asyncio.Event()
        if self._stop_reason is not None:
            self._stopping.set()
        stop_waiter = asyncio.ensure_future(self._stopping.wait())
        dispatched = 0
        p = self.progress
        try:
            if self._next_seq == 0 and self.sync is None:
                code = self.problem.initial_program
                initial = self._new_candidate(island=0, parent_ids=[], operator="initial",
                                              code=code, code_hash=normalized_hash(code))
                self._requeue.insert(0, initial)
            while True:
                if self.sync is not None:
                    self.sync.poll(self)
                self._check_stop(rule)
                while (self._stop_reason is None and len(in_flight) < self.executor.max_workers
                       and p.evaluated + len(in_flight) < self.run.budget):
                    pending = self._next_evaluation()
                    if pending is False:
                        break
                    if isinstance(pending, _Pending):
                        in_flight[asyncio.ensure_future(self._evaluate(pending))] = dispatched
                        dispatched += 1
                    self._check_stop(rule)
                while (self._stop_reason is None and self.proposer.asynchronous
                       and self._initial is not None
                       and len(requests) + len(self._ready) < lookahead(self, len(in_flight))
                       and p.evaluated + len(in_flight) + len(self._ready) + len(requests)
                       < self.run.budget and affordable(self, len(requests))):
                    island, parent, inspirations = self._select(len(requests))
                    rng = random.Random(self.rng.getrandbits(64))
                    requests.add(asyncio.ensure_future(
                        self._request(island, parent, inspirations, rng)))
                if not in_flight and not requests:
                    if self._ready and self._stop_reason is None:
                        continue  # a worker is free for a ready proposal
                    if self.sync is not None and await self.sync.wait(self):
                        continue
                    break
                p.running, p.requests, p.ready = len(in_flight), len(requests), len(self._ready)
                waited, _ = await asyncio.wait([*in_flight, *requests, stop_waiter],
                                               timeout=rule.seconds_left(),
                                               return_when=asyncio.FIRST_COMPLETED)
                for request in [t for t in requests if t in waited]:
                    requests.discard(request)
                    proposed = request.result()
                    if proposed is not None:
                        self._ready.append(proposed)
                done = [t for t in in_flight if t in waited]
                for finished in sorted(done, key=lambda t: in_flight[t]):
                    pending_done, fields = finished.result()
                    del in_flight[finished]
                    cand = self._finish(pending_done, fields)
                    session_evals += 1
                    if cand.seq == 0 and cand.status != Status.OK:
                        if not self.config.allow_failing_initial:
                            raise RunError(self._initial_failure(cand))
                        self._adopt_failed_initial(cand)
                elapsed = time.monotonic() - started
                p.evals_per_second = session_evals / elapsed if elapsed else 0.0
                if self._stop_reason is not None and (in_flight or requests):
                    break
        finally:
            stop_waiter.cancel()
            for running in [*in_flight, *requests]:
                running.cancel()
            for running in [*in_flight, *requests]:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await running
            self._abandon_ready(self._stop_reason or "error")
            if self.sync is not None:
                self.sync.close()
            p.running = p.requests = p.ready = 0
            elapsed = time.monotonic() - started
            self.storage.update_run(
                self.run.id,
                elapsed_seconds=self.run.elapsed_seconds + elapsed,
                proposer_stats=self.proposer.stats(),
                status="stopped" if self._stop_reason else "failed",
            )
        reason = self._stop_reason or "done"
        zero = self._zero_warning()
        return RunResult(stop_reason=reason, progress=p, best=self._best,
                         initial=self._initial, warnings=[zero] if zero else [])

    async def score_test(self, candidate: Candidate) -> float | None:
        """The objective of ``candidate`` on the held-out test split, or None."""
        if not self.problem.has_test_split:
            return None
        return await self.score_code(candidate.code, "evaluate_test")

    async def score_code(self, code: str, function: str = "evaluate") -> float | None:
        """Evaluate any program with ``function``; its objective, or None if it failed."""
        return await self.assessor.score(code, function)
