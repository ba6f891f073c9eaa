"""The built-in tts_allocation problem: simulator, verifier, baselines and README."""

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
from tests.problems.readme_scores import load_module as _load

# Its tests share one session-scoped scoring of every program: grouped on one worker it
# is made once (a module-scoped one was made on each worker that got some of the tests,
# and again when other modules' tests ran in between).
pytestmark = pytest.mark.xdist_group("tts_allocation")

PROBLEM = problem_dir("tts_allocation")
INITIAL = PROBLEM / "initial_program.py"
TOLERANCE = 0.001

ev = load_evaluator("tts_allocation")


@pytest.fixture(scope="session")
def scores() -> Scores:
    return score_programs(PROBLEM, ev)


def test_readme_table_matches_computed_scores(scores):
    assert_readme_matches(PROBLEM, scores, TOLERANCE)


def test_baseline_ordering(scores):
    for split in ("train", "test"):
        uniform = scores["baselines/uniform_best_of_n.py"][split]["combined_score"]
        bins = scores["baselines/difficulty_bins.py"][split]["combined_score"]
        adaptive = scores["baselines/adaptive_decay.py"][split]["combined_score"]
        assert uniform < bins < adaptive < 1.0
        initial = scores["initial_program.py"][split]
        assert initial == scores["baselines/uniform_best_of_n.py"][split]
        for name, splits in scores.items():
            metrics = splits[split]
            assert metrics["budget_used"] == pytest.approx(1.0), name
            assert {"solved_b2_r2", "solved_b4_r4", "solved_b8_r6"} <= set(metrics)


def test_non_adaptive_policy_is_scored_exactly():
    """A policy that spends everything in round one is scored by its expectation."""
    instance = ev.make_instances("train")[0]
    n = instance.n
    counts = np.full(n, instance.budget // n, dtype=np.int64)
    for b in range(3):
        exact = float(np.sum(1.0 - (1.0 - instance.p[b]) ** counts))
        solved, spent = ev.run_policy(instance, lambda *args: counts, b)
        assert solved == pytest.approx(exact) and spent == instance.budget


def test_seeded_outcomes_follow_the_model():
    """The first sample solves a question with chance p; impossible ones never get solved."""
    instance = ev.make_instance(1, 1, 2000)
    first = instance.first_success
    assert (first == 1).mean() == pytest.approx(instance.p.mean(), abs=0.005)
    easy = instance.p > 0.5
    assert (first[easy] == 1).mean() == pytest.approx(instance.p[easy].mean(), abs=0.01)
    assert (first[instance.p == 0] == ev.NEVER).all()
    assert (first[instance.p > 0] >= 1).all()


def test_batches_are_fresh_questions():
    instance = ev.make_instances("train")[1]
    assert instance.p.shape == instance.estimate.shape == (instance.batches, ev.N_QUESTIONS)
    assert len({row.tobytes() for row in instance.estimate}) == instance.batches


def test_one_round_at_a_time_reveals_outcomes():
    """Spending one sample per question per round, solved flags follow the seeded draws."""
    instance = ev.make_instances("train")[1]  # 4 samples per question, 4 rounds
    assert instance.name == "b4_r4"
    seen: list[tuple[np.ndarray, np.ndarray, int, int]] = []

    def policy(estimate, spent, solved, budget_left, rounds_left):
        seen.append((spent.copy(), solved.copy(), budget_left, rounds_left))
        assert np.array_equal(estimate, instance.estimate[5])
        return np.ones(len(estimate), dtype=np.int64)

    value, spent_total = ev.run_policy(instance, policy, 5)
    g = instance.first_success[5]
    assert [s[3] for s in seen] == [4, 3, 2, 1]
    assert [s[2] for s in seen] == [800, 600, 400, 200]
    for t, (spent, solved, _, _) in enumerate(seen):
        assert (spent == t).all()
        assert np.array_equal(solved, g <= t)
    before_last = g <= 3
    expected = before_last.sum() + instance.p[5][~before_last].sum()
    assert value == pytest.approx(expected) and spent_total == 800


def test_samples_on_solved_questions_are_wasted():
    instance = ev.make_instances("train")[1]
    g = instance.first_success[0]
    p = instance.p[0]

    def policy(estimate, spent, solved, budget_left, rounds_left):
        counts = np.zeros(len(estimate), dtype=np.int64)
        counts[0] = budget_left // rounds_left
        return counts

    value, _ = ev.run_policy(instance, policy, 0)
    assert value == pytest.approx(1.0 if g[0] <= 600 else 1.0 - (1.0 - p[0]) ** 200)


# ------------------------------------------------------------------ verifier


def test_verifier_accepts_valid_allocations():
    assert ev.check_allocation([0, 2, 1], 3, 3).tolist() == [0, 2, 1]
    assert ev.check_allocation(np.array([0, 0, 0], dtype=np.int32), 3, 0).dtype == np.int64


@pytest.mark.parametrize(
    ("counts", "message"),
    [
        ([1.0, 2.0, 0.0], r"allocation must be integers, got dtype float64"),
        ([True, False, True], r"allocation must be integers, got dtype bool"),
        (["1", "2", "0"], r"allocation must be integers"),
        (None, r"allocation must be integers, got dtype object"),
        ([1, 2], r"allocation has shape \(2,\), expected \(3,\): one count per question id 0..2"),
        ([[1, 1, 1]], r"allocation has shape \(1, 3\)"),
        (3, r"allocation has shape \(\), expected \(3,\)"),
        ([1, -1, 2], r"allocation gives question 1 a negative count -1"),
        ([2, 2, 1], r"allocation spends 5 samples but only 4 are left"),
        ([[1, 2], [3]], r"allocation is not an array"),
    ],
)
def test_verifier_rejects_invalid_allocations(counts, message):
    with pytest.raises(ev.AllocationError, match=message):
        ev.check_allocation(counts, 3, 4)


def _write(tmp_path: Path, body: str) -> str:
    program = tmp_path / "candidate.py"
    program.write_text(
        "import numpy as np\n\n\n"
        "def allocate(estimate, spent, solved, budget_left, rounds_left):\n"
        f"    {body}\n"
    )
    return str(program)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("return np.full(len(estimate), 100)", r"allocation spends 20000 samples but only 400"),
        ("return np.ones(len(estimate) + 1, dtype=int)", r"allocation has shape \(201,\)"),
        ("return np.full(len(estimate), np.nan)", r"must be integers, got dtype float64"),
        ("return -np.ones(len(estimate), dtype=int)", r"negative count -1"),
        ("raise RuntimeError('boom')", r"raised RuntimeError: boom \(b2_r2, batch 0, round 1"),
    ],
)
def test_bad_policies_raise(tmp_path, body, message):
    with pytest.raises(ValueError, match=message):
        ev.evaluate(_write(tmp_path, body))


def test_overspending_in_a_later_round_is_caught(tmp_path):
    body = "return np.full(len(estimate), 2 if rounds_left == 1 else 1)"
    with pytest.raises(ev.AllocationError, match=r"spends 400 samples but only 200 .*, round 2"):
        ev.evaluate(_write(tmp_path, body))


def test_program_without_allocate_raises(tmp_path):
    program = tmp_path / "empty.py"
    program.write_text("x = 1\n")
    with pytest.raises(ValueError, match="defines no function allocate"):
        ev.evaluate(str(program))


def test_share_helper(tmp_path):
    module = _load(INITIAL, "_tts_initial")
    assert module.share(np.array([1.0, 1.0, 2.0]), 5).tolist() == [1, 1, 3]
    assert module.share(np.array([1.0, 1.0, 1.0]), 2).tolist() == [1, 1, 0]
    assert module.share(np.array([-1.0, 0.0, 3.0]), 4.9).tolist() == [0, 0, 4]
    assert module.share(np.zeros(3), 10).tolist() == [0, 0, 0]
    with pytest.raises(ValueError, match="finite"):
        module.share(np.array([np.nan, 1.0]), 3)
    with pytest.raises(ValueError, match="one number per question"):
        module.share(1.0, 3)


# ------------------------------------------------------------------ instances


def test_instances_are_deterministic_and_splits_differ():
    for split in ("train", "test"):
        first, second = ev.make_instances(split), ev.make_instances(split)
        assert [i.name for i in first] == ["b2_r2", "b4_r4", "b8_r6"]
        for a, b in zip(first, second, strict=True):
            assert np.array_equal(a.p, b.p) and np.array_equal(a.estimate, b.estimate)
            assert np.array_equal(a.first_success, b.first_success)
    train, test = ev.make_instances("train"), ev.make_instances("test")
    assert test[0].batches > train[0].batches
    train_p = {row.tobytes() for i in train for row in i.p}
    assert not any(row.tobytes() in train_p for i in test for row in i.p)


def test_instance_mixture():
    instances = ev.make_instances("test")
    p = np.concatenate([i.p.ravel() for i in instances])
    est = np.concatenate([i.estimate.ravel() for i in instances])
    assert 0.14 < (p == 0).mean() < 0.16  # impossible questions
    assert 0.26 < (p > 0.5).mean() < 0.30  # mostly easy ones
    assert ((est > 0) & (est < 1)).all()
    assert 0.85 < np.corrcoef(p, est)[0, 1] < 0.95  # informative, but noisy


# --------------------------------------------------------------------- config


def test_primitives_are_valid_expressions():
    config = yaml.safe_load((PROBLEM / "config.yaml").read_text())
    primitives = config["mutation"]["primitives"]
    assert primitives
    n = 6
    namespace = {
        "np": np,
        "estimate": np.linspace(0.05, 0.95, n),
        "spent": np.arange(n),
        "solved": np.arange(n) % 2 == 0,
        "budget_left": 12,
        "rounds_left": 3,
    }
    for template in primitives:
        arity = len(set(re.findall(r"\{(\d+)\}", template)))
        expr = template.format(*(["estimate"] * arity))
        value = eval(expr, namespace)  # the config is trusted text
        assert np.broadcast(np.asarray(value), namespace["estimate"]).shape == (n,), template


def test_spread_knob_turns_best_of_n_adaptive(tmp_path, scores):
    """SPREAD = 1 spends an equal part per round: adaptive, better than best-of-N."""
    text = INITIAL.read_text()
    assert text.count("SPREAD = 0.0") == 1
    program = tmp_path / "spread.py"
    program.write_text(text.replace("SPREAD = 0.0", "SPREAD = 1.0"))
    spread = ev.evaluate(str(program))["combined_score"]
    assert spread > scores["baselines/uniform_best_of_n.py"]["train"]["combined_score"] + 0.02


def test_problem_loads_as_builtin():
    from evoforge.problem.loader import load_problem

    problem = load_problem("tts_allocation")
    assert problem.builtin and problem.has_test_split
    assert set(problem.baselines) == {"uniform_best_of_n", "difficulty_bins", "adaptive_decay"}
    assert problem.config.maximize and problem.config.score_round == 4
    assert problem.warnings == []


def test_the_probe_follows_the_programs_own_rounds(tmp_path):
    """A functional duplicate of a real run and the program it was taken for (constants
    moved by a tune step) score the train split differently; one fixed round per
    setting, the probe before this one, hashed them alike. The closed-loop probe runs
    whole batches, every round seeing what the program's earlier rounds spent and
    solved, and tells them apart."""
    from evoforge.evaluation.child import import_evaluator, probe

    module, error = import_evaluator(str(PROBLEM / "evaluator.py"))
    assert error is None
    base = INITIAL.read_text().replace(
        "np.where(solved, 0.0, estimate ** EASE / (1.0 + spent) ** DECAY)",
        "np.where(solved, -0.0437362, estimate ** EASE / (3.29546 + spent) ** DECAY)").replace(
        "    amount = round_budget(estimate, spent, solved, budget_left, rounds_left)",
        "    amount = rounds_left")
    paths, train = {}, {}
    for name, (spread, ease, decay) in (("ref", ("1.2327", "0.633434", "0.169573")),
                                        ("dup", ("1.23544", "0.64764", "0.165735"))):
        code = base
        for constant, value in (("SPREAD", spread), ("EASE", ease), ("DECAY", decay)):
            code = code.replace(f"{constant} = 0.0", f"{constant} = {value}")
        path = tmp_path / f"{name}.py"
        path.write_text(code)
        paths[name] = str(path)
        train[name] = module.evaluate(str(path))["combined_score"]
    assert train["ref"] != train["dup"]
    assert (probe(module, paths["ref"])["artifacts"]["probe_hash"]
            != probe(module, paths["dup"])["artifacts"]["probe_hash"])
