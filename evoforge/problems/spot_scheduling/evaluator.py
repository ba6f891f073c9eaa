"""Evaluator for deadline-aware spot instance scheduling with an evolved policy.

A job needs ``job_length`` steps of work and must finish within ``deadline``
steps. At every step the program's ``policy(...)`` chooses IDLE (0), SPOT (1) or
ON_DEMAND (2) from what it can observe; the fixed simulator below applies the
choice. Spot capacity follows a generated availability trace (a two-state Markov
chain whose rates vary per trace) and a running spot instance is preempted as
soon as capacity disappears. Starting an instance (or switching type, or
restarting after a preemption) costs ``overhead`` steps that are paid for but
make no progress. Spot costs ``SPOT_PRICE`` per step, on-demand
``ON_DEMAND_PRICE`` per step, idle nothing.

A run that does not finish the job by its deadline is invalid: the evaluation
raises. The score of a trace is its cost divided by the cost of running on
on-demand from the start, ``(job_length + overhead) * ON_DEMAND_PRICE``;
``combined_score`` is the mean over the split's traces (lower is better, the
always-on-demand policy scores exactly 1). Every recorded run is replayed from
scratch by ``verify_actions`` before it is scored.
"""

import importlib.util
import inspect
import math
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent

# Actions the policy returns, and the instance types it observes (0 = none running).
IDLE, SPOT, ON_DEMAND = 0, 1, 2
NONE = 0
ACTION_NAMES = {IDLE: "IDLE", SPOT: "SPOT", ON_DEMAND: "ON_DEMAND"}

SPOT_PRICE = 0.3
ON_DEMAND_PRICE = 1.0

# Generator ranges (steps): job length, restart overhead, slack as a fraction of
# the job length, and the mean lengths of spot availability and outage periods
# (drawn log-uniformly per trace).
JOB_LENGTH = (40, 160)
OVERHEAD = (1, 6)
SLACK_FRACTION = (0.1, 1.0)
MEAN_UP = (3.0, 150.0)
MEAN_DOWN = (2.0, 60.0)

# Splits: name -> (seed of the split, number of traces).
SPLITS: dict[str, tuple[int, int]] = {
    "train": (20240515, 100),
    "test": (8675309, 400),
}

# Keyword arguments passed to policy() at every step.
OBSERVATION = ("t", "progress", "job_length", "deadline", "overhead", "spot_available",
               "instance", "overhead_left")

Policy = Callable[..., object]


@dataclass(frozen=True)
class Scenario:
    """One job and the spot availability trace it runs against.

    ``available[t]`` says whether spot capacity exists during step t
    (``t = 0 .. deadline - 1``).
    """

    name: str
    job_length: int
    deadline: int
    overhead: int
    available: np.ndarray  # bool, shape (deadline,)
    mean_up: float = 0.0
    mean_down: float = 0.0

    @property
    def on_demand_cost(self) -> float:
        """Cost of starting on-demand at once and keeping it: the normaliser."""
        return (self.job_length + self.overhead) * ON_DEMAND_PRICE


class ScheduleError(ValueError):
    """A run that is not a valid solution of its scenario (e.g. a missed deadline)."""


# ---------------------------------------------------------------- traces


def make_scenario(split_seed: int, index: int) -> Scenario:
    """A random job and a Markov on/off availability trace as long as its deadline."""
    rng = np.random.default_rng([split_seed, index])
    job_length = int(rng.integers(JOB_LENGTH[0], JOB_LENGTH[1] + 1))
    overhead = int(rng.integers(OVERHEAD[0], OVERHEAD[1] + 1))
    slack = int(round(rng.uniform(*SLACK_FRACTION) * job_length))
    deadline = job_length + overhead + slack
    mean_up = float(np.exp(rng.uniform(np.log(MEAN_UP[0]), np.log(MEAN_UP[1]))))
    mean_down = float(np.exp(rng.uniform(np.log(MEAN_DOWN[0]), np.log(MEAN_DOWN[1]))))
    p_lose, p_regain = 1.0 / mean_up, 1.0 / mean_down
    draws = rng.random(deadline)
    available = np.empty(deadline, dtype=bool)
    state = draws[0] < mean_up / (mean_up + mean_down)  # stationary start
    available[0] = state
    for t in range(1, deadline):
        state = (draws[t] >= p_lose) if state else (draws[t] < p_regain)
        available[t] = state
    return Scenario(f"trace_{split_seed}_{index}", job_length, deadline, overhead, available,
                    round(mean_up, 3), round(mean_down, 3))


def make_scenarios(split: str) -> list[Scenario]:
    """The scenarios of ``split`` ("train" or "test"), always the same for a split."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {sorted(SPLITS)}")
    seed, count = SPLITS[split]
    return [make_scenario(seed, i) for i in range(count)]


# ---------------------------------------------------------------- simulator


class Machine:
    """The simulator's state: work done, instance running, overhead steps left, cost."""

    def __init__(self, scenario: Scenario) -> None:
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


def simulate(scenario: Scenario, policy: Policy) -> list[int]:
    """Run ``policy`` on ``scenario`` until the job is done or the deadline passes.

    Returns:
        The actions taken, one per step.

    Raises:
        ValueError: if ``policy`` raises or returns something other than 0, 1 or 2.
    """
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


@dataclass(frozen=True)
class RunResult:
    """What a verified run cost and did."""

    cost: float
    finish: int  # steps used; the job ends at the end of step finish - 1
    spot_steps: int
    on_demand_steps: int
    starts: int
    preemptions: int
    spot_refused: int


def verify_actions(scenario: Scenario, actions: Sequence[object]) -> RunResult:
    """Replay ``actions`` on ``scenario`` from scratch and check the run is valid.

    Raises:
        ScheduleError: naming the first problem: an action that is not 0, 1 or 2,
            actions after the job is done, or the job unfinished by the deadline.
    """
    machine = Machine(scenario)
    for step, raw in enumerate(actions):
        if machine.done:
            raise ScheduleError(
                f"{scenario.name}: {len(actions) - step} action(s) after the job finished "
                f"at step {step}")
        if step >= scenario.deadline:
            raise ScheduleError(
                f"{scenario.name}: {len(actions)} actions for a deadline of "
                f"{scenario.deadline} steps")
        action = _check_action(raw, f"at step {step} of {scenario.name}")
        machine.observe()
        machine.apply(action)
    if not machine.done:
        raise ScheduleError(
            f"{scenario.name}: deadline missed: {machine.progress}/{scenario.job_length} "
            f"steps of work done after {machine.t} of {scenario.deadline} steps")
    return RunResult(machine.cost, machine.t, machine.spot_steps, machine.on_demand_steps,
                     machine.starts, machine.preemptions, machine.spot_refused)


def offline_optimum(scenario: Scenario) -> float:
    """The least cost of any run that meets the deadline, knowing the whole trace.

    A reference point only (no online policy can know the future): backward
    dynamic programming over (step, work done, instance, overhead left) with the
    simulator's rules.
    """
    length, overhead = scenario.job_length, scenario.overhead
    # state rows: 0 = nothing running; 1 + r = spot with r overhead steps left;
    # 1 + overhead + r = on-demand with r left (r < overhead after any step)
    n_states = 1 + 2 * overhead
    prices = {SPOT: SPOT_PRICE, ON_DEMAND: ON_DEMAND_PRICE}
    row = {SPOT: 1, ON_DEMAND: 1 + overhead}
    value = np.full((n_states, length + 1), np.inf)  # value[state, work done] at the deadline
    value[:, length] = 0.0
    for t in range(scenario.deadline - 1, -1, -1):
        available = bool(scenario.available[t])

        def run(kind: int, left: int, nxt: np.ndarray = value) -> np.ndarray:
            if left > 0:  # an overhead step: paid, no progress
                return prices[kind] + nxt[row[kind] + left - 1, :length]
            return prices[kind] + nxt[row[kind], 1:]

        fresh = np.minimum(value[0, :length], run(ON_DEMAND, overhead))
        if available:
            fresh = np.minimum(fresh, run(SPOT, overhead))
        new = np.full_like(value, np.inf)
        new[:, length] = 0.0
        new[0, :length] = fresh
        for left in range(overhead):
            new[row[ON_DEMAND] + left, :length] = np.minimum(fresh, run(ON_DEMAND, left))
            new[row[SPOT] + left, :length] = (
                np.minimum(fresh, run(SPOT, left)) if available else fresh)  # else preempted
        value = new
    return float(value[0, 0])


# ---------------------------------------------------------------- scoring


def load_policy(program_path: str | Path) -> Policy:
    """Import the program at ``program_path`` and return its ``policy`` function."""
    path = Path(program_path)
    spec = importlib.util.spec_from_file_location(f"_spot_program_{uuid.uuid4().hex}", path)
    if spec is None or spec.loader is None:
        raise ValueError(f"{path}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    policy = getattr(module, "policy", None)
    if not callable(policy):
        raise ValueError(f"{path}: defines no function policy({', '.join(OBSERVATION)})")
    try:
        params = inspect.signature(policy).parameters
    except (TypeError, ValueError):
        params = {}
    takes_all = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    missing = [name for name in OBSERVATION if name not in params]
    if params and not takes_all and missing:
        raise ValueError(
            f"{path}: policy() must accept the keyword arguments {', '.join(OBSERVATION)}; "
            f"missing {', '.join(missing)}")
    return policy


def score_policy(policy: Policy, split: str) -> dict[str, float]:
    """Run ``policy`` on every scenario of ``split`` and return the metrics."""
    scenarios = make_scenarios(split)
    ratios: list[float] = []
    spot = on_demand = preemptions = refused = 0
    for scenario in scenarios:
        result = verify_actions(scenario, simulate(scenario, policy))
        ratios.append(result.cost / scenario.on_demand_cost)
        spot += result.spot_steps
        on_demand += result.on_demand_steps
        preemptions += result.preemptions
        refused += result.spot_refused
    mean_ratio = float(np.mean(ratios))
    if not math.isfinite(mean_ratio):  # pragma: no cover - costs are finite
        raise ValueError("cost ratio is not finite")
    return {
        "combined_score": round(mean_ratio, 6),
        "cost_ratio": round(mean_ratio, 6),
        "spot_fraction": round(spot / max(spot + on_demand, 1), 6),
        "preemptions": preemptions,
        "spot_refused": refused,
        "num_traces": len(scenarios),
    }


def evaluate(program_path: str) -> dict[str, float]:
    """Score the program on the training split (used during evolution)."""
    return score_policy(load_policy(program_path), "train")


def evaluate_test(program_path: str) -> dict[str, float]:
    """Score the program on the held-out test split."""
    return score_policy(load_policy(program_path), "test")
