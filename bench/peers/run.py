"""evoforge against OpenEvolve (and ShinkaEvolve where it installs), side by side.

Every framework runs as a user runs it, as a subprocess with its own interpreter
(``bench/peers/install.py`` makes the environments), on the same OpenEvolve-format
problem, against the same fake OpenAI-compatible endpoint (``server.py``, its own
process, so its CPU is counted in no framework's), with the same number of workers:

- ``--part b``: a model that answers after 2 s, instant evaluator, 200 evaluations:
  evaluations per second.
- ``--part a``: an instant model, 2,000 and 10,000 evaluations: wall and CPU ms per
  evaluation (CPU of the framework's whole process tree: ``RUSAGE_CHILDREN`` around it).
- ``--part c``: bin_packing with the stand-in model (a seeded model-free mutation of the
  parent as a SEARCH/REPLACE diff, 10 % broken replies), 3 seeds: the held-out test
  score of the best train program so far against evaluations.

Writes ``bench/out/peers.json``, ``docs/peers.png`` and the Peers section of
``docs/benchmarks.md``::

    python bench/peers/install.py          # once
    nice -n 10 python bench/peers/run.py   # all parts; --part b, --quick
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
VENVS = HERE / ".venvs"
PROBLEMS = HERE / "problems"
OUT = ROOT / "bench" / "out"
DOC = ROOT / "docs" / "benchmarks.md"
PLOT = ROOT / "docs" / "peers.png"
BIN_PACKING = ROOT / "evoforge" / "problems" / "bin_packing"
WORKERS = 2
MODEL = "fake-model"
SHINKA = "0.0.7"
SHINKA_BUDGET = 40
"""ShinkaEvolve's evaluations in parts b and c: it evaluates one program at a time here."""


# ------------------------------------------------------------------ the fake server

@contextmanager
def fake_server(*args: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Start ``server.py`` with ``args``; yield its base URL and a dict that holds its
    statistics once the block has ended. It is reaped only after the block, so its CPU
    never lands in a measurement taken inside the block."""
    stats_file = Path(tempfile.mkstemp(prefix="peers-server-", suffix=".json")[1])
    proc = subprocess.Popen([sys.executable, str(HERE / "server.py"), *args,
                             "--stats", str(stats_file)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdin is not None
    stats: dict[str, Any] = {}
    try:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError("the fake server did not start")
        yield json.loads(line)["base_url"], stats
    finally:
        proc.stdin.close()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if stats_file.stat().st_size:
            stats.update(json.loads(stats_file.read_text()))
        stats_file.unlink()


def timed(cmd: list[str], cwd: Path, log: Path, env: dict[str, str] | None = None,
          timeout: float = 7200) -> dict[str, Any]:
    """Run ``cmd`` to the end: wall seconds and CPU seconds of its whole process tree
    (the children it waited for included), its exit status; output goes to ``log``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with log.open("w") as out:
        proc = subprocess.run(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                              env={**os.environ, **(env or {})}, timeout=timeout)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        tail = log.read_text()[-3000:]
        raise RuntimeError(f"{cmd[0]} exited {proc.returncode}:\n{tail}")
    return {"wall_s": wall, "cpu_s": cpu}


# ------------------------------------------------------------------ the frameworks

def peer_python(name: str) -> Path | None:
    """The interpreter of a peer's environment, None when it is not installed."""
    python = VENVS / name / "bin" / "python"
    return python if (VENVS / f"{name}.ok").exists() and python.exists() else None


def run_evoforge(problem: Path, base_url: str, budget: int, work: Path, seed: int = 0,
                 max_concurrency: int | None = None) -> dict[str, Any]:
    """``evoforge run`` on ``problem`` with the fake model, diffs only (no model-free
    operators, as the peers have none); the run's statistics from its SQLite file."""
    config = yaml.safe_load((problem / "config.yaml").read_text()) if (
        problem / "config.yaml").exists() else {}
    config = config or {}
    llm: dict[str, Any] = {"modes": ["diff"], "mutation_operators": False}
    if max_concurrency is not None:
        llm["max_concurrency"] = max_concurrency
    config["llm"] = llm
    work.mkdir(parents=True, exist_ok=True)
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    db = work / "runs.db"
    evoforge = Path(sys.executable).with_name("evoforge")
    cmd = [str(evoforge), "run", str(problem), "--config", str(work / "config.yaml"),
           "--budget", str(budget), "--workers", str(WORKERS), "--seed", str(seed),
           "--storage", f"sqlite:///{db}", "--llm", f"{base_url}:{MODEL}"]
    result = timed(cmd, work, work / "evoforge.log")
    with sqlite3.connect(db) as con:
        rows = con.execute("SELECT status, COUNT(*) FROM candidates GROUP BY status").fetchall()
    counts = {str(s): int(n) for s, n in rows}
    result["counts"] = counts
    result["evaluations"] = sum(counts.get(s, 0) for s in ("ok", "failed", "timeout"))
    result["db"] = str(db)
    return result


def run_openevolve(problem: Path, base_url: str, iterations: int, work: Path,
                   seed: int = 42, workers: int = WORKERS,
                   checkpoint_interval: int | None = None) -> dict[str, Any]:
    """``openevolve-run`` on ``problem`` with the fake model; each iteration is one
    request and (where the diff applies) one evaluation."""
    python = peer_python("openevolve")
    if python is None:
        raise RuntimeError("OpenEvolve is not installed: python bench/peers/install.py")
    config = yaml.safe_load((problem / "config.yaml").read_text()) if (
        problem / "config.yaml").exists() else {}
    config = config or {}
    config.update({"max_iterations": iterations, "random_seed": seed})
    if checkpoint_interval is not None:
        config["checkpoint_interval"] = checkpoint_interval
    config["llm"] = {"api_base": base_url, "api_key": "none",
                     "models": [{"name": MODEL, "weight": 1.0}]}
    config.setdefault("evaluator", {})["parallel_evaluations"] = workers
    work.mkdir(parents=True, exist_ok=True)
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    cmd = [str(python.with_name("openevolve-run")), str(problem / "initial_program.py"),
           str(problem / "evaluator.py"), "--config", str(work / "config.yaml"),
           "--iterations", str(iterations), "--output", str(work / "out")]
    result = timed(cmd, work, work / "openevolve.log", env={"OPENAI_API_KEY": "none"})
    result["evaluations"] = iterations
    result["out"] = str(work / "out")
    return result


SHINKA_EVALUATE = """\
\"\"\"ShinkaEvolve's evaluate.py contract around an OpenEvolve-format evaluator.\"\"\"
import argparse, importlib.util, json, os, traceback

parser = argparse.ArgumentParser()
parser.add_argument("--program_path", required=True)
parser.add_argument("--results_dir", required=True)
args = parser.parse_args()
spec = importlib.util.spec_from_file_location("problem_evaluator", {evaluator!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
try:
    metrics, correct, error = module.evaluate(args.program_path), True, None
except Exception:
    metrics, correct, error = {{}}, False, traceback.format_exc()[-2000:]
os.makedirs(args.results_dir, exist_ok=True)
with open(os.path.join(args.results_dir, "correct.json"), "w") as f:
    json.dump({{"correct": correct, "error": error}}, f)
with open(os.path.join(args.results_dir, "metrics.json"), "w") as f:
    json.dump({{"combined_score": metrics.get("combined_score", 0.0), "public": metrics,
               "private": {{}}}}, f)
"""


def run_shinka(problem: Path, base_url: str, generations: int, work: Path) -> dict[str, Any]:
    """``shinka_run`` on a task folder made from ``problem`` (``initial.py`` and an
    ``evaluate.py`` that calls the problem's evaluator), diffs only, with the fake model
    as a local OpenAI-compatible one; no embeddings and no meta-recommendations (they
    would need models of other kinds). It has no seed option."""
    python = peer_python("shinka")
    if python is None:
        raise RuntimeError("ShinkaEvolve is not installed: python bench/peers/install.py")
    task = work / "task"
    task.mkdir(parents=True, exist_ok=True)
    shutil.copy(problem / "initial_program.py", task / "initial.py")
    (task / "evaluate.py").write_text(
        SHINKA_EVALUATE.format(evaluator=str(problem / "evaluator.py")))
    cmd = [str(python.with_name("shinka_run")), "--task-dir", str(task), "--results_dir",
           str(work / "out"), "--num_generations", str(generations),
           "--max-evaluation-jobs", str(WORKERS), "--no-verbose",
           "--set", f'evo.llm_models=["local/{MODEL}@{base_url}"]',
           "--set", "evo.embedding_model=null", "--set", "evo.meta_rec_interval=null",
           "--set", 'evo.patch_types=["diff"]', "--set", "evo.patch_type_probs=[1.0]"]
    result = timed(cmd, work, work / "shinka.log")
    result["db"] = str(work / "out" / "programs.sqlite")
    result["evaluations"] = len(_shinka_trace(result["db"]))
    return result


def _shinka_trace(db: str) -> list[tuple[float, str]]:
    """(train score or -inf, code) per generation (the initial program is stored once per
    island, as generation 0)."""
    with sqlite3.connect(db) as con:
        rows = con.execute("SELECT generation, correct, combined_score, code FROM programs "
                           "ORDER BY generation, timestamp").fetchall()
    seen: dict[int, tuple[float, str]] = {}
    for gen, correct, score, code in rows:
        if gen not in seen:
            seen[gen] = (float(score) if correct and score is not None else float("-inf"),
                         code)
    return [seen[g] for g in sorted(seen)]


def finish_times(res: dict[str, Any]) -> list[float]:
    """When each evaluation of a proposal ended (the initial program's left out), by
    the framework's own records: evoforge's ``finished_at``, the time of OpenEvolve's
    "Iteration N: Program ... completed" log lines, ShinkaEvolve's program ``timestamp``
    (set when a program is stored with its evaluation's result)."""
    if "out" in res:  # OpenEvolve
        log = (Path(res["out"]).parent / "openevolve.log").read_text()
        stamps = re.findall(r"^(\S+ \S+) - INFO - Iteration \d+: Program \S+ .*completed",
                            log, re.MULTILINE)
        return sorted(datetime.strptime(t, "%Y-%m-%d %H:%M:%S,%f").timestamp()
                      for t in stamps)
    query = ("SELECT finished_at FROM candidates WHERE seq > 0 AND status IN "
             "('ok', 'failed', 'timeout')" if res["db"].endswith("runs.db") else
             "SELECT MIN(timestamp) FROM programs WHERE generation > 0 GROUP BY generation")
    with sqlite3.connect(res["db"]) as con:
        return sorted(float(t) for (t,) in con.execute(query) if t is not None)


def in_run_rate(res: dict[str, Any]) -> float:
    """Evaluations per second from the end of the first evaluation of a proposal to the
    end of the last: the run without the process's start and finish."""
    times = finish_times(res)
    return (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else float("nan")


# ------------------------------------------------------------------ (b) a 2 s model

def part_b(budget: int, delay: float, work: Path) -> dict[str, Any]:
    """Evaluations per second with a slow model and an instant evaluator."""
    problem = PROBLEMS / "trivial"
    rows: list[dict[str, Any]] = []
    runs: list[tuple[str, dict[str, Any]]] = [
        ("evoforge (default look-ahead)", {"max_concurrency": None}),
        # the cap of the default before issue 11's last change (4 per worker)
        ("evoforge, llm.max_concurrency 8", {"max_concurrency": 8}),
    ]
    for name, extra in runs:
        with fake_server("--model", "counter", "--delay", str(delay)) as (url, stats):
            res = run_evoforge(problem, url, budget,
                               work / f"evoforge-{extra['max_concurrency'] or 'auto'}", **extra)
        res["in_run_evals_per_s"] = in_run_rate(res)
        rows.append({"framework": name, **res, "server": stats})
    if peer_python("openevolve"):
        with fake_server("--model", "counter", "--delay", str(delay)) as (url, stats):
            res = run_openevolve(problem, url, budget, work / "openevolve")
        res["in_run_evals_per_s"] = in_run_rate(res)
        rows.append({"framework": "OpenEvolve 0.4.1", **res, "server": stats})
    if peer_python("shinka"):
        with fake_server("--model", "counter", "--delay", str(delay)) as (url, stats):
            # one evaluation and one proposal at a time on 2 cores (its own CPU-count
            # limits), a fresh interpreter per evaluation: a smaller run, same rates
            res = run_shinka(problem, url, min(budget, SHINKA_BUDGET), work / "shinka")
        res["in_run_evals_per_s"] = in_run_rate(res)
        rows.append({"framework": f"ShinkaEvolve {SHINKA}", **res, "server": stats})
    for row in rows:
        row["evals_per_s"] = row["evaluations"] / row["wall_s"]
    return {"budget": budget, "delay_s": delay, "workers": WORKERS, "rows": rows}


# ------------------------------------------------------------------ (a) an instant model

def part_a(budgets: list[int], work: Path) -> dict[str, Any]:
    """Wall and CPU ms per evaluation with an instant model and an instant evaluator."""
    problem = PROBLEMS / "trivial"
    rows: list[dict[str, Any]] = []
    for budget in budgets:
        with fake_server("--model", "counter") as (url, stats):
            res = run_evoforge(problem, url, budget, work / f"evoforge-{budget}")
        rows.append({"framework": "evoforge", "budget": budget, **res, "server": stats})
        if peer_python("openevolve"):
            with fake_server("--model", "counter") as (url, stats):
                res = run_openevolve(problem, url, budget, work / f"openevolve-{budget}")
            rows.append({"framework": "OpenEvolve 0.4.1", "budget": budget, **res,
                         "server": stats})
    for row in rows:
        row["wall_ms_per_eval"] = 1000 * row["wall_s"] / row["evaluations"]
        row["cpu_ms_per_eval"] = 1000 * row["cpu_s"] / row["evaluations"]
        row["in_run_ms_per_eval"] = 1000 / in_run_rate(row)
    return {"budgets": budgets, "workers": WORKERS, "rows": rows}


# ------------------------------------------------------------------ (c) search quality

def _evoforge_trace(db: str) -> list[tuple[float, str]]:
    """(train score or -inf, code) of each evaluation, in the order they were made."""
    with sqlite3.connect(db) as con:
        rows = con.execute(
            "SELECT c.status, c.score, p.code FROM candidates c JOIN programs p "
            "ON p.id = c.program_id WHERE c.status IN ('ok', 'failed', 'timeout') "
            "ORDER BY c.seq").fetchall()
    return [(float(s) if st == "ok" and s is not None else float("-inf"), code)
            for st, s, code in rows]


def _openevolve_trace(out: str) -> list[tuple[float, str]]:
    """The same from OpenEvolve's last checkpoint (every evaluated program is kept while
    the population is under ``database.population_size``)."""
    checkpoints = sorted(Path(out, "checkpoints").glob("checkpoint_*"),
                         key=lambda p: int(p.name.split("_")[1]))
    programs = [json.loads(f.read_text())
                for f in (checkpoints[-1] / "programs").glob("*.json")]
    # OpenEvolve also stores copies (the initial program put on each island, migrants):
    # same code as their parent, never evaluated again
    by_id = {p["id"]: p for p in programs}
    programs = [p for p in programs if p.get("parent_id") not in by_id
                or by_id[p["parent_id"]]["code"] != p["code"]]
    programs.sort(key=lambda p: (p.get("iteration_found", 0), p.get("timestamp", 0)))
    trace = []
    for p in programs:
        score = (p.get("metrics") or {}).get("combined_score")
        trace.append((float(score) if isinstance(score, int | float) else float("-inf"),
                      p["code"]))
    return trace


def _best_so_far(trace: list[tuple[float, str]], marks: list[int]) -> list[str | None]:
    """The best train program among the first ``m`` evaluations, for each mark."""
    best: tuple[float, str] | None = None
    out: list[str | None] = []
    j = 0
    for m in marks:
        while j < min(m, len(trace)):
            if best is None or trace[j][0] > best[0]:
                best = trace[j]
            j += 1
        out.append(None if best is None else best[1])
    return out


def test_scores(codes: set[str]) -> dict[str, float]:
    """Held-out test score of each program, by evoforge's built-in evaluator."""
    sys.path.insert(0, str(BIN_PACKING))
    import evaluator as builtin  # type: ignore[import-not-found]  # noqa: I001

    scores = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, code in enumerate(sorted(codes)):
            path = Path(tmp) / f"p{i}.py"
            path.write_text(code)
            try:
                scores[code] = float(builtin.evaluate_test(str(path)).metrics["combined_score"])
            except Exception:  # a program that fails on test
                scores[code] = float("nan")
    return scores


def part_c(budget: int, seeds: list[int], work: Path, broken: float = 0.1,
           shinka: bool = False) -> dict[str, Any]:
    """bin_packing with the stand-in model: best test score against evaluations."""
    problem = PROBLEMS / "bin_packing"
    marks = sorted({max(budget * k // 10, 1) for k in range(1, 11)})
    runs: list[dict[str, Any]] = []
    frameworks = (["evoforge"] + (["OpenEvolve 0.4.1"] if peer_python("openevolve") else [])
                  + ([f"ShinkaEvolve {SHINKA}"] if shinka and peer_python("shinka") else []))
    for seed in seeds:
        for name in frameworks:
            server_args = ("--model", "mutation", "--seed", str(seed), "--broken", str(broken),
                           "--primitives-from", str(BIN_PACKING / "config.yaml"))
            with fake_server(*server_args) as (url, stats):
                if name == "evoforge":
                    res = run_evoforge(problem, url, budget, work / f"evoforge-{seed}", seed)
                    trace = _evoforge_trace(res["db"])
                elif name.startswith("ShinkaEvolve"):
                    res = run_shinka(problem, url, budget, work / f"shinka-{seed}")
                    trace = _shinka_trace(res["db"])
                else:
                    # an iteration whose diff does not apply evaluates nothing: ask for
                    # enough iterations to reach the same number of evaluations
                    iterations = int(budget / (1 - broken)) + 5
                    # one checkpoint, at the end: the programs with their order and scores
                    res = run_openevolve(problem, url, iterations, work / f"oe-{seed}", seed,
                                         checkpoint_interval=iterations)
                    trace = _openevolve_trace(res["out"])
            runs.append({"framework": name, "seed": seed, "wall_s": res["wall_s"],
                         "evaluations": len(trace), "server": stats,
                         "best": _best_so_far(trace, marks)})
    scores = test_scores({c for r in runs for c in r["best"] if c is not None})
    for r in runs:
        r["test"] = [scores[c] if c is not None else float("nan") for c in r.pop("best")]
    return {"budget": budget, "seeds": seeds, "broken": broken, "marks": marks, "runs": runs}


# ------------------------------------------------------------------ report

def _fmt(x: float, digits: int = 3) -> str:
    return f"{x:.{digits}g}" if abs(x) < 1000 else f"{x:,.0f}"


def _measured(part: dict[str, Any]) -> str:
    load = ", ".join(f"{x:.0f}" for x in part.get("load", ()))
    return (f"Measured {part.get('when')} with `{part.get('command')}` in "
            f"{part.get('seconds', 0):.0f} s, on the shared 2-core machine (load average "
            f"at the end {load}).")


def render(results: dict[str, Any]) -> str:
    """The Peers section of docs/benchmarks.md."""
    lines = ["Each part below comes from one invocation of `bench/peers/run.py` (its command "
             "is given); the machine is shared, so absolute numbers move with its load; each "
             "ratio compares runs made one after the other in the same invocation."]
    if "b" in results:
        b = results["b"]
        oe = next((r for r in b["rows"] if r["framework"].startswith("OpenEvolve")), None)
        lines += ["", f"**(b) A model that answers after {b['delay_s']:g} s**, instant "
                  f"evaluator, {b['workers']} workers, {b['budget']} evaluations "
                  f"({SHINKA_BUDGET} for ShinkaEvolve). " + _measured(b), "",
                  "| framework | evaluations | wall s | evaluations/s (whole process) | "
                  "× OpenEvolve | evaluations/s (in the run) | × OpenEvolve | "
                  "model requests in flight (most) | CPU s |",
                  "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for r in b["rows"]:
            whole = f"{r['evals_per_s'] / oe['evals_per_s']:.1f}×" if oe else "-"
            run = (f"{r['in_run_evals_per_s'] / oe['in_run_evals_per_s']:.1f}×" if oe
                   else "-")
            lines.append(f"| {r['framework']} | {r['evaluations']} | {r['wall_s']:.1f} | "
                         f"{r['evals_per_s']:.2f} | "
                         f"{whole} | {r['in_run_evals_per_s']:.2f} | {run} | "
                         f"{r['server'].get('max_in_flight', '-')} | {r['cpu_s']:.1f} |")
    if "a" in results:
        a = results["a"]
        lines += ["", f"**(a) An instant model**, instant evaluator, {a['workers']} workers; "
                  "CPU is the framework's whole process tree. " + _measured(a), "",
                  "| framework | evaluations | wall ms / evaluation | CPU ms / evaluation | "
                  "OpenEvolve / evoforge (wall, CPU) | wall ms / evaluation in the run | "
                  "OpenEvolve / evoforge |", "| --- | ---: | ---: | ---: | --- | ---: | --- |"]
        for r in a["rows"]:
            oe = next((o for o in a["rows"] if o["framework"].startswith("OpenEvolve")
                       and o["budget"] == r["budget"]), None)
            ratio = (f"{oe['wall_ms_per_eval'] / r['wall_ms_per_eval']:.2f}×, "
                     f"{oe['cpu_ms_per_eval'] / r['cpu_ms_per_eval']:.2f}×"
                     if oe and r["framework"] == "evoforge" else "")
            in_run = (f"{oe['in_run_ms_per_eval'] / r['in_run_ms_per_eval']:.2f}×"
                      if oe and r["framework"] == "evoforge" else "")
            lines.append(f"| {r['framework']} | {r['evaluations']:,} | "
                         f"{r['wall_ms_per_eval']:.2f} | {r['cpu_ms_per_eval']:.2f} | {ratio} | "
                         f"{r['in_run_ms_per_eval']:.2f} | {in_run} |")
    if "c" in results:
        c = results["c"]
        marks = c["marks"]
        show = [m for m in marks if m in (marks[len(marks) // 2 - 1], marks[-1])]
        lines += ["", f"**(c) Search quality**: bin_packing, the stand-in model (a seeded "
                  f"model-free mutation of the parent as a diff, {c['broken']:.0%} broken "
                  f"replies), seeds {c['seeds']}, {WORKERS} workers; held-out test score of "
                  "the best train program so far (higher is better; best fit −4.857, "
                  "initial first fit −5.319). " + _measured(c), "",
                  "| framework | " + " | ".join(f"test @{m} (mean)" for m in show)
                  + " | per seed @end | wall s (mean) |",
                  "| --- | " + " | ".join("---:" for _ in show) + " | --- | ---: |"]
        for name in dict.fromkeys(r["framework"] for r in c["runs"]):
            rs = [r for r in c["runs"] if r["framework"] == name]
            means = [statistics.mean(r["test"][marks.index(m)] for r in rs) for m in show]
            lines.append(f"| {name} | " + " | ".join(f"{v:.3f}" for v in means) + " | "
                         + ", ".join(f"{r['test'][-1]:.3f}" for r in rs) + " | "
                         + f"{statistics.mean(r['wall_s'] for r in rs):.0f} |")
        lines += ["", f"![best test score against evaluations]({PLOT.name})"]
    return "\n".join(lines)


def plot(c: dict[str, Any]) -> None:
    """Mean best test score against evaluations, one line per framework."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name in dict.fromkeys(r["framework"] for r in c["runs"]):
        rs = [r for r in c["runs"] if r["framework"] == name]
        means = [statistics.mean(vals) for vals in zip(*(r["test"] for r in rs), strict=True)]
        ax.plot(c["marks"], means, marker="o", label=name)
    ax.axhline(-4.857, color="grey", linestyle=":", label="best fit")
    ax.set_xlabel("evaluations")
    ax.set_ylabel("test score of the best train program (mean of seeds)")
    ax.set_title("bin_packing, stand-in model")
    ax.legend()
    fig.tight_layout()
    fig.savefig(PLOT, dpi=100)
    plt.close(fig)


def write_doc(section: str) -> None:
    """Put ``section`` between the peers markers of docs/benchmarks.md (added at the end
    the first time); the rest of the page is left as it is."""
    begin, end = "<!-- peers:begin -->", "<!-- peers:end -->"
    text = DOC.read_text()
    block = f"{begin}\n{section}\n{end}"
    if begin in text:
        head, rest = text.split(begin, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n## Peers: OpenEvolve and ShinkaEvolve\n\n" + block + "\n"
    DOC.write_text(text)


def main(argv: list[str] | None = None) -> None:
    """Run the parts asked for; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", default="b,a,c", help="comma-separated: a, b, c")
    parser.add_argument("--quick", action="store_true", help="small budgets, one seed")
    parser.add_argument("--no-doc", action="store_true", help="leave docs/ alone")
    parser.add_argument("--budgets", type=int, nargs="+", default=[2000, 10000],
                        help="evaluations per run in part a")
    parser.add_argument("--out", type=Path, default=OUT / "peers.json",
                        help="results, kept across invocations (each part replaces its own)")
    parser.add_argument("--merge", type=Path, nargs="*", default=[],
                        help="results files of other invocations to add (--part '' with "
                        "--merge only renders)")
    parser.add_argument("--quality-budget", type=int, default=200,
                        help="evaluations per run in part c")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3],
                        help="seeds of part c")
    parser.add_argument("--shinka-quality", action="store_true",
                        help="ShinkaEvolve in part c too (one evaluation at a time: slow)")
    args = parser.parse_args(argv)
    parts = [p.strip() for p in args.part.split(",") if p.strip()]
    work = Path(tempfile.mkdtemp(prefix="evoforge-peers-"))
    command = " ".join(["python bench/peers/run.py",
                        *(argv if argv is not None else sys.argv[1:])])
    OUT.mkdir(parents=True, exist_ok=True)
    out_file = args.out
    results: dict[str, Any] = json.loads(out_file.read_text()) if out_file.exists() else {}
    for other in args.merge:
        results.update(json.loads(other.read_text()))
    for part in parts:
        start = time.perf_counter()
        if part == "b":
            results["b"] = part_b(40 if args.quick else 200, 2.0, work / "b")
        elif part == "a":
            results["a"] = part_a([200, 1000] if args.quick else args.budgets, work / "a")
        elif part == "c":
            results["c"] = part_c(40 if args.quick else args.quality_budget,
                                  [1] if args.quick else args.seeds, work / "c",
                                  shinka=args.shinka_quality)
        else:
            parser.error(f"unknown part {part!r}")
        seconds = time.perf_counter() - start
        results[part].update(seconds=seconds, command=command, when=time.strftime(
            "%Y-%m-%d %H:%M UTC", time.gmtime()), load=os.getloadavg())
        print(f"== part {part}: {seconds:.0f} s", flush=True)
        out_file.write_text(json.dumps(results, indent=1, default=str))
    print(f"runs kept in {work}", flush=True)
    if not args.no_doc:
        if "c" in results:
            plot(results["c"])
        write_doc(render(results))
    print(json.dumps(results, indent=1, default=str)[-4000:])


if __name__ == "__main__":
    main()
