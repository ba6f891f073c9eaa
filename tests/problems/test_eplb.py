"""The built-in eplb problem: verifier, load generator, scoring, baselines and config."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.problems.readme_scores import load_evaluator, problem_dir
from tests.problems.readme_scores import load_module as _load

PROBLEM = problem_dir("eplb")
INITIAL = PROBLEM / "initial_program.py"
BASELINES = PROBLEM / "baselines"


ev = load_evaluator("eplb")
deepseek = _load(BASELINES / "deepseek_hierarchical.py", "_eplb_deepseek")


def _valid_plan(layers: int = 2) -> np.ndarray:
    """Round-robin: node n holds groups 2n and 2n+1, its 16 experts fill 24 slots cyclically."""
    node = np.repeat(np.arange(ev.NUM_NODES), ev.SLOTS_PER_NODE)
    local = np.tile(np.arange(ev.SLOTS_PER_NODE) % 16, ev.NUM_NODES)
    return np.tile(node * 16 + local, (layers, 1)).astype(np.int64)


# ------------------------------------------------------------------ verifier


def test_verifier_accepts_valid_plan():
    plan = _valid_plan()
    counts = ev.verify_plan(plan, 2)
    assert counts.shape == (2, ev.NUM_EXPERTS)
    assert counts.sum(axis=1).tolist() == [ev.NUM_SLOTS] * 2
    assert counts.min() >= 1


def _broken(kind: str) -> object:
    plan = _valid_plan()
    if kind == "list":
        return plan.tolist()
    if kind == "shape":
        return plan[:, :-3]
    if kind == "layers":
        return plan[:1]
    if kind == "float":
        return plan.astype(float)
    if kind == "range":
        plan[1, 5] = 64
        return plan
    if kind == "negative":
        plan[0, 0] = -1
        return plan
    if kind == "missing":  # expert 3 (slot 3 and 19 of node 0) replaced by expert 4
        plan[1, plan[1] == 3] = 4
        return plan
    if kind == "group":  # expert 16 (group 2, node 1) also placed on node 0
        plan[0, 20] = 16
        return plan
    raise AssertionError(kind)


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("list", r"plan is a list, not a numpy array"),
        ("shape", r"plan has shape \(2, 93\), expected \(layers, slots\) = \(2, 96\)"),
        ("layers", r"plan has shape \(1, 96\)"),
        ("float", r"plan has dtype float64, expected an integer dtype"),
        ("range", r"layer 1 slot 5 holds expert 64, not an expert in \[0, 64\)"),
        ("negative", r"layer 0 slot 0 holds expert -1"),
        ("missing", r"layer 1: expert 3 has no replica"),
        ("group", r"layer 0: group 2 has replicas on nodes \[0, 1\]; all replicas of a group"),
    ],
)
def test_verifier_rejects_invalid_plan(kind, message):
    with pytest.raises(ev.PlanError, match=message):
        ev.verify_plan(_broken(kind), 2)


def test_group_may_move_to_any_single_node():
    # swap the experts of nodes 0 and 3 wholesale: still one node per group
    plan = _valid_plan(1)
    spn = ev.SLOTS_PER_NODE
    swapped = plan.copy()
    swapped[0, :spn], swapped[0, -spn:] = plan[0, -spn:], plan[0, :spn]
    ev.verify_plan(swapped, 1)


def test_balancedness_of_uniform_load_and_hot_expert():
    plan = _valid_plan(1)
    counts = ev.verify_plan(plan, 1)
    # a load proportional to the replica counts spreads perfectly
    assert ev.balancedness(plan, counts, counts.astype(float))[0] == pytest.approx(1.0)
    hot = np.ones((1, ev.NUM_EXPERTS))
    hot[0, 28] = 32.0  # expert 28 has one replica, on GPU 12 with experts 29 and 30
    assert counts[0, 28] == counts[0, 29] == counts[0, 30] == 1
    value = ev.balancedness(plan, counts, hot)[0]
    assert value == pytest.approx((hot.sum() / ev.NUM_GPUS) / (32 + 1 + 1))


# ------------------------------------------------------------------ instances


def test_traces_are_deterministic_and_splits_differ():
    for split in ("train", "test"):
        a, b = ev.make_trace_for(split), ev.make_trace_for(split)
        assert np.array_equal(a.loads, b.loads)
    train, test = ev.make_trace_for("train"), ev.make_trace_for("test")
    assert train.loads.shape == (6, 16, 64) and test.loads.shape == (9, 32, 64)
    assert not np.array_equal(train.loads[:, :16], test.loads[:6, :16])
    assert np.all(train.loads.sum(axis=2) == ev.TOKENS_PER_WINDOW)


def test_loads_are_skewed_and_drift():
    trace = ev.make_trace_for("test")
    share = trace.loads / trace.loads.sum(axis=2, keepdims=True)
    assert 3 < (share.max(axis=2) * ev.NUM_EXPERTS).mean() < 10   # hottest expert vs mean
    # the hottest expert of a layer is not always the same in the next window
    hottest = share.argmax(axis=2)
    assert (hottest[1:] != hottest[:-1]).mean() > 0.05
    with pytest.raises(ValueError, match="unknown split"):
        ev.make_trace_for("valid")


# ------------------------------------------------------------------ scoring


def test_baseline_plans_are_valid_and_balanced():
    trace = ev.make_trace_for("train")
    load = trace.loads[0]
    plan = deepseek.rebalance_experts(load.copy(), ev.NUM_SLOTS, ev.NUM_GROUPS,
                                      ev.NUM_NODES, ev.NUM_GPUS)
    counts = ev.verify_plan(plan, trace.layers)
    same = ev.balancedness(plan, counts, load)
    nxt = ev.balancedness(plan, counts, trace.loads[1])
    assert same.mean() > 0.8 and nxt.mean() < same.mean()
    # DeepSeek's policy puts exactly 2 groups on each node
    groups_on_node = plan.reshape(trace.layers, ev.NUM_NODES, -1) // ev.GROUP_SIZE
    assert all(len(np.unique(g)) == 2 for g in groups_on_node.reshape(-1, ev.SLOTS_PER_NODE))


def test_scale_invariance_of_baseline():
    load = ev.make_trace_for("train").loads[2]
    args = (ev.NUM_SLOTS, ev.NUM_GROUPS, ev.NUM_NODES, ev.NUM_GPUS)
    assert np.array_equal(deepseek.rebalance_experts(load.copy(), *args),
                          deepseek.rebalance_experts(4 * load, *args))


@pytest.fixture(scope="module")
def scores() -> dict[str, dict[str, float]]:
    programs = {"initial": INITIAL, "deepseek": BASELINES / "deepseek_hierarchical.py",
                "round_robin": BASELINES / "round_robin.py"}
    return {name: ev.evaluate(str(path)) for name, path in programs.items()}


def test_baseline_ordering(scores):
    assert scores["deepseek"]["combined_score"] > scores["initial"]["combined_score"]
    assert scores["initial"]["combined_score"] > scores["round_robin"]["combined_score"]
    assert (scores["deepseek"]["balancedness"] > scores["initial"]["balancedness"]
            > scores["round_robin"]["balancedness"])
    # the reference against itself: about even (timing noise only)
    assert 0.4 < scores["deepseek"]["speed_score"] < 0.6
    # (the fixed cost of a call into the planner's process counts for both)
    assert scores["round_robin"]["speed_score"] > 0.8
    for metrics in scores.values():
        bal, speed = metrics["balancedness"], metrics["speed_score"]
        assert metrics["combined_score"] == pytest.approx(bal + ev.SPEED_WEIGHT * speed,
                                                          abs=2e-6)


SNAKE = "np.where(rank // packs % 2 == 0, rank % packs, packs - 1 - rank % packs)"


def test_hooks_of_the_initial_program_reach_deepseek_balance(tmp_path, scores):
    text = INITIAL.read_text()
    hooks = {
        "return node_load * (count < 2)": "return node_load / count",
        "return group_index * 1.0": "return group_load",
        "return replica_expert * 1.0": "return replica_load",
        "return rank % packs": f"return {SNAKE}",
    }
    program = tmp_path / "hooked.py"
    greedy = text.replace("return node_load * (count < 2)", "return node_load / count")
    program.write_text(greedy)
    assert ev.evaluate(str(program))["balancedness"] > scores["initial"]["balancedness"] + 0.1
    for old, new in hooks.items():
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    program.write_text(text)
    hooked = ev.evaluate(str(program))
    assert hooked["balancedness"] == pytest.approx(scores["deepseek"]["balancedness"], abs=0.01)
    assert hooked["combined_score"] > scores["deepseek"]["combined_score"]


def _write(tmp_path: Path, body: str) -> str:
    program = tmp_path / "candidate.py"
    program.write_text("import numpy as np\n\n\n"
                       "def rebalance_experts(load, num_slots, num_groups, num_nodes, num_gpus):\n"
                       f"    {body}\n")
    return str(program)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("raise RuntimeError('boom')",
         r"rebalance_experts on a 58-layer model raised RuntimeError: boom"),
        ("return np.zeros((load.shape[0], num_slots), dtype=int)",
         r"on a 58-layer model: layer 0: expert 1 has no replica"),
        ("return np.arange(num_slots) % 64", r"on a 58-layer model: plan has shape \(96,\)"),
        ("return None", r"plan is a NoneType, not a numpy array"),
    ],
)
def test_bad_planner_raises(tmp_path, body, message):
    with pytest.raises(ValueError, match=message):
        ev.evaluate(_write(tmp_path, body))


ROUND_ROBIN_16 = ("node = np.repeat(np.arange(4), 24)\n"
                  "    plan = node * 16 + np.tile(np.arange(24) % 16, 4)\n"
                  "    return np.tile(plan, ({layers}, 1))")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        # a plan only for the train split's 16 layers
        (ROUND_ROBIN_16.format(layers=16),
         r"on a 58-layer model: plan has shape \(16, 96\)"),
        # arithmetic on the layer count that fits 64 bits at 16 layers but not beyond
        ("np.where(False, 0, 9 - 8 ** len(load))\n    " + ROUND_ROBIN_16.format(layers="len(load)"),
         r"on a 58-layer model raised OverflowError"),
    ],
)
def test_planner_tied_to_the_train_layer_count_fails_on_train(tmp_path, body, message):
    program = _write(tmp_path, body)
    # valid and scored on the train split's 16 layers alone...
    with ev.load_planner(ev.REFERENCE) as reference, ev.load_planner(program) as planner:
        assert ev.score_planner(planner, "train", reference)["balancedness"] > 0
    # ...but evaluate() checks another layer count first
    with pytest.raises(ValueError, match=message):
        ev.evaluate(program)


def test_program_without_planner_raises(tmp_path):
    program = tmp_path / "empty.py"
    program.write_text("x = 1\n")
    with pytest.raises(ValueError, match="defines no function rebalance_experts"):
        ev.evaluate(str(program))


def test_program_failing_at_import_raises(tmp_path):
    program = tmp_path / "broken.py"
    program.write_text("raise RuntimeError('no numpy here')\n")
    with pytest.raises(ValueError, match="importing the program failed: RuntimeError: no numpy"):
        ev.evaluate(str(program))


def test_planner_gets_a_private_copy_of_the_load(tmp_path):
    body = ("load[:] = 0.0\n"
            "    node = np.repeat(np.arange(4), 24)\n"
            "    plan = node * 16 + np.tile(np.arange(24) % 16, 4)\n"
            "    return np.tile(plan, (len(load), 1))")
    vandal = ev.evaluate(_write(tmp_path, body))
    plain = ev.evaluate(str(BASELINES / "round_robin.py"))
    assert vandal["balancedness"] == plain["balancedness"]


def test_work_at_import_counts_as_planning_time(tmp_path):
    program = tmp_path / "slow_import.py"
    text = (BASELINES / "round_robin.py").read_text()
    program.write_text(text + "\nimport time as _t\n_end = _t.process_time() + 0.3\n"
                              "while _t.process_time() < _end:\n    pass\n")
    metrics = ev.evaluate(str(program))
    assert metrics["planner_cpu_ms"] >= 300
    assert metrics["speed_score"] < 0.5


# --------------------------------------------------------------------- config


def test_primitives_are_valid_expressions():
    config = yaml.safe_load((PROBLEM / "config.yaml").read_text())
    primitives = config["mutation"]["primitives"]
    assert primitives
    rng = np.random.default_rng(0)
    namespace = {
        "np": np,
        "replica_load": rng.random(24),
        "replica_expert": np.repeat(np.arange(16), [2] * 8 + [1] * 8),
        "node_load": rng.random((2, 4, 16)),
        "count": np.ones((2, 4, 16), dtype=np.int64),
    }
    for template in primitives:
        arity = len(set(re.findall(r"\{(\d+)\}", template)))
        expr = template.format(*(["node_load"] * arity))
        value = eval(expr, namespace)  # the config is trusted text
        assert np.asarray(value).size >= 1, template


def test_problem_loads_as_builtin():
    from evoforge.problem.loader import load_problem

    problem = load_problem("eplb")
    assert problem.builtin and problem.has_test_split
    assert set(problem.baselines) == {"deepseek_hierarchical", "round_robin"}
    assert problem.config.maximize
    assert problem.warnings == []
