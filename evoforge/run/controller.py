"""The search loop: propose, evaluate, tell the archive; budgets, stopping, resume.

The loop is small and works through named parts: a :class:`~evoforge.run.state.RunState`
(counters, archive, known programs), an :class:`~evoforge.run.intake.Intake` (proposals
become stored candidates), an :class:`~evoforge.run.assess.Assessor` (a program becomes
a frozen :class:`~evoforge.run.assess.Verdict`), a :class:`~evoforge.run.stop.StopRule`
and a :class:`~evoforge.run.pace.Pace` (how far model requests run ahead of the
evaluators: requests fill a bounded queue of ready proposals while the workers evaluate).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import deque
from dataclasses import replace
from typing import Protocol

from evoforge.archive import FeatureSpace
from evoforge.candidate import Candidate, Status
from evoforge.config import RunConfig
from evoforge.executors.base import Executor
from evoforge.problem.loader import Problem
from evoforge.proposers.base import ProposalFilter, Proposer
from evoforge.proposers.filters import NoveltyFilter
from evoforge.proposers.mutation import MutationProposer
from evoforge.run.assess import Assessor, Verdict, functional_duplicate
from evoforge.run.events import (
    Events,
    Progress,
    ProgressCallback,
    RunError,
    RunResult,
    initial_failure,
)
from evoforge.run.intake import Intake, Pending
from evoforge.run.objective import fitness_of, objective_of
from evoforge.run.order import ResultOrder, check_lag
from evoforge.run.pace import Pace
from evoforge.run.shared import BudgetFull, RunSync
from evoforge.run.simplify import SIMPLIFY, Simplifier
from evoforge.run.spec import RunSpec
from evoforge.run.state import RunState
from evoforge.run.stop import MAX_IDLE_PROPOSALS, StopRule
from evoforge.storage.base import RunRecord, Storage

__all__ = ["MAX_IDLE_PROPOSALS", "Events", "Evolution", "Progress", "ProgressCallback",
           "RunError", "RunResult", "fitness_of", "objective_of"]

STATS_EVERY = 10


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
        spec: the session's limits (time, target, cost and token caps); by default
            the config's (:meth:`RunSpec.of` with no command-line values).
        events: progress callbacks.
        proposer: defaults to the model-free :class:`MutationProposer`.
        novelty: a gate that skips near-twins of evaluated programs, for a proposer
            that declares no filters of its own.
        sync: share the run with other processes (``--join``, see ``run/shared.py``).
    """

    def __init__(self, problem: Problem, storage: Storage, run: RunRecord, executor: Executor,
                 config: RunConfig, *, spec: RunSpec | None = None,
                 events: Events | None = None, proposer: Proposer | None = None,
                 novelty: NoveltyChecker | None = None, sync: RunSync | None = None) -> None:
        self.problem, self.storage, self.run, self.executor = problem, storage, run, executor
        self.config = config
        self.sync = sync  # None: this process alone runs the run
        self.spec = spec or RunSpec.of(run, config, workers=executor.max_workers)
        self.events = events or Events()
        self.proposer = proposer or MutationProposer(problem.template, config.mutation)
        filters: list[ProposalFilter] = list(self.proposer.filters)
        if novelty is not None and not filters:
            filters.append(NoveltyFilter(novelty))
        features = FeatureSpace(config.database, problem.initial_program)
        self.assessor = Assessor(problem, config, executor, features)
        self.state = RunState(config, features, run.budget, filters)
        self.probing = self.assessor.probing
        self.simplifier = Simplifier(problem.template, config.mutation.simplify_every,
                                     self.probing)
        self.intake = Intake(storage, run, self.state, self.proposer, self.events,
                             self.simplifier, sync)
        self.pace = Pace(executor.max_workers, config.llm, self.spec)
        self.order = self._result_order(config.ordered_lag)
        self.stop_reason: str | None = None
        self._since_stats = 0
        self._stopping: asyncio.Event | None = None
        self._ready: deque[Pending] = deque()  # proposals waiting for a free evaluator
        # joined processes share a seed: each draws its own stream
        self.rng = random.Random(run.seed if sync is None else f"{run.seed}:{sync.owner}")
        # the mutation proposer skips programs already made instead of proposing duplicates
        for mutation in (self.proposer, getattr(self.proposer, "mutation", None)):
            if isinstance(mutation, MutationProposer):
                mutation.is_known = self.intake.known

    def _result_order(self, lag: int) -> ResultOrder[tuple[Pending, Verdict]] | None:
        """``ordered_lag``'s bookkeeping, or None when results are used as they arrive."""
        check_lag(lag, self.executor.max_workers, with_model=self.proposer.asynchronous,
                  joined=self.sync is not None)
        return ResultOrder(lag) if lag else None

    @property
    def progress(self) -> Progress:
        """The session's counters (see :class:`Progress`)."""
        return self.state.progress

    @property
    def func_hits(self) -> int:
        """Functional duplicates found by the probe in this session."""
        return self.assessor.func_hits

    @property
    def simplifications(self) -> int:
        """Statement deletions that kept behaviour and score, in this session."""
        return self.simplifier.simplifications

    def _restore(self) -> None:
        """Rebuild archive, counters and proposer state from storage."""
        if self.sync is not None:
            return self.sync.restore(self)
        self.state.restore(self.storage, self.run, self.proposer)
        if self.state.next_seq:
            # a resumed session continues with its own deterministic stream
            self.rng = random.Random(f"{self.run.seed}:{self.state.next_seq}")

    # ------------------------------------------------------------ evaluation
    async def _request(self, island: int, parent: Candidate, inspirations: list[Candidate],
                       rng: random.Random) -> Pending | None:
        """Ask an asynchronous proposer (a model) and store what it proposed."""
        started = time.monotonic()
        proposal = await self.proposer.propose_async(parent, inspirations, rng)
        self.pace.requested(time.monotonic() - started)
        with contextlib.suppress(BudgetFull):  # another process claimed the rest
            return self.intake.register(island, parent, proposal)
        return None

    def _original(self, functional_hash: str) -> Candidate | None:
        """The evaluated candidate (of any process) that behaves this way, or None."""
        found = self.state.behaviour_holder(functional_hash)
        if found is None and self.sync is not None:
            found = self.sync.find_functional(functional_hash)
        return None if found is None else self.storage.get_candidate(found)

    async def _evaluate(self, pending: Pending) -> tuple[Pending, Verdict]:
        simplification = pending.candidate.operator == SIMPLIFY
        verdict = await self.assessor.verdict(
            pending.candidate.code, None if simplification else self._original)
        if verdict.status != Status.DUPLICATE:
            # the evaluator's own seconds: a worker's start-up is not the evaluation time
            self.pace.evaluated(verdict.eval_seconds or 0.0)
        return pending, verdict

    def _finish(self, pending: Pending, verdict: Verdict) -> Candidate:
        """Store a verdict and tell the state, the proposer and the simplifier."""
        base, state = pending.candidate, self.state
        if (self.order is not None and verdict.functional_hash is not None
                and verdict.status in (Status.OK, Status.FAILED)
                and base.operator != SIMPLIFY
                and (original := self._original(verdict.functional_hash)) is not None):
            # an earlier proposal's result, used after this one was probed, has the same
            # behaviour: a duplicate, as it would have been had that result come first
            self.assessor.func_hits += 1
            verdict = functional_duplicate(original, verdict.functional_hash,
                                           verdict.eval_seconds or 0.0)
        if self.sync is not None:
            self.sync.mine.add(base.id)
            self.sync.fitness[base.id] = verdict.fitness
        self.storage.finish_candidate(base.id, **verdict.stored())
        p = state.progress
        proposed = pending.proposal is not None and base.parent_ids
        self.intake.outcome(base.parent_ids[0] if proposed else None,
                            evaluated=verdict.status != Status.DUPLICATE,
                            wasted=verdict.status != Status.OK)
        if verdict.status == Status.DUPLICATE:  # functional: not an evaluation
            p.duplicates += 1
            if pending.proposal is not None:
                self.proposer.feedback(pending.proposal, pending.parent_fitness, None)
            self.events.progress(p)
            return replace(base, status=Status.DUPLICATE, duplicate_of=verdict.duplicate_of)
        if verdict.functional_hash and verdict.status in (Status.OK, Status.FAILED):
            state.func_hashes.setdefault(verdict.functional_hash, base.id)
        cand = verdict.applied_to(base)
        p.own += 1
        previous_best = state.best
        state.admit(cand)
        if pending.proposal is not None:
            self.proposer.feedback(pending.proposal, pending.parent_fitness, cand.fitness,
                                   cand.error)
        state.archive.on_evaluated(p.evaluated, self.rng)
        self.simplifier.observe(cand)
        self._since_stats += 1
        if self._since_stats >= STATS_EVERY:
            self._since_stats = 0
            self.storage.update_run(self.run.id, proposer_stats=self.proposer.stats())
        if state.best is not previous_best and state.best is cand and cand.seq > 0:
            self.events.new_best(cand, p)
        self.events.progress(p)
        return cand

    # ----------------------------------------------------------------- loop
    def request_stop(self, reason: str = "interrupted") -> None:
        """Ask the loop to stop: no new proposals; running evaluations are cancelled."""
        if self.stop_reason is None:
            self.stop_reason = reason
        if self._stopping is not None:  # wake the loop even while evaluations run
            self._stopping.set()

    def _check_stop(self, rule: StopRule) -> None:
        if self.stop_reason is None:
            s = self.state
            self.stop_reason = rule.reason(
                evaluated=s.progress.evaluated, best_score=s.progress.best_score,
                cost=s.cost_spent, tokens=s.tokens_spent, idle=self.intake.idle)

    def _next_evaluation(self) -> Pending | None | bool:
        """What a free worker evaluates next; None: nothing this time; False: wait."""
        if self.order is not None:  # proposals are made by _fill, in order
            return self._ready.popleft() if self._ready else False
        return self._make()

    def _make(self) -> Pending | None | bool:
        """A new candidate to evaluate; None: nothing this time; False: wait."""
        state = self.state
        if state.requeue:
            return Pending(state.requeue.pop(0), None, None)
        if state.initial is None or (self.sync is not None and self.sync.full):
            return False  # wait for the initial program (maybe another process's) or stop
        try:
            if not self.proposer.asynchronous:
                return self.intake.propose(self.rng)
            # simplification needs no model: it runs in LLM-driven runs too
            simplification = self.intake.simplification()
            if simplification is not False:
                return simplification if isinstance(simplification, Pending) else None
            return self._ready.popleft() if self._ready else False
        except BudgetFull:
            return False

    def _fill(self, rule: StopRule) -> None:
        """``ordered_lag``: make proposals until ``lag`` are made and unused (or the
        budget would be passed). Called only after a result is used, so that each
        proposal sees the same run whatever the timing."""
        order = self.order
        assert order is not None
        while (self.stop_reason is None and order.room()
               and self.state.progress.evaluated + order.outstanding < self.run.budget):
            pending = self._make()
            if pending is False:
                break
            if isinstance(pending, Pending):
                order.made(pending.candidate.id)
                self._ready.append(pending)
            self._check_stop(rule)

    def _settle(self, pending: Pending, verdict: Verdict) -> None:
        """Use one result; the initial program's failure stops the run."""
        cand = self._finish(pending, verdict)
        if cand.seq == 0 and cand.status != Status.OK:
            if not self.config.allow_failing_initial:
                raise RunError(initial_failure(self.problem, cand))
            self.state.adopt_failed_initial(cand)

    def _room_for_request(self, evaluating: int, requests: int) -> bool:
        """Whether one more model request may start now (look-ahead, budget, caps)."""
        state = self.state
        return (self.stop_reason is None and self.proposer.asynchronous
                and state.initial is not None
                and requests + len(self._ready) < self.pace.lookahead(evaluating)
                and state.progress.evaluated + evaluating + len(self._ready) + requests
                < self.run.budget
                and self.pace.affordable(requests, state.cost_spent, state.tokens_spent))

    def _abandon_ready(self, reason: str) -> None:
        """Store the proposals no evaluator took as not evaluated (their cost is counted)."""
        while self._ready:
            pending = self._ready.popleft()
            self.storage.finish_candidate(
                pending.candidate.id, status=Status.REJECTED,
                error=f"not evaluated: the run stopped ({reason})")
            self.state.progress.rejected += 1

    async def run_session(self) -> RunResult:
        """Run until a budget, the target or an interrupt stops it.

        Evaluations start while workers are free and the budget allows (never beyond
        it); model requests run ahead of them, up to :meth:`Pace.lookahead`, each
        drawing its parent from the archive as it is when the request starts.

        Raises:
            RunError: if the initial program fails its evaluation.
        """
        self._restore()
        state, p = self.state, self.state.progress
        if state.failed_initial is not None:  # resuming a run whose initial program failed
            raise RunError(initial_failure(self.problem, state.failed_initial))
        started = time.monotonic()
        spec = self.spec
        rule = StopRule(self.run.budget, None if spec.max_time is None
                        else started + spec.max_time, spec.target, self.config.maximize,
                        spec.max_cost, spec.max_tokens)
        session_evals = 0
        self.storage.update_run(self.run.id, status="running")
        in_flight: dict[asyncio.Task[tuple[Pending, Verdict]], int] = {}
        requests: set[asyncio.Task[Pending | None]] = set()
        # a stop request (Ctrl-C) must not wait for a long evaluation to finish
        self._stopping = asyncio.Event()
        if self.stop_reason is not None:
            self._stopping.set()
        stop_waiter = asyncio.ensure_future(self._stopping.wait())
        dispatched = 0
        try:
            if state.next_seq == 0 and self.sync is None:
                state.requeue.insert(0, self.intake.initial(self.problem.initial_program))
            if self.order is not None:
                self._fill(rule)
            while True:
                if self.sync is not None:
                    self.sync.poll(self)
                self._check_stop(rule)
                while (self.stop_reason is None and len(in_flight) < self.executor.max_workers
                       and p.evaluated + len(in_flight) < self.run.budget):
                    pending = self._next_evaluation()
                    if pending is False:
                        break
                    if isinstance(pending, Pending):
                        in_flight[asyncio.ensure_future(self._evaluate(pending))] = dispatched
                        dispatched += 1
                    self._check_stop(rule)
                while self._room_for_request(len(in_flight), len(requests)):
                    island, parent, inspirations = self.intake.select(self.rng, len(requests))
                    rng = random.Random(self.rng.getrandbits(64))
                    requests.add(asyncio.ensure_future(
                        self._request(island, parent, inspirations, rng)))
                if not in_flight and not requests:
                    if self._ready and self.stop_reason is None:
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
                    if (proposed := request.result()) is not None:
                        self._ready.append(proposed)
                for finished in sorted((t for t in in_flight if t in waited),
                                       key=lambda t: in_flight[t]):
                    del in_flight[finished]
                    if self.order is None:
                        self._settle(*finished.result())
                        session_evals += 1
                    else:
                        result = finished.result()
                        self.order.finished(result[0].candidate.id, result)
                while self.order is not None and (used := self.order.next_in_order()):
                    self._settle(*used)
                    session_evals += 1
                    self._fill(rule)
                elapsed = time.monotonic() - started
                p.evals_per_second = session_evals / elapsed if elapsed else 0.0
                if self.stop_reason is not None and (in_flight or requests):
                    break
            for held in self.order.drain() if self.order is not None else []:
                self._settle(*held)  # finished before the stop, behind a running one
        finally:
            stop_waiter.cancel()
            for running in [*in_flight, *requests]:
                running.cancel()
            for running in [*in_flight, *requests]:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await running
            self._abandon_ready(self.stop_reason or "error")
            if self.sync is not None:
                self.sync.close()
            p.running = p.requests = p.ready = 0
            self.storage.update_run(
                self.run.id,
                elapsed_seconds=self.run.elapsed_seconds + time.monotonic() - started,
                proposer_stats=self.proposer.stats(),
                status="stopped" if self.stop_reason else "failed",
            )
        zero = state.zero_warning()
        return RunResult(stop_reason=self.stop_reason or "done", progress=p, best=state.best,
                         initial=state.initial, warnings=[zero] if zero else [])

    async def score_test(self, candidate: Candidate) -> float | None:
        """The objective of ``candidate`` on the held-out test split, or None."""
        if not self.problem.has_test_split:
            return None
        return await self.score_code(candidate.code, "evaluate_test")

    async def score_code(self, code: str, function: str = "evaluate") -> float | None:
        """Evaluate any program with ``function``; its objective, or None if it failed."""
        return await self.assessor.score(code, function)
