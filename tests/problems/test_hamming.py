"""The built-in hamming problem: instances, the checker, the baselines and the timing rules."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.problems.readme_scores import load_evaluator, problem_dir
from tests.problems.readme_scores import load_module as _load

PROBLEM = problem_dir("hamming")
BASELINES = ("naive_loops", "numpy_sliding", "bitpacked_pairs")


ev = load_evaluator("hamming")
fast = _load(PROBLEM / "baselines" / "bitpacked_pairs.py", "_hamming_fast")


def _brute_force(text: bytes, pattern: bytes) -> list[int]:
    m = len(pattern)
    return [sum(a != b for a, b in zip(text[i:i + m], pattern, strict=True))
            for i in range(len(text) - m + 1)]


def _random_cases(seed: int, count: int) -> list[tuple[bytes, bytes]]:
    """Random texts and patterns of every alphabet, with edge sizes (m = 1, m = n,
    m around the 64 / 32 / 16 / 8 codes of a packed word)."""
    rng = np.random.default_rng(seed)
    alphabets = [*ev.ALPHABETS.values(), b"ACDEFGHIKLMNPQRSTVWY", b"x"]
    cases = []
    for k in range(count):
        alphabet = alphabets[k % len(alphabets)]
        m = int(rng.choice([1, 2, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 130]))
        n = m + int(rng.choice([0, 1, 5, 63, 64, 65, 200]))
        symbols = np.frombuffer(alphabet, dtype=np.uint8)
        text = symbols[rng.integers(0, len(symbols), n)].tobytes()
        pattern = symbols[rng.integers(0, len(symbols), m)].tobytes()
        cases.append((text, pattern))
    return cases


# ------------------------------------------------------------------ instances


def test_true_distances_match_brute_force():
    for text, pattern in _random_cases(1, 60):
        assert ev.true_distances(text, pattern).tolist() == _brute_force(text, pattern)
    assert ev.true_distances(b"0110", b"10").tolist() == [2, 1, 0]
    with pytest.raises(ValueError, match="need 1 <= len"):
        ev.true_distances(b"01", b"010")


def test_instances_are_deterministic_and_use_their_alphabet():
    for split in ("train", "test"):
        spec = ev.SPLITS[split]
        first, second = ev.make_instances(split), ev.make_instances(split)
        assert len(first) == len(spec.classes)
        for cls, a_list, b_list in zip(spec.classes, first, second, strict=True):
            assert len(a_list) == 1 + spec.max_repeats
            assert len({i.text for i in a_list}) == len(a_list), "every call gets a new text"
            for a, b in zip(a_list, b_list, strict=True):
                assert (a.text, a.pattern) == (b.text, b.pattern)
                assert (len(a.text), len(a.pattern)) == (cls.n, cls.m)
                assert set(a.text) | set(a.pattern) <= set(ev.ALPHABETS[cls.alphabet])
    train_texts = {i.text for c in ev.make_instances("train") for i in c}
    assert not any(i.text in train_texts for c in ev.make_instances("test") for i in c)


def test_planted_copies_give_close_alignments():
    for c in range(len(ev.SPLITS["train"].classes)):
        instance = ev.make_instance("train", c, 0)
        distances = ev.true_distances(instance.text, instance.pattern)
        m = len(instance.pattern)
        assert distances.min() <= 0.25 * m < distances.mean()


# ------------------------------------------------------------------- checker


def test_checker_accepts_exact_integer_answers():
    truth = np.array([2, 0, 1])
    for answer in ([2, 0, 1], np.array([2, 0, 1], dtype=np.uint16), (2, 0, 1),
                   np.array([2, 0, 1], dtype=np.int8)):
        ev.verify_distances(answer, truth)


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ([2, 0], r"shape \(2,\); expected \(3,\)"),
        ([[2, 0, 1]], r"shape \(1, 3\); expected \(3,\)"),
        (5, r"shape \(\); expected \(3,\)"),
        ([2.0, 0.0, 1.0], r"answer holds floats \(float64\); round and convert to integers"),
        (np.array([2.0000001, 0, 1]), r"answer holds floats"),
        ([True, False, True], r"answer holds booleans"),
        (["2", "0", "1"], r"answer holds <U1 values, not integers"),
        ([2, None, 1], r"answer holds object values, not integers"),
        ([2, 1, 1], r"1 wrong distance\(s\); first at alignment 1: got 1, expected 0"),
        ([0, 0, 0], r"2 wrong distance\(s\); first at alignment 0: got 0, expected 2"),
    ],
)
def test_checker_rejects_invalid_answers(answer, message):
    with pytest.raises(ev.HammingError, match=message):
        ev.verify_distances(answer, np.array([2, 0, 1]))


# ----------------------------------------------------------------- baselines


@pytest.mark.parametrize("name", BASELINES)
def test_baselines_are_exact_on_random_cases(name):
    hamming = ev.load_hamming(PROBLEM / "baselines" / f"{name}.py")
    for text, pattern in _random_cases(2, 60):
        ev.verify_distances(hamming(text, pattern), ev.true_distances(text, pattern))


def test_both_paths_of_the_fast_baseline_are_exact():
    for text, pattern in _random_cases(3, 80):
        t = np.frombuffer(text, dtype=np.uint8)
        p = np.frombuffer(pattern, dtype=np.uint8)
        alignments = len(t) - len(p) + 1
        truth = ev.true_distances(text, pattern)
        counts = np.bincount(t, minlength=256)
        pairs = len(p) - fast.pair_matches(t, p, alignments, counts)
        assert pairs.tolist() == truth.tolist()
        assert fast.word_mismatches(t, p, 8, alignments).tolist() == truth.tolist()
        present = (counts > 0) | (np.bincount(p, minlength=256) > 0)
        code = (np.cumsum(present) - 1).astype(np.uint8)
        for bits in (1, 2, 4, 8):
            if (1 << bits) >= int(present.sum()):
                words = fast.word_mismatches(code[t], code[p], bits, alignments)
                assert words.tolist() == truth.tolist(), bits


def test_baselines_are_exact_on_the_split_instances():
    hamming = ev.load_hamming(PROBLEM / "baselines" / "bitpacked_pairs.py")
    for split in ("train", "test"):
        for instances in ev.make_instances(split):
            for instance in instances[:2]:
                truth = ev.true_distances(instance.text, instance.pattern)
                ev.verify_distances(hamming(instance.text, instance.pattern), truth)


def test_initial_program_is_the_naive_baseline_and_the_reference_is_numpy_sliding():
    assert (PROBLEM / "initial_program.py").read_text() == \
        (PROBLEM / "baselines" / "naive_loops.py").read_text()
    assert ev.REFERENCE_PROGRAM == PROBLEM / "baselines" / "numpy_sliding.py"


@pytest.fixture(scope="module")
def train_scores() -> dict[str, dict[str, float]]:
    """Train metrics of the baselines."""
    programs = {name: PROBLEM / "baselines" / f"{name}.py" for name in BASELINES}
    return {name: ev.evaluate(str(path)) for name, path in programs.items()}


def test_every_program_is_timed_enough_times(train_scores):
    # how fast each is (the baselines' order, the map mutation's gain) is a timing:
    # bench/speed_claims.py measures it
    for metrics in train_scores.values():
        assert all(metrics[f"timed_calls_{c.name}"] >= ev.MIN_REPEATS
                   for c in ev.SPLITS["train"].classes)


# -------------------------------------------------------------- bad programs


@pytest.fixture(scope="module")
def instances() -> tuple[list, list]:
    batch = ev.make_instances("train")[0]
    return batch, [ev.true_distances(i.text, i.pattern) for i in batch]


@pytest.fixture(scope="module")
def reference():
    return ev.load_hamming(ev.REFERENCE_PROGRAM)


def _write(tmp_path: Path, body: str, prelude: str = "") -> Path:
    program = tmp_path / "candidate.py"
    program.write_text(f"import numpy as np\n{prelude}\n\n"
                       f"def hamming(text, pattern):\n    {body}\n")
    return program


_SLIDING = ("t = np.frombuffer(text, np.uint8)\n    p = np.frombuffer(pattern, np.uint8)\n"
            "    L = len(t) - len(p) + 1\n"
            "    d = sum((t[j:j + L] != p[j]).astype(np.int64) for j in range(len(p)))\n    ")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (_SLIDING + "return d.astype(float)", r"train/binary_4k/0: answer holds floats"),
        (_SLIDING + "return d[:-1]", r"shape \(3900,\); expected \(3901,\)"),
        (_SLIDING + "return d + (d == 54)", r"wrong distance\(s\); first at alignment"),
        ("raise RuntimeError('boom')", r"hamming raised RuntimeError: boom \(on train/binary"),
    ],
)
def test_bad_programs_raise_with_a_reason(tmp_path, instances, reference, body, message):
    hamming = ev.load_hamming(_write(tmp_path, body))
    with pytest.raises(ValueError, match=message):
        ev.time_against_reference(hamming, reference, *instances, budget=0.01)


def test_evaluate_raises_on_a_wrong_answer(tmp_path):
    with pytest.raises(ev.HammingError, match="answer holds floats"):
        ev.evaluate(str(_write(tmp_path, _SLIDING + "return d * 1.0")))


def test_program_without_hamming_raises(tmp_path):
    program = tmp_path / "empty.py"
    program.write_text("x = 1\n")
    with pytest.raises(ValueError, match="defines no function hamming"):
        ev.load_hamming(program)


def test_work_on_other_threads_is_refused(tmp_path, instances, reference):
    prelude = "import threading\n\n\ndef _naive(text, pattern, box):\n" \
              "    m = len(pattern)\n" \
              "    box.extend(sum(a != b for a, b in zip(text[i:i + m], pattern))\n" \
              "               for i in range(len(text) - m + 1))\n"
    body = ("box = []\n    worker = threading.Thread(target=_naive, args=(text, pattern, box))\n"
            "    worker.start()\n    worker.join()\n    return box")
    hamming = ev.load_hamming(_write(tmp_path, body, prelude))
    with pytest.raises(ValueError, match="work on other threads is not allowed"):
        ev.time_against_reference(hamming, reference, *instances, budget=0.03)


def test_threads_left_running_are_refused(tmp_path, instances, reference):
    prelude = "import threading\nimport time\n"
    body = ("threading.Thread(target=time.sleep, args=(2,), daemon=True).start()\n    "
            + _SLIDING + "return d")
    hamming = ev.load_hamming(_write(tmp_path, body, prelude))
    with pytest.raises(ValueError, match="started threads that are still running"):
        ev.time_against_reference(hamming, reference, *instances, budget=0.01)


def test_replacing_numpy_functions_stays_in_the_programs_process(tmp_path):
    # the program runs in its own process: its numpy is not the evaluator's
    original = np.frombuffer
    prelude = "np.frombuffer = lambda *args, **kwargs: None\n"
    program = _write(tmp_path, "return [0]", prelude)
    with pytest.raises(ValueError) as caught:
        ev.evaluate(str(program))
    assert "replaced" not in str(caught.value)
    assert np.frombuffer is original


def test_every_class_has_a_positive_finite_speedup(train_scores):
    # the ratio itself is a timing: bench/library.py measures it, no test asserts it
    for c in ev.SPLITS["train"].classes:
        speedup = train_scores["numpy_sliding"][f"speedup_{c.name}"]
        assert speedup > 0 and math.isfinite(speedup)


# --------------------------------------------------------------------- config


def test_primitives_are_valid_expressions():
    from operator import ne

    config = yaml.safe_load((PROBLEM / "config.yaml").read_text())
    namespace = {"np": np, "ne": ne, "window": b"0110", "pattern": b"0011"}
    for template in config["mutation"]["primitives"]:
        arity = len(set(re.findall(r"\{(\d+)\}", template)))
        value = eval(template.format(*(["2"] * arity)), namespace)  # trusted text
        assert isinstance(value, int), template
        if arity == 0:
            assert value == 2, template  # whole-window mismatch counts


def test_problem_loads_as_builtin():
    from evoforge.problem.loader import load_problem

    problem = load_problem("hamming")
    assert problem.builtin and problem.has_test_split
    assert set(problem.baselines) == set(BASELINES)
    assert problem.config.maximize
    assert problem.warnings == []
