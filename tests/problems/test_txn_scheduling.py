"""The built-in txn_scheduling problem: simulator, verifier, workloads and baselines."""

from __future__ import annotations

import re
from pathlib import Path
from types import ModuleType

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

PROBLEM = problem_dir("txn_scheduling")
INITIAL = PROBLEM / "initial_program.py"
TOLERANCE = 0.001

ev = load_evaluator("txn_scheduling")


@pytest.fixture(scope="module")
def scores() -> Scores:
    return score_programs(PROBLEM, ev)


def test_readme_table_matches_computed_scores(scores):
    assert_readme_matches(PROBLEM, scores, TOLERANCE)


def test_baseline_ordering(scores):
    for split in ("train", "test"):
        fifo = scores["baselines/fifo.py"][split]
        rand = scores["baselines/random_order.py"][split]
        smf = scores["baselines/smf_sampled.py"][split]
        best = scores["baselines/earliest_start_contention.py"][split]
        assert scores["initial_program.py"][split] == fifo
        assert smf["combined_score"] > max(fifo["combined_score"], rand["combined_score"]) + 20
        assert best["combined_score"] > smf["combined_score"] + 10
        for metrics in (fifo, rand, smf, best):
            assert metrics["combined_score"] < 0
            assert metrics["makespan"] > metrics["lower_bound"]
            assert {"read_heavy_excess_pct", "balanced_excess_pct",
                    "write_heavy_excess_pct"} <= set(metrics)


# ------------------------------------------------------------ simulator


def _workload(durations, reads, writes, num_keys=4) -> ev.Workload:
    return ev.Workload(
        "tiny", "balanced", tuple(durations),
        tuple(tuple(r) for r in reads), tuple(tuple(w) for w in writes), num_keys,
    )


def test_simulator_semantics():
    # 0 writes key 0; 1 and 2 read key 0; 3 writes key 0; 4 touches nothing shared
    w = _workload([3, 2, 4, 1, 5], [[], [0], [0], [], [1]], [[0], [], [], [0], [2]])
    # readers run in parallel after the writer; the second writer waits for both
    assert ev.simulate(w, [0, 1, 2, 3, 4]) == (8, [0, 3, 3, 7, 0])
    # readers first: the writer waits for the longer reader
    assert ev.simulate(w, [1, 2, 0, 3, 4]) == (8, [4, 0, 0, 7, 0])
    # no backfilling: 2 is ordered after 1, so it waits for 1 on key 1, although
    # key 1 is free during [0, 10) while 1 waits for 0 on key 0
    v = _workload([10, 10, 1], [[], [], []], [[0], [0, 1], [1]])
    assert ev.simulate(v, [0, 1, 2]) == (21, [0, 10, 20])
    assert ev.simulate(v, [2, 0, 1]) == (20, [0, 10, 0])


def test_lower_bound():
    w = _workload([3, 2, 4, 1, 5], [[], [0], [0], [], [1]], [[0], [], [], [0], [2]])
    assert w.lower_bound == 3 + 1 + 4  # writers of key 0 plus its longest pure reader
    v = _workload([1, 10], [[], []], [[0], [1]])
    assert v.lower_bound == 10
    for workload in ev.make_workloads("train")[:3]:
        for order in (range(len(workload)), reversed(range(len(workload)))):
            assert ev.simulate(workload, list(order))[0] >= workload.lower_bound


# ------------------------------------------------------------------ verifier


def test_verifier_accepts_permutations():
    assert ev.verify_order(4, [2, 0, 3, 1]) == [2, 0, 3, 1]
    assert ev.verify_order(4, (2, 0, 3, 1)) == [2, 0, 3, 1]
    assert ev.verify_order(4, np.array([3, 2, 1, 0])) == [3, 2, 1, 0]
    assert ev.verify_order(3, [np.int64(1), np.int32(0), 2]) == [1, 0, 2]


@pytest.mark.parametrize(
    ("order", "message"),
    [
        ([0, 1, 1, 3], r"transaction 1 is scheduled twice \(positions 1 and 2\)"),
        ([0, 1, 2], r"1 transaction\(s\) never scheduled: 3"),
        ([], r"4 transaction\(s\) never scheduled: 0, 1, 2, 3"),
        ([0, 1, 2, 3, 0], r"transaction 0 is scheduled twice"),
        ([0, 1, 2, 4], r"position 3 holds 4, not a transaction id in \[0, 4\)"),
        ([0, -1, 2, 3], r"position 1 holds -1, not a transaction id"),
        ([0, 1.0, 2, 3], r"position 1 holds 1.0, not an integer transaction id"),
        ([0, True, 2, 3], r"position 1 holds True, not an integer"),
        ([0, None, 2, 3], r"position 1 holds None, not an integer"),
        ([0, "1", 2, 3], r"position 1 holds '1', not an integer"),
        (np.array([0.0, 1.0, 2.0, 3.0]), r"position 0 holds 0.0, not an integer"),
        (np.array([[0, 1], [2, 3]]), r"order must be one-dimensional"),
        ("0123", r"order must be a list of transaction ids, got str"),
        (None, r"order must be a list of transaction ids, got NoneType"),
        ({0, 1, 2, 3}, r"order must be a list of transaction ids, got set"),
    ],
)
def test_verifier_rejects_invalid_orders(order, message):
    with pytest.raises(ev.ScheduleError, match=message):
        ev.verify_order(4, order)


# ------------------------------------------------------------- the driver


def _program(priority_body: str, tmp_path: Path | None = None) -> ModuleType:
    text = INITIAL.read_text()
    start = text.index("# EVOLVE-BLOCK-START\n") + len("# EVOLVE-BLOCK-START\n")
    end = text.index("# EVOLVE-BLOCK-END")
    block = (
        "def priority(start, duration, makespan, contention, gap, tid):\n"
        f"    {priority_body}\n"
    )
    source = text[:start] + block + text[end:]
    if tmp_path is None:
        module = ModuleType("_txn_candidate")
        exec(compile(source, "candidate", "exec"), module.__dict__)  # our own test program
        return module
    path = tmp_path / "candidate.py"
    path.write_text(source)
    return module_from(path)


def module_from(path: Path) -> ModuleType:
    return _load(path, "_txn_candidate_file")


def test_driver_features_and_ties():
    seen: list[dict[str, np.ndarray]] = []

    def spy(start, duration, makespan, contention, gap, tid):
        seen.append({"start": start.copy(), "duration": duration.copy(), "makespan": makespan,
                     "contention": contention.copy(), "gap": gap.copy(), "tid": tid.copy()})
        return np.zeros(len(tid))  # all tied: the lowest id goes first

    program = _program("return -tid")
    program.priority = spy
    # 0 writes key 0 (3 units); 1 reads key 0 (2 units); 2 writes key 1 and reads key 0
    order = program.schedule([3, 2, 4], [[], [0], [0]], [[0], [], [1]])
    assert order == [0, 1, 2]
    first, second, third = seen
    assert first["tid"].tolist() == [0.0, 1.0, 2.0]
    assert first["start"].tolist() == [0.0, 0.0, 0.0] and first["makespan"] == 0.0
    assert first["contention"].tolist() == [6.0, 3.0, 3.0]  # 0 conflicts with 1 and 2
    assert second["start"].tolist() == [3.0, 3.0] and second["makespan"] == 3.0
    assert second["contention"].tolist() == [0.0, 0.0]
    assert second["gap"].tolist() == [0.0, 3.0]  # 2 leaves key 1 idle during [0, 3)
    assert third["start"].tolist() == [3.0]  # readers share key 0
    assert third["duration"].tolist() == [4.0]


def test_driver_orders_pass_the_verifier_and_the_gap_feature():
    program = _program("return -start - 0.001 * tid")
    workload = ev.make_workloads("train")[0]
    order = program.schedule(list(workload.durations), [list(r) for r in workload.reads],
                             [list(w) for w in workload.writes])
    assert ev.verify_order(len(workload), order) == order
    gaps: list[float] = []

    def spy(start, duration, makespan, contention, gap, tid):
        gaps.extend(gap.tolist())
        return -tid

    program.priority = spy
    # 0 writes key 0 during [0, 5), 1 writes key 1 during [0, 1); 2 reads key 0,
    # so it starts at 5 and leaves its written key idle since it was free
    program.schedule([5, 1, 1], [[], [], [0]], [[0], [1], [2]])
    assert gaps[-1] == 5.0  # key 2 free since 0
    program.schedule([5, 1, 1], [[], [], [0]], [[0], [1], [1]])
    assert gaps[-1] == 4.0  # key 1 free since 1


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("return np.zeros(len(tid) + 1)", r"priority returned shape \(10[01],\) for 100 trans"),
        ("return 0.0", r"priority returned shape \(\) for 100 transactions"),
        ("return np.full(len(tid), np.nan)", r"priority returned NaN"),
        ("raise RuntimeError('boom')", r"schedule raised RuntimeError: boom"),
    ],
)
def test_bad_priority_raises(tmp_path, body, message):
    program = _program(body, tmp_path)
    with pytest.raises(ValueError, match=message):
        ev.evaluate(str(program.__file__))


def _write(tmp_path: Path, body: str) -> str:
    path = tmp_path / "raw.py"
    header = "import numpy as np\n\n\ndef schedule(durations, reads, writes):\n"
    path.write_text(f"{header}    {body}\n")
    return str(path)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("return [0] * len(durations)", r"transaction 0 is scheduled twice .*\(workload read_"),
        ("return list(range(len(durations) - 1))", r"1 transaction\(s\) never scheduled: 99"),
        ("return list(range(1, len(durations) + 1))", r"position 99 holds 100, not a trans"),
        ("return [float(t) for t in range(len(durations))]", r"not an integer transaction id"),
        ("return None", r"order must be a list of transaction ids, got NoneType"),
    ],
)
def test_invalid_orders_from_a_program_raise(tmp_path, body, message):
    with pytest.raises(ev.ScheduleError, match=message):
        ev.evaluate(_write(tmp_path, body))


def test_programs_get_copies_of_the_workload(tmp_path):
    body = ("durations[:] = [1] * len(durations); reads.clear(); writes.clear()\n"
            "    return list(range(len(durations)))")
    tampered = ev.evaluate(_write(tmp_path, body))
    fifo = ev.evaluate(str(PROBLEM / "baselines" / "fifo.py"))
    assert tampered == fifo


def test_program_without_schedule_raises(tmp_path):
    path = tmp_path / "empty.py"
    path.write_text("x = 1\n")
    with pytest.raises(ValueError, match="defines no function schedule"):
        ev.evaluate(str(path))


# ------------------------------------------------------------------ workloads


def test_workloads_are_deterministic_and_splits_differ():
    for split in ("train", "test"):
        assert ev.make_workloads(split) == ev.make_workloads(split)
    train, test = ev.make_workloads("train"), ev.make_workloads("test")
    assert (len(train), len(test)) == (9, 30)
    train_keys = {(w.durations, w.reads, w.writes) for w in train}
    assert not any((w.durations, w.reads, w.writes) in train_keys for w in test)
    with pytest.raises(ValueError, match="unknown split"):
        ev.make_workloads("valid")


def test_workload_families():
    fractions: dict[str, list[float]] = {}
    for workload in ev.make_workloads("train"):
        assert len(workload) == ev.NUM_TXNS
        accesses = 0
        written = 0
        counts = np.zeros(workload.num_keys)
        for d, rs, ws in zip(workload.durations, workload.reads, workload.writes, strict=True):
            keys = rs + ws
            assert ev.MIN_KEYS <= len(keys) <= ev.MAX_KEYS and len(set(keys)) == len(keys)
            assert len(keys) <= d <= len(keys) + ev.MAX_EXTRA
            assert list(rs) == sorted(rs) and list(ws) == sorted(ws)
            accesses += len(keys)
            written += len(ws)
            counts[list(keys)] += 1
        fractions.setdefault(workload.family, []).append(written / accesses)
        assert counts.max() > 5 * counts.mean()  # Zipf: hot keys
    for family, (write_prob, _) in ev.FAMILIES.items():
        assert abs(np.mean(fractions[family]) - write_prob) < 0.06, family


# --------------------------------------------------------------------- config


def test_primitives_are_valid_expressions():
    config = yaml.safe_load((PROBLEM / "config.yaml").read_text())
    primitives = config["mutation"]["primitives"]
    assert primitives
    arrays = {name: np.array([0.0, 2.0, 5.0]) for name in
              ("start", "duration", "contention", "gap", "tid")}
    namespace = {"np": np, "makespan": 4.0, **arrays}
    for template in primitives:
        arity = len(set(re.findall(r"\{(\d+)\}", template)))
        value = eval(template.format(*(["start"] * arity)), namespace)  # trusted config text
        assert np.broadcast(np.asarray(value), arrays["start"]).shape == (3,), template


def test_problem_loads_as_builtin():
    from evoforge.problem.loader import load_problem

    problem = load_problem("txn_scheduling")
    assert problem.builtin and problem.has_test_split
    assert set(problem.baselines) == {"fifo", "random_order", "smf_sampled",
                                      "earliest_start_contention"}
    assert problem.config.maximize and problem.config.score_round == 4
    assert problem.warnings == []


def test_the_probe_follows_the_programs_own_schedule(tmp_path):
    """A functional duplicate of a real run and the program it was taken for: they part
    only where a transaction id is 0 (``np.where(tid, ...)``), which the fixed feature
    sets of the probe before this one never showed, and order the train split
    differently. The closed-loop probe orders whole workloads and tells them apart."""
    from evoforge.evaluation.child import import_evaluator, probe

    module, error = import_evaluator(str(PROBLEM / "evaluator.py"))
    assert error is None
    paths, train = {}, {}
    for name, cond in (("ref", "0.382845 < duration"), ("dup", "tid")):
        path = tmp_path / f"{name}.py"
        path.write_text(INITIAL.read_text().replace(
            "    return -tid", f"    return contention / (np.where({cond}, start, 1) + "
            "(4 + start.min())) - start / 0.34685"))
        paths[name] = str(path)
        train[name] = module.evaluate(str(path))["combined_score"]
    assert train["ref"] != train["dup"]
    assert (probe(module, paths["ref"])["artifacts"]["probe_hash"]
            != probe(module, paths["dup"])["artifacts"]["probe_hash"])
