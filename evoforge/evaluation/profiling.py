"""Where a candidate spends its time: the ``profile`` artifact for the next prompts.

:func:`profiled` calls an evaluator function under ``cProfile`` (functions) and a
line sampler (a thread reading the other threads' frames every millisecond), in
the evaluation process itself, and describes the time spent in the evolve regions
of the candidate's file: the top functions by cumulative time and the hottest
lines. Evaluators that run the candidate in another process leave nothing to see
here; the artifact then says so.

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
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

__all__ = ["profiled", "region_lines"]

TOP_FUNCTIONS = 5
TOP_LINES = 5
SAMPLE_SECONDS = 0.001
MAX_CHARS = 1200  # the artifact's length; prompts cut it further


def region_lines(path: str) -> list[tuple[int, int]]:
    """1-based inclusive line ranges of the evolve regions of the file at ``path``."""
    ranges: list[tuple[int, int]] = []
    start: int | None = None
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError:
        return ranges
    for number, line in enumerate(lines, start=1):
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

    sampler = _LineSampler(is_candidate)
    profile = cProfile.Profile()
    sampler.start()
    started = time.perf_counter()
    profile.enable()
    try:
        result = func(program_path)
    finally:
        profile.disable()
        sampler.stop()
    total = time.perf_counter() - started
    return result, _describe(profile, sampler, total, is_candidate, in_regions, program_path)


def _describe(profile: cProfile.Profile, sampler: _LineSampler, total: float,
              is_candidate: Callable[[str], bool], in_regions: Callable[[int | None], bool],
              program_path: str) -> str:
    stats: dict[Any, Any] = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    rows = []
    for (filename, line, name), (_cc, calls, own, cumulative, _callers) in stats.items():
        if is_candidate(filename) and in_regions(line):
            rows.append((cumulative, own, calls, name, line))
    rows.sort(reverse=True)
    out = [f"profile of one evaluation ({total:.3g} s in all):"]
    if not rows:
        out.append("no time was spent in the evolve regions in the evaluation's own "
                   "process")
        return "\n".join(out)
    out.append("functions of the evolve regions, by time including callees:")
    for cumulative, own, calls, name, line in rows[:TOP_FUNCTIONS]:
        share = 100 * cumulative / total if total > 0 else 0.0
        out.append(f"  {name}() line {line}: {cumulative:.3g} s ({share:.0f}%), own "
                   f"{own:.3g} s, {calls} calls")
    lines = {n: c for n, c in sampler.counts.items() if in_regions(n)}
    sampled = sum(lines.values())
    if sampled:
        try:
            with open(program_path) as f:
                text = f.read().splitlines()
        except OSError:
            text = []
        out.append(f"hottest lines of the evolve regions ({sampled} samples):")
        for number, count in sorted(lines.items(), key=lambda kv: -kv[1])[:TOP_LINES]:
            code = text[number - 1].strip() if 0 < number <= len(text) else ""
            out.append(f"  line {number} ({100 * count / sampled:.0f}%): {code[:80]}")
    report = "\n".join(out)
    return report if len(report) <= MAX_CHARS else report[:MAX_CHARS - 3] + "..."
