"""The built-in kv_eviction_real problem: the recorded traces, the evaluator on them, and
the ground truth by SmolLM2's perplexity with its cache evicted.

The model tests (marked slow, named ``test_model_*``) load the real SmolLM2-135M and are
skipped only where the local model stack is missing (``make test`` installs it).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from evoforge.cli import app
from evoforge.problem import kit

PROBLEM = Path(__file__).resolve().parents[2] / "evoforge" / "problems" / "kv_eviction_real"
ev = kit.load_module(PROBLEM / "evaluator.py", "_test_kv_real_evaluator")
kv_model = kit.load_module(PROBLEM / "model.py", "_test_kv_real_model")

HEADS, TOKENS, HEAD_DIM = 18, 384, 64    # 6 layers x 3 KV heads; see make_traces.py


def _missing() -> str | None:
    """Why the real model cannot run here, or None when it can."""
    absent = [n for n in ("torch", "transformers", "gguf", "accelerate")
              if importlib.util.find_spec(n) is None]
    if absent:
        return f"{', '.join(absent)} not installed (evoforge install-local)"
    from evoforge.proposers.llm.local import LLMError, find_smollm2_gguf
    try:
        find_smollm2_gguf()
    except LLMError as exc:
        return str(exc)
    return None


MISSING = _missing()
needs_model = pytest.mark.skipif(MISSING is not None, reason=f"local model: {MISSING}")
# the model tests share one loaded model: one xdist worker runs them all
same_worker = pytest.mark.xdist_group("kv_eviction_real_model")


# ------------------------------------------------------------------ the shipped data


@pytest.mark.parametrize(("split", "sequences"), [("train", 2), ("test", 3)])
def test_stored_traces_are_causal_attention_rows(split: str, sequences: int) -> None:
    with np.load(PROBLEM / f"traces_{split}.npz") as data:
        attn, values = data["attn"], data["values"]
        assert attn.dtype == np.float16 and values.dtype == np.float16
        assert attn.shape == (sequences, HEADS, TOKENS, TOKENS)
        assert values.shape == (sequences, HEADS, TOKENS, HEAD_DIM)
        assert data["tokens"].shape == (sequences, TOKENS)
        assert list(data["layers"]) == [0, 6, 12, 18, 24, 29]
        rows = attn.astype(np.float64)
    upper = np.triu(np.ones((TOKENS, TOKENS), dtype=bool), k=1)
    assert not rows[..., upper].any(), "attention above the diagonal"
    # float16 rounding of up to 384 entries per row; the evaluator renormalizes
    np.testing.assert_allclose(rows.sum(axis=-1), 1.0, atol=5e-3)
    assert (rows >= 0).all()
    # a real model: token 0 is an attention sink in most heads (the synthetic traces'
    # assumption, here measured), and no head is uniform
    assert np.median(rows[:, :, 64:, 0].mean(axis=-1)) > 0.2
    assert rows[:, :, -1].max(axis=-1).min() > 2.0 / TOKENS


def test_data_stays_small_and_splits_use_different_documents() -> None:
    size = sum((PROBLEM / f"traces_{s}.npz").stat().st_size for s in ("train", "test"))
    assert size < 30e6
    texts = kv_model.read_texts()
    assert set(texts["train"]).isdisjoint(texts["test"])
    train_paragraphs = {p for t in texts["train"].values() for p in t.split("\n\n") if len(p) > 80}
    test_paragraphs = {p for t in texts["test"].values() for p in t.split("\n\n") if len(p) > 80}
    assert train_paragraphs and test_paragraphs and not train_paragraphs & test_paragraphs
    with np.load(PROBLEM / "traces_train.npz") as train, \
            np.load(PROBLEM / "traces_test.npz") as test:
        assert list(train["names"]) == list(texts["train"])
        assert list(test["names"]) == list(texts["test"])


def test_evaluator_reads_the_recorded_traces_as_rows_summing_to_one() -> None:
    traces = ev.make_traces("test")
    assert [t.name for t in traces] == ["test/compound", "test/comparisons",
                                        "test/specialnames"]
    for trace in traces:
        assert trace.attn.shape == (HEADS, TOKENS, TOKENS)
        np.testing.assert_allclose(trace.attn.sum(axis=2), 1.0, atol=1e-12)
        assert not trace.attn.flags.writeable
    with pytest.raises(ValueError, match="unknown split"):
        ev.make_traces("validation")


# ------------------------------------------------------------------ the evaluator


def _h2o(attn, acc, pos, dist, budget, state):
    return np.where(dist < budget // 2, np.inf, acc)


def _window(attn, acc, pos, dist, budget, state):
    return -dist


def test_same_contract_and_metrics_as_kv_eviction() -> None:
    synthetic = kit.load_module(PROBLEM.parent / "kv_eviction" / "evaluator.py", "_test_kv_syn")
    real = ev.score_policy(_h2o, "train")
    assert set(real) == set(synthetic.score_policy(_h2o, "train"))
    assert real["tokens"] == TOKENS and real["sequences"] == 2
    # the sinks are real: dropping token 0 (a sliding window) loses far more here
    window = ev.score_policy(_window, "train")
    assert window["combined_score"] < real["combined_score"] - 0.5
    assert window["recall_5"] < real["recall_5"]


def test_policy_errors_are_one_line_reasons() -> None:
    with pytest.raises(ValueError, match=r"keep_score returned shape \(3,\) at step 19"):
        ev.score_policy(lambda attn, acc, pos, dist, budget, state: np.zeros(3), "train")


def test_evaluate_runs_the_program_in_its_own_process(tmp_path: Path) -> None:
    program = tmp_path / "p.py"
    program.write_text((PROBLEM / "baselines" / "h2o.py").read_text())
    scores = ev.evaluate(str(program))
    assert scores["combined_score"] == ev.score_policy(_h2o, "train")["combined_score"]


def test_cli_perplexity_needs_a_problem_that_has_one(tmp_path: Path) -> None:
    program = tmp_path / "p.py"
    program.write_text("x = 1\n")
    result = CliRunner().invoke(app, ["problems", "score", "bin_packing", str(program),
                                      "--perplexity"])
    assert result.exit_code != 0
    assert "bin_packing has no perplexity check" in str(result.exception)


# ------------------------------------------------------------------ the real model


@pytest.fixture(scope="session")
def loaded():
    return kv_model.load_model()


@pytest.mark.slow
@needs_model
@same_worker
def test_model_regenerates_the_stored_traces(loaded) -> None:
    """make_traces.py's recording, redone for one train sequence: the same tokens and
    the same float16 attention and values, up to the last bit: CPUs of other models run
    other kernels (on an AMD EPYC, 0.1 % of the numbers differ by one float16 step)."""
    traces = kit.load_module(PROBLEM / "make_traces.py", "_test_kv_real_make")
    name, text = next(iter(kv_model.read_texts()["train"].items()))
    ids = loaded.tokens(text, traces.TOKENS)
    _, recorded = loaded.forward(ids, record_layers=(0, 29))
    with np.load(PROBLEM / "traces_train.npz") as data:
        assert str(data["names"][0]) == name
        assert list(data["tokens"][0]) == ids
        stored_attn, stored_values = data["attn"][0], data["values"][0]
    for slot, layer in ((slice(0, 3), 0), (slice(15, 18), 29)):
        attn, values = recorded[layer]
        if loaded.device == "cpu":
            # one float16 step at most: 2**-10 of the number, 2**-14 near zero
            for ours, stored in ((attn, stored_attn[slot]), (values, stored_values[slot])):
                np.testing.assert_allclose(ours.astype(np.float16).astype(np.float32),
                                           stored.astype(np.float32), rtol=2**-10,
                                           atol=2**-14)
        else:   # GPU kernels round differently
            np.testing.assert_allclose(attn, stored_attn[slot], atol=2e-3)


@pytest.mark.slow
@needs_model
@same_worker
def test_model_keeping_everything_is_the_full_cache(loaded) -> None:
    """The eviction path with a cache that holds everything computes the full cache."""
    perplexity = kit.load_module(PROBLEM / "perplexity.py", "_test_kv_real_ppl")
    ids = loaded.tokens(kv_model.read_texts()["test"]["comparisons"], 64)
    full = perplexity.evicted_nll(loaded, ids, None, 64)
    kept = perplexity.evicted_nll(loaded, ids, perplexity.local_policy(_window), 64)
    np.testing.assert_allclose(kept, full, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
@needs_model
@same_worker
def test_model_perplexity_ranks_full_cache_h2o_random(loaded) -> None:
    """The ground truth on a tiny slice (128 tokens, a 13-token cache per KV head in all 30
    layers): full cache < H2O < random, as the H2O paper reports."""
    perplexity = kit.load_module(PROBLEM / "perplexity.py", "_test_kv_real_ppl")
    random_rule = kit.load_module(PROBLEM / "baselines" / "random.py", "_test_kv_random")
    results = perplexity.measure(
        loaded, {"h2o": perplexity.local_policy(_h2o),
                 "random": perplexity.local_policy(random_rule.keep_score)},
        fractions=(0.1,), tokens=128, documents=["specialnames"])
    ppl = {r.policy: r.perplexity for r in results}
    assert [r.budget for r in results] == [None, 13, 13]
    assert ppl["full cache"] < ppl["h2o"] < ppl["random"], ppl
    assert "h2o" in perplexity.table(results)


@pytest.mark.slow
@needs_model
@same_worker
def test_model_report_runs_programs_in_their_own_processes(loaded, tmp_path: Path) -> None:
    """What ``evoforge problems score kv_eviction_real FILE --perplexity`` prints, on 64
    tokens of one document: the program (here H2O's file) and every baseline, each in
    its own process."""
    perplexity = kit.load_module(PROBLEM / "perplexity.py", "_test_kv_real_ppl")
    program = tmp_path / "p.py"
    program.write_text((PROBLEM / "baselines" / "h2o.py").read_text())
    text = perplexity.report(program, fractions=(0.1,), tokens=64, loaded=loaded,
                             documents=["comparisons"])
    rows = {line.split()[0]: line.split()[-1] for line in text.splitlines()[2:]}
    assert set(rows) == {"full", "program", "evolved_synthetic", "h2o", "random",
                         "streaming_llm"}
    assert rows["program"] == rows["h2o"]
    assert float(rows["full"]) < float(rows["h2o"]) < float(rows["random"])
    broken = tmp_path / "broken.py"
    broken.write_text("def keep_score(attn, acc, pos, dist, budget, state):\n"
                      "    return acc[:1, :3]\n")
    with pytest.raises(ValueError, match=r"keep_score returned shape \(1, 3\)"):
        perplexity.report(broken, fractions=(0.1,), tokens=64, loaded=loaded,
                          documents=["comparisons"])
