"""perf stat detection, parsing and fallback (evoforge.measure.perf).

The fallback is tested for real by pointing detection at binaries that are
missing or broken; the success path is tested with a fake ``perf`` script
that speaks perf's output format and ``--control`` protocol, so it runs on
any machine. Tests against the real ``perf`` run only where it works.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from evoforge.measure import (
    count_event_cmd,
    count_instructions_cmd,
    measure_event,
    measure_instructions,
    parse_perf_csv,
    perf_available,
    probe_perf,
)

FAKE_PERF = """\
import os, signal, subprocess, sys, time
args = sys.argv[1:]
mode = os.environ.get("FAKE_PERF_MODE", "ok")
if mode == "denied":
    sys.stderr.write("Error: Access to performance monitoring is limited "
                     "(perf_event_paranoid)\\n")
    sys.exit(255)
out = args[args.index("-o") + 1]
event = args[args.index("-e") + 1]
value = "<not supported>" if mode == "unsupported" else "4242"
def report():
    with open(out, "w") as f:
        f.write("# started on today\\n\\n%s,,%s:u,1000,100.00,,\\n" % (value, event))
if "--control" in args:
    if mode == "nocontrol":
        sys.stderr.write("unknown option control\\n")
        sys.exit(129)
    ctl, ack = (int(x) for x in args[args.index("--control") + 1][3:].split(","))
    stopped = []
    signal.signal(signal.SIGINT, lambda *a: stopped.append(True))
    os.read(ctl, 64)
    os.write(ack, b"ack\\n\\x00")
    while not stopped:
        time.sleep(0.01)
    report()
    sys.exit(0)
command = args[args.index("--") + 1:] if "--" in args else args[-1:]
rc = subprocess.call(command)
report()
sys.exit(rc)
"""


@pytest.fixture
def fake_perf(tmp_path: Path) -> str:
    path = tmp_path / "perf"
    path.write_text(f"#!{sys.executable}\n{FAKE_PERF}")
    path.chmod(0o755)
    return str(path)


def test_parse_supported_unsupported_and_hybrid_output() -> None:
    assert parse_perf_csv("# started\n\n1234,,instructions:u,99,100.00,,\n") == 1234
    assert parse_perf_csv("<not supported>,,instructions,0,100.00,,\n") is None
    assert parse_perf_csv("") is None
    assert parse_perf_csv("Events enabled\n5,,cycles,1,100.00,,\n") is None
    hybrid = (
        "<not counted>,,cpu_atom/instructions/u,0,0.00,,\n"
        "1000,,cpu_core/instructions/u,10,100.00,,\n"
        "24,,cpu_atom/instructions/u,10,100.00,,\n"
    )
    assert parse_perf_csv(hybrid) == 1024
    assert parse_perf_csv("0.51,msec,task-clock,510000,100.00,0.4,CPUs utilized", "task-clock") == (
        0.51
    )


def test_missing_perf_falls_back_to_none(tmp_path: Path) -> None:
    missing = str(tmp_path / "no-such-perf")
    probe = probe_perf(missing)
    assert not probe.available and "not found" in probe.reason
    assert perf_available(missing) is False
    assert count_instructions_cmd(["true"], perf=missing) is None
    assert measure_instructions(sum, [1, 2], perf=missing) is None
    assert count_event_cmd(["true"], perf=missing, event="task-clock") is None
    assert measure_event(sum, [1], perf=missing, event="task-clock") is None


def test_a_non_executable_perf_falls_back(tmp_path: Path) -> None:
    path = tmp_path / "perf"
    path.write_text("not a program")
    path.chmod(0o644)
    assert not perf_available(str(path))
    assert count_instructions_cmd(["true"], perf=str(path)) is None


@pytest.mark.parametrize(
    ("mode", "reason"), [("denied", "exited 255"), ("unsupported", "not supported")]
)
def test_unusable_perf_falls_back(
    fake_perf: str, mode: str, reason: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_PERF_MODE", mode)
    probe = probe_perf(fake_perf)
    assert not probe.available and reason in probe.reason
    assert count_instructions_cmd(["true"], perf=fake_perf) is None
    assert measure_instructions(sum, [1], perf=fake_perf) is None


def test_counts_through_a_working_perf(fake_perf: str) -> None:
    assert probe_perf(fake_perf).available
    assert perf_available(fake_perf)
    assert count_instructions_cmd(["true"], perf=fake_perf) == 4242
    assert measure_instructions(sum, [1, 2, 3], perf=fake_perf) == 4242
    assert measure_event(sum, [1], perf=fake_perf, event="cycles") == 4242.0


def test_command_failures_and_timeouts(fake_perf: str) -> None:
    assert count_instructions_cmd(["false"], perf=fake_perf) == 4242
    with pytest.raises(subprocess.CalledProcessError):
        count_instructions_cmd(["false"], perf=fake_perf, check=True)
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        count_instructions_cmd(["sleep", "30"], perf=fake_perf, timeout=0.5)
    assert time.monotonic() - start < 20
    with pytest.raises(ValueError):
        count_instructions_cmd([], perf=fake_perf)


def test_callable_failures_and_timeouts(fake_perf: str) -> None:
    def boom() -> None:
        raise RuntimeError("candidate bug")

    with pytest.raises(ChildProcessError):
        measure_instructions(boom, perf=fake_perf)
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        measure_instructions(time.sleep, 30, perf=fake_perf, timeout=0.5)
    assert time.monotonic() - start < 20


def test_perf_without_control_support_falls_back(
    fake_perf: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_PERF_MODE", "nocontrol")
    assert perf_available(fake_perf)
    assert measure_instructions(sum, [1], perf=fake_perf) is None


def _work(n: int) -> int:
    return sum(i * i for i in range(n))


@pytest.mark.skipif(shutil.which("perf") is None, reason="perf not installed")
def test_real_perf_software_event_scales_with_work() -> None:
    if not perf_available(event="task-clock"):
        pytest.skip(probe_perf(event="task-clock").reason)
    small = measure_event(_work, 10_000, event="task-clock")
    large = measure_event(_work, 3_000_000, event="task-clock")
    assert small is not None and large is not None
    assert large > small
    assert count_event_cmd(["true"], event="task-clock") is not None


@pytest.mark.skipif(shutil.which("perf") is None, reason="perf not installed")
def test_real_perf_instructions_or_fallback() -> None:
    count = measure_instructions(_work, 200_000)
    cmd_count = count_instructions_cmd(["true"])
    if not perf_available():
        assert count is None and cmd_count is None
        return
    assert count is not None and cmd_count is not None
    bigger = measure_instructions(_work, 2_000_000)
    assert bigger is not None and bigger > 5 * count
