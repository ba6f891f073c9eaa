"""Print how noisy repeated timings of the same function are on this machine.

Run ``python -m evoforge.measure.noise`` (``--repeats 30 --warmup 3`` by
default; ``--json`` for machine-readable output). Two fixed workloads -- a
NumPy one (sort and cumulative sum of 1,000,000 floats, single-threaded) and a
pure-Python one (an integer loop) -- are each measured ``repeats`` times on the
CPU clock and on the wall clock, and the spread of those measurements is
reported: coefficient of variation (stdev / mean), its outlier-resistant
version (1.4826 * MAD / median), IQR and max / min. Load averages before and
after are printed too, because other processes on the machine inflate the
noise (mostly the wall clock's).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from evoforge.measure.timing import Measurement, measure

#: Elements in the NumPy workload.
NUMPY_SIZE = 1_000_000
#: Iterations of the pure-Python workload.
PYTHON_ITERATIONS = 1_000_000


def numpy_workload(data: np.ndarray[Any, np.dtype[np.float64]]) -> float:
    """Sort a copy of ``data`` and take its cumulative sum.

    Args:
        data: A fixed float array.

    Returns:
        The last cumulative sum (so the work cannot be skipped).
    """
    return float(np.cumsum(np.sort(data))[-1])


def python_workload(iterations: int = PYTHON_ITERATIONS) -> int:
    """An integer loop in pure Python.

    Args:
        iterations: Loop length.

    Returns:
        A checksum of the loop.
    """
    total = 0
    for i in range(iterations):
        total = (total + i * i) % 1_000_003
    return total


def workloads(scale: float = 1.0) -> dict[str, Callable[[], object]]:
    """The fixed workloads, as argument-free callables.

    Args:
        scale: Multiplies the workload sizes (small values for quick tests).

    Returns:
        Name to callable.
    """
    data = np.random.default_rng(12345).random(max(1, int(NUMPY_SIZE * scale)))
    iterations = max(1, int(PYTHON_ITERATIONS * scale))
    return {
        "numpy sort+cumsum": lambda: numpy_workload(data),
        "pure-Python loop": lambda: python_workload(iterations),
    }


def _row(name: str, m: Measurement) -> dict[str, Any]:
    return {
        "workload": name,
        "clock": m.clock,
        "n": len(m.samples),
        "median_ms": 1e3 * m.median,
        "min_ms": 1e3 * m.minimum,
        "iqr_ms": 1e3 * m.iqr,
        "mad_ms": 1e3 * m.mad,
        "cv_pct": 100 * m.cv,
        "robust_cv_pct": 100 * m.robust_cv,
        "max_over_min": m.maximum / m.minimum if m.minimum > 0 else float("nan"),
    }


def _load() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover - not on Linux
        return None


def run(repeats: int = 30, warmup: int = 3, scale: float = 1.0) -> dict[str, Any]:
    """Measure every workload on both clocks.

    Args:
        repeats: Measured calls per workload and clock.
        warmup: Unmeasured calls first.
        scale: Workload size multiplier.

    Returns:
        A report: ``date``, ``machine`` (platform, CPU count, Python, NumPy,
        load averages before and after) and ``rows``, one per workload and
        clock.
    """
    load_before = _load()
    rows = []
    for name, fn in workloads(scale).items():
        for clock in ("cpu", "wall"):
            rows.append(_row(name, measure(fn, warmup=warmup, repeats=repeats, clock=clock)))
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "loadavg_before": load_before,
            "loadavg_after": _load(),
        },
        "repeats": repeats,
        "warmup": warmup,
        "rows": rows,
    }


def format_table(report: dict[str, Any]) -> str:
    """Render a report from :func:`run` as a Markdown table with a header.

    Args:
        report: The output of :func:`run`.

    Returns:
        The text.
    """
    machine = report["machine"]
    lines = [
        f"date: {report['date']}; {machine['platform']}; {machine['cpus']} CPUs; "
        f"Python {machine['python']}; NumPy {machine['numpy']}",
        f"load average (1/5/15 min) before: {machine['loadavg_before']}, "
        f"after: {machine['loadavg_after']}",
        f"{report['repeats']} repeats after {report['warmup']} warm-up calls",
        "",
        "| workload | clock | median ms | min ms | IQR ms | MAD ms | CV % | robust CV % "
        "| max/min |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in report["rows"]:
        lines.append(
            f"| {r['workload']} | {r['clock']} | {r['median_ms']:.3f} | {r['min_ms']:.3f} "
            f"| {r['iqr_ms']:.3f} | {r['mad_ms']:.3f} | {r['cv_pct']:.2f} "
            f"| {r['robust_cv_pct']:.2f} | {r['max_over_min']:.3f} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point.

    Args:
        argv: Arguments (default: ``sys.argv[1:]``).

    Returns:
        The exit status.
    """
    parser = argparse.ArgumentParser(
        prog="python -m evoforge.measure.noise",
        description="Measure the timing noise of fixed workloads on this machine.",
    )
    parser.add_argument("--repeats", type=int, default=30, help="measured calls (default 30)")
    parser.add_argument("--warmup", type=int, default=3, help="warm-up calls (default 3)")
    parser.add_argument(
        "--scale", type=float, default=1.0, help="workload size multiplier (default 1)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    if args.repeats < 2:
        parser.error("--repeats must be at least 2")
    if args.scale <= 0:
        parser.error("--scale must be positive")
    report = run(repeats=args.repeats, warmup=args.warmup, scale=args.scale)
    print(json.dumps(report, indent=2) if args.json else format_table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
