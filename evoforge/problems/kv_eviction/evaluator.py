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

import importlib.util
import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent

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
        return np.einsum("htj,hjd->htd", self.attn, self.values)


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

    t = np.arange(n)[:, None]
    j = np.arange(n)[None, :]
    dist = (t - j).astype(np.float64)
    same_topic = (topic[:, None] == topic[None, :]).astype(np.float64)
    relevance = same_topic * (1.0 + 0.5 * salience[None, :])
    logits = (a_sink[:, None, None] * sink[None, None, :]
              + a_recent[:, None, None] * np.exp(-np.maximum(dist, 0.0)[None] / tau[:, None, None])
              + a_heavy[:, None, None] * heavy[:, None, :]
              + a_topic[:, None, None] * relevance[None]
              + noise[:, None, None] * rng.standard_normal((HEADS, n, n)))
    logits = np.where((j <= t)[None], logits, -np.inf)
    logits -= logits.max(axis=2, keepdims=True)
    attn = np.exp(logits)
    attn /= attn.sum(axis=2, keepdims=True)

    topic_vec = rng.standard_normal((HEADS, TOPIC_POOL, HEAD_DIM))
    values = 0.7 * topic_vec[:, topic, :] + rng.standard_normal((HEADS, n, HEAD_DIM))
    values[:, :NUM_SINKS] *= 0.1                            # sinks carry little content
    return Trace(f"kv_{seed}_{index}", attn, values, topic, heavy)


def make_traces(split: str) -> list[Trace]:
    """The sequences of ``split`` ("train" or "test"), always the same for a split."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {sorted(SPLITS)}")
    seed, count, n = SPLITS[split]
    return [make_trace(seed, i, n) for i in range(count)]


def budget_for(fraction: float, n: int) -> int:
    """Cached tokens allowed for a budget fraction of an ``n``-token sequence."""
    return max(1, round(fraction * n))


# ---------------------------------------------------------------- verifier


def verify_step(previous: np.ndarray, kept: np.ndarray, t: int, budget: int) -> None:
    """Check the cache after step ``t`` against the cache after step ``t - 1``.

    Both are boolean arrays (heads, n): which positions each head holds. The cache
    after step ``t`` may hold only positions <= t, at most ``budget`` per head, and
    nothing that was evicted before (only position ``t`` may be new).

    Raises:
        EvictionError: naming the first rule broken.
    """
    if kept.dtype != np.bool_ or kept.shape != previous.shape:
        raise EvictionError(f"step {t}: cache mask has dtype {kept.dtype} and shape "
                            f"{kept.shape}, expected bool {previous.shape}")
    if kept[:, t + 1:].any():
        head, pos = np.argwhere(kept[:, t + 1:])[0]
        raise EvictionError(f"step {t}: head {head} holds position {t + 1 + pos}, "
                            "a token not generated yet")
    size = kept.sum(axis=1)
    if (size > budget).any():
        head = int(np.argmax(size > budget))
        raise EvictionError(f"step {t}: head {head} holds {size[head]} tokens, "
                            f"over the budget of {budget}")
    back = kept[:, :t] & ~previous[:, :t]
    if back.any():
        head, pos = np.argwhere(back)[0]
        raise EvictionError(f"step {t}: head {head} holds position {pos} again after it "
                            "was evicted")


# ---------------------------------------------------------------- decoding


def load_policy(program_path: str | Path) -> Policy:
    """Import the program at ``program_path`` and return its ``keep_score`` function."""
    path = Path(program_path)
    spec = importlib.util.spec_from_file_location(f"_kv_program_{uuid.uuid4().hex}", path)
    if spec is None or spec.loader is None:
        raise ValueError(f"{path}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    policy = getattr(module, "keep_score", None)
    if not callable(policy):
        raise ValueError(
            f"{path}: defines no function keep_score(attn, acc, pos, dist, budget, state)")
    return policy


def _as_scores(raw: object, heads: int, t: int) -> np.ndarray:
    """The policy's return value as float scores of shape (heads, t + 1)."""
    try:
        scores = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"keep_score returned a {type(raw).__name__} at step {t}, "
                         "not an array of numbers") from None
    try:
        return np.broadcast_to(scores, (heads, t + 1))
    except ValueError:
        raise ValueError(f"keep_score returned shape {scores.shape} at step {t}; expected "
                         f"scores broadcastable to (heads, t + 1) = {(heads, t + 1)}") from None


def decode(trace: Trace, policy: Policy, budget: int,
           check: bool = True) -> tuple[float, float]:
    """Decode ``trace`` with a cache of ``budget`` tokens; return (recall, output error).

    Raises:
        ValueError: if the policy raises or returns scores of the wrong shape or NaN.
        EvictionError: if a cache breaks the rules (cannot happen with this driver;
            checked anyway when ``check``).
    """
    heads, n = trace.attn.shape[:2]
    full = trace.output
    full_norm = np.linalg.norm(full, axis=2)
    kept = np.zeros((heads, n), dtype=bool)
    acc = np.zeros((heads, n))
    pos_all = np.arange(n)
    dist_all = np.arange(n, dtype=np.float64)[::-1].copy()   # dist_all[n-1-t:] = t..0
    pos_all.flags.writeable = False
    dist_all.flags.writeable = False
    state: dict = {}
    rows = np.arange(heads)
    recall_sum = np.zeros(heads)
    error_sum = np.zeros(heads)
    measured = 0
    for t in range(n):
        kept[:, t] = True                       # the new token joins the cache
        row = trace.attn[:, t, :t + 1]
        held = np.where(kept[:, :t + 1], row, 0.0)
        mass = held.sum(axis=1)
        if t > budget:
            out = np.einsum("hj,hjd->hd", held, trace.values[:, :t + 1]) / mass[:, None]
            recall_sum += mass
            error_sum += np.linalg.norm(out - full[:, t], axis=1) / full_norm[:, t]
            measured += 1
        attn = held / mass[:, None]             # what the model computes with this cache
        acc[:, :t + 1] += attn
        if t < budget:                          # nothing to evict yet
            continue
        pos = pos_all[:t + 1]
        dist = dist_all[n - 1 - t:]
        try:
            raw = policy(attn, acc[:, :t + 1], pos, dist, budget, state)
        except Exception as exc:
            raise ValueError(f"keep_score raised {type(exc).__name__}: {exc} "
                             f"(step {t} of {trace.name}, budget {budget})") from exc
        scores = _as_scores(raw, heads, t)
        if np.isnan(scores).any():
            raise ValueError(f"keep_score returned NaN at step {t} of {trace.name} "
                             f"(budget {budget})")
        # NaN marks the positions already gone, so +-inf scores still rank among the cached
        victim = np.nanargmin(np.where(kept[:, :t + 1], scores, np.nan), axis=1)
        previous = kept.copy() if check else None
        kept[rows, victim] = False
        if check:
            verify_step(previous, kept, t, budget)
    if measured == 0:
        raise ValueError(f"budget {budget} leaves no step to measure in {trace.name}")
    return float(recall_sum.mean() / measured), float(error_sum.mean() / measured)


# ---------------------------------------------------------------- scoring


def score_policy(policy: Policy, split: str) -> dict[str, float]:
    """Decode every sequence of ``split`` at every budget and return the metrics."""
    traces = make_traces(split)
    metrics: dict[str, float] = {}
    qualities = []
    recalls = []
    errors = []
    for fraction in BUDGET_FRACTIONS:
        pct = round(100 * fraction)
        results = [decode(tr, policy, budget_for(fraction, tr.length)) for tr in traces]
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
    return metrics


def evaluate(program_path: str) -> dict[str, float]:
    """Score the program on the training split (used during evolution)."""
    return score_policy(load_policy(program_path), "train")


def evaluate_test(program_path: str) -> dict[str, float]:
    """Score the program on the held-out test split."""
    return score_policy(load_policy(program_path), "test")
