"""Job-shop scheduling, the candidate's side: the schedule builder around ``priority``.

Runs in the candidate's process (see evoforge.problem.kit); the evaluator checks
the schedule it returns from scratch. Holds nothing the candidate may not see.
"""

import inspect
from types import SimpleNamespace
from typing import Any

import numpy as np

# Decimals the priority scores are rounded to before argmax, so that float noise
# cannot decide between two operations the program scores equally.
SCORE_DECIMALS = 6
# The features passed to priority(), in order (each an array over the conflict set).
FEATURES = ("p", "work_left", "ops_left", "est", "next_p", "next_load")


def build(program: Any, times_array: np.ndarray, machines_array: np.ndarray,
          name: str = "") -> np.ndarray:
    """Giffler-Thompson active schedule generation driven by ``program.priority``.

    Returns:
        One row (job, op, machine, start, end) per operation, in scheduling order.

    Raises:
        ValueError: if ``priority`` raises, or returns the wrong shape or NaN.
    """
    priority = program.priority
    times = times_array.tolist()
    machines = machines_array.tolist()
    n, m = len(times), len(times[0])
    work_left = [sum(row) for row in times]  # unscheduled work of each job
    machine_left = [0] * m  # unscheduled work of each machine
    for j in range(n):
        for k in range(m):
            machine_left[machines[j][k]] += times[j][k]
    next_op = [0] * n
    job_ready = [0] * n
    machine_ready = [0] * m
    schedule: list[tuple[int, int, int, int, int]] = []
    active = list(range(n))
    for step in range(n * m):
        # the operation that can complete first fixes the machine and the cut-off
        best_end, best_machine = None, -1
        est = [0] * n
        for j in active:
            k = next_op[j]
            mach = machines[j][k]
            start = job_ready[j] if job_ready[j] > machine_ready[mach] else machine_ready[mach]
            est[j] = start
            end = start + times[j][k]
            if best_end is None or end < best_end:
                best_end, best_machine = end, mach
        conflict = [j for j in active
                    if machines[j][next_op[j]] == best_machine and est[j] < best_end]
        if len(conflict) == 1:
            chosen = conflict[0]
        else:
            features = _features(conflict, times, machines, next_op, work_left,
                                 machine_left, est, m)
            scores = _call_priority(priority, features, name, step, len(conflict))
            chosen = conflict[int(np.argmax(np.round(scores, SCORE_DECIMALS)))]
        k = next_op[chosen]
        mach = machines[chosen][k]
        start = est[chosen]
        end = start + times[chosen][k]
        schedule.append((chosen, k, mach, start, end))
        job_ready[chosen] = end
        machine_ready[mach] = end
        work_left[chosen] -= times[chosen][k]
        machine_left[mach] -= times[chosen][k]
        next_op[chosen] = k + 1
        if k + 1 == m:
            active.remove(chosen)
    return np.array(schedule, dtype=np.int64).reshape(-1, 5)


def _features(conflict: list[int], times: list[list[int]], machines: list[list[int]],
              next_op: list[int], work_left: list[int], machine_left: list[int],
              est: list[int], m: int) -> dict[str, np.ndarray]:
    p, nxt_p, nxt_load = [], [], []
    for j in conflict:
        k = next_op[j]
        p.append(times[j][k])
        if k + 1 < m:
            nxt_p.append(times[j][k + 1])
            nxt_load.append(machine_left[machines[j][k + 1]])
        else:
            nxt_p.append(0)
            nxt_load.append(0)
    return {
        "p": np.array(p, dtype=np.float64),
        "work_left": np.array([work_left[j] for j in conflict], dtype=np.float64),
        "ops_left": np.array([m - next_op[j] for j in conflict], dtype=np.float64),
        "est": np.array([est[j] for j in conflict], dtype=np.float64),
        "next_p": np.array(nxt_p, dtype=np.float64),
        "next_load": np.array(nxt_load, dtype=np.float64),
    }


def _call_priority(priority: Any, features: dict[str, np.ndarray], name: str,
                   step: int, size: int) -> np.ndarray:
    where = f"step {step} of {name}, {size} operations"
    try:
        raw = priority(**features)
        scores = np.asarray(raw, dtype=np.float64)
    except Exception as exc:
        raise ValueError(f"priority raised {type(exc).__name__}: {exc} ({where})") from exc
    if scores.shape != (size,):
        raise ValueError(
            f"priority returned shape {scores.shape} for {size} operations ({where}); "
            "return one score per operation"
        )
    if np.isnan(scores).any():
        raise ValueError(f"priority returned NaN ({where})")
    return scores


def check_signature(program: Any) -> None:
    """Raise ValueError, naming them, if ``priority`` cannot take every feature keyword."""
    try:
        params = inspect.signature(program.priority).parameters
    except (TypeError, ValueError):
        return
    takes_all = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    missing = [f for f in FEATURES if f not in params]
    if params and not takes_all and missing:
        raise ValueError(f"priority() must accept the keyword arguments {', '.join(FEATURES)}; "
                         f"missing {', '.join(missing)}")


def local(priority: Any) -> SimpleNamespace:
    """A stand-in program for calling :func:`build` on a plain function."""
    return SimpleNamespace(priority=priority)
