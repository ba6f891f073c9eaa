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

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from evoforge.problem import kit

HERE = Path(__file__).resolve().parent
# the simulator loop, which runs in the candidate's process; its rules and
# constants are shared with the replay here
harness = kit.load_module(HERE / "harness.py", "_spot_scheduling_harness")
IDLE, SPOT, ON_DEMAND, NONE = harness.IDLE, harness.SPOT, harness.ON_DEMAND, harness.NONE
ACTION_NAMES = harness.ACTION_NAMES
SPOT_PRICE, ON_DEMAND_PRICE = harness.SPOT_PRICE, harness.ON_DEMAND_PRICE
OBSERVATION = harness.OBSERVATION
ScheduleError = harness.ScheduleError
Machine = harness.Machine
_check_action = harness._check_action

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


def simulate(scenario: Scenario, policy: Policy) -> list[int]:
    """Run the function ``policy`` on ``scenario`` here (see harness.simulate)."""
    return list(harness.simulate(harness.local(policy), scenario))


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


def load_policy(program_path: str | Path) -> kit.Program:
    """Start the program at ``program_path`` in its own process (see evoforge.problem.kit)."""
    return kit.load_program(program_path, {"policy": f"policy({', '.join(OBSERVATION)})"},
                            harness=HERE / "harness.py")


def check_signature(program: kit.Program) -> None:
    """Raise ValueError if the program's ``policy`` cannot take every observation keyword."""
    try:
        program.run("check_signature")
    except kit.CandidateError as exc:
        raise ValueError(f"{program.label}: {exc}") from None


def score_policy(policy: Policy, split: str) -> kit.Scores:
    """Run the function ``policy`` on every scenario of ``split`` here."""
    return score_runs(split, lambda scenario: simulate(scenario, policy))


def score_program(program: kit.Program, split: str) -> kit.Scores:
    """Run the simulator loop in the program's process; replay and score here."""
    check_signature(program)

    def runner(scenario: Scenario) -> Sequence[object]:
        try:
            actions = program.run("run", scenario.available, scenario.job_length,
                                  scenario.deadline, scenario.overhead, scenario.name)
        except kit.CandidateError as exc:
            raise ValueError(str(exc)) from None
        if not isinstance(actions, list):
            raise ScheduleError("the simulator loop returned no list of actions")
        return actions
    return score_runs(split, runner)


def score_runs(split: str, runner: Callable[[Scenario], Sequence[object]]) -> kit.Scores:
    """Replay the actions ``runner`` gives for every scenario of ``split``; the metrics.

    The artifact ``instance_scores`` holds each trace's cost ratio, in trace order
    (lower is better, like ``combined_score``).
    """
    scenarios = make_scenarios(split)
    ratios: list[float] = []
    spot = on_demand = preemptions = refused = 0
    for scenario in scenarios:
        result = verify_actions(scenario, runner(scenario))
        ratios.append(result.cost / scenario.on_demand_cost)
        spot += result.spot_steps
        on_demand += result.on_demand_steps
        preemptions += result.preemptions
        refused += result.spot_refused
    mean_ratio = float(np.mean(ratios))
    if not math.isfinite(mean_ratio):  # pragma: no cover - costs are finite
        raise ValueError("cost ratio is not finite")
    return kit.Scores({
        "combined_score": round(mean_ratio, 6),
        "cost_ratio": round(mean_ratio, 6),
        "spot_fraction": round(spot / max(spot + on_demand, 1), 6),
        "preemptions": preemptions,
        "spot_refused": refused,
        "num_traces": len(scenarios),
    }, {"instance_scores": [round(r, 6) for r in ratios]})


def evaluate(program_path: str) -> kit.Scores:
    """Score the program on the training split (used during evolution)."""
    with load_policy(program_path) as program:
        return score_program(program, "train")


def evaluate_test(program_path: str) -> kit.Scores:
    """Score the program on the held-out test split."""
    with load_policy(program_path) as program:
        return score_program(program, "test")


# ---------------------------------------------------------------- functional hashing

PROBE_FUNCTION = "policy"
"""Functional hashing calls the program's ``policy`` (safety net and the evolved rules)
on :func:`probe_inputs`: the hash is of the actions, what the evaluator replays."""


def probe_inputs() -> list[tuple[object, ...]]:
    """Functional hashing inputs: 160 observations, each a moment of a job of the
    generator's ranges: early and late steps, every instance state, spot available or
    not, restart overhead still to pay or not, slack from negative to the whole
    deadline. About a millisecond."""
    rng = np.random.default_rng(8080)
    inputs: list[tuple[object, ...]] = []
    for _ in range(160):
        job_length = int(rng.integers(*JOB_LENGTH))
        overhead = int(rng.integers(OVERHEAD[0], OVERHEAD[1] + 1))
        deadline = job_length + overhead + int(job_length * rng.uniform(*SLACK_FRACTION))
        t = int(rng.integers(0, deadline))
        progress = int(min(rng.integers(0, t + 1), job_length - 1))
        instance = int(rng.integers(0, 3))
        overhead_left = int(rng.integers(0, overhead + 1)) if instance else 0
        spot_available = bool(rng.random() < 0.6)
        inputs.append((t, progress, job_length, deadline, overhead, spot_available,
                       instance, overhead_left))
    return inputs
