"""OpenEvolve-style problem folders, written for this project, run for real through the CLI.

One test (or a few) per numbered case of issue 10. Each builds its folder in
``tmp_path`` the way an OpenEvolve user writes one and runs ``evoforge`` as a
subprocess with real worker processes and a real SQLite file. Where OpenEvolve's
behaviour is the reference, a comment names the OpenEvolve function matched.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from evoforge.config import load_config
from evoforge.testing.fake_llm import FakeLLMServer, Reply

# a program model-free mutation can change (constants, operators)
PROGRAM = '''\
"""A linear guess at a target function."""
# EVOLVE-BLOCK-START
def f(x):
    return 0.5 * x + 1.0
# EVOLVE-BLOCK-END


def run():
    return [f(x) for x in range(4)]
'''

# shared evaluator body: the score is 1 / (1 + distance to the target line 2x + 1)
SCORE = '''\
import importlib.util


def distance(program_path):
    spec = importlib.util.spec_from_file_location("candidate", program_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    values = module.run()
    return sum(abs(v - (2 * x + 1)) for x, v in enumerate(values))


def score(program_path):
    return 1.0 / (1.0 + distance(program_path))
'''


def evoforge(*args: str, cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "evoforge", *args], cwd=cwd, text=True,
                          capture_output=True, timeout=timeout,
                          env={**os.environ, "COLUMNS": "200"})


def folder(tmp_path: Path, files: dict[str, str], name: str = "problem") -> Path:
    path = tmp_path / name
    path.mkdir()
    for rel, text in files.items():
        (path / rel).write_text(textwrap.dedent(text) if rel.endswith(".yaml") else text)
    return path


def run_ok(path: Path, *extra: str, budget: int = 8) -> subprocess.CompletedProcess[str]:
    proc = evoforge("run", ".", "--no-llm", "--budget", str(budget), "--workers", "2", *extra,
                    cwd=path)
    assert proc.returncode == 0, proc.stderr
    return proc


def as_json(path: Path, *args: str) -> Any:
    proc = evoforge(*args, "--json", cwd=path)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def assert_only_candidate_faults(path: Path, info: dict[str, Any]) -> None:
    """Every failure is the candidate's own (it raised), none a rejected metric or stage.

    A mutation may divide by zero or call a missing name; that is a real failure. What
    must never fail a candidate here is the shape of the evaluator's metrics.
    """
    assert info["ok"] >= 3
    for cand in as_json(path, "candidates", "--status", "failed"):
        error = cand["error"] or ""
        assert not any(word in error for word in ("metric", "cascade", "threshold",
                                                  "feature", "not a number")), cand


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


# --- 1. non-numeric metrics, and a missing combined_score --------------------------------

def test_string_and_dict_metrics_are_kept_and_never_reject(tmp_path: Path) -> None:
    evaluator = SCORE + '''

def evaluate(program_path):
    s = score(program_path)
    return {"combined_score": s, "error": "", "label": "linear",
            "artifacts": {"log": "evaluated"},
            "baseline_comparison": {"ratio": s / 0.2, "baseline": 0.2}}
'''
    path = folder(tmp_path, {"initial_program.py": PROGRAM, "evaluator.py": evaluator})
    run_ok(path, budget=10)
    info = as_json(path, "status")
    assert_only_candidate_faults(path, info)
    initial = as_json(path, "show", "1")
    assert initial["status"] == "ok"
    assert initial["metrics"]["baseline_comparison"]["baseline"] == 0.2
    assert initial["metrics"]["label"] == "linear"
    assert initial["metrics"]["artifacts"] == {"log": "evaluated"}
    # distance of 0.5x+1 to 2x+1 on 0..3 is 1.5 * (0+1+2+3) = 9
    assert initial["score"] == pytest.approx(1 / 10)


def test_missing_combined_score_averages_numbers_but_not_features(tmp_path: Path) -> None:
    # OpenEvolve's get_fitness_score (openevolve/utils/metrics_utils.py): without
    # combined_score, the average of the numeric metrics that are not feature dimensions
    evaluator = SCORE + '''

def evaluate(program_path):
    return {"accuracy": score(program_path), "speed": 0.75, "passed": True,
            "note": "no combined_score here"}
'''
    config = """\
    database:
      feature_dimensions: ["speed", "complexity"]
      feature_bins: 4
    """
    path = folder(tmp_path, {"initial_program.py": PROGRAM, "evaluator.py": evaluator,
                             "config.yaml": config})
    run_ok(path)
    info = as_json(path, "status")
    assert info["initial_score"] == pytest.approx(1 / 10)  # accuracy alone
    assert_only_candidate_faults(path, info)


def test_result_shaped_dict_and_text_only_metrics(tmp_path: Path) -> None:
    # {"metrics": ..., "artifacts": ...} as a plain dict is unwrapped; metrics with no
    # number at all score 0.0 as in OpenEvolve's get_fitness_score, with a warning
    evaluator = SCORE + '''

def evaluate(program_path):
    s = score(program_path)
    if s > 0.09:
        return {"metrics": {"combined_score": s}, "artifacts": {"note": "wrapped"}}
    return {"error": "too far off"}
'''
    path = folder(tmp_path, {"initial_program.py": PROGRAM, "evaluator.py": evaluator})
    run_ok(path, budget=10)
    initial = as_json(path, "show", "1")
    assert initial["score"] == pytest.approx(1 / 10)
    assert initial["artifacts"]["note"] == "wrapped"
    others = [as_json(path, "show", str(c["id"])) for c in as_json(path, "candidates")[1:]]
    text_only = [c for c in others if c["metrics"] == {"error": "too far off"}]
    assert all(c["status"] == "ok" and c["score"] == 0.0 for c in text_only)


# --- 2. cascade threshold misses, the initial program's included -------------------------

CASCADE = SCORE + '''

def evaluate_stage1(program_path):
    return {"combined_score": 0.3, "quick": score(program_path)}


def evaluate_stage2(program_path):
    return {"combined_score": 0.9, "thorough": score(program_path)}


def evaluate(program_path):
    return {"combined_score": 0.7, "direct": 1.0}
'''


def test_cascade_miss_keeps_the_program_with_the_stage_it_stopped_at(tmp_path: Path) -> None:
    # no thresholds in the config: OpenEvolve's defaults (0.5, 0.75, 0.9) apply, so
    # every program stops after stage 1 (0.3 < 0.5), the initial one included, and
    # keeps stage 1's metrics as Evaluator._cascade_evaluate (openevolve/evaluator.py) does
    path = folder(tmp_path, {"initial_program.py": PROGRAM, "evaluator.py": CASCADE})
    run_ok(path, budget=6)
    info = as_json(path, "status")
    assert info["initial_score"] == 0.3
    assert_only_candidate_faults(path, info)
    initial = as_json(path, "show", "1")
    assert initial["stopped_at_stage"] == 1
    assert "quick" in initial["metrics"] and "thorough" not in initial["metrics"]
    assert [s["stage"] for s in initial["stages"]] == [1]
    listed = as_json(path, "candidates", "--status", "ok")
    assert all(c["stopped_at_stage"] == 1 for c in listed)


def test_cascade_passes_with_a_lower_threshold(tmp_path: Path) -> None:
    config = "evaluator:\n  cascade_thresholds: [0.2]\n"
    path = folder(tmp_path, {"initial_program.py": PROGRAM, "evaluator.py": CASCADE,
                             "config.yaml": config})
    run_ok(path, budget=3)
    initial = as_json(path, "show", "1")
    assert initial["stopped_at_stage"] is None and initial["score"] == 0.9
    assert [s["stage"] for s in initial["stages"]] == [1, 2]


def test_cascade_evaluation_false_calls_evaluate(tmp_path: Path) -> None:
    config = "evaluator:\n  cascade_evaluation: false\n"
    path = folder(tmp_path, {"initial_program.py": PROGRAM, "evaluator.py": CASCADE,
                             "config.yaml": config})
    run_ok(path, budget=3)
    initial = as_json(path, "show", "1")
    assert initial["score"] == 0.7 and initial["metrics"]["direct"] == 1.0
    assert initial["stages"] == []


# --- 3. a failing initial program ---------------------------------------------------------

def test_crashing_initial_program_stops_with_the_real_error(tmp_path: Path) -> None:
    program = PROGRAM.replace("return 0.5 * x + 1.0", "return undefined_name * x")
    path = folder(tmp_path, {"initial_program.py": program,
                             "evaluator.py": SCORE + "\n\ndef evaluate(p):\n"
                                                     "    return {'combined_score': score(p)}\n"})
    line = one_line_error(evoforge("run", ".", "--no-llm", "--budget", "4", cwd=path))
    assert "NameError" in line and "undefined_name" in line
    assert "fix initial_program.py" in line and "evaluator.py" not in line
    assert "--allow-failing-initial" in line
    assert "NameError" in one_line_error(evoforge("resume", cwd=path))  # not a silent no-op
    # the flag starts the run anyway: the budget is spent, the initial stays failed
    proc = evoforge("run", ".", "--no-llm", "--budget", "4", "--allow-failing-initial",
                    cwd=path)
    assert proc.returncode == 0, proc.stderr
    info = as_json(path, "status")
    assert info["evaluated"] == 4
    assert as_json(path, "show", str(_first_id(path)))["status"] == "failed"


def _first_id(path: Path) -> int:
    return int(as_json(path, "candidates")[0]["id"])


def test_missing_module_names_it_and_does_not_blame_the_evaluator(tmp_path: Path) -> None:
    evaluator = "import jax_is_not_installed_here\n\n\ndef evaluate(p):\n    return {}\n"
    path = folder(tmp_path, {"initial_program.py": PROGRAM, "evaluator.py": evaluator})
    line = one_line_error(evoforge("run", ".", "--no-llm", "--budget", "3", cwd=path))
    assert "No module named 'jax_is_not_installed_here'" in line
    assert "install the missing package" in line and "fix evaluator" not in line


def test_evaluator_that_cannot_run_here_is_not_blamed_on_the_program(tmp_path: Path) -> None:
    evaluator = ("import shutil\n\nif shutil.which('mlir-opt-not-here') is None:\n"
                 "    raise RuntimeError('Required tool not found: mlir-opt-not-here')\n\n\n"
                 "def evaluate(p):\n    return {}\n")
    path = folder(tmp_path, {"initial_program.py": PROGRAM, "evaluator.py": evaluator})
    line = one_line_error(evoforge("run", ".", "--no-llm", "--budget", "3", cwd=path))
    assert "Required tool not found: mlir-opt-not-here" in line
    assert "fix initial_program.py" not in line and "install what it needs" in line


def test_every_score_zero_warns_with_the_reported_error(tmp_path: Path) -> None:
    evaluator = ("def evaluate(p):\n    return {'combined_score': 0.0, "
                 "'error': \"No module named 'jax'\"}\n")
    path = folder(tmp_path, {"initial_program.py": PROGRAM, "evaluator.py": evaluator})
    proc = run_ok(path, budget=4)
    assert "no counterpart" not in proc.stderr
    warning = [ln for ln in proc.stderr.splitlines() if "every score was 0.0" in ln]
    assert len(warning) == 1 and "No module named 'jax'" in warning[0]


# --- 4. OpenEvolve's built-in feature dimensions ------------------------------------------

def test_score_and_complexity_features(tmp_path: Path) -> None:
    # the feature_dimensions of OpenEvolve's AlphaEvolve math-problem configs;
    # 'score' is the fitness as in ProgramDatabase._calculate_feature_coords
    # (openevolve/database.py), 'complexity' the code length
    config = 'database:\n  feature_dimensions: ["score", "complexity"]\n  feature_bins: 5\n'
    evaluator = SCORE + "\n\ndef evaluate(p):\n    return {'combined_score': score(p)}\n"
    path = folder(tmp_path, {"initial_program.py": PROGRAM, "evaluator.py": evaluator,
                             "config.yaml": config})
    run_ok(path, budget=8)
    for cand in as_json(path, "candidates", "--status", "ok"):
        shown = as_json(path, "show", str(cand["id"]))
        assert set(shown["features"]) == {"score", "complexity"}
        assert shown["features"]["score"] == pytest.approx(shown["score"])


# --- 5. other file names, the openevolve-run form and --config -----------------------------

def test_other_file_names_in_a_folder(tmp_path: Path) -> None:
    evaluator = SCORE + "\n\ndef evaluate(p):\n    return {'combined_score': score(p)}\n"
    path = folder(tmp_path, {"init_program.py": PROGRAM, "evaluator_stub.py": evaluator,
                             "config.yml": "max_iterations: 5\nrandom_seed: 3\n"})
    proc = evoforge("run", ".", "--no-llm", cwd=path)
    assert proc.returncode == 0, proc.stderr
    info = as_json(path, "status")
    assert info["budget"] == 5 and info["seed"] == 3 and info["ok"] >= 2


def test_openevolve_run_form_with_config_and_resume(tmp_path: Path) -> None:
    evaluator = SCORE + "\n\ndef evaluate(p):\n    return {'combined_score': score(p)}\n"
    path = folder(tmp_path, {"my_program.py": PROGRAM, "my_evaluator.py": evaluator,
                             "config_phase_1.yaml": "max_iterations: 4\nrandom_seed: 11\n",
                             "config_phase_2.yaml": "max_iterations: 99\n"})
    proc = evoforge("run", "my_program.py", "my_evaluator.py", "--config",
                    "config_phase_1.yaml", "--no-llm", cwd=path)
    assert proc.returncode == 0, proc.stderr
    info = as_json(path, "status")
    assert info["budget"] == 4 and info["seed"] == 11 and info["evaluated"] == 4
    # resume finds the same files by their own names
    proc = evoforge("resume", "--budget", "3", cwd=path)
    assert proc.returncode == 0, proc.stderr
    assert as_json(path, "status")["evaluated"] == 7


# --- 6. no EVOLVE-BLOCK markers -------------------------------------------------------------

def test_program_without_markers_evolves_whole(tmp_path: Path) -> None:
    program = ("def f(x):\n    return 0.5 * x + 1.0\n\n\n"
               "def run():\n    return [f(x) for x in range(4)]\n")
    evaluator = SCORE + "\n\ndef evaluate(p):\n    return {'combined_score': score(p)}\n"
    path = folder(tmp_path, {"initial_program.py": program, "evaluator.py": evaluator})
    run_ok(path, budget=10)
    ok = as_json(path, "candidates", "--status", "ok")
    codes = {as_json(path, "show", str(c["id"]))["code"] for c in ok}
    assert len(ok) >= 3 and len(codes) >= 3


# --- 7. another language: Rust, built by cargo ----------------------------------------------

RUST_PROGRAM = """\
// Sums of squares, evolved.
// EVOLVE-BLOCK-START
fn value(n: u64) -> u64 {
    let mut total = 0;
    for i in 0..n {
        total += i;
    }
    total
}
// EVOLVE-BLOCK-END

fn main() {
    println!("{}", value(10));
}
"""

RUST_EVALUATOR = '''\
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path


def evaluate(program_path):
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp) / "candidate"
        (project / "src").mkdir(parents=True)
        (project / "Cargo.toml").write_text(
            '[package]\\nname = "candidate"\\nversion = "0.1.0"\\nedition = "2021"\\n')
        shutil.copy(program_path, project / "src" / "main.rs")
        build = subprocess.run(["cargo", "run", "--quiet", "--offline"], cwd=project,
                               capture_output=True, text=True, timeout=120)
        if build.returncode != 0:
            return {"combined_score": 0.0, "error": build.stderr[-500:]}
        got = int(build.stdout.strip())
        return {"combined_score": 1.0 / (1.0 + abs(got - 285)), "output": got}
'''


@pytest.mark.skipif(shutil.which("cargo") is None, reason="cargo is not installed")
def test_rust_problem_with_cargo_and_an_llm(tmp_path: Path) -> None:
    config = "llm:\n  modes: [rewrite]\n"
    path = folder(tmp_path, {"initial_program.rs": RUST_PROGRAM,
                             "evaluator.py": RUST_EVALUATOR, "config.yaml": config})
    # model-free operators are Python-only: one line that says so
    line = one_line_error(evoforge("run", ".", "--no-llm", "--budget", "3", cwd=path))
    assert "rust" in line and "Python only" in line
    better = RUST_PROGRAM.replace("total += i;", "total += i * i;")
    broken = RUST_PROGRAM.replace("    total\n}", "    total +\n}")  # does not compile
    with FakeLLMServer([Reply.rewrite(better), Reply.rewrite(broken)],
                       default=Reply.rewrite(better)) as server:
        proc = evoforge("run", ".", "--budget", "3", "--workers", "1", "--llm",
                        f"{server.base_url}:fake-model", cwd=path, timeout=400)
    assert proc.returncode == 0, proc.stderr
    cands = {c["seq"]: c for c in as_json(path, "candidates")}
    assert cands[0]["score"] == pytest.approx(1 / (1 + abs(45 - 285)))
    shown = [as_json(path, "show", str(c["id"])) for c in cands.values()]
    assert any(s["score"] == 1.0 and "i * i" in s["code"] for s in shown)
    assert any(s["metrics"].get("error") for s in shown)  # the compile error is kept
    # the markers stay Rust comments; nothing outside them changed
    assert all(s["code"].startswith("// Sums of squares") for s in shown)


# --- 8. working directory and network -------------------------------------------------------

def test_relative_paths_resolve_against_the_problem_folder(tmp_path: Path) -> None:
    evaluator = SCORE + '''
import subprocess
import sys

OFFSET = float(open("data.txt").read())  # relative, at import


def evaluate(program_path):
    helper = subprocess.run([sys.executable, "helper.py"], capture_output=True, text=True,
                            check=True)
    with open("data.txt") as f:  # relative, at evaluation
        offset = float(f.read())
    return {"combined_score": score(program_path) + offset - OFFSET,
            "helper": float(helper.stdout)}
'''
    program = PROGRAM + '''

try:  # a candidate must not be able to change the problem folder
    with open("data.txt", "w") as handle:
        handle.write("999")
except OSError:
    pass
'''
    path = folder(tmp_path, {"initial_program.py": program, "evaluator.py": evaluator,
                             "data.txt": "0.25", "helper.py": "print(42)\n"})
    run_ok(path, budget=4)
    initial = as_json(path, "show", "1")
    assert initial["status"] == "ok" and initial["metrics"]["helper"] == 42.0
    if os.geteuid() == 0:  # the read-only view needs a private mount namespace
        assert (path / "data.txt").read_text() == "0.25"


@pytest.mark.skipif(os.geteuid() != 0, reason="an empty network namespace needs root")
def test_network_call_names_the_config_key(tmp_path: Path) -> None:
    evaluator = '''\
import socket


def evaluate(program_path):
    socket.create_connection(("192.0.2.1", 9), timeout=5)
    return {"combined_score": 1.0}
'''
    path = folder(tmp_path, {"initial_program.py": PROGRAM, "evaluator.py": evaluator})
    line = one_line_error(evoforge("run", ".", "--no-llm", "--budget", "2", cwd=path))
    assert "evaluator.network" in line


# --- 10. config keys that used to be read without effect ------------------------------------

def test_config_target_and_max_time_stop_the_run(tmp_path: Path) -> None:
    evaluator = SCORE + ("\nimport time\n\n\ndef evaluate(p):\n    time.sleep(0.05)\n"
                         "    return {'combined_score': score(p)}\n")
    path = folder(tmp_path, {"initial_program.py": PROGRAM, "evaluator.py": evaluator,
                             "config.yaml": "target: 0.05\n"}, name="target")
    run_ok(path, budget=50)
    assert as_json(path, "status")["stop_reason"] == "target"
    path = folder(tmp_path, {"initial_program.py": PROGRAM, "evaluator.py": evaluator,
                             "config.yaml": "max_time: 2\n"}, name="max_time")
    run_ok(path, budget=100000)
    info = as_json(path, "status")
    assert info["stop_reason"] == "time" and info["evaluated"] < 100000


def test_llm_section_settings_reach_every_model(tmp_path: Path) -> None:
    # OpenEvolve's LLMConfig.__post_init__ / update_model_params (openevolve/config.py)
    text = textwrap.dedent("""\
        diff_based_evolution: false
        llm:
          api_base: http://127.0.0.1:8000/v1
          api_key: ${MY_SERVER_KEY}
          retries: 5
          top_p: 0.9
          models:
            - name: small
              weight: 0.7
            - name: big
              weight: 0.3
              api_base: http://127.0.0.1:9000/v1
        """)
    path = tmp_path / "config.yaml"
    path.write_text(text)
    warnings: list[str] = []
    config = load_config(path, warnings)
    bases = [(m.name, m.api_base) for m in config.llm.models]
    assert bases == [("small", "http://127.0.0.1:8000/v1"), ("big", "http://127.0.0.1:9000/v1")]
    extra = [m.model_extra or {} for m in config.llm.models]
    assert all(e["max_retries"] == 5 and e["api_key_env"] == "MY_SERVER_KEY" for e in extra)
    assert config.llm.modes is not None and "rewrite" in config.llm.modes
    assert "diff" not in config.llm.modes
    assert len(warnings) == 1 and "llm.top_p" in warnings[0]


# --- 11. every candidate can be inspected -----------------------------------------------------

def test_show_and_candidates(tmp_path: Path) -> None:
    evaluator = SCORE + '''

def evaluate(program_path):
    print("evaluating", program_path.rsplit("/", 1)[-1])
    s = score(program_path)
    if s < 0.02:
        raise ValueError("far too far off")
    return {"combined_score": s, "note": "text is kept"}
'''
    path = folder(tmp_path, {"initial_program.py": PROGRAM, "evaluator.py": evaluator})
    run_ok(path, budget=16)
    everything = as_json(path, "candidates")
    top = as_json(path, "candidates", "--top", "2")
    assert len(top) == min(2, sum(c["status"] == "ok" for c in everything))
    assert top[0]["score"] == max(c["score"] for c in everything if c["status"] == "ok")
    initial = as_json(path, "show", str(everything[0]["id"]))
    assert initial["stdout"].startswith("evaluating program.py")
    assert initial["metrics"]["note"] == "text is kept" and initial["diff"] is None
    child = next(c for c in everything if c["parent_ids"])
    shown = as_json(path, "show", str(child["id"]))
    assert shown["diff"].startswith(f"--- candidate {child['parent_ids'][0]}")
    failed = as_json(path, "candidates", "--status", "failed")
    assert all(c["status"] == "failed" and c["error"] for c in failed)
    text = evoforge("show", str(everything[0]["id"]), cwd=path)
    assert text.returncode == 0 and "metrics" in text.stdout and "def f(x):" in text.stdout
    line = one_line_error(evoforge("show", "999999", cwd=path))
    assert "999999" in line
    line = one_line_error(evoforge("candidates", "--status", "great", cwd=path))
    assert "great" in line


# --- found while running OpenEvolve's examples: Ctrl-C during a long evaluation ---------------

def test_ctrl_c_does_not_wait_for_a_long_evaluation(tmp_path: Path) -> None:
    # AlphaEvolve-style evaluators run for minutes; a stop must not wait for them
    evaluator = "import time\n\n\ndef evaluate(p):\n    time.sleep(60)\n    return {'x': 1.0}\n"
    path = folder(tmp_path, {"initial_program.py": PROGRAM, "evaluator.py": evaluator,
                             "config.yaml": "evaluator: {timeout: 120}\n"})
    proc = subprocess.Popen([sys.executable, "-m", "evoforge", "run", ".", "--no-llm"],
                            cwd=path, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while not (path / "evoforge.db").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(3)  # the initial evaluation is under way
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        assert time.monotonic() - sent < 20
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    info = as_json(path, "status")
    assert info["stop_reason"] == "interrupted" and info["pending"] == 1
