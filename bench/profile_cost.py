"""What profile feedback (``evaluator.profile``) costs per evaluation.

Evaluates a problem's initial program N times with and without profiling,
interleaved (so the machine's load hits both alike), each in its own isolated
process, and prints the median wall seconds of each and their ratio. One run's
numbers.

    python bench/profile_cost.py --problem ppr --n 7
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics

from evoforge.evaluation.sandbox import EvalJob, run_isolated
from evoforge.problem import load_problem


def main() -> None:
    """Measure and print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problem", default="ppr")
    parser.add_argument("--n", type=int, default=7)
    args = parser.parse_args()
    problem = load_problem(args.problem)
    ev = problem.config.evaluator

    def job(profile: bool) -> EvalJob:
        return EvalJob(code=problem.initial_program, evaluator_path=problem.evaluator_path,
                       timeout=max(ev.timeout, 60.0), memory_mb=ev.memory_mb,
                       profile=profile)

    times: dict[bool, list[float]] = {False: [], True: []}
    report = ""
    for _ in range(args.n):
        for profile in (False, True):
            outcome = asyncio.run(run_isolated(job(profile)))
            if outcome.status != "ok":
                raise SystemExit(f"evaluation failed: {outcome.error}")
            times[profile].append(outcome.seconds)
            report = outcome.artifacts.get("profile", report)
    plain, profiled = statistics.median(times[False]), statistics.median(times[True])
    print(f"{args.problem}: median of {args.n} evaluations: {plain:.3f} s plain, "
          f"{profiled:.3f} s profiled, ratio {profiled / plain:.2f}")
    print(report)
    print(json.dumps({"problem": args.problem, "n": args.n, "plain_s": plain,
                      "profiled_s": profiled, "ratio": profiled / plain}))


if __name__ == "__main__":
    main()
