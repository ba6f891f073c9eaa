"""The profile artifact: where a candidate spends its time, from the evaluation process."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from evoforge.evaluation.profiling import profiled, region_lines
from evoforge.evaluation.sandbox import EvalJob, run_isolated

PROGRAM = '''"""A slow candidate."""
import time

# EVOLVE-BLOCK-START
def slow_part(n):
    total = 0
    for i in range(n):
        total += i * i
    return total


def fast_part():
    return 1


def solve(n):
    return slow_part(n) + fast_part()
# EVOLVE-BLOCK-END


def fixed_helper():
    time.sleep(0.01)
'''

EVALUATOR = '''import importlib.util


def evaluate(path):
    spec = importlib.util.spec_from_file_location("candidate", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.fixed_helper()
    value = module.solve(3000000)
    return {"combined_score": float(value > 0)}
'''


KIT_EVALUATOR = '''from evoforge.problem import kit


def evaluate(path):
    program = kit.load_program(path, {"solve": "solve(n)"})
    value = program.solve(3000000)  # left open: the kit closes it after the profiled call
    return {"combined_score": float(value > 0)}
'''


def test_region_lines(tmp_path: Path) -> None:
    path = tmp_path / "program.py"
    path.write_text(PROGRAM)
    assert region_lines(str(path)) == [(5, 17)]


def _evaluate(path: str) -> dict[str, float]:
    namespace: dict[str, object] = {"__name__": "candidate"}
    exec(compile(Path(path).read_text(), path, "exec"), namespace)
    value = namespace["solve"](3000000)  # type: ignore[operator]
    return {"combined_score": float(value > 0)}


def test_profiled_names_the_hot_function_and_line(tmp_path: Path) -> None:
    path = tmp_path / "program.py"
    path.write_text(PROGRAM)
    result, report = profiled(_evaluate, str(path))
    assert result == {"combined_score": 1.0}
    lines = report.splitlines()
    functions = [line for line in lines if "() line" in line]
    # by time including callees: solve calls slow_part, which does the work
    assert functions[0].strip().startswith("solve() line 16")
    assert functions[1].strip().startswith("slow_part() line 5")
    assert not any("fixed_helper" in line for line in lines)  # outside the regions
    hot = [line for line in lines if line.strip().startswith("line ")]
    assert hot and any("total += i * i" in line or "for i in range(n)" in line
                       for line in hot[:2]), report


def test_evaluation_process_returns_the_profile_artifact(tmp_path: Path) -> None:
    evaluator = tmp_path / "evaluator.py"
    evaluator.write_text(EVALUATOR)
    job = EvalJob(code=PROGRAM, evaluator_path=evaluator, timeout=60, profile=True)
    outcome = asyncio.run(run_isolated(job))
    assert outcome.status == "ok", outcome.error
    assert "slow_part() line 5" in outcome.artifacts["profile"]
    plain = asyncio.run(run_isolated(EvalJob(code=PROGRAM, evaluator_path=evaluator,
                                             timeout=60)))
    assert plain.status == "ok" and "profile" not in plain.artifacts


def test_candidate_run_elsewhere_says_so(tmp_path: Path) -> None:
    path = tmp_path / "program.py"
    path.write_text(PROGRAM)
    _, report = profiled(lambda p: {"combined_score": 1.0}, str(path))
    assert "no time was spent in the evolve regions" in report


def test_profile_is_skipped_near_the_timeout(tmp_path: Path) -> None:
    evaluator = tmp_path / "evaluator.py"
    evaluator.write_text(EVALUATOR.replace("module.fixed_helper()", "__import__('time')"
                                           ".sleep(1.0)"))
    job = EvalJob(code=PROGRAM, evaluator_path=evaluator, timeout=4.0, profile=True)
    outcome = asyncio.run(run_isolated(job))
    assert outcome.status == "ok", outcome.error
    assert outcome.artifacts["profile"].startswith("no profile: the evaluation took")


def test_the_kit_candidate_process_profiles_itself(tmp_path: Path) -> None:
    """A kit evaluator runs the candidate in another process: the report comes from there."""
    evaluator = tmp_path / "evaluator.py"
    evaluator.write_text(KIT_EVALUATOR)
    job = EvalJob(code=PROGRAM, evaluator_path=evaluator, timeout=60, profile=True)
    outcome = asyncio.run(run_isolated(job))
    assert outcome.status == "ok", outcome.error
    report = outcome.artifacts["profile"]
    assert "solve() line 16" in report and "slow_part() line 5" in report, report
    assert "fixed_helper" not in report
    hot = report.split("hottest lines of the evolve regions")[1]
    assert "total += i * i" in hot or "for i in range(n)" in hot, report


def test_candidate_profiler_counts_only_its_program(tmp_path: Path) -> None:
    from evoforge.evaluation.profiling import CandidateProfiler

    namespace: dict[str, Any] = {}
    exec(compile(PROGRAM, "program.py", "exec"), namespace)
    profiler = CandidateProfiler("program.py", PROGRAM)
    assert profiler.call(namespace["solve"], 1_000_000) > 0
    with pytest.raises(ZeroDivisionError):
        profiler.call(lambda: 1 / 0)
    report = profiler.report()
    assert "slow_part() line 5" in report and "in the candidate's process" not in report
    assert sum(profiler.counts.values()) > 0
    assert CandidateProfiler("program.py", PROGRAM).report().endswith(
        "no time was spent in the evolve regions in the candidate's process")
