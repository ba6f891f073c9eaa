"""What a session knows of its run: counters, archive, best and initial, known programs.

The loop (:mod:`evoforge.run.controller`), the intake of proposals
(:mod:`evoforge.run.intake`) and a joined process's sync (:mod:`evoforge.run.shared`)
all read and update one :class:`RunState`; only it places a finished candidate.
"""

from __future__ import annotations

import math
import random
from dataclasses import replace

from evoforge.archive import Archive, FeatureSpace
from evoforge.candidate import Candidate, Status
from evoforge.config import RunConfig
from evoforge.proposers.base import ProposalFilter, Proposer
from evoforge.run.events import Progress
from evoforge.run.exhaustion import Exhaustion
from evoforge.run.objective import error_text
from evoforge.run.report import evaluated_of
from evoforge.run.simplify import SIMPLIFY
from evoforge.storage.base import RunRecord, Storage

__all__ = ["RESTORED_ELITES", "REPLAY_LIMIT", "RunState"]

# a resumed run with more evaluated candidates than this is not replayed row by row
# (minutes at a million rows): its archive restarts from its best RESTORED_ELITES and
# known programs are looked up in storage per proposal (an index lookup)
REPLAY_LIMIT = 100_000
RESTORED_ELITES = 10_000


class RunState:
    """A run as one session sees it.

    Args:
        config: the run's configuration.
        features: the run's feature space.
        budget: the run's evaluations (initial included).
        filters: the proposal filters; each remembers every evaluated program.

    Attributes:
        progress: the counters reported to the user.
        archive: the islands and their elites.
        best: the best ok candidate so far; ``initial`` the initial program's;
            ``failed_initial`` a failed initial program met while restoring.
        hashes: normalized code hash -> the candidate that holds that program.
        func_hashes: functional hash -> the first evaluated candidate with it.
        next_seq: the seq the next proposal of this process gets.
        requeue: pending candidates to evaluate before anything new.
        cost_spent, tokens_spent: what the models cost the run so far.
        exhaustion: per parent, whether its recent children were wasted.
    """

    def __init__(self, config: RunConfig, features: FeatureSpace, budget: int,
                 filters: list[ProposalFilter]) -> None:
        self.config = config
        self.features = features
        self.filters = filters
        self.archive = Archive(config.database, features, maximize=config.maximize)
        self.progress = Progress(budget=budget)
        self.best: Candidate | None = None
        self.initial: Candidate | None = None
        self.failed_initial: Candidate | None = None
        self.hashes: dict[str, int] = {}
        self.func_hashes: dict[str, int] = {}
        self.next_seq = 0
        self.requeue: list[Candidate] = []
        self.cost_spent = 0.0
        self.tokens_spent = 0
        self.exhaustion = Exhaustion(config.database.exhausted_avoidance,
                                     config.database.exhausted_window)
        # set by a fast restore: hashes not in memory are looked up in this storage
        self._lookup: tuple[Storage, int] | None = None
        # an ok candidate with a nonzero score, and one with a zero score (for the
        # warning when every score is 0.0: usually a broken evaluation, not a bad program)
        self._nonzero_seen = False
        self._zero_example: Candidate | None = None

    def holder(self, code_hash: str) -> int | None:
        """The candidate that holds this program (not a duplicate), or None."""
        return self._find(self.hashes, code_hash, "code")

    def behaviour_holder(self, functional_hash: str) -> int | None:
        """The first evaluated candidate with this functional hash, or None."""
        return self._find(self.func_hashes, functional_hash, "functional")

    def _find(self, index: dict[str, int], key: str, kind: str) -> int | None:
        """``index[key]``, else (after a fast restore) the storage's index lookup."""
        found = index.get(key)
        if found is None and self._lookup is not None:
            storage, run_id = self._lookup
            find = storage.find_code_hash if kind == "code" else storage.find_functional_hash
            found = find(run_id, key)
            if found is not None:
                index[key] = found
        return found

    def place(self, cand: Candidate) -> None:
        """Put an ok candidate in the archive; track the best and the initial one."""
        if cand.score is not None:
            if cand.score != 0.0:
                self._nonzero_seen = True
            elif self._zero_example is None:
                self._zero_example = cand
        if cand.seq == 0:
            self.initial = cand
            self.progress.initial_score = cand.score
            self.archive.add_initial(cand)
        else:
            self.archive.add(cand)
        if cand.fitness is not None and (self.best is None or self.best.fitness is None
                                         or cand.fitness > self.best.fitness):
            self.best = cand
            self.progress.best_score = cand.score

    def admit(self, cand: Candidate) -> None:
        """Count a finished candidate (this process's or a joined one's); archive, filters."""
        p = self.progress
        p.evaluated += 1
        for check in self.filters:
            check.remember(cand.id, cand.code)
        if cand.status == Status.OK:
            p.ok += 1
            self.place(cand)
        elif cand.status == Status.TIMEOUT:
            p.timeouts += 1
        else:
            p.failed += 1

    def initial_failed(self, cand: Candidate) -> None:
        """The initial program failed: adopt it (``allow_failing_initial``) or keep it."""
        if self.config.allow_failing_initial:
            self.adopt_failed_initial(cand)
        else:
            self.failed_initial = cand

    def adopt_failed_initial(self, cand: Candidate) -> None:
        """Use a failed initial program as the first parent (``allow_failing_initial``).

        It enters the archive in memory only, ranked below every ok candidate; the
        stored record stays failed.
        """
        try:
            features = self.features.compute(cand.code, {**cand.metrics, "score": 0.0})
        except (KeyError, TypeError):
            features = {name: 0.0 for name in self.features.names}
        parent = replace(cand, status=Status.OK, fitness=-math.inf, features=features)
        self.initial = parent
        self.archive.add_initial(parent)

    def zero_warning(self) -> str | None:
        """A warning when every ok candidate scored exactly 0.0."""
        cand = self._zero_example
        if self._nonzero_seen or cand is None:
            return None
        reported = error_text(cand.metrics, cand.artifacts)
        why = f"; candidate {cand.id} reports: {reported}" if reported else ""
        return (f"every score was 0.0{why}; the evaluation may be broken "
                f"(see 'evoforge show {cand.id}')")

    def read_usage(self, storage: Storage, run_id: int) -> None:
        """What the models cost the run so far, from storage."""
        usage = storage.usage(run_id)
        self.cost_spent = usage["cost"]
        self.tokens_spent = int(usage["prompt_tokens"] + usage["completion_tokens"])

    def restore(self, storage: Storage, run: RunRecord, proposer: Proposer) -> None:
        """Rebuild everything from a run this process alone continues.

        Up to :data:`REPLAY_LIMIT` evaluated candidates, every one is replayed, the
        archive's migrations with their own seeded stream, so a resumed run has the
        islands an uninterrupted one had, and each parent's record of wasted children
        (:class:`~evoforge.run.exhaustion.Exhaustion`) is rebuilt in the order of the
        proposals. Beyond, the archive restarts from the run's best
        :data:`RESTORED_ELITES` and the initial program (see :meth:`holder`), and the
        records of wasted children start empty.
        """
        counts = storage.counts(run.id)
        p = self.progress
        p.ok = counts.get(Status.OK, 0)
        p.failed = counts.get(Status.FAILED, 0)
        p.timeouts = counts.get(Status.TIMEOUT, 0)
        p.duplicates = counts.get(Status.DUPLICATE, 0)
        p.rejected = counts.get(Status.REJECTED, 0)
        p.evaluated = evaluated_of(counts)
        self.read_usage(storage, run.id)
        self.next_seq = storage.next_seq(run.id)
        if run.proposer_stats:
            proposer.load_stats(run.proposer_stats)
        if p.evaluated > REPLAY_LIMIT:
            self._restore_elites(storage, run)
            return
        self.hashes = storage.code_hashes(run.id)
        self.func_hashes = storage.functional_hashes(run.id)
        replay_rng = random.Random(f"replay:{run.seed}")
        done = 0
        for cand in storage.iter_candidates(run.id):
            if cand.status == Status.PENDING:
                self.requeue.append(cand)
                continue
            if cand.parent_ids and cand.operator != SIMPLIFY:
                # as the loop recorded it: each proposal's outcome for its first parent
                self.exhaustion.child(cand.parent_ids[0], wasted=cand.status != Status.OK)
            if cand.status in (Status.DUPLICATE, Status.REJECTED):
                continue
            for check in self.filters:
                check.remember(cand.id, cand.code)
            done += 1
            if cand.status == Status.OK:
                self.place(cand)
            elif cand.seq == 0:
                self.initial_failed(cand)
            self.archive.on_evaluated(done, replay_rng)

    def _restore_elites(self, storage: Storage, run: RunRecord) -> None:
        """The fast restore of a large run: initial program, best elites, pending ones."""
        self._lookup = (storage, run.id)
        in_order = storage.iter_candidates(run.id)
        initial = next(in_order, None)  # seq 0; the rows are streamed, not all read
        getattr(in_order, "close", lambda: None)()  # a generator: release its connection
        restored = storage.elites(run.id, RESTORED_ELITES)
        if initial is not None and initial.status == Status.OK:
            restored = [initial, *(c for c in restored if c.id != initial.id)]
        elif initial is not None and initial.status != Status.PENDING:
            self.initial_failed(initial)
        for cand in sorted(restored, key=lambda c: c.seq):
            for check in self.filters:
                check.remember(cand.id, cand.code)
            self.place(cand)
        self.requeue.extend(storage.iter_candidates(run.id, (Status.PENDING,)))
