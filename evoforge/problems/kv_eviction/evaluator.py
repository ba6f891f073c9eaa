"""Evaluator for KV-cache eviction under a memory budget during decoding.

Synthetic per-head attention traces (attention sinks, a recency band, persistent
heavy hitters, topics that shift and come back) are decoded token by token. A
cache of at most ``B`` past tokens is kept per head. At step ``t`` the new token
``t`` joins, the query of step ``t`` attends over the cached tokens plus itself,
and the program's ``keep_score(attn, acc, pos, dist, budget, state)`` scores the
positions; if more than ``B`` tokens are then cached, the lowest-scoring one is
evicted (ties: the oldest). An evicted token never comes back.

Per step and head, with ``A`` the full-cache attention row and ``K`` the attended set:

- recall        = sum of A over K (the attention mass the cache still holds);
- output error  = ||o_K - o|| / ||o||, with o = A @ V the full-cache output and
                  o_K the output renormalized over K.

Both are averaged over heads and over the steps after the first eviction (t > B),
then over sequences. For each budget (5%, 10%, 20% of the sequence length)
``quality = (recall + 1 - output_error) / 2``; ``combined_score`` is the mean
quality over the budgets (higher is better, 1 means nothing is lost).
"""

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from evoforge.problem import kit

HERE = Path(__file__).resolve().parent
# the decoding loop, which runs in the candidate's process
harness = kit.load_module(HERE / "harness.py", "_kv_eviction_harness")

HEADS = 8
HEAD_DIM = 16
BUDGET_FRACTIONS = (0.05, 0.10, 0.20)

# Trace generation.
NUM_SINKS = 4            # the first tokens; token 0 is the strongest sink
TOPIC_POOL = 5           # distinct topics; segments draw from them, so topics recur
SEGMENT_MIN, SEGMENT_MAX = 24, 96
HEAVY_HITTER_RATE = 0.03

# Splits: name -> (seed, sequences, tokens per sequence).
SPLITS: dict[str, tuple[int, int, int]] = {
    "train": (1618, 2, 384),
    "test": (2718, 4, 768),
}

Policy = Callable[..., np.ndarray]


class EvictionError(ValueError):
    """A cache history that breaks the rules."""


@dataclass(frozen=True)
class Trace:
    """One decoded sequence: attention ``attn[h, t, j]`` (zero for j > t) and values."""

    name: str
    attn: np.ndarray      # (heads, n, n), each row t sums to 1 over j <= t
    values: np.ndarray    # (heads, n, HEAD_DIM)
    topic: np.ndarray     # (n,) topic of each token (for inspection)
    heavy: np.ndarray     # (heads, n) persistent heavy hitters

    @property
    def length(self) -> int:
        return self.attn.shape[1]

    @property
    def output(self) -> np.ndarray:
        """Full-cache attention output, (heads, n, HEAD_DIM)."""
        return self.attn @ self.values


# ---------------------------------------------------------------- instances


def _topics(rng: np.random.Generator, n: int) -> np.ndarray:
    """Topic of each token: segments of random length; a new segment changes topic."""
    topic = np.empty(n, dtype=np.int64)
    current = int(rng.integers(TOPIC_POOL))
    start = 0
    while start < n:
        length = int(rng.integers(SEGMENT_MIN, SEGMENT_MAX + 1))
        topic[start:start + length] = current
        start += length
        current = int((current + rng.integers(1, TOPIC_POOL)) % TOPIC_POOL)
    return topic


def make_trace(seed: int, index: int, n: int) -> Trace:
    """One sequence of ``n`` tokens with ``HEADS`` heads of different character."""
    rng = np.random.default_rng([seed, index, n])
    topic = _topics(rng, n)
    salience = rng.standard_normal(n)                       # importance within a topic
    heavy_global = rng.random(n) < HEAVY_HITTER_RATE
    heavy = heavy_global[None, :] & (rng.random((HEADS, n)) < 0.7)
    heavy[:, :NUM_SINKS] = False
    sink = np.zeros(n)
    sink[:NUM_SINKS] = [1.0, 0.5, 0.35, 0.25]

    # per-head character: how much each effect counts
    a_sink = rng.uniform(2.0, 5.0, HEADS)
    a_recent = rng.uniform(0.5, 3.5, HEADS)
    tau = np.exp(rng.uniform(np.log(3.0), np.log(48.0), HEADS))
    a_heavy = rng.uniform(1.0, 3.5, HEADS)
    a_topic = rng.uniform(0.5, 3.0, HEADS)
    noise = rng.uniform(0.4, 1.0, HEADS)

    # logits (heads, query t, key j), built in place in float32
    f32 = np.float32
    logits = rng.standard_normal((HEADS, n, n), dtype=f32)
    logits *= noise.astype(f32)[:, None, None]
    dist = np.subtract.outer(np.arange(n), np.arange(n)).astype(f32)
    np.maximum(dist, 0, out=dist)
    for h in range(HEADS):
        logits[h] += f32(a_recent[h]) * np.exp(-dist / f32(tau[h]))
    same_topic = topic[:, None] == topic[None, :]
    relevance = (same_topic * (1.0 + 0.5 * salience[None, :])).astype(f32)
    logits += (a_topic[:, None, None] * relevance[None]).astype(f32)
    logits += (a_sink[:, None] * sink[None, :] + a_heavy[:, None] * heavy)[:, None, :].astype(f32)
    causal = np.tril(np.ones((n, n), dtype=bool))
    logits[:, ~causal] = -np.inf
    logits -= logits.max(axis=2, keepdims=True)
    np.exp(logits, out=logits)
    attn = logits.astype(np.float64)
    attn /= attn.sum(axis=2, keepdims=True)

    topic_vec = rng.standard_normal((HEADS, TOPIC_POOL, HEAD_DIM))
    values = 0.7 * topic_vec[:, topic, :] + rng.standard_normal((HEADS, n, HEAD_DIM))
    values[:, :NUM_SINKS] *= 0.1                            # sinks carry little content
    for array in (attn, values, topic, heavy):
        array.flags.writeable = False
    return Trace(f"kv_{seed}_{index}", attn, values, topic, heavy)


def make_traces(split: str) -> list[Trace]:
    """The sequences of ``split`` ("train" or "test"), always the same for a split."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {sorted(SPLITS)}")
    return list(_cached_traces(split))


@functools.lru_cache(maxsize=2)
def _cached_traces(split: str) -> tuple[Trace, ...]:
    # generated once per process; the arrays are read-only
    seed, count, n = SPLITS[split]
    return tuple(make_trace(seed, i, n) for i in range(count))


def budget_for(fraction: float, n: int) -> int:
    """Cached tokens allowed for a budget fraction of an ``n``-token sequence."""
    return max(1, round(fraction * n))


# ---------------------------------------------------------------- verifier


def verify_history(cache: np.ndarray, budget: int) -> None:
    """Check a whole cache history.

    ``cache[h, t, j]`` (bool, shape (heads, n, n)) says whether head ``h`` holds
    position ``j`` after step ``t``. Rules: only positions ``j <= t``; at most
    ``budget`` positions per head and step; nothing evicted comes back (after step
    ``t`` a head may hold position ``j < t`` only if it held it after step ``t - 1``).

    Raises:
        EvictionError: naming the first rule broken (earliest step, then head).
    """
    if not isinstance(cache, np.ndarray) or cache.dtype != np.bool_ or cache.ndim != 3 \
            or cache.shape[1] != cache.shape[2]:
        shape = getattr(cache, "shape", None)
        raise EvictionError(f"cache history must be a bool array (heads, n, n), got {shape}")
    heads, n, _ = cache.shape
    steps = np.arange(n)
    problems: list[tuple[int, int, str]] = []
    future = cache & (steps[None, None, :] > steps[None, :, None])
    if future.any():
        h, t, j = np.argwhere(future.transpose(1, 0, 2))[0][[1, 0, 2]]
        problems.append((t, h, f"step {t}: head {h} holds position {j}, "
                               "a token not generated yet"))
    size = cache.sum(axis=2)
    if (size > budget).any():
        t, h = np.argwhere((size > budget).T)[0]
        problems.append((t, h, f"step {t}: head {h} holds {size[h, t]} tokens, "
                               f"over the budget of {budget}"))
    before = np.zeros_like(cache)
    before[:, 1:] = cache[:, :-1]
    back = cache & ~before & (steps[None, None, :] < steps[None, :, None])
    if back.any():
        t, h, j = np.argwhere(back.transpose(1, 0, 2))[0]
        problems.append((t, h, f"step {t}: head {h} holds position {j} again after it "
                               "was evicted"))
    if problems:
        raise EvictionError(min(problems)[2])


# ---------------------------------------------------------------- decoding


def load_policy(program_path: str | Path) -> kit.Program:
    """Start the program at ``program_path`` in its own process (see evoforge.problem.kit).

    Calling the result calls its ``keep_score`` there.
    """
    return kit.load_program(
        program_path, {"keep_score": "keep_score(attn, acc, pos, dist, budget, state)"},
        harness=HERE / "harness.py")


def decode(trace: Trace, policy: Policy, budget: int) -> np.ndarray:
    """Decode ``trace`` with the function ``policy`` here (see harness.decode).

    Returns:
        The cache history: ``cache[h, t, j]`` is True when head ``h`` holds
        position ``j`` after step ``t`` (see ``verify_history``).
    """
    return np.asarray(harness.decode(harness.local(policy), trace.attn, budget, trace.name))


def cache_metrics(trace: Trace, history: np.ndarray, budget: int) -> tuple[float, float]:
    """Recall and output error of a (verified) cache history, averaged over the
    heads and the steps ``t > budget`` (the steps whose query misses something).
    """
    heads, n = trace.attn.shape[:2]
    attended = np.zeros_like(history)
    attended[:, 1:] = history[:, :-1]
    attended[:, np.arange(n), np.arange(n)] = True
    held = trace.attn * attended
    recall = held.sum(axis=2)                            # (heads, n)
    out = (held @ trace.values) / recall[:, :, None]
    full = trace.output
    error = np.linalg.norm(out - full, axis=2) / np.linalg.norm(full, axis=2)
    steps = slice(budget + 1, n)
    if budget + 1 >= n:
        raise ValueError(f"budget {budget} leaves no step to measure in {trace.name}")
    return float(recall[:, steps].mean()), float(error[:, steps].mean())


# ---------------------------------------------------------------- scoring


def score_policy(policy: Policy, split: str) -> kit.Scores:
    """Decode every sequence of ``split`` at every budget with the function ``policy``, here."""
    return score_histories(split, lambda trace, budget: decode(trace, policy, budget))


def score_program(program: kit.Program, split: str) -> kit.Scores:
    """Decode in the program's process; check and score the cache histories here."""
    def decoder(trace: Trace, budget: int) -> np.ndarray:
        try:
            history = program.run("decode", trace.attn, budget, trace.name)
        except kit.CandidateError as exc:
            raise ValueError(str(exc)) from None
        shape = (trace.attn.shape[0], trace.length, trace.length)
        if not isinstance(history, np.ndarray) or history.dtype != bool \
                or history.shape != shape:
            raise EvictionError(f"the decoding loop returned no boolean array of shape {shape}")
        return history
    return score_histories(split, decoder)


def score_histories(split: str, decoder: Callable[[Trace, int], np.ndarray]) -> kit.Scores:
    """Verify and score the cache history ``decoder`` gives per sequence and budget.

    The artifact ``instance_scores`` holds each (budget, sequence) pair's quality,
    budgets outer, sequences inner (higher is better, like ``combined_score``).
    """
    traces = make_traces(split)
    metrics: dict[str, float] = {}
    qualities = []
    per_instance: list[float] = []
    recalls = []
    errors = []
    for fraction in BUDGET_FRACTIONS:
        pct = round(100 * fraction)
        results = []
        for trace in traces:
            budget = budget_for(fraction, trace.length)
            history = decoder(trace, budget)
            verify_history(history, budget)
            results.append(cache_metrics(trace, history, budget))
            per_instance.append(0.5 * (results[-1][0] + 1.0 - results[-1][1]))
        recall = float(np.mean([r for r, _ in results]))
        error = float(np.mean([e for _, e in results]))
        quality = 0.5 * (recall + 1.0 - error)
        if not all(math.isfinite(v) for v in (recall, error)):
            raise ValueError(f"budget {pct}%: metrics are not finite")
        metrics[f"recall_{pct}"] = round(recall, 6)
        metrics[f"output_error_{pct}"] = round(error, 6)
        metrics[f"quality_{pct}"] = round(quality, 6)
        qualities.append(quality)
        recalls.append(recall)
        errors.append(error)
    metrics["recall"] = round(float(np.mean(recalls)), 6)
    metrics["output_error"] = round(float(np.mean(errors)), 6)
    metrics["combined_score"] = round(float(np.mean(qualities)), 6)
    metrics["sequences"] = len(traces)
    metrics["tokens"] = traces[0].length
    return kit.Scores(metrics, {"instance_scores": [round(q, 6) for q in per_instance]})


def evaluate(program_path: str) -> kit.Scores:
    """Score the program on the training split (used during evolution)."""
    with load_policy(program_path) as program:
        return score_program(program, "train")


def evaluate_test(program_path: str) -> kit.Scores:
    """Score the program on the held-out test split."""
    with load_policy(program_path) as program:
        return score_program(program, "test")


# ---------------------------------------------------------------- functional hashing

PROBE_FUNCTION = "keep_score"
"""Functional hashing calls the evolved ``keep_score`` directly on :func:`probe_inputs`."""

PROBE_TOKENS = 40  # the steps of one probe sequence
PROBE_BUDGETS = (6, 14)


def probe_steps(attn: np.ndarray, budget: int) -> list[tuple[Any, ...]]:
    """The arguments ``keep_score`` gets at each eviction step of one short sequence.

    The cache evolves as H2O would evict (highest accumulated attention kept), so the
    inputs look like a real decode: renormalized attention with zeros where a token
    left, growing ``acc``, and one ``state`` dict shared by all the steps of the
    sequence (a policy that keeps state behaves differently from one that does not).
    """
    heads, n = attn.shape[:2]
    kept = np.zeros((heads, n), dtype=bool)
    acc = np.zeros((heads, n))
    state: dict[str, Any] = {}
    steps: list[tuple[Any, ...]] = []
    for t in range(n):
        kept[:, t] = True
        held = np.where(kept[:, :t + 1], attn[:, t, :t + 1], 0.0)
        step_attn = held / held.sum(axis=1, keepdims=True)
        acc[:, :t + 1] += step_attn
        if t < budget:
            continue
        pos = np.arange(t + 1)
        dist = (t - pos).astype(np.float64)
        pos.flags.writeable = False
        dist.flags.writeable = False
        steps.append((step_attn, acc[:, :t + 1].copy(), pos, dist, budget, state))
        score = np.where(kept[:, :t + 1], acc[:, :t + 1], np.inf)
        kept[np.arange(heads), np.argmin(score, axis=1)] = False
    return steps


def probe_inputs() -> list[tuple[Any, ...]]:
    """Functional hashing inputs: every eviction step of two short training-like
    sequences, at a tight and a loose budget (about 60 calls, milliseconds)."""
    inputs: list[tuple[Any, ...]] = []
    for index, budget in enumerate(PROBE_BUDGETS):
        trace = make_trace(7919, index, PROBE_TOKENS)
        inputs += probe_steps(trace.attn, budget)
    return inputs
