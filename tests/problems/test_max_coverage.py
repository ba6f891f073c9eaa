"""The built-in max_coverage problem (a speed problem): verifier, instances, timing, README."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.problems.readme_scores import load_evaluator, problem_dir, readme_table
from tests.problems.readme_scores import load_module as _load

PROBLEM = problem_dir("max_coverage")
INITIAL = PROBLEM / "initial_program.py"
BASELINES = PROBLEM / "baselines"

ev = load_evaluator("max_coverage")


@pytest.fixture(scope="module")
def train() -> list:
    return ev.make_instances("train")


@pytest.fixture(scope="module")
def train_scores() -> dict[str, dict[str, float]]:
    return {p.stem: ev.evaluate(str(p)) for p in sorted(BASELINES.glob("*.py"))}


# ------------------------------------------------------------------ verifier


def _tiny() -> object:
    sets = [np.array(s, dtype=np.int64) for s in ([0, 1, 2, 3], [3, 4], [4, 5, 6], [0, 1], [7])]
    return ev.Instance("tiny", sets, 8, 2)


def test_greedy_and_verifier_on_a_tiny_instance():
    inst = _tiny()
    assert ev.greedy_coverage(inst) == 7  # {0,1,2,3} then {4,5,6}
    assert ev.verify([0, 2], inst, 7) == 7
    assert ev.verify(np.array([2, 0]), inst, 7) == 7
    assert ev.verify((np.int32(0), np.int64(2)), inst, 7) == 7


@pytest.mark.parametrize(
    ("chosen", "message"),
    [
        ({0: 1, 2: 1}, r"answer is a dict, not a list of set ids"),
        (None, r"answer is a NoneType, not a list of set ids"),
        (3, r"answer is a int, not a list of set ids"),
        ("02", r"answer is a str, not a list of set ids"),
        (np.array([[0, 2]]), r"answer has shape \(1, 2\); return k set ids"),
        ([0], r"answer names 1 sets, expected exactly k = 2"),
        ([0, 2, 1], r"answer names 3 sets, expected exactly k = 2"),
        ([0, 2.0], r"set id 2.0 is not an integer"),
        ([True, 2], r"set id True is not an integer"),
        ([0, "2"], r"set id '2' is not an integer"),
        ([0, 5], r"set id 5 is out of range \[0, 5\)"),
        ([-1, 0], r"set id -1 is out of range"),
        ([2, 2], r"set id 2 is chosen twice"),
        ([3, 4], r"coverage 3 is below 99% of greedy's 7 on tiny"),
    ],
)
def test_verifier_rejects_invalid_answers(chosen, message):
    with pytest.raises(ev.SelectionError, match=message):
        ev.verify(chosen, _tiny(), 7)


def test_within_one_percent_passes_and_below_fails(train):
    inst = train[0]
    greedy = ev.greedy_coverage(inst)
    naive = _load(BASELINES / "naive_greedy.py", "_mc_naive")
    chosen = naive.max_coverage(inst.sets, inst.n_elements, inst.k)
    assert ev.verify(chosen, inst, greedy) == greedy
    # claiming a greedy value 1% above the truth still accepts the answer ...
    assert ev.verify(chosen, inst, int(greedy / 0.99))
    # ... but not 2% above
    with pytest.raises(ev.SelectionError, match="below 99% of greedy"):
        ev.verify(chosen, inst, int(greedy / 0.98) + 1)


def test_the_k_largest_sets_are_not_good_enough(train):
    """Instances are built so that taking the largest sets misses the 1% band."""
    for inst in ev.make_instances("train") + ev.make_instances("test"):
        sizes = np.array([len(s) for s in inst.sets])
        largest = np.argsort(-sizes, kind="stable")[: inst.k].tolist()
        greedy = ev.greedy_coverage(inst)
        assert ev.coverage(inst.sets, inst.n_elements, largest) < 0.97 * greedy, inst.name


# ------------------------------------------------------------------ baselines


@pytest.mark.parametrize("name", ["naive_greedy", "lazy_greedy", "vectorized_greedy"])
def test_baselines_are_exact_greedy(train, name):
    module = _load(BASELINES / f"{name}.py", f"_mc_{name}")
    naive = _load(BASELINES / "naive_greedy.py", "_mc_naive_ref")
    for inst in train:
        chosen = module.max_coverage(inst.sets, inst.n_elements, inst.k)
        assert chosen == naive.max_coverage(inst.sets, inst.n_elements, inst.k)
        assert ev.coverage(inst.sets, inst.n_elements, chosen) == ev.greedy_coverage(inst)


def test_baselines_report_a_speedup_per_instance_and_full_coverage(train_scores):
    # how fast each baseline is, is measured by bench/library.py and stated in meta.yaml:
    # a ratio of two timings moves with the machine's load, so none is asserted here
    for metrics in train_scores.values():
        assert metrics["combined_score"] > 0 and math.isfinite(metrics["combined_score"])
        assert metrics["min_coverage_vs_greedy"] >= 0.99
        assert metrics["num_instances"] == 3
        assert len([k for k in metrics if k.startswith("speedup_")]) == 3


def test_initial_program_is_the_naive_reference():
    assert INITIAL.read_text() == (BASELINES / "naive_greedy.py").read_text()
    assert ev.REFERENCE == BASELINES / "naive_greedy.py"


def test_readme_table_states_meta_scores():
    meta = yaml.safe_load((PROBLEM / "meta.yaml").read_text())
    rows = readme_table(PROBLEM)
    expected = {f"baselines/{b}.py": (s["train"], s["test"]) for b, s in meta["baselines"].items()}
    expected["initial_program.py"] = expected["baselines/naive_greedy.py"]
    assert rows == expected
    assert meta["relative"] and 0.2 <= meta["relative"] <= 0.5


# ------------------------------------------------------------- bad programs


def _write(tmp_path: Path, body: str, header: str = "") -> str:
    program = tmp_path / "candidate.py"
    program.write_text(
        f"import numpy as np\n{header}\n\ndef max_coverage(sets, n_elements, k):\n    {body}\n"
    )
    return str(program)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("raise RuntimeError('boom')", r"max_coverage raised RuntimeError: boom \(cover_500x4000"),
        ("return list(range(k - 1))", r"max_coverage: answer names 9 sets, expected exactly k"),
        ("return [0] * k", r"max_coverage: set id 0 is chosen twice"),
        ("return list(range(k))", r"max_coverage: coverage \d+ is below 99% of greedy's"),
        ("return None", r"max_coverage: answer is a NoneType"),
    ],
)
def test_bad_programs_raise(tmp_path, body, message):
    with pytest.raises(ValueError, match=message):
        ev.evaluate(_write(tmp_path, body))


def test_program_without_function_raises(tmp_path):
    program = tmp_path / "empty.py"
    program.write_text("x = 1\n")
    with pytest.raises(ValueError, match="defines no function max_coverage"):
        ev.evaluate(str(program))


def test_caching_answers_between_calls_fails(tmp_path):
    """Every timed call sees a freshly shuffled copy, so a replayed answer is wrong."""
    naive = (BASELINES / "naive_greedy.py").read_text()
    cached = naive.replace(
        "def max_coverage(sets, n_elements, k):",
        "CACHE = {}\n\n\ndef max_coverage(sets, n_elements, k):\n"
        "    if (len(sets), n_elements, k) in CACHE:\n"
        "        return CACHE[(len(sets), n_elements, k)]\n"
        "    CACHE[(len(sets), n_elements, k)] = _solve(sets, n_elements, k)\n"
        "    return CACHE[(len(sets), n_elements, k)]\n\n\ndef _solve(sets, n_elements, k):",
    )
    program = tmp_path / "cached.py"
    program.write_text(cached)
    with pytest.raises(ev.SelectionError, match="below 99% of greedy"):
        ev.evaluate(str(program))


# ------------------------------------------------------------------ instances


def test_instances_are_deterministic_and_splits_differ():
    for split in ("train", "test"):
        first, second = ev.make_instances(split), ev.make_instances(split)
        assert [i.name for i in first] == [i.name for i in second]
        for a, b in zip(first, second, strict=True):
            assert len(a.sets) == len(b.sets)
            assert all(np.array_equal(x, y) for x, y in zip(a.sets, b.sets, strict=True))
    train, test = ev.make_instances("train"), ev.make_instances("test")
    assert len(test) > len(train)
    # the first test instance has the shape of the first train one, but not its sets
    assert train[0].name == test[0].name
    assert not all(
        np.array_equal(x, y) for x, y in zip(train[0].sets, test[0].sets, strict=True)
    )


def test_instance_shapes(train):
    for inst, (n_sets, n_elements, k) in zip(train, ev.SPLITS["train"][1], strict=True):
        assert (inst.n_sets, inst.n_elements, inst.k) == (n_sets, n_elements, k)
        sizes = np.array([len(s) for s in inst.sets])
        assert sizes.min() >= 1 and sizes.max() > 8 * np.median(sizes)  # skewed
        for s in inst.sets:
            assert s.dtype == np.int64 and len(np.unique(s)) == len(s)
            assert s.min() >= 0 and s.max() < n_elements


def test_shuffled_copy_preserves_coverage(train):
    inst = train[1]
    copy = ev.shuffled_copy(inst, np.random.default_rng(0))
    assert sorted(len(s) for s in copy.sets) == sorted(len(s) for s in inst.sets)
    chosen = [3, 17, 250, 999]
    original = [int(copy.order[i]) for i in chosen]
    assert ev.coverage(copy.sets, inst.n_elements, chosen) == ev.coverage(
        inst.sets, inst.n_elements, original)
    other = ev.shuffled_copy(inst, np.random.default_rng(1))
    assert not np.array_equal(copy.order, other.order)


# --------------------------------------------------------------------- config


def test_primitives_are_valid_expressions():
    config = yaml.safe_load((PROBLEM / "config.yaml").read_text())
    primitives = config["mutation"]["primitives"]
    assert primitives
    namespace = {
        "np": np,
        "members": np.array([0, 2, 3]),
        "covered": np.array([True, False, False, True]),
        "best_gain": 1,
    }
    for template in primitives:
        arity = len(set(re.findall(r"\{(\d+)\}", template)))
        works = 0
        for arg in ("members", "best_gain"):  # an array argument, a number argument
            try:
                with np.errstate(all="ignore"):
                    eval(template.format(*([arg] * arity)), namespace)  # trusted config text
                works += 1
            except (TypeError, ValueError, IndexError):
                pass
        assert works, template


def test_problem_loads_as_builtin():
    from evoforge.problem.loader import load_problem

    problem = load_problem("max_coverage")
    assert problem.builtin and problem.has_test_split
    assert set(problem.baselines) == {"naive_greedy", "lazy_greedy", "vectorized_greedy"}
    assert problem.config.maximize
    assert problem.warnings == []
