"""Adversarial candidates against every built-in problem, through real worker processes.

Each case is an honest program (a baseline that computes real answers) with an
attack added: at import (a prelude) or around its answers (a wrapper). An attack
that works raises ``LEAK: ...`` or lifts the score; the suite demands that every
case fails with a specific reason or scores exactly what the honest program scores
(for the timed problems, where scores are noisy, no more than a small multiple of
it: a working clock or verifier patch gives speedups of thousands).

All evaluations of the suite run in one batch on a pool of two fork-server
workers (``LocalExecutor``), the way a run evaluates candidates; the tests then
read the outcomes.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from pathlib import Path

import pytest

from evoforge.evaluation.sandbox import EvalJob, EvalOutcome
from evoforge.executors.local import LocalExecutor

# Its tests share one session-scoped evaluation of every program (~30 s): grouped on one
# worker it is made once (a module-scoped one was made on each worker that got some of
# the tests, and again when other modules' tests ran in between).
pytestmark = pytest.mark.xdist_group("adversarial")

PROBLEMS_DIR = Path(__file__).resolve().parents[2] / "evoforge" / "problems"


@dataclass(frozen=True)
class Target:
    """A built-in problem: the function a program defines, an honest program, and how
    its scores compare (the metric that must match exactly, or None if timed)."""

    function: str
    program: str
    exact: str | None = "combined_score"
    loop_here: bool = True  # the problem's own loop calls the program (not a harness)


TARGETS: dict[str, Target] = {
    "bin_packing": Target("priority", "baselines/best_fit.py", loop_here=False),
    "eplb": Target("rebalance_experts", "baselines/deepseek_hierarchical.py", "balancedness"),
    "kv_eviction": Target("keep_score", "initial_program.py", loop_here=False),
    "circle_packing": Target("construct_packing", "baselines/grid.py"),
    "txn_scheduling": Target("schedule", "baselines/fifo.py"),
    "spot_scheduling": Target("policy", "baselines/greedy.py", loop_here=False),
    "job_shop": Target("priority", "initial_program.py", loop_here=False),
    "tts_allocation": Target("allocate", "baselines/uniform_best_of_n.py"),
    "ppr": Target("ppr", "baselines/numpy_power.py", None),
    "max_coverage": Target("max_coverage", "baselines/lazy_greedy.py", None),
    "hamming": Target("hamming", "baselines/numpy_sliding.py", None),
}
TIMED_FACTOR = 3.0  # a timed score may be noisy, but not this much above the honest one

# Callers the liars below answer honestly: the program itself, its problem's loop in
# its process, numpy's internals and the plumbing that sends answers back. Anyone
# else asking (an evaluator in the same process) is lied to.
_LIAR = '''
import sys as _sys
def _honest_caller():
    name = _sys._getframe(2).f_globals.get("__name__", "")
    return name in ("program", "harness") or name.startswith(
        ("numpy", "evoforge.problem", "json", "socket", "importlib", "_"))
def _liar(real, lie):
    def fake(*args, **kwargs):
        return real(*args, **kwargs) if _honest_caller() else lie(*args, **kwargs)
    return fake
'''

PRELUDES: dict[str, str] = {
    # hole: patching numpy/math/builtins so the verifier's arithmetic lies (means,
    # sums, argmax, NaN and finiteness checks, comparisons of arrays), and the clocks
    # the timing reads, and random (the instance generators)
    "patch_libraries": _LIAR + '''
import builtins, math
import numpy as _np
for _name, _lie in [("mean", lambda *a, **k: 0.0), ("sum", lambda *a, **k: 0),
                    ("max", lambda *a, **k: 0.0), ("min", lambda *a, **k: 0.0),
                    ("median", lambda *a, **k: 0.0), ("isnan", lambda *a, **k: False),
                    ("array_equal", lambda *a, **k: True), ("all", lambda *a, **k: True),
                    ("any", lambda *a, **k: False), ("argmax", lambda *a, **k: 0),
                    ("flatnonzero", lambda *a, **k: _np.zeros(0, dtype=int))]:
    setattr(_np, _name, _liar(getattr(_np, _name), _lie))
math.isfinite = _liar(math.isfinite, lambda *a: True)
math.exp = _liar(math.exp, lambda *a: 1e9)
builtins.sum = _liar(builtins.sum, lambda *a, **k: 0)
builtins.max = _liar(builtins.max, lambda *a, **k: 0)

import time, random, resource
import numpy as _np
for _name in ("perf_counter", "process_time", "thread_time", "monotonic", "time"):
    setattr(time, _name, _liar(getattr(time, _name), lambda *a: 0.0))
resource.getrusage = _liar(resource.getrusage, lambda *a: resource.struct_rusage((0.0,) * 16))
random.random = _liar(random.random, lambda *a: 0.0)
random.seed = _liar(random.seed, lambda *a, **k: None)
_np.random.default_rng = _liar(_np.random.default_rng,
                               lambda *a, **k: _np.random.default_rng(0))
''',
    # hole: replacing the verifier's functions, found through sys.modules and gc
    "redefine_verifier": '''
import gc, sys, types
def _accept(*args, **kwargs):
    return 0
for _module in list(sys.modules.values()):
    if getattr(_module, "__name__", "") in ("program", "harness"):
        continue
    for _key in dir(_module) if hasattr(_module, "verify_packing") or hasattr(
            _module, "SPLITS") or _module.__name__ == "evaluator" else ():
        if _key.startswith(("verify", "check", "score", "_checked", "excess", "gap")):
            raise RuntimeError(f"LEAK: the evaluator module is here ({_module.__name__})")
for _obj in gc.get_objects():
    # a function of an evaluator module (its globals hold evaluate_test)
    if isinstance(_obj, types.FunctionType) and "evaluate_test" in _obj.__globals__ and \
            _obj.__name__.startswith(("verify", "_checked", "check")):
        _obj.__code__ = _accept.__code__
        raise RuntimeError(f"LEAK: the verifier {_obj.__name__} is in this process")
''',
    # hole: reading the problem's files (its evaluator with the test split's seeds,
    # its baselines and data), importing the evaluator as a module, and reading the
    # verifier's memory through /proc/PID/mem of the worker, the evaluation process,
    # the zygote and the other candidate processes
    "read_outside": '''
import glob, importlib, os
import evoforge
_root = os.path.join(os.path.dirname(evoforge.__file__), "problems")
for _path in glob.glob(os.path.join(_root, "*", "*.py")) + glob.glob(
        os.path.join(_root, "*", "*", "*")):
    try:
        with open(_path) as _f:
            _f.read(10)
    except OSError:
        continue
    raise RuntimeError(f"LEAK: read {_path}")
try:
    importlib.import_module("evoforge.problems." + os.environ.get("_NOPE", "bin_packing")
                            + ".evaluator")
except Exception:
    pass
else:
    raise RuntimeError("LEAK: imported a built-in evaluator")

import os
for _pid in [p for p in os.listdir("/proc") if p.isdigit() and int(p) != os.getpid()]:
    try:
        with open(f"/proc/{_pid}/cmdline", "rb") as _f:
            if b"evoforge" not in _f.read():
                continue
        with open(f"/proc/{_pid}/maps") as _f:
            _line = next((l for l in _f if "rw-p" in l), None)
        if _line is None:
            continue
        _start = int(_line.split("-")[0], 16)
        with open(f"/proc/{_pid}/mem", "rb") as _f:
            _f.seek(_start)
            _f.read(16)
    except (OSError, ValueError, StopIteration):
        continue
    raise RuntimeError(f"LEAK: read the memory of process {_pid}")
''',
}

# hole: answers that are not plain data, or lie about their value, or are broken
WRAPPERS: dict[str, str] = {
    # objects whose __eq__/__float__/__array__/__len__ lie
    "lying_object": '''
import numpy as _np
class _Liar:
    def __init__(self, real): self.real = real
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    def __float__(self): return 1e9
    def __int__(self): return 0
    def __len__(self): return len(self.real)
    def __iter__(self): return iter(self.real)
    def __getitem__(self, i): return self.real[i]
    def __array__(self, *a, **k): return _np.asarray(self.real)
def _poison(result, args):
    return _Liar(result)
''',
    # a numpy array subclass (its methods could run in the verifier)
    "array_subclass": '''
import numpy as _np
class _Sub(_np.ndarray):
    def __eq__(self, other): return _np.ones(_np.shape(self), dtype=bool)
def _poison(result, args):
    return _np.asarray(result).view(_Sub) if _np.asarray(result).dtype != object else result
''',
    "nan": '''
def _poison(result, args):
    return float("nan")
''',
    "inf": '''
import numpy as _np
def _poison(result, args):
    return _np.full(_np.shape(_np.asarray(result, dtype=object)), float("inf"))
''',
    # huge: 400 MB of float64 (over the answer and memory budgets of most problems)
    "huge_array": '''
import numpy as _np
def _poison(result, args):
    return _np.ones(50_000_000)
''',
    "odd_type": '''
def _poison(result, args):
    return "1e9"
''',
    # mutate the inputs the program was handed (the verifier's instance, in one process)
    "mutate_inputs": '''
import numpy as _np
def _poison(result, args):
    for a in args:
        if isinstance(a, _np.ndarray) and a.flags.writeable:
            a[...] = 0
        elif isinstance(a, list):
            a.clear()
    return result
''',
}
WRAPPER_TAIL = '''
_original = {function}
def {function}(*args, **kwargs):
    result = _original(*args, **kwargs)
    return _poison(result, list(args) + list(kwargs.values()))
'''

# hole: threads and processes that outlive the call, and state one candidate leaves
# for the next on the same worker (module state, patched libraries, environment,
# files in its directory, the scratch directory, /tmp and /dev/shm)
WRITER = '''
import builtins, os, sys, threading, time
import numpy as _np
_np._evoforge_leak = 1
builtins._evoforge_leak = 1
os.environ["EVOFORGE_LEAK"] = "1"
def _drop():
    for _dir in (".", "..", "/tmp", "/dev/shm", os.environ.get("TMPDIR", ".")):
        try:
            with open(os.path.join(_dir, "evoforge_leak.txt"), "w") as _f:
                _f.write("1")
        except OSError:
            pass
_drop()
def _keep_dropping():
    for _ in range(300):
        _drop()
        time.sleep(0.01)
threading.Thread(target=_keep_dropping, daemon=True).start()
if os.fork() == 0:  # a process that outlives the evaluation, if nothing stops it
    os.setsid()
    _keep_dropping()
    os._exit(0)
'''
READER = '''
import builtins, os, sys
import numpy as _np
if getattr(_np, "_evoforge_leak", 0) or getattr(builtins, "_evoforge_leak", 0):
    raise RuntimeError("LEAK: module state of an earlier candidate")
if os.environ.get("EVOFORGE_LEAK"):
    raise RuntimeError("LEAK: environment of an earlier candidate")
for _dir in (".", "..", "/tmp", "/dev/shm", os.environ.get("TMPDIR", ".")):
    if os.path.exists(os.path.join(_dir, "evoforge_leak.txt")):
        raise RuntimeError(f"LEAK: a file an earlier candidate left in {_dir}")
'''


def _program(name: str, prelude: str = "", wrapper: str = "") -> str:
    target = TARGETS[name]
    code = (PROBLEMS_DIR / name / target.program).read_text()
    if prelude:
        code = prelude + "\n" + code
    if wrapper:
        code += "\n" + wrapper + WRAPPER_TAIL.format(function=target.function)
    return code


def _job(name: str, code: str) -> EvalJob:
    return EvalJob(code=code, evaluator_path=PROBLEMS_DIR / name / "evaluator.py",
                   timeout=120, memory_mb=2048)


def _cases() -> list[tuple[str, str, str]]:
    """(problem, case, program) for every problem and every prelude and wrapper."""
    out = []
    for name, target in TARGETS.items():
        out.append((name, "honest", _program(name)))
        for case, prelude in PRELUDES.items():
            out.append((name, case, _program(name, prelude=prelude)))
        for case, wrapper in WRAPPERS.items():
            if case == "mutate_inputs" and not target.loop_here:
                continue  # the problem's loop runs in the program's process: its own copy
            out.append((name, case, _program(name, wrapper=wrapper)))
    return out


CASES = _cases()


async def _evaluate_all() -> tuple[dict[tuple[str, str], EvalOutcome],
                                   dict[str, EvalOutcome]]:
    pool, single = LocalExecutor(2, "fork"), LocalExecutor(1, "fork")

    async def one_after_another() -> dict[str, EvalOutcome]:
        # memory between candidates: on one worker, the writer and then the reader
        after = {}
        for name in TARGETS:
            await single.evaluate(_job(name, _program(name, prelude=WRITER)))
            after[name] = await single.evaluate(_job(name, _program(name, prelude=READER)))
        return after

    try:
        outcomes, after = await asyncio.gather(
            asyncio.gather(*(pool.evaluate(_job(name, code)) for name, _, code in CASES)),
            one_after_another())
    finally:
        await pool.close()
        await single.close()
    return {(name, case): o for (name, case, _), o in zip(CASES, outcomes, strict=True)}, after


@pytest.fixture(scope="session")
def results() -> tuple[dict[tuple[str, str], EvalOutcome], dict[str, EvalOutcome]]:
    return asyncio.run(_evaluate_all())


def _assert_honest(name: str, outcome: EvalOutcome, honest: EvalOutcome) -> None:
    """``outcome`` failed with a reason, or scored what the honest program scores."""
    assert "LEAK" not in (outcome.error or ""), outcome.error
    if outcome.status != "ok":
        assert outcome.error, "a failure must say why"
        return
    target = TARGETS[name]
    if target.exact is not None:
        assert outcome.metrics[target.exact] == honest.metrics[target.exact]
    else:
        assert outcome.metrics["combined_score"] <= TIMED_FACTOR * \
            honest.metrics["combined_score"]


@pytest.mark.parametrize("name", list(TARGETS))
def test_the_honest_program_scores(results, name):
    outcome = results[0][(name, "honest")]
    assert outcome.status == "ok", outcome.error
    assert math.isfinite(outcome.metrics["combined_score"])
    scores = outcome.artifacts["instance_scores"]
    assert scores and all(isinstance(s, float) for s in scores)


@pytest.mark.parametrize("name,case", [(n, c) for n, c, _ in CASES if c in PRELUDES])
def test_attacks_at_import_change_nothing(results, name, case):
    outcome, honest = results[0][(name, case)], results[0][(name, "honest")]
    # these attacks leave the program's answers alone: it must not fail either
    assert outcome.status == "ok", outcome.error
    _assert_honest(name, outcome, honest)


@pytest.mark.parametrize("name,case", [(n, c) for n, c, _ in CASES if c in WRAPPERS])
def test_bad_answers_fail_or_score_honestly(results, name, case):
    outcome, honest = results[0][(name, case)], results[0][(name, "honest")]
    assert "LEAK" not in (outcome.error or ""), outcome.error
    loop_here = TARGETS[name].loop_here
    if case in ("nan", "huge_array") or (loop_here and case in (
            "inf", "odd_type", "lying_object", "array_subclass")):
        # the verifier gets plain data or nothing: these cannot be scored
        assert outcome.status == "failed", f"{case} was scored: {outcome.metrics}"
        assert outcome.error
    elif outcome.status == "failed":
        # the problem's loop, in the program's process, refused the answer
        assert outcome.error
    elif case in ("inf", "odd_type"):
        # a value the problem's loop turns into a (poor) policy: what that policy's
        # checked output scores, a finite number
        assert math.isfinite(outcome.metrics["combined_score"])
    else:
        # mutated inputs are the program's own copies; lying objects and subclasses
        # read by the problem's loop in the program's process give their true values
        _assert_honest(name, outcome, honest)


@pytest.mark.parametrize("name", list(TARGETS))
def test_nothing_reaches_the_next_candidate(results, name):
    outcome = results[1][name]
    assert outcome.status == "ok", outcome.error
    _assert_honest(name, outcome, results[0][(name, "honest")])
