"""The built-in bin_packing problem: evaluator, verifier, baselines and README."""

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

PROBLEM = problem_dir("bin_packing")
INITIAL = PROBLEM / "initial_program.py"
TOLERANCE = 0.001

ev = load_evaluator("bin_packing")


@pytest.fixture(scope="module")
def scores() -> Scores:
    return score_programs(PROBLEM, ev)


def test_readme_table_matches_computed_scores(scores):
    assert_readme_matches(PROBLEM, scores, TOLERANCE)


def test_baseline_ordering(scores):
    for split in ("train", "test"):
        first = scores["baselines/first_fit.py"][split]
        best = scores["baselines/best_fit.py"][split]
        third = scores["baselines/awkward_gap_fit.py"][split]
        assert best["combined_score"] > first["combined_score"]
        assert third["combined_score"] > best["combined_score"]
        assert scores["initial_program.py"][split] == first
        for metrics in (first, best, third):
            assert metrics["combined_score"] < 0
            assert metrics["bins_used"] > metrics["l1_bound"]
            assert {"or_excess_pct", "weibull_excess_pct"} <= set(metrics)


def test_replacing_arange_with_bins_gives_best_fit(tmp_path, scores):
    text = INITIAL.read_text()
    assert "import numpy as np" in text.split("# EVOLVE-BLOCK-START")[0]
    assert "def priority(item" in text.split("# EVOLVE-BLOCK-START")[1]
    target = "np.arange(len(bins), dtype=float)"
    assert text.count(target) == 1
    program = tmp_path / "best.py"
    program.write_text(text.replace(target, "bins"))
    assert ev.evaluate(str(program)) == scores["baselines/best_fit.py"]["train"]


# ------------------------------------------------------------------ verifier

SIZES = [60, 50, 40, 90, 10]
CAPACITY = 100


def test_verifier_accepts_valid_packing():
    assert ev.verify_packing(SIZES, CAPACITY, [[0, 2], [1], [3, 4]]) == 3


@pytest.mark.parametrize(
    ("packing", "message"),
    [
        ([[0, 1], [2], [3, 4]], r"bin 0 is over capacity: load 110 > capacity 100"),
        ([[0, 2], [1], [3]], r"1 item\(s\) never placed: 4"),
        ([[0, 2], [1, 2], [3, 4]], r"item 2 is placed twice \(bins 0 and 1\)"),
        ([[0, 2], [1], [3, 4], []], r"bin 3 is empty"),
        ([[0, 2], [1, 5], [3, 4]], r"bin 1 holds item 5, not an index"),
        ([[0, 2], [1, None], [3, 4]], r"bin 1 holds item None, not an index"),
        ([[0, 2], [1, 4.5], [3]], r"bin 1 holds item 4.5, not an index"),
    ],
)
def test_verifier_rejects_invalid_packing(packing, message):
    with pytest.raises(ev.PackingError, match=message):
        ev.verify_packing(SIZES, CAPACITY, packing)


def test_pack_output_passes_verifier():
    instance = ev.make_instances("train")[0]
    packing = ev.pack(instance, lambda item, bins: -(bins - item))
    used = ev.verify_packing(instance.sizes, instance.capacity, packing)
    assert used == len(packing) >= instance.lower_bound


def test_fresh_bin_is_last_and_ties_go_to_earliest_bin():
    seen: list[np.ndarray] = []

    def spy(item, bins):
        seen.append(bins.copy())
        return np.zeros(len(bins)) + 1e-9 * np.arange(len(bins))  # a tie after rounding

    instance = ev.Instance("tiny", "or", np.array([60, 50, 100, 40]), 150)
    packing = ev.pack(instance, spy)
    assert [b.tolist() for b in seen] == [[150.0], [90.0, 150.0], [150.0], [40.0, 50.0, 150.0]]
    assert packing == [[0, 1, 3], [2]]


def _reference_assign(priority, sizes, capacity):
    """The packing rule written plainly: every open bin the item fits, in opening order."""
    rooms: list[float] = []
    out = []
    for size in sizes.tolist():
        item = float(size)
        fits = [b for b, room in enumerate(rooms) if room >= item]
        bins = np.array([rooms[b] for b in fits] + [float(capacity)])
        choice = int(np.argmax(np.round(np.asarray(priority(item, bins), dtype=float), 6)))
        target = len(rooms) if choice == len(fits) else fits[choice]
        if target == len(rooms):
            rooms.append(float(capacity))
        rooms[target] -= item
        out.append(target)
    return out


@pytest.mark.parametrize("priority", [
    lambda item, bins: -np.arange(len(bins), dtype=float),  # first fit
    lambda item, bins: -(bins - item),  # best fit
    lambda item, bins: bins - item,  # worst fit: many bins stay half empty
    lambda item, bins: np.where(bins - item < 5, 1.0, -np.arange(len(bins))),
    lambda item, bins: -(bins - bins.mean()) ** 2 + np.roll(bins, 1),  # whole-array features
])
def test_packing_loop_matches_the_plain_rule(priority):
    # a Weibull instance (small items late keep old bins alive) and an OR one, cut short;
    # the loop drops bins that no later item fits from its scan, which must not change
    # a single call of priority
    seen_fast: list[tuple[float, list[float]]] = []
    seen_plain: list[tuple[float, list[float]]] = []

    def spy(log):
        def call(item, bins):
            log.append((item, bins.tolist()))
            return priority(item, bins)
        return call

    for instance in (ev.make_instances("train")[4], ev.make_instances("train")[0]):
        sizes = np.concatenate([instance.sizes[:700], [1, 2]])  # tiny items at the end
        fast = ev.harness.assign(ev.harness.local(spy(seen_fast)), sizes, instance.capacity)
        plain = _reference_assign(spy(seen_plain), sizes, instance.capacity)
        assert fast.tolist() == plain
    assert seen_fast == seen_plain


# ------------------------------------------------------------- bad priorities


def _write(tmp_path: Path, body: str) -> str:
    program = tmp_path / "candidate.py"
    program.write_text(f"import numpy as np\n\n\ndef priority(item, bins):\n    {body}\n")
    return str(program)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("return np.zeros(len(bins) + 1)", r"priority returned shape \(2,\) for 1 bins"),
        ("return 0.0", r"priority returned shape \(\) for 1 bins"),
        ("return np.full(len(bins), np.nan)", r"priority returned NaN"),
        ("raise RuntimeError('boom')", r"priority raised RuntimeError: boom"),
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


# ------------------------------------------------------------------ instances


def test_instances_are_deterministic_and_splits_differ():
    for split in ("train", "test"):
        first, second = ev.make_instances(split), ev.make_instances(split)
        assert [i.name for i in first] == [i.name for i in second]
        for a, b in zip(first, second, strict=True):
            assert np.array_equal(a.sizes, b.sizes) and a.capacity == b.capacity
    train, test = ev.make_instances("train"), ev.make_instances("test")
    assert len(test) > len(train)
    train_sizes = {i.sizes.tobytes() for i in train}
    assert not any(i.sizes.tobytes() in train_sizes for i in test)


def test_instance_families():
    for instance in ev.make_instances("train"):
        sizes = instance.sizes
        if instance.family == "or":
            assert (len(sizes), instance.capacity) == (500, 150)
            assert sizes.min() >= 20 and sizes.max() <= 100
        else:
            assert (len(sizes), instance.capacity) == (5000, 100)
            assert sizes.min() >= 1 and sizes.max() <= 100
            assert 35 < sizes.mean() < 45  # Weibull(3, 45) has mean ~40.2
        assert instance.lower_bound == -(-int(sizes.sum()) // instance.capacity)


# --------------------------------------------------------------------- config


def test_primitives_are_valid_expressions():
    config = yaml.safe_load((PROBLEM / "config.yaml").read_text())
    primitives = config["mutation"]["primitives"]
    assert primitives
    bins = np.array([30.0, 55.0, 70.0, 100.0])
    namespace = {"np": np, "bins": bins, "item": 25.0}
    for template in primitives:
        arity = len(set(re.findall(r"\{(\d+)\}", template)))
        expr = template.format(*(["(bins - item)"] * arity))
        value = eval(expr, namespace)  # the config is trusted text
        assert np.broadcast(np.asarray(value), bins).shape == bins.shape, template


def test_problem_loads_as_builtin():
    from evoforge.problem.loader import load_problem

    problem = load_problem("bin_packing")
    assert problem.builtin and problem.has_test_split
    assert set(problem.baselines) == {"first_fit", "best_fit", "awkward_gap_fit"}
    assert problem.config.maximize and problem.config.score_round == 4
    assert problem.warnings == []



# ------------------------------------------------------------------ probes


def _band_program(tmp_path: Path, lower: float, outer: str = "{}") -> str:
    """Best fit that ranks a bin below a new one when its gap lies in a band (its scores
    passed through ``outer``)."""
    scores = outer.format("np.where(band, -gap - bins[-1], -gap)")
    body = (f"gap = bins - item\n    band = (gap > {lower} * bins[-1]) & (gap < 0.2 * bins[-1])\n"
            f"    return {scores}")
    program = tmp_path / f"band_{lower}_{abs(hash(outer))}.py"
    program.write_text(INITIAL.read_text().replace(
        "return -np.arange(len(bins), dtype=float)", body))
    return str(program)


def test_probes_tell_programs_apart_where_they_pack_differently(tmp_path):
    """Sizes are whole numbers: bounds with a whole gap between them pack differently
    and must hash differently (0.05 and 0.055 of the capacity: the gap 8 at capacity
    150); bounds without one pack alike and hash alike. The probe packs its own
    sequences with the program (probe_program), so what it compares is the bins the
    program chooses."""
    from evoforge.evaluation.child import import_evaluator, probe

    module, error = import_evaluator(str(PROBLEM / "evaluator.py"))
    assert error is None
    programs = {lower: _band_program(tmp_path, lower) for lower in (0.05, 0.0502, 0.055)}
    hashes = {lower: probe(module, path)["artifacts"]["probe_hash"]
              for lower, path in programs.items()}
    train = {lower: ev.evaluate(path)["combined_score"] for lower, path in programs.items()}
    assert train[0.05] == train[0.0502] and hashes[0.05] == hashes[0.0502]
    assert train[0.05] != train[0.055] and hashes[0.05] != hashes[0.055]
    # only the bin chosen counts: a shift or a positive factor packs alike
    # and hashes alike; a negative factor does neither
    for outer, alike in (("2.5 * {} + bins[-1]", True), ("np.where(gap == 0, np.inf, {})", True),
                         ("-{}", False)):
        path = _band_program(tmp_path, 0.05, outer)
        assert (probe(module, path)["artifacts"]["probe_hash"] == hashes[0.05]) is alike
        assert (ev.evaluate(path)["combined_score"] == train[0.05]) is alike
    # one score where the loop needs one per bin fails; it must not hash like first fit,
    # which also always chooses the first bin
    first_fit = probe(module, str(PROBLEM / "initial_program.py"))["artifacts"]["probe_hash"]
    too_few = tmp_path / "too_few.py"
    too_few.write_text(INITIAL.read_text().replace(
        "return -np.arange(len(bins), dtype=float)", "return np.zeros(1)"))
    assert probe(module, str(too_few))["artifacts"]["probe_hash"] != first_fit
    with pytest.raises(ValueError, match="priority returned shape"):
        ev.evaluate(str(too_few))


def _best_fit_states(sizes: np.ndarray, capacity: int) -> list[tuple[float, np.ndarray]]:
    """The (item, bins) calls a best-fit packing of ``sizes`` makes."""
    caps: list[float] = []
    calls = []
    for size in sizes.tolist():
        fits = [c for c in caps if c >= size]
        calls.append((float(size), np.array([*fits, float(capacity)])))
        if fits:
            caps[caps.index(min(fits))] -= size
        else:
            caps.append(capacity - size)
    return calls


def test_the_probe_follows_the_programs_own_packing(tmp_path):
    """Two band programs of a real run (a functional duplicate and the program it was
    taken for) choose the same bins at every state of a best-fit packing of the probe's
    sequences, the probe before this one, yet pack the train split differently: the
    closed-loop probe, where each call sees the bins the program's own choices left,
    tells them apart."""
    from evoforge.evaluation.child import import_evaluator, probe

    module, error = import_evaluator(str(PROBLEM / "evaluator.py"))
    assert error is None
    bodies = {"dup": "np.where((bins - item > 0.0387869 * bins[-1]) & (bins - item < "
                     "0.201284 * bins[-1]), 0.539135, item) - bins",
              "ref": "np.where((bins - item > 0.0491297 * bins[-1]) & (bins - item < "
                     "0.207977 * bins[-1]), 0.385432, item) - bins"}
    paths, funcs = {}, {}
    for name, body in bodies.items():
        path = tmp_path / f"{name}.py"
        path.write_text(INITIAL.read_text().replace(
            "return -np.arange(len(bins), dtype=float)", f"return {body}"))
        paths[name] = str(path)
        namespace: dict = {"np": np}
        exec(f"def priority(item, bins):\n    return {body}\n", namespace)  # noqa: S102
        funcs[name] = namespace["priority"]
    # the previous probe's 500 calls: best fit on 300 Weibull and 200 OR items
    rng = np.random.default_rng(31337)
    weibull = np.clip(np.rint(ev.WEIBULL_SCALE * rng.weibull(ev.WEIBULL_SHAPE, 300)), 1,
                      ev.WEIBULL_MAX_SIZE)
    uniform = rng.integers(ev.OR_MIN_SIZE, ev.OR_MAX_SIZE + 1, 200)
    open_loop = [*_best_fit_states(weibull, ev.WEIBULL_CAPACITY),
                 *_best_fit_states(uniform, ev.OR_CAPACITY)]
    assert all(np.argmax(funcs["dup"](*c).round(6)) == np.argmax(funcs["ref"](*c).round(6))
               for c in open_loop)
    train = {name: ev.evaluate(path)["combined_score"] for name, path in paths.items()}
    assert train["dup"] != train["ref"]
    assert (probe(module, paths["dup"])["artifacts"]["probe_hash"]
            != probe(module, paths["ref"])["artifacts"]["probe_hash"])
