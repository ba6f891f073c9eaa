"""measure() and Measurement: statistics, clocks, timeouts, budget (evoforge.measure)."""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Iterable

import pytest

from evoforge.measure import CensoredEstimate, Measurement, measure, resolve_clock
from evoforge.measure.timing import cpu_time


class FakeClock:
    """A clock that only moves when a fake workload advances it."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def workload(clock: FakeClock, durations: Iterable[float]) -> Callable[[], int]:
    """A function whose n-th call 'takes' durations[n] seconds on ``clock``."""
    steps = iter(durations)
    calls = 0

    def fn() -> int:
        nonlocal calls
        clock.now += next(steps)
        calls += 1
        return calls

    return fn


def test_statistics_on_a_fake_clock() -> None:
    clock = FakeClock()
    m = measure(workload(clock, [100.0, 1, 2, 3, 4, 5]), warmup=1, repeats=5, clock=clock)
    assert m.samples == (1, 2, 3, 4, 5)
    assert m.result == 6
    assert m.clock == "custom"
    assert (m.median, m.minimum, m.maximum, m.mean) == (3, 1, 5, 3)
    assert m.stdev == pytest.approx(statistics.stdev([1, 2, 3, 4, 5]))
    assert m.cv == pytest.approx(m.stdev / 3)
    assert (m.q1, m.q3, m.iqr) == (2, 4, 2)
    assert m.mad == 1
    assert m.robust_cv == pytest.approx(1.482602218505602 / 3)
    assert m.hodges_lehmann == 3
    assert m.censored == 0 and m.skipped == 0 and m.repeats == 5
    assert m.censored_median == CensoredEstimate(3, False, 3)
    assert not m.timed_out
    summary = m.summary()
    assert summary["median"] == 3 and summary["censored"] == 0 and summary["n"] == 5


def test_a_call_over_the_timeout_is_censored_at_the_timeout() -> None:
    clock = FakeClock()
    m = measure(workload(clock, [1, 5, 2]), warmup=0, repeats=3, timeout=3, clock=clock)
    assert m.samples == (1, 3, 2)
    assert m.censored_mask == (False, True, False)
    assert m.censored == 1
    assert m.censored_median == CensoredEstimate(2, False, 2)
    assert m.timeout == 3


def test_a_call_exactly_at_the_timeout_is_not_censored() -> None:
    clock = FakeClock()
    m = measure(workload(clock, [3, 3]), warmup=0, repeats=2, timeout=3, clock=clock)
    assert m.censored == 0


def test_mostly_timed_out_reports_the_timeout_as_a_lower_bound() -> None:
    clock = FakeClock()
    m = measure(workload(clock, [5, 9, 1]), warmup=0, repeats=3, timeout=3, clock=clock)
    assert m.samples == (3, 3, 1)
    estimate = m.censored_median
    assert estimate.value == 3
    assert estimate.is_lower_bound
    assert math.isinf(estimate.upper)
    assert m.timed_out
    assert m.summary()["median_is_lower_bound"] is True


def test_budget_skips_the_remaining_repeats_and_counts_them_censored() -> None:
    clock = FakeClock()
    m = measure(workload(clock, [2] * 5), warmup=0, repeats=5, budget=5, clock=clock)
    # 0 -> 2 -> 4 -> 6: the third call crosses the budget, the last two are skipped.
    assert m.samples == (2, 2, 2)
    assert m.skipped == 2
    assert m.censored == 2
    assert m.repeats == 5
    assert m.censored_median == CensoredEstimate(2, False, 2)


def test_budget_spent_by_the_first_call_leaves_only_a_lower_bound() -> None:
    clock = FakeClock()
    m = measure(workload(clock, [10, 1, 1, 1]), warmup=0, repeats=4, budget=5, clock=clock)
    assert m.samples == (10,)
    assert m.skipped == 3
    assert m.censored_median.value == 10
    assert m.censored_median.is_lower_bound


def test_warmup_does_not_count_against_the_budget() -> None:
    clock = FakeClock()
    m = measure(workload(clock, [50, 1, 1, 1]), warmup=1, repeats=3, budget=5, clock=clock)
    assert m.samples == (1, 1, 1)
    assert m.skipped == 0


def test_stop_on_timeout() -> None:
    clock = FakeClock()
    fn = workload(clock, [1, 9, 1, 1])
    m = measure(fn, warmup=0, repeats=4, timeout=2, stop_on_timeout=True, clock=clock)
    assert m.samples == (1, 2)
    assert m.censored_mask == (False, True)
    assert m.skipped == 2
    assert m.censored == 3
    assert m.censored_median.is_lower_bound


def test_real_clocks_on_a_deterministic_workload() -> None:
    for clock in ("cpu", "wall"):
        m = measure(sum, range(20_000), warmup=1, repeats=4, clock=clock)
        assert m.result == sum(range(20_000))
        assert m.clock == clock
        assert len(m.samples) == 4
        assert all(s >= 0 for s in m.samples)
        # Generous: summing 20k ints takes far less than 5 s of CPU.
        assert m.median < 5


def test_cpu_clock_ignores_sleep_and_wall_clock_does_not() -> None:
    cpu = measure(time.sleep, 0.05, warmup=0, repeats=2, clock="cpu")
    wall = measure(time.sleep, 0.05, warmup=0, repeats=2, clock="wall")
    assert wall.minimum >= 0.04
    assert cpu.median < wall.median


def test_real_timeout_marks_a_slow_call() -> None:
    m = measure(time.sleep, 0.03, warmup=0, repeats=2, timeout=0.001, clock="wall")
    assert m.censored == 2
    assert m.samples == (0.001, 0.001)
    assert m.timed_out


def test_original_api_keeps_working() -> None:
    def add(a: int, b: int = 0) -> int:
        return a + b

    m = measure(add, 2, b=3)
    assert m.result == 5
    assert len(m.samples) == 5
    assert m.median >= 0 and m.minimum >= 0 and m.mean >= 0 and m.stdev >= 0 and m.cv >= 0
    built = Measurement(samples=(1.0, 3.0), result="x")
    assert (built.median, built.minimum, built.mean, built.result) == (2.0, 1.0, 2.0, "x")
    assert Measurement((2.0,)).stdev == 0.0 and Measurement((0.0,)).cv == 0.0
    assert Measurement((1.0, 2.0)).censored == 0


def test_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="repeats"):
        measure(sum, [1], repeats=0)
    with pytest.raises(ValueError, match="timeout"):
        measure(sum, [1], timeout=0)
    with pytest.raises(ValueError, match="budget"):
        measure(sum, [1], budget=-1)
    with pytest.raises(ValueError, match="clock"):
        measure(sum, [1], clock="sundial")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="one flag per sample"):
        Measurement(samples=(1.0, 2.0), censored_mask=(True,))
    assert resolve_clock("cpu") == ("cpu", cpu_time)
    assert resolve_clock("wall") == ("wall", time.perf_counter)


def test_cpu_clock_stays_fine_grained_under_a_cpu_limit() -> None:
    """Where RLIMIT_CPU is set (as in evaluation workers) process_time moves in ticks."""
    code = (
        "import resource, time\n"
        "from evoforge.measure.timing import cpu_time\n"
        "resource.setrlimit(resource.RLIMIT_CPU, (100, 100))\n"
        "print(len({cpu_time() for _ in range(20000)}))\n"
    )
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    assert int(out.stdout) > 1000
