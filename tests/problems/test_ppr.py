"""The built-in ppr problem: instances, the checker, the baselines and the timing rules."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.problems.readme_scores import load_evaluator, problem_dir

PROBLEM = problem_dir("ppr")
BASELINES = ("python_power", "numpy_power", "numpy_bound_stop")


ev = load_evaluator("ppr")


def _tiny() -> ev.Instance:
    """4 nodes: 0 -> 1, 0 -> 2, 1 -> 2, 2 -> 0; node 3 dangling, reached from 2."""
    src = np.array([0, 0, 1, 2, 2])
    dst = np.array([1, 2, 2, 0, 3])
    s = np.array([0.5, 0.0, 0.0, 0.5])
    return ev.Instance("tiny", 4, src, dst, s)


def _dense_solution(instance: ev.Instance) -> np.ndarray:
    """Solve x = alpha * M x + (1 - alpha) * s directly, M column-stochastic."""
    n, alpha, s = instance.n, instance.alpha, instance.personalization
    out_degree = np.bincount(instance.src, minlength=n)
    m = np.zeros((n, n))
    np.add.at(m, (instance.dst, instance.src), 1.0 / out_degree[instance.src])
    m[:, out_degree == 0] = s[:, None]  # a dangling node's mass restarts at s
    return np.linalg.solve(np.eye(n) - alpha * m, (1 - alpha) * s)


# ------------------------------------------------------------------ instances


def test_true_ppr_solves_the_stated_equation_with_dangling_restart():
    instance = _tiny()
    x = ev.true_ppr(instance)
    assert x.sum() == pytest.approx(1.0, abs=1e-12)
    assert np.abs(x - _dense_solution(instance)).sum() < 1e-12


def test_true_ppr_matches_a_dense_solve_on_a_generated_graph():
    rng = np.random.default_rng(5)
    src, dst = ev.power_law_graph(rng, 300, 5.0)
    s = rng.dirichlet(np.ones(300))
    instance = ev.Instance("small", 300, src, dst, s)
    x = ev.true_ppr(instance)
    assert np.abs(x - _dense_solution(instance)).sum() < 1e-11


def test_generated_graphs_are_clean_power_law_graphs():
    spec = ev.SPLITS["train"]
    for c, cls in enumerate(spec.classes):
        instance = ev.base_instance("train", c, 0)
        n, src, dst, s = instance.n, instance.src, instance.dst, instance.personalization
        assert n == cls.n and src.dtype == dst.dtype == np.int64
        assert src.min() >= 0 and max(src.max(), dst.max()) < n
        assert not (src == dst).any(), "no self-loops"
        assert len(np.unique(src * n + dst)) == len(src), "no parallel edges"
        out_degree = np.bincount(src, minlength=n)
        assert 0.05 < (out_degree == 0).mean() < 0.2, "some dangling nodes"
        in_degree = np.bincount(dst, minlength=n)
        assert in_degree.max() > 20 * in_degree.mean(), "heavy-tailed in-degrees"
        assert s.min() >= 0 and s.sum() == pytest.approx(1.0)
        seeds = np.flatnonzero(s)
        assert len(seeds) == (1 if cls.kind == "single" else ev.TOPIC_SIZE)
        assert (out_degree[seeds] > 0).all(), "personalization sits on nodes with out-edges"


def test_queries_are_deterministic_relabelled_and_splits_differ():
    first, truths = ev.make_queries("train", 0)
    second, _ = ev.make_queries("train", 0)
    assert len(first) == 1 + ev.SPLITS["train"].max_repeats
    for a, b in zip(first, second, strict=True):
        assert np.array_equal(a.src, b.src) and np.array_equal(a.personalization,
                                                               b.personalization)
    # queries on the same base graph are relabelled: no two calls get the same arrays
    assert not np.array_equal(first[0].src, first[ev.BASE_GRAPHS].src)
    # the relabelled truth is the truth of the relabelled query
    for query, truth in zip(first[:4], truths[:4], strict=True):
        assert np.abs(ev.true_ppr(query) - truth).sum() < 1e-10
    test_graph = ev.base_instance("test", 0, 0)
    assert test_graph.n != first[0].n or not np.array_equal(test_graph.src, first[0].src)


# ------------------------------------------------------------------- checker


def test_checker_accepts_answers_within_the_tolerance():
    truth = ev.true_ppr(_tiny())
    assert ev.verify_ppr(truth, truth) == 0.0
    assert ev.verify_ppr(list(truth), truth) == 0.0
    nudged = truth + np.array([0.4e-4, -0.4e-4, 0.0, 0.0])
    assert ev.verify_ppr(nudged, truth) == pytest.approx(0.8e-4)


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (np.full(3, 0.25), r"shape \(3,\); expected \(4,\)"),
        (np.full((4, 1), 0.25), r"shape \(4, 1\); expected \(4,\)"),
        (0.25, r"shape \(\); expected \(4,\)"),
        (["a", "b", "c", "d"], r"not a sequence of numbers"),
        (np.array([0.25, np.nan, 0.25, 0.25]), r"1 non-finite value\(s\), first at node 1"),
        (np.array([0.25, 0.25, np.inf, 0.25]), r"non-finite value\(s\), first at node 2"),
        (np.full(4, 0.25), r"off by L1 distance .* > tolerance 0.0001"),
    ],
)
def test_checker_rejects_invalid_answers(answer, message):
    truth = ev.true_ppr(_tiny())
    with pytest.raises(ev.PPRError, match=message):
        ev.verify_ppr(answer, truth)


def test_checker_rejects_an_answer_just_outside_the_tolerance():
    truth = ev.true_ppr(_tiny())
    with pytest.raises(ev.PPRError, match="off by L1 distance"):
        ev.verify_ppr(truth + np.array([1.1e-4, 0.0, 0.0, 0.0]), truth)


# ----------------------------------------------------------------- baselines


@pytest.mark.parametrize("name", BASELINES)
def test_baselines_are_correct_on_train_and_test_queries(name):
    ppr = ev.load_ppr(PROBLEM / "baselines" / f"{name}.py")
    for split in ("train", "test"):
        for c in range(len(ev.SPLITS[split].classes)):
            if name == "python_power" and ev.SPLITS[split].classes[c].n > 3000:
                continue  # slow; the library test runs it on every class
            instance = ev.base_instance(split, c, 1)
            assert ev.verify_ppr(ppr(*instance.args()), ev.true_ppr(instance)) < 5e-5
    assert ev.verify_ppr(ppr(*_tiny().args()), ev.true_ppr(_tiny())) < 5e-5


def test_initial_program_is_the_python_baseline_and_the_reference_is_numpy_power():
    assert (PROBLEM / "initial_program.py").read_text() == \
        (PROBLEM / "baselines" / "python_power.py").read_text()
    assert ev.REFERENCE_PROGRAM == PROBLEM / "baselines" / "numpy_power.py"


@pytest.fixture(scope="module")
def train_scores() -> dict[str, dict[str, float]]:
    """Train metrics of the baselines."""
    programs = {name: PROBLEM / "baselines" / f"{name}.py" for name in BASELINES}
    return {name: ev.evaluate(str(path)) for name, path in programs.items()}


def test_every_program_is_accurate_and_timed_enough_times(train_scores):
    # how fast each is (the baselines' order, the looser tolerance's gain) is a timing:
    # bench/speed_claims.py measures it
    for metrics in train_scores.values():
        assert metrics["max_l1_error"] < ev.L1_TOLERANCE
        assert all(metrics[f"timed_calls_{c.name}"] >= ev.MIN_REPEATS
                   for c in ev.SPLITS["train"].classes)


# -------------------------------------------------------------- bad programs


@pytest.fixture(scope="module")
def queries() -> tuple[list, list]:
    return ev.make_queries("train", 0)


@pytest.fixture(scope="module")
def reference():
    return ev.load_ppr(ev.REFERENCE_PROGRAM)


def _write(tmp_path: Path, body: str, prelude: str = "") -> Path:
    program = tmp_path / "candidate.py"
    program.write_text(f"import numpy as np\n{prelude}\n\n"
                       f"def ppr(n, src, dst, personalization, alpha):\n    {body}\n")
    return program


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("return personalization", r"train/single_1k/graph0/call0: answer is off by L1"),
        ("return np.zeros(n + 1)", r"answer has shape \(1001,\); expected \(1000,\)"),
        ("return np.full(n, np.nan)", r"non-finite value"),
        ("raise RuntimeError('boom')", r"ppr raised RuntimeError: boom \(on train/single_1k"),
    ],
)
def test_bad_programs_raise_with_a_reason(tmp_path, queries, reference, body, message):
    ppr = ev.load_ppr(_write(tmp_path, body))
    with pytest.raises(ValueError, match=message):
        ev.time_against_reference(ppr, reference, *queries, budget=0.01)


def test_evaluate_raises_on_a_wrong_answer(tmp_path):
    with pytest.raises(ev.PPRError, match="answer is off by L1"):
        ev.evaluate(str(_write(tmp_path, "return personalization")))


def test_program_without_ppr_raises(tmp_path):
    program = tmp_path / "empty.py"
    program.write_text("x = 1\n")
    with pytest.raises(ValueError, match="defines no function ppr"):
        ev.load_ppr(program)


def test_work_on_other_threads_is_refused(tmp_path, queries, reference):
    python_power = PROBLEM / "baselines" / "python_power.py"
    # the problem folder is hidden from the program's process: it gets the source
    prelude = (f"import threading\nimport types\n_ref = types.SimpleNamespace()\n"
               f"exec({python_power.read_text()!r}, _ref.__dict__)\n")
    body = ("box = []\n"
            "    worker = threading.Thread(target=lambda: box.append(_ref.ppr(\n"
            "        n, src, dst, personalization, alpha)))\n"
            "    worker.start()\n    worker.join()\n    return box[0]")
    ppr = ev.load_ppr(_write(tmp_path, body, prelude))
    with pytest.raises(ValueError, match="work on other threads is not allowed"):
        ev.time_against_reference(ppr, reference, *queries, budget=0.03)


def test_threads_left_running_are_refused(tmp_path, queries, reference):
    prelude = "import threading\nimport time\n"
    body = ("threading.Thread(target=time.sleep, args=(2,), daemon=True).start()\n"
            "    return _exact(n, src, dst, personalization, alpha)")
    numpy_power = PROBLEM / "baselines" / "numpy_power.py"
    prelude += (f"import types\n_ref = types.SimpleNamespace()\n"
                f"exec({numpy_power.read_text()!r}, _ref.__dict__)\n_exact = _ref.ppr\n")
    ppr = ev.load_ppr(_write(tmp_path, body, prelude))
    with pytest.raises(ValueError, match="started threads that are still running"):
        ev.time_against_reference(ppr, reference, *queries, budget=0.01)


def test_replacing_numpy_functions_stays_in_the_programs_process(tmp_path):
    # the program runs in its own process: its numpy is not the evaluator's
    original = np.bincount
    prelude = "np.bincount = lambda *args, **kwargs: None\n"
    program = _write(tmp_path, "return personalization", prelude)
    with pytest.raises(ValueError) as caught:
        ev.evaluate(str(program))
    assert "replaced" not in str(caught.value)
    assert np.bincount is original


def test_every_class_has_a_positive_finite_speedup(train_scores):
    # the ratio itself is a timing: bench/library.py measures it, no test asserts it
    for c in ev.SPLITS["train"].classes:
        speedup = train_scores["numpy_power"][f"speedup_{c.name}"]
        assert speedup > 0 and math.isfinite(speedup)


# --------------------------------------------------------------------- config


def test_primitives_are_valid_expressions():
    config = yaml.safe_load((PROBLEM / "config.yaml").read_text())
    namespace = {"alpha": 0.85}
    for template in config["mutation"]["primitives"]:
        arity = len(set(re.findall(r"\{(\d+)\}", template)))
        value = eval(template.format(*(["0.5"] * arity)), namespace)  # trusted text
        assert isinstance(value, float), template


def test_problem_loads_as_builtin():
    from evoforge.problem.loader import load_problem

    problem = load_problem("ppr")
    assert problem.builtin and problem.has_test_split
    assert set(problem.baselines) == set(BASELINES)
    assert problem.config.maximize
    assert problem.warnings == []
