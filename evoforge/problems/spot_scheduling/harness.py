"""Spot instance scheduling, the candidate's side: the simulator loop around ``policy``.

Runs in the candidate's process (see evoforge.problem.kit); the evaluator replays
the actions it returns on its own copy of the scenario (``verify_actions``) before
scoring them. Holds nothing the candidate may not see.
"""

import inspect
from types import SimpleNamespace
from typing import Any

import numpy as np

# Actions the policy returns, and the instance types it observes (0 = none running).
IDLE, SPOT, ON_DEMAND = 0, 1, 2
NONE = 0
ACTION_NAMES = {IDLE: "IDLE", SPOT: "SPOT", ON_DEMAND: "ON_DEMAND"}

SPOT_PRICE = 0.3
ON_DEMAND_PRICE = 1.0

# Keyword arguments passed to policy() at every step.
OBSERVATION = ("t", "progress", "job_length", "deadline", "overhead", "spot_available",
               "instance", "overhead_left")


class ScheduleError(ValueError):
    """A run that is not a valid solution of its scenario (e.g. a missed deadline)."""


# ---------------------------------------------------------------- traces


class Machine:
    """The simulator's state: work done, instance running, overhead steps left, cost."""

    def __init__(self, scenario: Any) -> None:
        self.scenario = scenario
        self.t = 0
        self.progress = 0
        self.instance = NONE
        self.overhead_left = 0
        self.cost = 0.0
        self.spot_steps = 0
        self.on_demand_steps = 0
        self.starts = 0
        self.preemptions = 0
        self.spot_refused = 0

    @property
    def done(self) -> bool:
        return self.progress >= self.scenario.job_length

    def observe(self) -> dict[str, object]:
        """Begin step ``t``: a spot instance without capacity is preempted; return the view."""
        available = bool(self.scenario.available[self.t])
        if self.instance == SPOT and not available:
            self.instance, self.overhead_left = NONE, 0
            self.preemptions += 1
        return {
            "t": self.t,
            "progress": self.progress,
            "job_length": self.scenario.job_length,
            "deadline": self.scenario.deadline,
            "overhead": self.scenario.overhead,
            "spot_available": available,
            "instance": self.instance,
            "overhead_left": self.overhead_left,
        }

    def apply(self, action: int) -> None:
        """Run step ``t`` with ``action`` (after :meth:`observe`)."""
        if action == SPOT and not self.scenario.available[self.t]:
            self.spot_refused += 1  # no capacity to launch on: the step is idle
            action = IDLE
        if action == IDLE:
            self.instance, self.overhead_left = NONE, 0
        else:
            if self.instance != action:  # launch (or switch type): pay the overhead first
                self.instance, self.overhead_left = action, self.scenario.overhead
                self.starts += 1
            if action == SPOT:
                self.cost += SPOT_PRICE
                self.spot_steps += 1
            else:
                self.cost += ON_DEMAND_PRICE
                self.on_demand_steps += 1
            if self.overhead_left > 0:
                self.overhead_left -= 1
            else:
                self.progress += 1
        self.t += 1


def _check_action(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ScheduleError(
            f"action {value!r} ({type(value).__name__}) {where}; expected 0 (IDLE), "
            "1 (SPOT) or 2 (ON_DEMAND)")
    action = int(value)
    if action not in ACTION_NAMES:
        raise ScheduleError(
            f"action {action} {where}; expected 0 (IDLE), 1 (SPOT) or 2 (ON_DEMAND)")
    return action


def simulate(program: Any, scenario: Any) -> list[int]:
    """Run ``program.policy`` on ``scenario`` until the job is done or the deadline passes.

    Returns:
        The actions taken, one per step.

    Raises:
        ValueError: if ``policy`` raises or returns something other than 0, 1 or 2.
    """
    policy = program.policy
    machine = Machine(scenario)
    actions: list[int] = []
    while not machine.done and machine.t < scenario.deadline:
        obs = machine.observe()
        where = f"at step {machine.t} of {scenario.name}"
        try:
            raw = policy(**obs)
        except Exception as exc:
            raise ValueError(f"policy raised {type(exc).__name__}: {exc} ({where})") from exc
        action = _check_action(raw, f"returned by policy {where}")
        machine.apply(action)
        actions.append(action)
    return actions


def run(program: Any, available: np.ndarray, job_length: int, deadline: int, overhead: int,
        name: str = "") -> list[int]:
    """:func:`simulate` on a scenario given as plain data."""
    scenario = SimpleNamespace(available=available, job_length=job_length, deadline=deadline,
                               overhead=overhead, name=name)
    return simulate(program, scenario)


def check_signature(program: Any) -> None:
    """Raise ValueError, naming them, if ``policy`` cannot take every observation keyword."""
    try:
        params = inspect.signature(program.policy).parameters
    except (TypeError, ValueError):
        return
    takes_all = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    missing = [name for name in OBSERVATION if name not in params]
    if params and not takes_all and missing:
        raise ValueError(f"policy() must accept the keyword arguments {', '.join(OBSERVATION)}; "
                         f"missing {', '.join(missing)}")


def local(policy: Any) -> SimpleNamespace:
    """A stand-in program for calling :func:`simulate` on a plain function."""
    return SimpleNamespace(policy=policy)
