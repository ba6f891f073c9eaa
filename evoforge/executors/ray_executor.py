"""Ray executor: each evaluation in its own isolated process on a Ray node.

Needs the optional extra ``evoforge[ray]``; Ray is imported only when a
:class:`RayExecutor` is created, so this module imports without it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import re
import signal
import time
from typing import Any, Literal

from evoforge.evaluation.sandbox import EvalJob, EvalOutcome, run_isolated
from evoforge.executors.base import Executor

log = logging.getLogger(__name__)

MISSING_RAY = "the Ray executor needs the ray extra: pip install 'evoforge[ray]'"
SAFETY_MARGIN = 30.0
"""Seconds past a job's timeout after which an unanswered Ray task is cancelled."""
CANCEL_GRACE = 5.0
"""Seconds a cancelled task gets to clean up (kill its candidate) before it is killed."""
START_TIMEOUT = 180.0
"""Seconds a new fork-server actor may take to start (a Ray worker process that imports
evoforge, then a fork server that imports the evaluator): not part of any job's time."""

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def evaluate_on_worker(job: EvalJob) -> EvalOutcome:
    """Evaluate ``job`` on a Ray worker, in the same isolated child as locally.

    ``ray.cancel(ref)`` (without force) interrupts the worker's main thread with a
    simulated SIGINT; the handler installed here turns it into the cancellation of
    :func:`run_isolated`, which then kills the candidate's whole process group
    before the task ends (a forced cancel kills only the worker and its direct
    children, so processes the candidate started would outlive it).

    Args:
        job: the evaluation to run.

    Returns:
        The outcome, exactly as :func:`run_isolated` reports it.

    Raises:
        KeyboardInterrupt: when the task was cancelled (Ray reports it as cancelled).
    """
    previous = signal.getsignal(signal.SIGINT)

    async def main() -> EvalOutcome:
        task = asyncio.current_task()
        if task is not None:
            # not possible off the main thread; the interrupt then arrives as a
            # KeyboardInterrupt, and asyncio.run still cancels run_isolated
            with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):
                asyncio.get_running_loop().add_signal_handler(signal.SIGINT, task.cancel)
        return await run_isolated(job)

    try:
        return asyncio.run(main())
    except asyncio.CancelledError:
        raise KeyboardInterrupt from None
    finally:
        with contextlib.suppress(ValueError, TypeError):
            signal.signal(signal.SIGINT, previous)


class ForkServerHost:
    """A Ray actor's body: one fork-server worker, as the local executor runs it.

    The candidate then gets on a Ray node what it gets on one machine: a worker that
    imported the evaluator once and forks a child per candidate inside its own pids
    cgroup, as a subreaper, in empty network and mount namespaces where the kernel
    allows, with the job's rlimits. Jobs run one at a time; cancelling the actor task
    (``ray.cancel``) cancels :meth:`run`, which kills the candidate's processes.
    """

    def __init__(self) -> None:
        from evoforge.evaluation.workers import WorkerPool

        self._pool = WorkerPool(1)

    async def run(self, job: EvalJob) -> EvalOutcome:
        """Evaluate ``job`` on this actor's fork server (started on first use)."""
        return await self._pool.run(job)

    async def warm(self, job: EvalJob) -> None:
        """Start the fork server for ``job``'s evaluator (before the job's clock starts)."""
        await self._pool.warm(job)

    async def close(self) -> None:
        """Stop the fork server (the actor is killed after)."""
        await self._pool.close()

    def where(self) -> tuple[str, int]:
        """The Ray node id and process id this actor runs in (for placement checks)."""
        import ray

        return ray.get_runtime_context().get_node_id(), os.getpid()


def _one_line(text: str) -> str:
    lines = [line.strip() for line in _ANSI.sub("", text).splitlines() if line.strip()]
    return lines[0] if lines else ""


def ray_reason(exc: BaseException) -> str:
    """A one-line reason for a Ray-level failure, prefixed ``ray:``.

    Args:
        exc: what awaiting (or submitting) the Ray task raised.

    Returns:
        For example ``ray: WorkerCrashedError: The worker died unexpectedly ...``.
    """
    cause = getattr(exc, "cause", None)  # RayTaskError wraps the task's own exception
    if isinstance(cause, BaseException) and cause is not exc:
        exc = cause
    detail = _one_line(str(exc))
    name = type(exc).__name__
    return f"ray: {name}: {detail}" if detail else f"ray: {name}"


class RayExecutor(Executor):
    """Evaluates jobs on a Ray cluster, at most ``max_workers`` at a time.

    With ``isolation="fork"`` (the default) up to ``max_workers`` Ray actors (one
    CPU each, held while the executor lives) each host a fork-server worker
    (:class:`ForkServerHost`): a candidate is contained on a Ray node exactly as by
    the local executor (pids cgroup, subreaper, namespaces, rlimits). With
    ``"spawn"`` each job is a Ray task running
    :func:`~evoforge.evaluation.sandbox.run_isolated`: a fresh interpreter per
    candidate in its own process group, with the job's timeout, memory limit and
    output caps, as the local ``spawn`` isolation does. Faults of the candidate come back
    as outcomes; a failure of Ray itself (a worker died, the task raised) becomes
    a ``failed`` outcome whose error starts with ``ray:``.

    As a safety net, a task that has not answered within the job's timeout plus
    :data:`SAFETY_MARGIN` seconds (queued or stuck) is cancelled and reported as
    a ``timeout``; with ``fork`` that clock starts once a new actor and its fork
    server are up (:data:`START_TIMEOUT`), so a slow start never eats a job's time.
    Cancelling the awaiting asyncio task cancels the Ray task: first gracefully, so
    the worker kills the candidate's process group, then, after
    :data:`CANCEL_GRACE` seconds, by killing the worker.

    On a multi-node cluster every node must see the same files: the problem's
    folder (``evaluator.py`` and whatever it reads) must exist at the same
    absolute path on every node, and ``evoforge`` (with the evaluator's
    dependencies) must be installed in the Python environment Ray's workers use.
    Relative evaluator paths are made absolute on the driver before submission.

    Args:
        max_workers: concurrent evaluations; for a local Ray instance also the
            number of CPUs it is given.
        address: the Ray cluster to connect to (``"auto"``, ``"ray://host:10001"``,
            ``"host:6379"``); None starts a new local Ray instance (never joins one that
            another program started on this machine; give ``"auto"`` for that) unless
            Ray is already initialized in this process or ``RAY_ADDRESS`` names a cluster.
        isolation: ``fork`` (default): ``max_workers`` Ray actors each host a
            fork-server worker (:class:`ForkServerHost`), with the same cgroup,
            subreaper, namespaces and limits as locally; ``spawn``: a Ray task per
            candidate that starts a fresh interpreter (no fork server).

    Raises:
        RuntimeError: if Ray is not installed, or cannot be started or reached.
        ValueError: if ``max_workers`` is below 1 or ``isolation`` is unknown.
    """

    safety_margin: float = SAFETY_MARGIN
    cancel_grace: float = CANCEL_GRACE
    start_timeout: float = START_TIMEOUT

    def __init__(self, max_workers: int = 1, address: str | None = None,
                 isolation: Literal["fork", "spawn"] = "fork") -> None:
        if max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        if isolation not in ("fork", "spawn"):
            raise ValueError(f"unknown isolation {isolation!r}; use fork or spawn")
        try:
            import ray
        except ImportError:
            raise RuntimeError(MISSING_RAY) from None
        self.max_workers = max_workers
        self.address = address
        self.isolation = isolation
        self._ray: Any = ray
        self._owns_ray = False
        self._closed = False
        self._slots: asyncio.Semaphore | None = None
        self._slots_loop: asyncio.AbstractEventLoop | None = None
        if not ray.is_initialized():
            self._connect()
        self._task: Any = ray.remote(num_cpus=1, max_retries=0)(evaluate_on_worker)
        self._host: Any = ray.remote(num_cpus=1, max_restarts=0, max_task_retries=0)(
            ForkServerHost)
        self._actors: list[Any] = []  # every live actor, busy or idle
        self._idle: list[Any] = []

    def _connect(self) -> None:
        ray = self._ray
        local = self.address is None and not os.environ.get("RAY_ADDRESS")
        options: dict[str, Any] = {
            "address": self.address,
            "include_dashboard": False,
            "log_to_driver": False,
            "ignore_reinit_error": True,
            # Ray's own handler on the "ray" logger only; errors still show
            "logging_level": logging.ERROR,
        }
        if local:
            # "local": a new instance; without it ray.init joins whatever cluster was
            # last started on this machine (ray start, or a test's cluster)
            options["address"] = "local"
            options["num_cpus"] = self.max_workers
        try:
            try:
                ray.init(**options)
            except Exception as exc:  # Ray raises a bare Exception for this
                # Ray gives a new raylet a fixed 30 s to register, which a small machine
                # under heavy load can miss: one more try, after a clean shutdown
                if not local or "timed out during startup" not in str(exc):
                    raise
                ray.shutdown()
                ray.init(**options)
        except Exception as exc:
            where = "a local Ray instance" if local else f"Ray at {self.address or 'RAY_ADDRESS'}"
            raise RuntimeError(f"could not start or reach {where}: {_one_line(str(exc))}") from exc
        self._owns_ray = True

    def _semaphore(self) -> asyncio.Semaphore:
        """The concurrency limit, bound to the running event loop."""
        loop = asyncio.get_running_loop()
        if self._slots is None or self._slots_loop is not loop:
            self._slots = asyncio.Semaphore(self.max_workers)
            self._slots_loop = loop
        return self._slots

    async def evaluate(self, job: EvalJob) -> EvalOutcome:
        """Run ``job`` as a Ray task and return its outcome; never raises for failures.

        Args:
            job: the evaluation to run.

        Returns:
            The worker's outcome; ``failed`` with a ``ray:`` reason when Ray itself
            failed; ``timeout`` when the task did not answer within the job's
            timeout plus :attr:`safety_margin`.
        """
        async with self._semaphore():
            return await self._run(job)

    async def _run(self, job: EvalJob) -> EvalOutcome:
        if self._closed:
            return EvalOutcome("failed", error="ray: the executor is closed")
        if not self._ray.is_initialized():  # .remote() would silently start a new instance
            return EvalOutcome("failed", error="ray: Ray is not running (it was shut down)")
        if not job.evaluator_path.is_absolute():
            job = dataclasses.replace(job, evaluator_path=job.evaluator_path.resolve())
        if self.isolation == "fork":
            # the semaphore caps concurrency at max_workers: an idle actor or a new one
            if self._idle:
                actor = self._idle.pop()  # idle actors have run a job: they are up
            else:
                actor = self._new_actor()
                if actor is None:
                    return EvalOutcome("failed",
                                       error="ray: could not start a fork-server actor")
                # started before the job's clock: on a loaded machine a new actor can take
                # longer than the safety margin, and its job would time out unrun
                failure = await self._start(actor, job)
                if failure is not None:
                    self._drop(actor)
                    return failure
            healthy = False
            try:
                outcome, healthy = await self._submit(job, lambda: actor.run.remote(job),
                                                      actor)
                return outcome
            finally:
                if healthy:
                    self._idle.append(actor)
                else:
                    self._drop(actor)
        outcome, _ = await self._submit(job, lambda: self._task.remote(job), None)
        return outcome

    def _new_actor(self) -> Any:
        try:
            actor = self._host.remote()
        except Exception:
            return None
        self._actors.append(actor)
        return actor

    async def _start(self, actor: Any, job: EvalJob) -> EvalOutcome | None:
        """Wait for a new actor and its fork server; None when ready, else the failure."""
        launched = self._launch(lambda: actor.warm.remote(job))
        if isinstance(launched, EvalOutcome):
            return launched
        _, future = launched
        done, _ = await asyncio.wait({future}, timeout=self.start_timeout)
        if not done:
            return EvalOutcome("failed", error=f"ray: the fork-server actor did not start "
                                               f"within {self.start_timeout:g} s")
        try:
            future.result()
        except Exception as exc:
            return EvalOutcome("failed", error=ray_reason(exc))
        return None

    @staticmethod
    def _launch(submit: Any) -> tuple[Any, asyncio.Future[Any]] | EvalOutcome:
        """Submit one Ray call: its object ref and an asyncio future, or the failure."""
        try:
            ref = submit()
            future = asyncio.wrap_future(ref.future())
        except Exception as exc:
            return EvalOutcome("failed", error=ray_reason(exc))
        # an abandoned future's exception must not be reported as never retrieved
        future.add_done_callback(lambda f: f.cancelled() or f.exception())
        return ref, future

    def _drop(self, actor: Any) -> None:
        """Kill an actor that broke or was cancelled; a new one replaces it on demand."""
        if actor in self._actors:
            self._actors.remove(actor)
        with contextlib.suppress(Exception):
            self._ray.kill(actor)

    async def _submit(self, job: EvalJob, submit: Any,
                      actor: Any) -> tuple[EvalOutcome, bool]:
        """Submit and await one Ray call; the outcome, and whether the actor is reusable."""
        start = time.monotonic()
        launched = self._launch(submit)
        if isinstance(launched, EvalOutcome):
            return launched, False
        ref, future = launched
        try:
            done, _ = await asyncio.wait({future}, timeout=job.timeout + self.safety_margin)
        except asyncio.CancelledError:
            await self._cancel(ref, future, actor)
            raise
        if not done:
            await self._cancel(ref, future, actor)
            return EvalOutcome(
                "timeout", seconds=time.monotonic() - start,
                error=(f"timed out after {job.timeout:g} s (the Ray task did not answer within "
                       f"{self.safety_margin:g} s more and was cancelled)")), False
        try:
            outcome = future.result()
        except Exception as exc:
            return EvalOutcome("failed", error=ray_reason(exc),
                               seconds=time.monotonic() - start), False
        if not isinstance(outcome, EvalOutcome):
            return EvalOutcome("failed", seconds=time.monotonic() - start,
                               error=f"ray: the task returned a {type(outcome).__name__}"), False
        return outcome, True

    async def _cancel(self, ref: Any, future: asyncio.Future[Any], actor: Any = None) -> None:
        """Cancel the task gracefully; kill its worker if it has not ended after the grace.

        An actor task is cancelled inside the actor (its fork server kills the
        candidate); an actor that does not answer the cancellation in time is killed.
        """
        with contextlib.suppress(Exception):
            self._ray.cancel(ref, force=False)
        try:
            await asyncio.wait({future}, timeout=self.cancel_grace)
        finally:
            if not future.done():
                with contextlib.suppress(Exception):
                    if actor is None:
                        self._ray.cancel(ref, force=True)
                    else:
                        self._ray.kill(actor)

    async def close(self) -> None:
        """Shut Ray down if this executor started it; otherwise leave it running."""
        if self._closed:
            return
        self._closed = True
        actors, self._actors, self._idle = self._actors, [], []
        if actors and self._ray.is_initialized():
            # stop each fork server cleanly (its cgroup removed), then end the actors
            with contextlib.suppress(Exception):
                refs = [a.close.remote() for a in actors]
                await asyncio.wait([asyncio.wrap_future(r.future()) for r in refs],
                                   timeout=10.0)
            for actor in actors:
                with contextlib.suppress(Exception):
                    self._ray.kill(actor)
        if self._owns_ray and self._ray.is_initialized():
            self._ray.shutdown()
