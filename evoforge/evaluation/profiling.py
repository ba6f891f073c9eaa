"""Where a candidate spends its time: the ``profile`` artifact for the next prompts.

:func:`profiled` calls an evaluator function under ``cProfile`` (functions) and a
line sampler (a thread reading the other threads' frames every millisecond), in
the evaluation process itself, and describes the time spent in the evolve regions
of the candidate's file: the top functions by cumulative time and the hottest
lines.

Evaluators built on the problem kit (:mod:`evoforge.problem.kit`) run the candidate
in a process of its own. While :func:`profiled` runs, the kit starts those processes
with a :class:`CandidateProfiler` inside (``cProfile`` around each call and a
``SIGPROF`` line sampler, no extra thread, so the kit's thread checks still hold);
each candidate process hands its report back when the kit closes it, and that
report is the artifact when the evaluation process itself saw no time in the
evolve regions.

It is one self-contained hook: when the job asks for a profile
(``evaluator.profile: true`` in config.yaml), the evaluation child calls the
evaluator function once as usual, for the score, and once more through
:func:`profiled`, for the report (profilers slow the candidate down, so a speed
score measured under them would be wrong).
"""

from __future__ import annotations

import cProfile
import os
import pstats
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from types import FrameType
from typing import Any

__all__ = ["CandidateProfiler", "profiled", "region_lines", "region_ranges"]

TOP_FUNCTIONS = 5
TOP_LINES = 5
SAMPLE_SECONDS = 0.001
MAX_CHARS = 1200  # the artifact's length; prompts cut it further


def region_lines(path: str) -> list[tuple[int, int]]:
    """1-based inclusive line ranges of the evolve regions of the file at ``path``."""
    try:
        with open(path) as f:
            return region_ranges(f.read())
    except OSError:
        return []


def region_ranges(source: str) -> list[tuple[int, int]]:
    """1-based inclusive line ranges of the evolve regions of the program ``source``."""
    ranges: list[tuple[int, int]] = []
    start: int | None = None
    for number, line in enumerate(source.splitlines(), start=1):
        text = line.strip()
        if text.startswith("#") and "EVOLVE-BLOCK-START" in text:
            start = number + 1
        elif text.startswith("#") and "EVOLVE-BLOCK-END" in text and start is not None:
            ranges.append((start, number - 1))
            start = None
    return ranges


class _LineSampler(threading.Thread):
    """Counts, every few milliseconds, the innermost line of the candidate's file that
    each other thread is running."""

    def __init__(self, is_candidate: Callable[[str], bool]) -> None:
        super().__init__(name="evoforge-line-sampler", daemon=True)
        self.is_candidate = is_candidate
        self.counts: Counter[int] = Counter()
        self.samples = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        me = threading.get_ident()
        while not self._stop_event.wait(SAMPLE_SECONDS):
            self.samples += 1
            for ident, frame in sys._current_frames().items():
                if ident == me:
                    continue
                current: Any = frame
                while current is not None:
                    if self.is_candidate(current.f_code.co_filename):
                        if current.f_lineno is not None:  # None while a frame starts
                            self.counts[current.f_lineno] += 1
                        break
                    current = current.f_back

    def stop(self) -> None:
        self._stop_event.set()
        self.join(1.0)


def profiled(func: Callable[[str], Any], program_path: str) -> tuple[Any, str]:
    """Call ``func(program_path)`` under the profilers.

    Returns:
        What the call returned, and the profile text (top functions and lines of
        the evolve regions; the call's exceptions propagate, without a profile).
    """
    real = os.path.realpath(program_path)
    seen: dict[str, bool] = {}

    def is_candidate(filename: str) -> bool:
        hit = seen.get(filename)
        if hit is None:
            hit = seen[filename] = os.path.realpath(filename) == real
        return hit

    ranges = region_lines(program_path)

    def in_regions(line: int | None) -> bool:
        return line is not None and any(lo <= line <= hi for lo, hi in ranges)

    from evoforge.problem import kit  # the kit's candidate processes profile themselves

    sampler = _LineSampler(is_candidate)
    profile = cProfile.Profile()
    sampler.start()
    started = time.perf_counter()
    with kit.profiling_candidates() as elsewhere:
        profile.enable()
        try:
            result = func(program_path)
        finally:
            profile.disable()
            sampler.stop()
    total = time.perf_counter() - started
    try:
        with open(program_path) as f:
            source = f.read().splitlines()
    except OSError:
        source = []
    here = _describe(profile, sampler.counts, total, is_candidate, in_regions, source)
    reports = [r for r in elsewhere if _NOTHING not in r]
    if _NOTHING in here and reports:
        # the candidate ran in the kit's processes: the busiest one's report
        here = max(reports, key=_seconds_of)
    return result, here


_NOTHING = "no time was spent in the evolve regions"
_HEADER = "profile of one evaluation ({:.3g} s in all):"


def _seconds_of(report: str) -> float:
    try:
        return float(report.split("(", 1)[1].split(" s", 1)[0])
    except (IndexError, ValueError):
        return 0.0


def _describe(profile: cProfile.Profile, line_counts: Counter[int], total: float,
              is_candidate: Callable[[str], bool], in_regions: Callable[[int | None], bool],
              text: list[str], where: str = "the evaluation's own process") -> str:
    try:
        stats: dict[Any, Any] = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    except TypeError:  # nothing was profiled
        stats = {}
    rows = []
    for (filename, line, name), (_cc, calls, own, cumulative, _callers) in stats.items():
        if is_candidate(filename) and in_regions(line):
            rows.append((cumulative, own, calls, name, line))
    rows.sort(reverse=True)
    out = [_HEADER.format(total)]
    if not rows:
        out.append(f"{_NOTHING} in {where}")
        return "\n".join(out)
    out.append("functions of the evolve regions, by time including callees:")
    for cumulative, own, calls, name, line in rows[:TOP_FUNCTIONS]:
        share = 100 * cumulative / total if total > 0 else 0.0
        out.append(f"  {name}() line {line}: {cumulative:.3g} s ({share:.0f}%), own "
                   f"{own:.3g} s, {calls} calls")
    lines = {n: c for n, c in line_counts.items() if in_regions(n)}
    sampled = sum(lines.values())
    if sampled:
        out.append(f"hottest lines of the evolve regions ({sampled} samples):")
        for number, count in sorted(lines.items(), key=lambda kv: -kv[1])[:TOP_LINES]:
            code = text[number - 1].strip() if 0 < number <= len(text) else ""
            out.append(f"  line {number} ({100 * count / sampled:.0f}%): {code[:80]}")
    report = "\n".join(out)
    return report if len(report) <= MAX_CHARS else report[:MAX_CHARS - 3] + "..."


class CandidateProfiler:
    """Profiles the calls a candidate process answers (used inside that process).

    ``cProfile`` runs around each call; the hottest lines come from ``SIGPROF``
    every millisecond of the process's CPU time, sampled in the main thread itself
    (a sampler thread would count as the candidate's own extra thread).

    Args:
        filename: the name the program was compiled under.
        source: the program's text (the file itself may be hidden from the process).
    """

    def __init__(self, filename: str, source: str) -> None:
        self.filename = filename
        self.text = source.splitlines()
        self.ranges = region_ranges(source)
        self.profile = cProfile.Profile()
        self.counts: Counter[int] = Counter()
        self.seconds = 0.0

    def _in_regions(self, line: int | None) -> bool:
        return line is not None and any(lo <= line <= hi for lo, hi in self.ranges)

    def _sample(self, _signum: int, frame: FrameType | None) -> None:
        while frame is not None:
            if frame.f_code.co_filename == self.filename:
                if frame.f_lineno is not None:
                    self.counts[frame.f_lineno] += 1
                return
            frame = frame.f_back

    def call(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``func(*args, **kwargs)`` under the profilers; what it returned or raised."""
        previous = signal.signal(signal.SIGPROF, self._sample)
        signal.setitimer(signal.ITIMER_PROF, SAMPLE_SECONDS, SAMPLE_SECONDS)
        started = time.perf_counter()
        self.profile.enable()
        try:
            return func(*args, **kwargs)
        finally:
            self.profile.disable()
            signal.setitimer(signal.ITIMER_PROF, 0, 0)
            signal.signal(signal.SIGPROF, previous)
            self.seconds += time.perf_counter() - started

    def report(self) -> str:
        """The profile text of every call so far."""
        return _describe(self.profile, self.counts, self.seconds,
                         lambda name: name == self.filename, self._in_regions, self.text,
                         "the candidate's process")
