"""The built-in job_shop problem: Taillard's generator, the verifier, the builder, baselines."""

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
    score_programs,
)

PROBLEM = problem_dir("job_shop")
INITIAL = PROBLEM / "initial_program.py"
TOLERANCE = 0.001

ev = load_evaluator("job_shop")


@pytest.fixture(scope="module")
def scores() -> Scores:
    return score_programs(PROBLEM, ev)


def test_readme_table_matches_computed_scores(scores):
    assert_readme_matches(PROBLEM, scores, TOLERANCE)


def test_baseline_ordering(scores):
    for split in ("train", "test"):
        spt = scores["baselines/spt.py"][split]
        mwkr = scores["baselines/mwkr.py"][split]
        est_mwkr = scores["baselines/est_mwkr.py"][split]
        assert est_mwkr["combined_score"] < mwkr["combined_score"] < spt["combined_score"]
        assert scores["initial_program.py"][split] == spt
        for metrics in (spt, mwkr, est_mwkr):
            assert metrics["combined_score"] > 0
            assert metrics["taillard_gap_to_optimum_pct"] > 0


# ------------------------------------------------------------------ generator


def test_taillard_random_matches_park_miller():
    rng = ev.TaillardRandom(840612802)
    seed = 840612802
    for _ in range(1000):
        value = rng.unif(1, 99)
        seed = 16807 * seed % (2**31 - 1)  # the same generator, in plain form
        assert rng.seed == seed
        assert value == 1 + int(seed / (2**31 - 1) * 99)
    with pytest.raises(ValueError):
        ev.TaillardRandom(0)


def test_ta01_and_ta02_match_published_data():
    ta01 = ev.taillard_instance("ta01", *ev.TAILLARD_15x15["ta01"])
    assert ta01.times[0].tolist() == [94, 66, 10, 53, 26, 15, 65, 82, 10, 27, 93, 92, 96, 70, 83]
    assert ta01.times[1].tolist() == [74, 31, 88, 51, 57, 78, 8, 7, 91, 79, 18, 51, 18, 99, 33]
    assert ta01.times[14].tolist() == [57, 16, 42, 34, 37, 26, 68, 73, 5, 8, 12, 87, 83, 20, 97]
    # machines are 0-based here; the published files number them from 1
    assert (ta01.machines[0] + 1).tolist() == [7, 13, 5, 8, 4, 3, 11, 12, 9, 15, 10, 14, 6, 1, 2]
    assert (ta01.machines[1] + 1).tolist() == [5, 6, 8, 15, 14, 9, 12, 10, 7, 11, 1, 4, 13, 2, 3]
    assert (ta01.machines[14] + 1).tolist() == [11, 9, 13, 7, 5, 2, 14, 15, 12, 1, 8, 4, 3, 10, 6]
    ta02 = ev.taillard_instance("ta02", *ev.TAILLARD_15x15["ta02"])
    assert ta02.times[0].tolist() == [86, 60, 10, 59, 65, 94, 71, 25, 98, 49, 43, 8, 90, 21, 73]
    assert ta02.machines[0].tolist() == [9, 14, 4, 13, 10, 3, 7, 8, 0, 5, 1, 2, 12, 6, 11]
    assert ta01.best_known == 1231 and ta02.best_known == 1244


def test_instances_are_permutations_and_deterministic():
    for split in ("train", "test"):
        first, second = ev.make_instances(split), ev.make_instances(split)
        assert [i.name for i in first] == [i.name for i in second]
        for a, b in zip(first, second, strict=True):
            assert np.array_equal(a.times, b.times) and np.array_equal(a.machines, b.machines)
            assert a.times.shape == (15, 15)
            assert a.times.min() >= 1 and a.times.max() <= 99
            for row in a.machines:
                assert sorted(row.tolist()) == list(range(15))
    train, test = ev.make_instances("train"), ev.make_instances("test")
    assert len(test) > len(train)
    train_data = {i.times.tobytes() for i in train}
    assert not any(i.times.tobytes() in train_data for i in test)
    assert [i.name for i in train[:5]] == ["ta01", "ta02", "ta03", "ta04", "ta05"]
    assert [i.name for i in test[:5]] == ["ta06", "ta07", "ta08", "ta09", "ta10"]


def test_lower_bound():
    times = np.array([[3, 2], [2, 4]])
    machines = np.array([[0, 1], [1, 0]])
    # job bound 6; machine 0: load 7 + min head 0 + min tail 0; machine 1: 4 + 0 + 0
    assert ev.lower_bound(times, machines) == 7
    for instance in ev.make_instances("train") + ev.make_instances("test"):
        bound = instance.lower_bound
        assert bound >= int(instance.times.sum(axis=1).max())
        if instance.best_known is not None:
            assert bound <= instance.best_known


# ------------------------------------------------------------------ verifier

TIMES = [[3, 2], [2, 4]]
MACHINES = [[0, 1], [1, 0]]
VALID = [(0, 0, 0, 0, 3), (1, 0, 1, 0, 2), (0, 1, 1, 3, 5), (1, 1, 0, 3, 7)]


def test_verifier_accepts_valid_schedule():
    assert ev.verify_schedule(TIMES, MACHINES, VALID) == 7
    assert ev.verify_schedule(TIMES, MACHINES, list(reversed(VALID))) == 7


def _with(index: int, entry: tuple) -> list:
    schedule = list(VALID)
    schedule[index] = entry
    return schedule


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        (VALID[:3], r"1 operation\(s\) never scheduled: \(1, 1\)"),
        (VALID + [VALID[0]], r"operation \(0, 0\) is scheduled twice"),
        (_with(0, (0, 0, 1, 0, 3)), r"operation \(0, 0\) is on machine 1, needs machine 0"),
        (_with(0, (0, 0, 0, 0, 2)), r"operation \(0, 0\) lasts 2, its processing time is 3"),
        (_with(0, (0, 0, 0, -1, 2)), r"operation \(0, 0\) starts at -1 < 0"),
        (_with(0, (2, 0, 0, 0, 3)), r"entry 0: operation \(2, 0\) does not exist"),
        (_with(0, (0, 0, 0, 0.0, 3)), r"entry 0 is .* not five integers"),
        (_with(0, (0, 0, 0, 0)), r"entry 0 is .* not five integers"),
        (_with(0, None), r"entry 0 is None"),
        (_with(2, (0, 1, 1, 2, 4)), r"job 0: operation 1 starts at 2 before operation 0 ends at 3"),
        (_with(3, (1, 1, 0, 2, 6)), r"machine 0: operations \(0, 0\) \[0, 3\) and \(1, 1\)"),
    ],
)
def test_verifier_rejects_invalid_schedule(schedule, message):
    with pytest.raises(ev.ScheduleError, match=message):
        ev.verify_schedule(TIMES, MACHINES, schedule)


def test_builder_output_passes_verifier_and_is_active():
    instance = ev.make_instances("train")[0]
    rng = np.random.default_rng(0)
    schedule = ev.build_schedule(instance, lambda p, **_: rng.random(len(p)))
    makespan = ev.verify_schedule(instance.times, instance.machines, schedule)
    assert makespan >= instance.best_known
    # active: no operation could start earlier in a gap of its machine
    by_machine: dict[int, list[tuple[int, int]]] = {}
    ends = {(j, k): e for j, k, _m, _s, e in schedule}
    for _j, _k, m, s, e in schedule:
        by_machine.setdefault(m, []).append((s, e))
    for j, k, m, s, e in schedule:
        ready = ends[(j, k - 1)] if k else 0
        busy = sorted(by_machine[m])
        free_from = 0
        for bs, be in busy:
            if bs >= s:
                break
            gap = (max(free_from, ready), bs)
            assert gap[1] - gap[0] < e - s, f"({j}, {k}) fits into an earlier gap {gap}"
            free_from = be


def test_features_and_ties():
    seen: list[dict[str, np.ndarray]] = []

    def spy(**features):
        seen.append({k: v.copy() for k, v in features.items()})
        return np.zeros(len(features["p"]))  # all tie: lowest job index wins

    times = np.array([[3, 2], [2, 4]])
    machines = np.array([[0, 1], [0, 1]])
    instance = ev.Instance("tiny", times, machines)
    schedule = ev.build_schedule(instance, spy)
    assert set(seen[0]) == set(ev.FEATURES)
    first = seen[0]
    assert first["p"].tolist() == [3.0, 2.0]
    assert first["work_left"].tolist() == [5.0, 6.0]
    assert first["ops_left"].tolist() == [2.0, 2.0]
    assert first["est"].tolist() == [0.0, 0.0]
    assert first["next_p"].tolist() == [2.0, 4.0]
    assert first["next_load"].tolist() == [6.0, 6.0]
    assert schedule[0] == (0, 0, 0, 0, 3)
    assert ev.verify_schedule(times, machines, schedule) == 9


# ------------------------------------------------------------- bad priorities


def _write(tmp_path: Path, body: str) -> str:
    program = tmp_path / "candidate.py"
    program.write_text(
        "import numpy as np\n\n\n"
        "def priority(p, work_left, ops_left, est, next_p, next_load):\n"
        f"    {body}\n")
    return str(program)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("return 0.0", r"priority returned shape \(\) for 2 operations"),
        ("return np.zeros(len(p) + 1)", r"priority returned shape \(3,\) for 2 operations"),
        ("return p * np.nan", r"priority returned NaN"),
        ("raise RuntimeError('boom')", r"priority raised RuntimeError: boom"),
        ("return ['a'] * len(p)", r"priority raised ValueError"),
    ],
)
def test_bad_priority_raises(tmp_path, body, message):
    with pytest.raises(ValueError, match=message):
        ev.evaluate(_write(tmp_path, body))


def test_program_without_priority_raises(tmp_path):
    program = tmp_path / "empty.py"
    program.write_text("x = 1\n")
    with pytest.raises(ValueError, match="defines no function priority"):
        ev.evaluate(str(program))
    program.write_text("def priority(p):\n    return -p\n")
    with pytest.raises(ValueError, match="missing work_left"):
        ev.evaluate(str(program))


# --------------------------------------------------------------------- config


def test_primitives_are_valid_expressions():
    config = yaml.safe_load((PROBLEM / "config.yaml").read_text())
    primitives = config["mutation"]["primitives"]
    assert primitives
    arrays = {name: np.array([3.0, 5.0, 8.0]) for name in ev.FEATURES}
    namespace = {"np": np, **arrays}
    for template in primitives:
        arity = len(set(re.findall(r"\{(\d+)\}", template)))
        expr = template.format(*(["(work_left - p)"] * arity))
        value = eval(expr, namespace)  # the config is trusted text
        assert np.broadcast(np.asarray(value), arrays["p"]).shape == (3,), template


def test_problem_loads_as_builtin():
    from evoforge.problem.loader import load_problem

    problem = load_problem("job_shop")
    assert problem.builtin and problem.has_test_split
    assert set(problem.baselines) == {"spt", "mwkr", "est_mwkr"}
    assert not problem.config.maximize and problem.config.score_round == 4
    assert problem.warnings == []
