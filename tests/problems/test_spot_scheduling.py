"""The built-in spot_scheduling problem: simulator, verifier, traces, baselines and README."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.problems.readme_scores import (
    Scores,
    assert_readme_matches,
    load_evaluator,
    problem_dir,
    program_names,
    score_programs,
)

PROBLEM = problem_dir("spot_scheduling")
INITIAL = PROBLEM / "initial_program.py"
TOLERANCE = 0.001

ev = load_evaluator("spot_scheduling")
IDLE, SPOT, OD = ev.IDLE, ev.SPOT, ev.ON_DEMAND

PROGRAMS = program_names(PROBLEM)


@pytest.fixture(scope="module")
def scores() -> Scores:
    return score_programs(PROBLEM, ev, PROGRAMS)


def test_readme_table_matches_computed_scores(scores):
    assert_readme_matches(PROBLEM, scores, TOLERANCE)


def test_baseline_facts(scores):
    for split in ("train", "test"):
        on_demand = scores["baselines/always_on_demand.py"][split]
        greedy = scores["baselines/greedy.py"][split]
        uniform = scores["baselines/uniform_progress.py"][split]
        initial = scores["initial_program.py"][split]
        assert on_demand["combined_score"] == 1.0 and on_demand["spot_fraction"] == 0.0
        # on these Markov traces Greedy beats Uniform Progress (see the README)
        assert greedy["combined_score"] < uniform["combined_score"] < 1.0
        assert greedy["combined_score"] < initial["combined_score"] < 1.0
        for metrics in (greedy, uniform, initial):
            assert metrics["spot_refused"] == 0  # the programs ask for spot only when there is some
            assert metrics["preemptions"] > 0


def test_no_program_misses_a_deadline_or_beats_the_offline_optimum():
    """Every baseline meets every deadline (the evaluation would raise) and stays above the DP."""
    scenarios = ev.make_scenarios("train")[:25] + ev.make_scenarios("test")[:25]
    optimum = [ev.offline_optimum(s) for s in scenarios]
    for name in PROGRAMS:
        policy = ev.load_policy(PROBLEM / name)
        for scenario, best in zip(scenarios, optimum, strict=True):
            result = ev.verify_actions(scenario, ev.simulate(scenario, policy))
            assert result.finish <= scenario.deadline
            assert result.cost >= best - 1e-9, (name, scenario.name)
    for scenario, best in zip(scenarios, optimum, strict=True):
        assert scenario.job_length * ev.SPOT_PRICE <= best <= scenario.on_demand_cost


def test_offline_optimum_on_a_hand_made_trace():
    # spot for 4 steps, gone for 2, back: job 4, overhead 1, deadline 7
    available = np.array([1, 1, 1, 0, 0, 1, 1], dtype=bool)
    scenario = ev.Scenario("hand", job_length=4, deadline=7, overhead=1, available=available)
    # best: spot 0-2 (overhead + 2 work), on-demand 3-4 (overhead + 1 work), back to
    # spot 5-6 (overhead + 1 work): 5 * 0.3 + 2 * 1.0; waiting for spot at 3-4 would
    # leave too little time, and on-demand to the end costs 3 * 0.3 + 3 * 1.0
    assert ev.offline_optimum(scenario) == pytest.approx(3.5)
    assert ev.verify_actions(scenario, [SPOT, SPOT, SPOT, OD, OD, SPOT, SPOT]).cost == (
        pytest.approx(3.5))
    assert ev.verify_actions(scenario, [SPOT, SPOT, SPOT, OD, OD, OD]).cost == pytest.approx(3.9)
    with pytest.raises(ev.ScheduleError, match="deadline missed"):
        ev.verify_actions(scenario, [SPOT, SPOT, SPOT, IDLE, IDLE, SPOT, SPOT])


# ------------------------------------------------------------------ simulator


def _scenario(available, job_length=3, overhead=1, deadline=None) -> ev.Scenario:
    available = np.array(available, dtype=bool)
    return ev.Scenario("tiny", job_length, deadline or len(available), overhead, available)


def test_verifier_accepts_valid_runs_and_prices_them():
    scenario = _scenario([1, 1, 1, 1, 1, 1])
    result = ev.verify_actions(scenario, [SPOT, SPOT, SPOT, SPOT])  # overhead, then 3 work
    assert result.cost == pytest.approx(4 * 0.3)
    assert (result.finish, result.spot_steps, result.starts) == (4, 4, 1)
    result = ev.verify_actions(scenario, [OD, OD, OD, OD])
    assert result.cost == pytest.approx(4.0) == scenario.on_demand_cost
    # switching type pays the overhead again; idle steps are free
    result = ev.verify_actions(scenario, [SPOT, SPOT, IDLE, OD, OD, OD])
    assert result.cost == pytest.approx(0.6 + 3.0)
    assert result.starts == 2


def test_preemption_and_refused_spot():
    scenario = _scenario([1, 1, 0, 1, 1, 1, 1, 1], job_length=3)
    # spot: overhead, work; preempted at step 2 (asked for spot: refused, idle);
    # relaunch at step 3: overhead again, then 2 more steps of work
    result = ev.verify_actions(scenario, [SPOT, SPOT, SPOT, SPOT, SPOT, SPOT])
    assert result.preemptions == 1 and result.spot_refused == 1
    assert result.cost == pytest.approx(5 * 0.3)
    assert result.finish == 6

    seen = []

    def spy(**obs):
        seen.append(obs)
        return SPOT

    ev.simulate(scenario, spy)
    assert [o["instance"] for o in seen] == [0, SPOT, 0, 0, SPOT, SPOT]
    assert [o["overhead_left"] for o in seen] == [0, 0, 0, 0, 0, 0]
    assert [o["progress"] for o in seen] == [0, 0, 1, 1, 1, 2]
    assert [o["spot_available"] for o in seen] == [True, True, False, True, True, True]
    assert set(seen[0]) == set(ev.OBSERVATION)


@pytest.mark.parametrize(
    ("actions", "message"),
    [
        ([SPOT, SPOT, IDLE, IDLE], r"deadline missed: 1/3 steps of work done after 4 of 4"),
        ([IDLE], r"deadline missed: 0/3 steps of work done after 1 of 4"),
        ([OD, OD, OD, OD, OD], r"1 action\(s\) after the job finished at step 4"),
        ([OD, 3, OD, OD], r"action 3 at step 1 of tiny; expected 0 \(IDLE\)"),
        ([OD, 1.0, OD, OD], r"action 1.0 \(float\) at step 1"),
        ([OD, True, OD, OD], r"action True \(bool\) at step 1"),
        ([OD, None, OD, OD], r"action None \(NoneType\) at step 1"),
    ],
)
def test_verifier_rejects_invalid_runs(actions, message):
    scenario = _scenario([1, 1, 1, 1], job_length=3)
    with pytest.raises(ev.ScheduleError, match=message):
        ev.verify_actions(scenario, actions)


def test_too_many_actions_rejected():
    scenario = _scenario([0, 0], job_length=1, overhead=1, deadline=2)
    with pytest.raises(ev.ScheduleError, match="3 actions for a deadline of 2 steps"):
        ev.verify_actions(scenario, [IDLE, IDLE, IDLE])


# ------------------------------------------------------------- bad programs


def _write(tmp_path: Path, body: str) -> str:
    program = tmp_path / "candidate.py"
    program.write_text(
        "def policy(t, progress, job_length, deadline, overhead, spot_available, instance,\n"
        "           overhead_left):\n"
        f"    {body}\n")
    return str(program)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("return 0", r"deadline missed"),  # idles forever
        ("return 1", r"deadline missed"),  # spot only, no safety net
        ("return 5", r"action 5 returned by policy at step 0"),
        ("return 2.0", r"action 2.0 \(float\) returned by policy"),
        ("return None", r"action None \(NoneType\) returned by policy"),
        ("return 2 if t != 3 else 1 // (t - 3)",
         r"policy raised ZeroDivisionError: .* \(at step 3 of trace_"),
    ],
)
def test_bad_policy_raises(tmp_path, body, message):
    with pytest.raises(ValueError, match=message):
        ev.evaluate(_write(tmp_path, body))


def test_bad_evolved_rule_raises(tmp_path):
    text = INITIAL.read_text().replace("return slack >= 1", "return 1 / (slack - slack)")
    program = tmp_path / "broken.py"
    program.write_text(text)
    with pytest.raises(ValueError, match="policy raised ZeroDivisionError"):
        ev.evaluate(str(program))


def test_program_without_policy_raises(tmp_path):
    program = tmp_path / "empty.py"
    program.write_text("x = 1\n")
    with pytest.raises(ValueError, match="defines no function policy"):
        ev.evaluate(str(program))
    program.write_text("def policy(t, progress):\n    return 2\n")
    with pytest.raises(ValueError, match="missing job_length"):
        ev.evaluate(str(program))


def test_safety_net_meets_every_deadline_whatever_the_rules(tmp_path):
    text = INITIAL.read_text()
    text = text.replace("return slack >= 1", "return True")
    text = text.replace("return slack < 1.0 * (deadline - t)", "return False")
    program = tmp_path / "gamble.py"
    program.write_text(text)
    assert ev.evaluate(str(program)) == ev.evaluate(str(PROBLEM / "baselines" / "greedy.py"))


# ------------------------------------------------------------------ traces


def test_scenarios_are_deterministic_and_splits_differ():
    for split in ("train", "test"):
        first, second = ev.make_scenarios(split), ev.make_scenarios(split)
        for a, b in zip(first, second, strict=True):
            assert a.name == b.name and np.array_equal(a.available, b.available)
            assert (a.job_length, a.deadline, a.overhead) == (b.job_length, b.deadline, b.overhead)
    train, test = ev.make_scenarios("train"), ev.make_scenarios("test")
    assert len(test) > len(train)
    def key(s):
        return (s.job_length, s.overhead, s.deadline, s.available.tobytes())

    train_keys = {key(s) for s in train}
    assert not any(key(s) in train_keys for s in test)
    assert len({s.name for s in train} | {s.name for s in test}) == len(train) + len(test)


def test_scenario_ranges():
    scenarios = ev.make_scenarios("test")
    for s in scenarios:
        assert 40 <= s.job_length <= 160 and 1 <= s.overhead <= 6
        slack = s.deadline - s.job_length - s.overhead
        assert round(0.1 * s.job_length) - 1 <= slack <= s.job_length
        assert s.available.shape == (s.deadline,) and s.available.dtype == bool
    availability = [s.available.mean() for s in scenarios]
    assert 0.0 <= min(availability) < 0.3 and max(availability) > 0.95  # varied traces
    changes = [int(np.sum(s.available[1:] != s.available[:-1])) for s in scenarios]
    assert min(changes) == 0 and max(changes) > 40


# --------------------------------------------------------------------- config


def test_primitives_are_valid_expressions():
    config = yaml.safe_load((PROBLEM / "config.yaml").read_text())
    primitives = config["mutation"]["primitives"]
    assert primitives
    namespace = {"t": 10, "progress": 4, "job_length": 50, "deadline": 80, "overhead": 3,
                 "spot_available": True, "instance": 2, "overhead_left": 1, "slack": 13,
                 "IDLE": 0, "SPOT": 1, "ON_DEMAND": 2}
    for template in primitives:
        arity = len(set(re.findall(r"\{(\d+)\}", template)))
        expr = template.format(*(["(slack - overhead)"] * arity))
        value = eval(expr, {}, namespace)  # the config is trusted text
        assert isinstance(value, (bool, int, float)), template


def test_problem_loads_as_builtin():
    from evoforge.problem.loader import load_problem

    problem = load_problem("spot_scheduling")
    assert problem.builtin and problem.has_test_split
    assert set(problem.baselines) == {"always_on_demand", "greedy", "uniform_progress"}
    assert not problem.config.maximize and problem.config.score_round == 4
    assert problem.warnings == []
