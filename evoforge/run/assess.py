"""The Assessor: how a program is evaluated and judged, for the loop and for ``problems score``.

One place builds the evaluation job, runs the cascade of stages, probes the functional
hash and turns an outcome into the fields stored with a candidate, so that a run and
``evoforge problems score`` give the same objective for the same program.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

from evoforge.archive import FeatureSpace
from evoforge.candidate import Candidate, Status
from evoforge.config import RunConfig
from evoforge.evaluation.child import PROBE
from evoforge.evaluation.sandbox import EvalJob, EvalOutcome
from evoforge.executors.base import Executor
from evoforge.problem.loader import Problem
from evoforge.run.objective import fitness_of, objective_of, unwrap


def eval_job(problem: Problem, config: RunConfig, code: str, function: str = "evaluate",
             timeout: float | None = None) -> EvalJob:
    """The sandboxed job that runs ``function`` of ``problem``'s evaluator on ``code``.

    ``timeout`` overrides the config's (``evaluator.test_timeout`` for
    ``evaluate_test``, else ``evaluator.timeout``).
    """
    ev = config.evaluator
    if timeout is None:
        timeout = ev.test_timeout if function == "evaluate_test" else ev.timeout
    return EvalJob(code=code, evaluator_path=problem.evaluator_path,
                   function=function, timeout=timeout, memory_mb=ev.memory_mb,
                   output_cap_kb=ev.output_cap_kb, file_mb=ev.file_mb,
                   max_processes=ev.max_processes, network=ev.network,
                   probe_arguments=ev.probe_inputs if function == PROBE else None,
                   program_suffix=problem.file_suffix,
                   profile=ev.profile and function == "evaluate")


def problem_objective(problem: Problem, metrics: dict[str, Any]) -> float | None:
    """The objective a run gives ``metrics`` of ``problem`` (None when it has none).

    The configured metric, or OpenEvolve's ``combined_score`` fallback (the average
    of the non-feature metrics), exactly as the loop's :meth:`Assessor.judge`.
    """
    features = FeatureSpace(problem.config.database, problem.initial_program)
    score, _ = objective_of(problem.config, metrics, features.names)
    return score


@dataclass(frozen=True)
class Verdict:
    """What one assessment concluded about a program: the fields stored with it.

    ``status`` is always set; an ok verdict has ``score``, ``fitness``, ``metrics`` and
    ``features``; a failed one has ``error``; a functional duplicate has
    ``duplicate_of`` and the original's score. Frozen: a verdict is amended with
    :func:`dataclasses.replace`, never in place.
    """

    status: Status
    score: float | None = None
    fitness: float | None = None
    metrics: dict[str, Any] | None = None
    features: dict[str, float] | None = None
    artifacts: dict[str, Any] | None = None
    error: str | None = None
    eval_seconds: float | None = None
    functional_hash: str | None = None
    stages: list[dict[str, Any]] | None = None
    duplicate_of: int | None = None

    def stored(self) -> dict[str, Any]:
        """The keyword arguments of :meth:`Storage.finish_candidate`."""
        return asdict(self)

    def applied_to(self, base: Candidate) -> Candidate:
        """``base`` (the pending candidate) as this verdict finished it."""
        return replace(base, status=self.status, score=self.score, fitness=self.fitness,
                       metrics=self.metrics or {}, features=self.features or {},
                       artifacts=self.artifacts or {}, error=self.error,
                       eval_seconds=self.eval_seconds, functional_hash=self.functional_hash,
                       stages=self.stages, duplicate_of=self.duplicate_of)


def functional_duplicate(original: Candidate, functional_hash: str,
                         probe_seconds: float) -> Verdict:
    """The verdict on a program that behaves as ``original`` on the probe inputs."""
    return Verdict(status=Status.DUPLICATE, duplicate_of=original.id,
                   functional_hash=functional_hash, score=original.score,
                   fitness=original.fitness, metrics=original.metrics or None,
                   error=f"functional duplicate of candidate {original.id}",
                   eval_seconds=probe_seconds)


class Assessor:
    """Evaluates programs of one problem under one configuration.

    Args:
        problem: the loaded problem.
        config: the run's configuration (objective, evaluator limits, cascade).
        executor: where evaluations run.
        features: the run's feature space (the features an ok candidate needs).
    """

    def __init__(self, problem: Problem, config: RunConfig, executor: Executor,
                 features: FeatureSpace) -> None:
        self.problem = problem
        self.config = config
        self.executor = executor
        self.features = features
        self.probing = (bool({"probe_inputs", "probe_program"} & problem.evaluator_functions)
                        or config.evaluator.probe_inputs is not None)
        self.func_hits = 0  # functional duplicates found by the probe
        self.func_saved_seconds = 0.0  # their originals' evaluation time, less the probes

    def job(self, code: str, function: str = "evaluate") -> EvalJob:
        """The sandboxed job that runs ``function`` of the evaluator on ``code``."""
        return eval_job(self.problem, self.config, code, function)

    def judge(self, code: str, outcome: EvalOutcome) -> Verdict:
        """Turn an outcome into the verdict stored with the candidate."""
        artifacts = outcome.artifacts or None
        if outcome.status != "ok":
            return Verdict(status=Status(outcome.status), error=outcome.error,
                           artifacts=artifacts, eval_seconds=outcome.seconds)
        metrics, extra = unwrap(outcome.metrics or {})
        if extra:
            artifacts = {**extra, **(outcome.artifacts or {})}
        score, reason = objective_of(self.config, metrics, self.features.names)
        features: dict[str, float] | None = None
        if reason is None and score is not None:
            # OpenEvolve's built-in 'score' feature: the objective, unless the
            # evaluator returns a metric of that name itself
            values = metrics if "score" in metrics else {**metrics, "score": score}
            try:
                features = self.features.compute(code, values)
            except (KeyError, TypeError) as exc:
                reason = str(exc.args[0])
        if reason is not None or score is None:
            return Verdict(status=Status.FAILED, error=reason, metrics=metrics or None,
                           artifacts=artifacts, eval_seconds=outcome.seconds)
        return Verdict(status=Status.OK, score=score, fitness=fitness_of(self.config, score),
                       metrics=metrics, features=features, artifacts=artifacts,
                       eval_seconds=outcome.seconds)

    @property
    def stage_functions(self) -> list[str]:
        """``evaluate_stage1``, ``evaluate_stage2``, ... as far as the evaluator defines them.

        Empty when the config turns the cascade off (``cascade_evaluation: false``).
        """
        names: list[str] = []
        if not self.config.evaluator.cascade_evaluation:
            return names
        while f"evaluate_stage{len(names) + 1}" in self.problem.evaluator_functions:
            names.append(f"evaluate_stage{len(names) + 1}")
        return names

    def _passes(self, score: float, threshold: float) -> bool:
        return score >= threshold if self.config.maximize else score <= threshold

    async def assess(self, code: str) -> Verdict:
        """Evaluate ``code``: the cascade of stages if the evaluator has one, else evaluate.

        As OpenEvolve's ``Evaluator._cascade_evaluate`` (``openevolve/evaluator.py``):
        a program whose objective misses the threshold after a stage stops there and
        keeps the metrics of the stages it ran; it is an ok candidate, not a failure.
        Its last stage record says ``"stopped": true`` and the threshold it missed.
        A stage that crashes or times out fails the candidate.
        """
        stages = self.stage_functions
        if not stages:
            outcome = await self.executor.evaluate(self.job(code))
            return self.judge(code, outcome)
        thresholds = self.config.evaluator.cascade_thresholds
        merged: dict[str, Any] = {}
        artifacts: dict[str, Any] = {}
        record: list[dict[str, Any]] = []
        seconds = 0.0
        verdict = Verdict(status=Status.FAILED, error="the evaluator defines no stage")
        for index, function in enumerate(stages):
            outcome = await self.executor.evaluate(self.job(code, function))
            seconds += outcome.seconds
            record.append({"stage": index + 1, "status": outcome.status,
                           "metrics": outcome.metrics, "seconds": outcome.seconds})
            merged.update(outcome.metrics)
            artifacts.update(outcome.artifacts)
            outcome = EvalOutcome(outcome.status, dict(merged), dict(artifacts), outcome.error,
                                  seconds)
            verdict = replace(self.judge(code, outcome), stages=record)
            if verdict.status != Status.OK:
                if verdict.error:
                    verdict = replace(verdict, error=f"stage {index + 1}: {verdict.error}")
                return verdict
            assert verdict.score is not None  # an ok verdict has a score
            if index < len(thresholds) and index < len(stages) - 1 and not self._passes(
                    verdict.score, thresholds[index]):
                record[-1].update(stopped=True, threshold=thresholds[index])
                return verdict
        return verdict

    async def verdict(self, code: str,
                      original_of: Callable[[str], Candidate | None] | None = None) -> Verdict:
        """Probe ``code``'s behaviour, then assess it unless a known candidate has it.

        Args:
            code: the program.
            original_of: the evaluated candidate with a functional hash, or None; when
                it finds one, ``code`` is its functional duplicate and takes its result
                (counted in :attr:`func_hits` and :attr:`func_saved_seconds`). None:
                always assess (a simplification must show its own score).
        """
        functional_hash, probe_seconds = await self.probe(code)
        original = (original_of(functional_hash)
                    if functional_hash is not None and original_of is not None else None)
        if original is not None:
            assert functional_hash is not None
            self.func_hits += 1
            self.func_saved_seconds += max((original.eval_seconds or 0.0) - probe_seconds, 0.0)
            return functional_duplicate(original, functional_hash, probe_seconds)
        verdict = await self.assess(code)
        return replace(verdict, functional_hash=functional_hash,
                       eval_seconds=(verdict.eval_seconds or 0.0) + probe_seconds)

    async def probe(self, code: str) -> tuple[str | None, float]:
        """The functional hash of ``code`` (None if it cannot be probed) and its seconds."""
        if not self.probing:
            return None, 0.0
        outcome = await self.executor.evaluate(self.job(code, PROBE))
        if outcome.status != "ok":
            return None, outcome.seconds
        value = outcome.artifacts.get("probe_hash")
        return (str(value) if value else None), outcome.seconds

    async def score(self, code: str, function: str = "evaluate") -> float | None:
        """The objective of ``code`` under ``function``, or None if it failed."""
        outcome = await self.executor.evaluate(self.job(code, function))
        if outcome.status != "ok":
            return None
        score, _ = objective_of(self.config, outcome.metrics, self.features.names)
        return score
