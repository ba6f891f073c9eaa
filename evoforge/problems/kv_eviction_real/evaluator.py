"""Evaluator for KV-cache eviction on attention traces recorded from SmolLM2-135M.

The contract, the decoding loop, the verifier and the metrics are kv_eviction's
(its evaluator and harness are reused, not copied): the program's
``keep_score(attn, acc, pos, dist, budget, state)`` picks the token each head
evicts at each step, and ``combined_score`` is the mean over budgets of 5%, 10% and
20% of the sequence of ``(recall + 1 - output_error) / 2``. Only the traces differ:
here they are the real attention rows and value vectors of 6 layers x 3 KV heads of
SmolLM2-135M over English prose (``make_traces.py``; see the README), 18 heads per
sequence. The ground truth, the model's own perplexity with its cache evicted by the
policy, is ``perplexity.py``.
"""

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from evoforge.problem import kit

HERE = Path(__file__).resolve().parent
BASE = HERE.parent / "kv_eviction"
# the synthetic problem's evaluator: verifier, metrics, decoding loop
base = kit.load_module(BASE / "evaluator.py", "_kv_eviction_real_base")

BUDGET_FRACTIONS = base.BUDGET_FRACTIONS
verify_history = base.verify_history
cache_metrics = base.cache_metrics
budget_for = base.budget_for
EvictionError = base.EvictionError
SPLITS = ("train", "test")


@dataclass(frozen=True)
class Trace:
    """One recorded sequence: ``attn[h, t, j]`` (zero for j > t, rows sum to 1) and values."""

    name: str
    attn: np.ndarray      # (heads, n, n) float64, heads = layers x KV heads
    values: np.ndarray    # (heads, n, head_dim) float64

    @property
    def length(self) -> int:
        return self.attn.shape[1]

    @property
    def output(self) -> np.ndarray:
        """Full-cache attention output, (heads, n, head_dim)."""
        return self.attn @ self.values


def trace_file(split: str) -> Path:
    """The shipped ``.npz`` of ``split``."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {list(SPLITS)}")
    return HERE / f"traces_{split}.npz"


def make_traces(split: str) -> list[Trace]:
    """The recorded sequences of ``split``, as float64 rows renormalized to sum to 1
    (they are stored as float16)."""
    return list(_cached_traces(split))


@functools.lru_cache(maxsize=2)
def _cached_traces(split: str) -> tuple[Trace, ...]:
    with np.load(trace_file(split)) as data:
        names = [str(n) for n in data["names"]]
        attn_all, values_all = data["attn"], data["values"]
        traces = []
        for i, name in enumerate(names):
            attn = np.tril(attn_all[i].astype(np.float64))
            attn /= attn.sum(axis=2, keepdims=True)
            values = values_all[i].astype(np.float64)
            attn.flags.writeable = False
            values.flags.writeable = False
            traces.append(Trace(f"{split}/{name}", attn, values))
    return tuple(traces)


def load_policy(program_path: str | Path) -> kit.Program:
    """Start the program in its own process, with kv_eviction's decoding loop beside it."""
    return kit.load_program(
        program_path, {"keep_score": "keep_score(attn, acc, pos, dist, budget, state)"},
        harness=BASE / "harness.py")


# This private copy of the base evaluator (loaded under its own module name) scores
# the recorded traces: its scoring functions read the traces through make_traces.
base.make_traces = make_traces
score_program = base.score_program
score_policy = base.score_policy


def evaluate(program_path: str) -> kit.Scores:
    """Score the program on the training split (used during evolution)."""
    with load_policy(program_path) as program:
        return score_program(program, "train")


def evaluate_test(program_path: str) -> kit.Scores:
    """Score the program on the held-out test split (trace metrics; for the model's
    perplexity see perplexity.py and ``evoforge problems score ... --perplexity``)."""
    with load_policy(program_path) as program:
        return score_program(program, "test")


# ---------------------------------------------------------------- functional hashing

PROBE_FUNCTION = "keep_score"
"""Functional hashing calls the evolved ``keep_score`` directly on :func:`probe_inputs`."""


def probe_inputs() -> list[tuple[object, ...]]:
    """Functional hashing inputs: the synthetic problem's (:func:`base.probe_inputs`).

    Not the recorded traces: loading them costs about 0.2 s in every probe (a fresh
    process each time), against milliseconds; the inputs only have to tell policies
    apart (the tests check they separate this problem's baselines).
    """
    return list(base.probe_inputs())
