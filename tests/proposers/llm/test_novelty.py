"""The novelty gate (evoforge.proposers.llm.novelty)."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from evoforge.proposers.llm.novelty import (
    MinHash,
    NoveltyGate,
    choose_bands,
    jaccard,
    normalize_tokens,
    shingle_hashes,
    shingles,
    signature,
    similarity,
)

ROOT = Path(__file__).resolve().parents[3]

PROGRAM = '''\
import math


def solve(values, k):
    """Return the k largest values, sorted."""
    best = []
    for v in values:
        if len(best) < k:
            best.append(v)
            best.sort()
        elif v > best[0]:
            best[0] = v
            best.sort()
    return sorted(best, reverse=True)


def score(values):
    total = 0.0
    for i, v in enumerate(values):
        total += math.sqrt(abs(v)) * (i + 1)
    return total / max(1, len(values))
'''

REFORMATTED = """\
import math
def solve(values, k):
    # keep a small sorted buffer
    best = []
    for v in values:   # one pass
        if len(best) < k:
            best.append(v); best.sort()
        elif v > best[0]:
            best[0] = v
            best.sort()
    return sorted(best,
                  reverse=True)
def score(values):
    "Weighted mean of square roots."
    total = 0.0
    for i, v in enumerate(values):
        total += math.sqrt(abs(v)) * (i + 1)   # weight by position
    return total / max(1, len(values))
"""

DIFFERENT = """\
import heapq


def solve(values, k):
    return heapq.nlargest(k, values)


def score(values):
    return sum(v * v for v in values) ** 0.5
"""


def random_program(rng: random.Random, lines: int = 40) -> str:
    names = [f"v{i}" for i in range(12)]
    ops = ["+", "-", "*", "//", "%", "^", "|", "&"]
    out = [f"def f_{rng.randrange(10**6)}(x):"]
    defined = ["x"]
    for _ in range(lines):
        target = rng.choice(names)
        a, b = rng.choice(defined), rng.choice(defined)
        const = rng.randrange(1, 1000)
        out.append(f"    {target} = ({a} {rng.choice(ops)} {const}) {rng.choice(ops)} {b}")
        defined.append(target)
    out.append(f"    return {rng.choice(defined)}")
    return "\n".join(out) + "\n"


# --- tokens and signatures ----------------------------------------------------------


def test_normalize_tokens_drops_comments_layout_docstrings() -> None:
    code = 'def f(x):\n    """doc."""\n    # note\n    return x + 1.5  # tail\n'
    assert normalize_tokens(code) == ["def", "f", "(", "x", ")", ":", "return", "x", "+", "1.5"]
    with_doc = normalize_tokens(code, drop_docstrings=False)
    assert '"""doc."""' in with_doc


def test_normalize_tokens_keeps_non_docstring_strings_and_numbers() -> None:
    assert normalize_tokens("y = 'a' + 0x10\n") == ["y", "=", "'a'", "+", "0x10"]


def test_normalize_tokens_fallback_on_bad_code() -> None:
    code = "def f(:\n    return (1,\n"  # unclosed bracket: tokenize fails
    assert normalize_tokens(code) == code.split()


def test_shingles() -> None:
    tokens = list("abcdefg")
    assert len(shingles(tokens, k=5)) == 3
    assert shingles(["a", "b"], k=5) == {"a\x1fb"}
    assert shingles([], k=5) == set()
    with pytest.raises(ValueError):
        shingles(tokens, k=0)


def test_identical_and_reformatted_code_similarity_one() -> None:
    sig = signature(PROGRAM)
    assert sig.dtype == np.uint64
    assert sig.shape == (128,)
    assert similarity(sig, signature(PROGRAM)) == 1.0
    assert normalize_tokens(PROGRAM) == normalize_tokens(REFORMATTED.replace("; ", "\n" + " " * 12))
    assert similarity(sig, signature(REFORMATTED.replace("; ", "\n" + " " * 12))) == 1.0


def test_different_code_low_similarity() -> None:
    assert similarity(signature(PROGRAM), signature(DIFFERENT)) < 0.3


def test_estimate_tracks_exact_jaccard() -> None:
    rng = random.Random(1)
    minhash = MinHash(num_perm=256, seed=3)
    base = random_program(rng)
    lines = base.splitlines(keepends=True)
    for cut in (5, 15, 30):
        other = "".join(lines[:cut]) + random_program(random.Random(cut)).split("\n", 1)[1]
        a, b = shingle_hashes(base), shingle_hashes(other)
        estimate = similarity(minhash.from_hashes(a), minhash.from_hashes(b))
        assert abs(estimate - jaccard(a, b)) < 0.12


def test_similarity_shape_mismatch() -> None:
    with pytest.raises(ValueError):
        similarity(signature("x = 1\n"), signature("x = 1\n", num_perm=64))


def test_empty_code() -> None:
    assert similarity(signature(""), signature("# only a comment\n")) == 1.0
    assert jaccard(shingle_hashes(""), shingle_hashes("")) == 1.0


def test_signature_deterministic_across_processes() -> None:
    here = signature(PROGRAM).tolist()
    script = (
        "import sys, json\n"
        "from evoforge.proposers.llm.novelty import signature\n"
        "print(json.dumps(signature(sys.stdin.read()).tolist()))\n"
    )
    for seed in ("1", "12345"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        out = subprocess.run(
            [sys.executable, "-c", script],
            input=PROGRAM,
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
            check=True,
        )
        assert [int(v) for v in out.stdout.strip().strip("[]").split(",")] == here


def test_seed_changes_signature() -> None:
    assert not np.array_equal(signature(PROGRAM, seed=0), signature(PROGRAM, seed=1))


# --- the gate -----------------------------------------------------------------------


def test_choose_bands() -> None:
    assert choose_bands(128, 0.95) == 16
    for threshold in (0.5, 0.8, 0.9, 1.0):
        bands = choose_bands(128, threshold)
        assert 128 % bands == 0


def test_gate_rejects_copies_and_passes_new_programs() -> None:
    gate = NoveltyGate(threshold=0.95)
    assert gate.check(PROGRAM) is None
    gate.add(7, PROGRAM)
    assert len(gate) == 1 and 7 in gate
    assert gate.check(PROGRAM) == (7, 1.0)
    assert gate.check(REFORMATTED.replace("; ", "\n" + " " * 12)) == (7, 1.0)
    assert gate.check(DIFFERENT) is None
    gate.add(8, DIFFERENT)
    assert gate.check(DIFFERENT) == (8, 1.0)
    gate.add(8, PROGRAM)  # an id already stored: ignored
    assert len(gate) == 2


def test_gate_threshold_behaviour() -> None:
    rng = random.Random(5)
    base = random_program(rng, lines=40)
    lines = base.splitlines(keepends=True)
    lines[20] = "    v0 = (v1 + 424242) * x\n"  # one changed line
    near = "".join(lines)
    sim = jaccard(shingle_hashes(base), shingle_hashes(near))
    assert 0.8 < sim < 0.98
    strict = NoveltyGate(threshold=min(1.0, sim + 0.01))
    loose = NoveltyGate(threshold=sim - 0.01)
    strict.add(1, base)
    loose.add(1, base)
    assert strict.check(near) is None
    found = loose.check(near)
    assert found is not None and found[0] == 1
    assert found[1] == pytest.approx(sim)


def test_gate_estimate_only() -> None:
    gate = NoveltyGate(threshold=0.9, exact=False)
    gate.add(3, PROGRAM)
    assert gate.check(PROGRAM) == (3, 1.0)
    assert gate.check(DIFFERENT) is None


def test_gate_prefers_most_similar() -> None:
    rng = random.Random(9)
    base = random_program(rng, lines=40)
    lines = base.splitlines(keepends=True)
    one = lines.copy()
    one[10] = "    v3 = (x + 1) + x\n"
    two = one.copy()
    two[30] = "    v4 = (x + 2) + x\n"
    gate = NoveltyGate(threshold=0.8)
    gate.add(1, "".join(two))
    gate.add(2, "".join(one))
    assert gate.check(base) == (
        2,
        pytest.approx(jaccard(shingle_hashes(base), shingle_hashes("".join(one)))),
    )


def test_gate_bad_arguments() -> None:
    with pytest.raises(ValueError):
        NoveltyGate(threshold=0)
    with pytest.raises(ValueError):
        NoveltyGate(num_perm=128, bands=7)


def test_gate_finds_near_twin_among_thousands() -> None:
    rng = random.Random(0)
    programs = [random_program(rng, lines=15) for _ in range(3000)]
    gate = NoveltyGate(threshold=0.85)
    for i, code in enumerate(programs):
        gate.add(1000 + i, code)
    target = 1234
    lines = programs[target].splitlines(keepends=True)
    lines[9] = "    # a comment\n" + lines[9].replace("=", "= 1 +", 1)
    twin = "".join(lines)
    found = gate.check(twin)
    assert found is not None
    assert found[0] == 1000 + target
    assert 0.85 <= found[1] < 1.0
    # fresh programs are novel (how fast checks are is measured in bench/, not here)
    fresh = [random_program(random.Random(10**6 + i), lines=15) for i in range(50)]
    assert all(gate.check(code) is None for code in fresh)


def test_a_program_is_sketched_once_between_its_check_and_its_add(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """With model requests running ahead, other programs are checked between a program's
    check and its add: its sketch is still reused, and the answers are unchanged."""
    import evoforge.proposers.llm.novelty as novelty
    calls: list[str] = []
    real = novelty.shingle_hashes
    monkeypatch.setattr(novelty, "shingle_hashes",
                        lambda code, k: calls.append(code) or real(code, k))
    programs = [PROGRAM.replace("math", f"math{i}") for i in range(5)]
    gate = NoveltyGate(threshold=0.95)
    assert [gate.check(code) for code in programs] == [None] * 5
    for i, code in enumerate(programs):
        gate.add(i, code)
    assert len(calls) == 5
    fresh = NoveltyGate(threshold=0.95)
    fresh.add(0, programs[0])
    assert gate.check(programs[0]) == fresh.check(programs[0]) == (0, 1.0)
