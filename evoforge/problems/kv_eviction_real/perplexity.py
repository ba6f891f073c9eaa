"""Ground truth for kv_eviction_real: SmolLM2's perplexity with its KV cache evicted.

    evoforge problems score kv_eviction_real PROGRAM --perplexity

runs SmolLM2-135M over the held-out documents (the test split's text, ``TOKENS``
tokens each) with every layer's cache evicted per KV head by the program's
``keep_score`` at each budget, and prints the perplexity next to the full cache's and
every baseline's. Eviction per layer is model.py's (teacher forced, exact); the
program runs in its own process, where kv_eviction's decoding loop calls it, and each
layer's cache history is verified here before the model uses it.
"""

import contextlib
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from evoforge.problem import kit

HERE = Path(__file__).resolve().parent
# the siblings, loaded by path under private names (a problem folder is no package)
kv_model = kit.load_module(HERE / "model.py", "_kv_eviction_real_model")
evaluator = kit.load_module(HERE / "evaluator.py", "_kv_eviction_real_evaluator")

TOKENS = 384
"""Tokens per held-out document (the same length as the traces)."""
BUDGET_FRACTIONS = evaluator.BUDGET_FRACTIONS

# policy(attn (kv_heads, n, n), budget, name) -> cache history (kv_heads, n, n)
HistoryFn = Callable[[np.ndarray, int, str], np.ndarray]


@dataclass(frozen=True)
class Result:
    """Perplexity of one policy at one budget over the held-out documents."""

    policy: str
    fraction: float | None        # None: the full cache
    budget: int | None
    perplexity: float
    seconds: float


def local_policy(keep_score: Callable[..., np.ndarray]) -> HistoryFn:
    """A HistoryFn running ``keep_score`` here, in this process (tests, trusted code)."""
    harness = evaluator.base.harness
    return lambda attn, budget, name: np.asarray(
        harness.decode(harness.local(keep_score), attn, budget, name))


def program_policy(program: kit.Program) -> HistoryFn:
    """A HistoryFn running the decoding loop in the program's own process."""
    def run(attn: np.ndarray, budget: int, name: str) -> np.ndarray:
        try:
            return np.asarray(program.run("decode", attn, budget, name))
        except kit.CandidateError as exc:
            raise ValueError(str(exc)) from None
    return run


def evicted_nll(loaded: kv_model.LoadedModel, ids: Sequence[int], policy: HistoryFn | None,
                budget: int, name: str = "") -> np.ndarray:
    """Per-token negative log-likelihoods of ``ids`` with every layer's cache evicted by
    ``policy`` at ``budget`` tokens per KV head (``policy`` None: the full cache)."""
    if policy is None:
        return loaded.forward(ids)[0]

    def decoder(layer: int, attn: np.ndarray) -> np.ndarray:
        history = policy(attn, budget, f"{name} layer {layer}")
        if history.dtype != bool or history.shape != attn.shape:
            raise evaluator.EvictionError(
                f"the decoding loop returned no boolean array of shape {attn.shape}")
        evaluator.verify_history(history, budget)
        return history

    return loaded.forward(ids, decoder=decoder)[0]


def measure(loaded: kv_model.LoadedModel, policies: dict[str, HistoryFn],
            fractions: Sequence[float] = BUDGET_FRACTIONS, tokens: int = TOKENS,
            documents: Sequence[str] | None = None) -> list[Result]:
    """Perplexity of the full cache and of each policy at each budget fraction, over the
    test documents (all, or those named), ``tokens`` tokens each."""
    texts = kv_model.read_texts()["test"]
    names = list(documents) if documents is not None else list(texts)
    ids = {name: loaded.tokens(texts[name], tokens) for name in names}

    def run(label: str, policy: HistoryFn | None, fraction: float | None) -> Result:
        started = time.perf_counter()
        budget = evaluator.budget_for(fraction, tokens) if fraction is not None else tokens
        nll = np.concatenate([evicted_nll(loaded, ids[n], policy, budget, n) for n in names])
        return Result(label, fraction, budget if fraction is not None else None,
                      kv_model.perplexity(nll), time.perf_counter() - started)

    results = [run("full cache", None, None)]
    for fraction in fractions:
        for label, policy in policies.items():
            results.append(run(label, policy, fraction))
    return results


def baseline_paths() -> dict[str, Path]:
    """The problem's baselines, by name."""
    return {p.stem: p for p in sorted((HERE / "baselines").glob("*.py"))}


def score_programs(programs: dict[str, Path], fractions: Sequence[float] = BUDGET_FRACTIONS,
                   tokens: int = TOKENS, loaded: kv_model.LoadedModel | None = None,
                   documents: Sequence[str] | None = None) -> list[Result]:
    """Measure each program (each in its own process) with one model (loaded here
    unless given)."""
    loaded = loaded if loaded is not None else kv_model.load_model()
    with contextlib.ExitStack() as stack:
        policies = {label: program_policy(stack.enter_context(evaluator.load_policy(path)))
                    for label, path in programs.items()}
        return measure(loaded, policies, fractions, tokens, documents)


def table(results: Sequence[Result]) -> str:
    """A plain-text table: one row per policy, one column per budget."""
    full = next(r.perplexity for r in results if r.fraction is None)
    fractions = sorted({r.fraction for r in results if r.fraction is not None})
    budgets = {r.fraction: r.budget for r in results if r.fraction is not None}
    head = ["policy".ljust(20)] + [f"{round(100 * f)}% ({budgets[f]} tok)".rjust(14)
                                   for f in fractions]
    lines = [" ".join(head), f"{'full cache':20} " + " ".join(
        f"{full:14.3f}" for _ in fractions)]
    for label in dict.fromkeys(r.policy for r in results if r.fraction is not None):
        row = {r.fraction: r.perplexity for r in results if r.policy == label}
        lines.append(f"{label:20} " + " ".join(f"{row[f]:14.3f}" for f in fractions))
    return "\n".join(lines)


def report(program_path: str | Path, fractions: Sequence[float] = BUDGET_FRACTIONS,
           tokens: int = TOKENS, loaded: kv_model.LoadedModel | None = None,
           documents: Sequence[str] | None = None) -> str:
    """The perplexity table of the program and every baseline (what the CLI prints),
    over the test documents (all, or those named)."""
    programs = {"program": Path(program_path), **baseline_paths()}
    started = time.perf_counter()
    results = score_programs(programs, fractions, tokens, loaded, documents)
    seconds = time.perf_counter() - started
    count = len(documents) if documents is not None else len(kv_model.read_texts()["test"])
    return (f"SmolLM2-135M perplexity on {count} held-out "
            f"documents x {tokens} tokens, cache evicted per layer and KV head "
            f"(lower is better; {seconds:.0f} s)\n" + table(results))


if __name__ == "__main__":
    print(report(sys.argv[1]))
