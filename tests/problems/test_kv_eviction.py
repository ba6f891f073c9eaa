"""The built-in kv_eviction problem: verifier, traces, driver, scoring, baselines, config."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.problems.readme_scores import load_evaluator, problem_dir

PROBLEM = problem_dir("kv_eviction")
INITIAL = PROBLEM / "initial_program.py"
BASELINES = PROBLEM / "baselines"


ev = load_evaluator("kv_eviction")


@pytest.fixture(scope="module")
def trace():
    return ev.make_trace(7, 0, 96)


def _window_history(heads: int, n: int, budget: int) -> np.ndarray:
    """Sliding window: after step t each head holds the last ``budget`` positions."""
    t = np.arange(n)[:, None]
    j = np.arange(n)[None, :]
    held = (j <= t) & (j > t - budget)
    return np.broadcast_to(held, (heads, n, n)).copy()


# ------------------------------------------------------------------ verifier


def test_verifier_accepts_sliding_window():
    ev.verify_history(_window_history(2, 12, 4), 4)


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("future", r"step 3: head 1 holds position 5, a token not generated yet"),
        ("over", r"step 3: head 0 holds 4 tokens, over the budget of 3"),
        ("resurrect", r"step 8: head 1 holds position 2 again after it was evicted"),
        ("dtype", r"cache history must be a bool array \(heads, n, n\), got \(2, 12, 12\)"),
        ("shape", r"cache history must be a bool array \(heads, n, n\), got \(2, 12, 11\)"),
    ],
)
def test_verifier_rejects_invalid_history(kind, message):
    history = _window_history(2, 12, 4)
    budget = 4
    if kind == "future":
        history[1, 3, 5] = True
        history[1, 3, 0] = False         # (stays within the budget)
    elif kind == "over":
        budget = 3                       # a window of 4 is one token too many
    elif kind == "resurrect":
        history[1, 8, 2] = True          # evicted after step 5, back at step 8
        history[1, 8, 8] = False         # (stays within the budget)
    elif kind == "dtype":
        history = history.astype(np.int8)
    elif kind == "shape":
        history = history[:, :, :-1]
    with pytest.raises(ev.EvictionError, match=message):
        ev.verify_history(history, budget)


def test_verifier_reports_the_earliest_step():
    history = _window_history(2, 12, 4)
    history[0, 10, 11] = True            # a future token at step 10
    history[1, 7, 0] = True              # a resurrection at step 7 comes first
    with pytest.raises(ev.EvictionError, match=r"^step 7: head 1 holds position 0 again"):
        ev.verify_history(history, 5)


# ------------------------------------------------------------------ traces


def test_traces_are_deterministic_and_splits_differ():
    seed, count, n = ev.SPLITS["train"]
    a, b = ev.make_trace(seed, 1, n), ev.make_trace(seed, 1, n)
    assert a.name == b.name
    assert np.array_equal(a.attn, b.attn) and np.array_equal(a.values, b.values)
    assert not a.attn.flags.writeable
    test_seed, test_count, test_n = ev.SPLITS["test"]
    assert test_seed != seed and test_count > count and test_n > n
    assert not np.array_equal(ev.make_trace(test_seed, 1, n).attn, a.attn)
    with pytest.raises(ValueError, match="unknown split"):
        ev.make_traces("valid")


def test_trace_structure(trace):
    attn = trace.attn
    heads, n, _ = attn.shape
    assert np.allclose(attn.sum(axis=2), 1.0)
    assert np.all(np.triu(attn, k=1) == 0)                       # causal
    late = attn[:, n // 2:, :]
    # token 0 is a sink: far more attention than an average position
    assert late[:, :, 0].mean() > 5 * late.mean()
    # recency band: the previous token gets more than the mean
    recent = np.array([attn[:, t, t - 1] for t in range(n // 2, n)])
    assert recent.mean() > 2 * late.mean()
    # heavy hitters exist and draw attention
    assert trace.heavy.any()
    h, j = np.argwhere(trace.heavy)[0]
    assert attn[h, j + 1:, j].mean() > attn[h, j + 1:, j + 1:].mean()
    # topics shift, and come back later in a longer sequence
    assert len(np.unique(trace.topic)) >= 2
    topic = ev.make_traces("train")[0].topic
    changes = np.flatnonzero(np.diff(topic)) + 1
    assert any(topic[c] in topic[:c] for c in changes)


def test_budget_for():
    assert ev.budget_for(0.05, 384) == 19
    assert ev.budget_for(0.2, 768) == 154
    assert ev.budget_for(0.001, 100) == 1


# ------------------------------------------------------------------ driver


def test_driver_history_is_valid_and_matches_the_policy(trace):
    budget = 10
    history = ev.decode(trace, lambda attn, acc, pos, dist, b, state: -dist, budget)
    ev.verify_history(history, budget)
    n = trace.length
    assert np.array_equal(history, _window_history(ev.HEADS, n, budget))


def test_policy_sees_only_the_cache_causally(trace):
    seen = []

    def spy(attn, acc, pos, dist, budget, state):
        t = len(pos) - 1
        assert attn.shape == acc.shape == (ev.HEADS, t + 1)
        assert dist[0] == t and dist[-1] == 0 and pos[-1] == t
        assert np.allclose(attn.sum(axis=1), 1.0)
        seen.append((t, (attn > 0).sum(axis=1).max()))
        state.setdefault("calls", 0)
        state["calls"] += 1
        return -dist

    budget = 8
    ev.decode(trace, spy, budget)
    assert [t for t, _ in seen] == list(range(budget, trace.length))
    # the query sees the cache (budget tokens) plus itself, never the evicted tokens
    assert max(size for _, size in seen) == budget + 1


def test_state_is_fresh_for_each_run(trace):
    starts = []

    def policy(attn, acc, pos, dist, budget, state):
        if not state:
            starts.append(len(pos) - 1)
            state["seen"] = True
        return -dist

    ev.decode(trace, policy, 5)
    ev.decode(trace, policy, 9)
    assert starts == [5, 9]


def test_all_infinite_scores_evict_the_oldest(trace):
    budget = 6
    history = ev.decode(trace, lambda *args: np.inf, budget)
    ev.verify_history(history, budget)
    assert np.array_equal(history, _window_history(ev.HEADS, trace.length, budget))


def test_full_budget_metrics_are_perfect(trace):
    history = np.broadcast_to(np.tril(np.ones((trace.length, trace.length), bool)),
                              trace.attn.shape).copy()
    recall, error = ev.cache_metrics(trace, history, 4)
    assert recall == pytest.approx(1.0) and error == pytest.approx(0.0, abs=1e-12)


def _write(tmp_path: Path, body: str) -> str:
    program = tmp_path / "candidate.py"
    program.write_text("import numpy as np\n\n\n"
                       "def keep_score(attn, acc, pos, dist, budget, state):\n"
                       f"    {body}\n")
    return str(program)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("raise RuntimeError('boom')", r"keep_score raised RuntimeError: boom \(step 19 of"),
        ("return np.zeros(len(dist) + 1)", r"keep_score returned shape \(21,\) at step 19"),
        ("return np.full(attn.shape, np.nan)", r"keep_score returned NaN at step 19"),
        ("return 'many'", r"keep_score returned a str at step 19, not an array of numbers"),
        ("dist += 1.0\n    return dist", r"keep_score raised ValueError: output array is read"),
    ],
)
def test_bad_policy_raises(tmp_path, body, message):
    with pytest.raises(ValueError, match=message):
        ev.evaluate(_write(tmp_path, body))


def test_program_without_policy_raises(tmp_path):
    program = tmp_path / "empty.py"
    program.write_text("x = 1\n")
    with pytest.raises(ValueError, match="defines no function keep_score"):
        ev.evaluate(str(program))


# ------------------------------------------------------------------ scoring


@pytest.fixture(scope="module")
def scores() -> dict[str, dict[str, float]]:
    programs = {"initial": INITIAL, **{p.stem: p for p in sorted(BASELINES.glob("*.py"))}}
    return {name: ev.evaluate(str(path)) for name, path in programs.items()}


def test_baseline_ordering(scores):
    combined = {name: m["combined_score"] for name, m in scores.items()}
    assert combined["h2o"] > combined["streaming_llm"] > combined["initial"] > combined["random"]
    for metrics in scores.values():
        # a larger budget never hurts these policies
        assert metrics["recall_5"] < metrics["recall_10"] < metrics["recall_20"] < 1
        for pct in (5, 10, 20):
            quality = 0.5 * (metrics[f"recall_{pct}"] + 1 - metrics[f"output_error_{pct}"])
            assert metrics[f"quality_{pct}"] == pytest.approx(quality, abs=2e-6)
        mean = np.mean([metrics[f"quality_{pct}"] for pct in (5, 10, 20)])
        assert metrics["combined_score"] == pytest.approx(mean, abs=2e-6)


def test_random_baseline_repeats(scores):
    assert ev.evaluate(str(BASELINES / "random.py")) == scores["random"]


# --------------------------------------------------------------------- config


def test_primitives_are_valid_expressions():
    config = yaml.safe_load((PROBLEM / "config.yaml").read_text())
    primitives = config["mutation"]["primitives"]
    assert primitives
    rng = np.random.default_rng(0)
    t = 30
    attn = rng.random((ev.HEADS, t + 1))
    namespace = {"np": np, "attn": attn / attn.sum(axis=1, keepdims=True),
                 "acc": rng.random((ev.HEADS, t + 1)) * 5, "pos": np.arange(t + 1),
                 "dist": np.arange(t + 1, dtype=float)[::-1], "budget": 12}
    for template in primitives:
        arity = len(set(re.findall(r"\{(\d+)\}", template)))
        expr = template.format(*(["acc"] * arity))
        value = eval(expr, namespace)  # the config is trusted text
        assert np.broadcast(np.asarray(value), attn).shape == attn.shape, template


def test_problem_loads_as_builtin():
    from evoforge.problem.loader import load_problem

    problem = load_problem("kv_eviction")
    assert problem.builtin and problem.has_test_split
    assert set(problem.baselines) == {"h2o", "streaming_llm", "random"}
    assert problem.config.maximize and problem.config.score_round == 4
    assert problem.warnings == []
