"""The LLM path end to end: the CLI, real worker processes, and a fake endpoint over HTTP."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from evoforge.testing import FakeLLMServer, Reply

ROOT = Path(__file__).resolve().parents[3]
PROBLEMS = ROOT / "evoforge" / "problems"
BIN_PACKING = PROBLEMS / "bin_packing"
OPENEVOLVE = ROOT / "tests" / "fixtures" / "problems" / "openevolve_style"
FIRST_FIT = "    return -np.arange(len(bins), dtype=float)"
BEST_FIT = "    return -bins"
GAP_FIT = ("    gap = bins - item\n"
           "    return np.where((gap > 5) & (gap < 20), -1000.0 - gap, -gap)")


def evoforge(*args: str, cwd: Path, env: dict[str, str] | None = None,
             timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "evoforge", *args], cwd=cwd, text=True,
                          capture_output=True, timeout=timeout,
                          env={**os.environ, "COLUMNS": "200", **(env or {})})


def problem_copy(tmp_path: Path, llm: dict[str, Any], source: Path = BIN_PACKING) -> Path:
    folder = tmp_path / source.name
    shutil.copytree(source, folder)
    config = yaml.safe_load((folder / "config.yaml").read_text()) or {}
    config["llm"] = llm
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    return folder


def model(url: str, **extra: Any) -> dict[str, Any]:
    return {"name": "fake-model", "api_base": url, "api_key_env": None, "timeout": 2.0,
            "max_retries": 2, **extra}


def user_text(request: dict[str, Any]) -> str:
    return "\n".join(m["content"] for m in request["messages"] if m["role"] == "user")


def status(cwd: Path) -> dict[str, Any]:
    proc = evoforge("status", "--json", cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def improving(request: dict[str, Any]) -> Reply:
    """Valid diffs: first fit -> best fit -> gap fit; then nothing new."""
    text = user_text(request).split("# Other programs")[0]
    if FIRST_FIT in text:
        return Reply.diff(FIRST_FIT, BEST_FIT)
    if BEST_FIT in text:
        return Reply.diff(BEST_FIT, GAP_FIT)
    return Reply.garbage()


@pytest.mark.slow
def test_bin_packing_improves_from_valid_diffs_with_retries(tmp_path: Path) -> None:
    answers = [Reply.error(429, retry_after=1), Reply.error(500)]

    def script(request: dict[str, Any]) -> Reply:
        return answers.pop(0) if answers else improving(request)

    with FakeLLMServer(script) as server:
        folder = problem_copy(tmp_path, {"models": [model(server.base_url)],
                                         "modes": ["diff"], "mutation_operators": False})
        proc = evoforge("run", str(folder), "--budget", "8", "--seed", "3", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        info = status(tmp_path)
        url = server.base_url
    assert info["initial_score"] == pytest.approx(-5.4867, abs=1e-3)
    assert info["best_score"] > -4.0  # past best fit: the gap-fit edit applied and scored
    entry = info["models"]["fake-model@" + url]
    diff = entry["modes"]["llm:diff"]
    assert diff["applied"] >= 2 and diff["apply_rate"] is not None
    assert entry["retries"] >= 2  # the 429 and the 500 were retried
    assert entry["prompt_tokens"] > 0 and entry["completion_tokens"] > 0
    # the note of the issue wants these numbers; print them for the record
    print(f"apply rate {diff['apply_rate']:.2f}, retries {entry['retries']}, "
          f"best {info['best_score']:.4f}")


@pytest.mark.slow
def test_bad_replies_are_stored_as_rejected_with_reasons(tmp_path: Path) -> None:
    replies = [Reply.garbage(), Reply.truncated("```python\ndef priority(item, bins):\n"),
               Reply.diff("    return something_not_in_the_program", BEST_FIT),
               Reply.slow(5.0, Reply.text("too late")), Reply.slow(5.0, Reply.text("late")),
               Reply.slow(5.0, Reply.text("still late"))]
    with FakeLLMServer(replies, default=Reply.garbage()) as server:
        folder = problem_copy(tmp_path, {"models": [model(server.base_url, max_retries=1)],
                                         "modes": ["diff"], "mutation_operators": False})
        proc = evoforge("run", str(folder), "--budget", "2", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    import sqlite3

    with sqlite3.connect(tmp_path / "evoforge.db") as conn:
        errors = [r[0] for r in conn.execute(
            "SELECT error FROM candidates WHERE status='rejected' ORDER BY seq")]
    assert any(e.startswith("apply: no_edits") for e in errors), errors
    assert any(e.startswith("apply: truncated") for e in errors), errors
    assert any(e.startswith("apply: search_not_found") for e in errors), errors
    assert any(e.startswith("llm:") for e in errors), errors  # the timeouts, after retries


@pytest.mark.slow
def test_crossover_and_plan_prompts_reach_the_server(tmp_path: Path) -> None:
    def script(request: dict[str, Any]) -> Reply:
        text = user_text(request)
        if "distinct ideas" in text:
            return Reply.text("1. Put items in the fullest bin that fits.\n2. Leave no "
                              "small gaps.\n")
        if "The idea to implement" in text:
            return Reply.rewrite("def priority(item, bins):\n    return -bins\n")
        if "A second program to combine" in text:
            return Reply.rewrite("def priority(item, bins):\n    return -(bins - item)\n")
        return improving(request)

    with FakeLLMServer(script) as server:
        folder = problem_copy(tmp_path, {"models": [model(server.base_url)],
                                         "modes": ["crossover", "plan"]})
        proc = evoforge("run", str(folder), "--budget", "25", "--seed", "1", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        texts = [user_text(r.body) for r in server.chat_requests]
    plans = [t for t in texts if "distinct ideas" in t]
    implements = [t for t in texts if "The idea to implement" in t]
    crossovers = [t for t in texts if "A second program to combine" in t]
    assert plans and implements and crossovers
    # plan-then-code: the idea chosen from the plan reply is what the model implements
    assert any("fullest bin" in t or "small gaps" in t for t in implements)
    # crossover: both parents' code is in the prompt
    assert all(t.count("def priority") >= 2 for t in crossovers)


@pytest.mark.slow
def test_cost_cap_stops_the_run(tmp_path: Path) -> None:
    with FakeLLMServer(lambda r: Reply.text("no code here", prompt_tokens=1000,
                                             completion_tokens=1000)) as server:
        folder = problem_copy(tmp_path, {"models": [model(server.base_url, price_in=1000.0,
                                                          price_out=1000.0)],
                                         "modes": ["rewrite"], "mutation_operators": False})
        proc = evoforge("run", str(folder), "--budget", "500", "--max-cost", "5",
                        cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    info = status(tmp_path)
    assert info["stop_reason"] == "cost"
    cost = sum(m["cost"] for m in info["models"].values())
    assert 5.0 <= cost < 5.0 + 2 * 2.0  # each reply costs $2; at most the in-flight extra


@pytest.mark.slow
def test_novelty_gate_rejects_near_twins(tmp_path: Path) -> None:
    twin = ("def priority(item: float, bins: np.ndarray) -> np.ndarray:\n"
            "    \"\"\"First fit: prefer the earliest-opened bin that fits the item.\"\"\"\n"
            "    unused = 0\n"
            "    return -np.arange(len(bins), dtype=float)\n")
    with FakeLLMServer(lambda r: Reply.rewrite(twin)) as server:
        folder = problem_copy(tmp_path, {"models": [model(server.base_url)],
                                         "modes": ["rewrite"], "mutation_operators": False,
                                         "novelty_threshold": 0.5})
        evoforge("run", str(folder), "--budget", "2", cwd=tmp_path)
    import sqlite3

    with sqlite3.connect(tmp_path / "evoforge.db") as conn:
        rows = conn.execute("SELECT status, duplicate_of, error FROM candidates "
                            "WHERE seq > 0").fetchall()
    assert rows and all(r[0] in ("rejected", "duplicate") for r in rows)
    novelty = [r for r in rows if r[2] and r[2].startswith("novelty:")]
    assert novelty and novelty[0][1] == 1  # the near-twin is the initial program


def test_unreachable_endpoint_and_missing_key_fail_fast(tmp_path: Path) -> None:
    proc = evoforge("run", "bin_packing", "--llm", "http://127.0.0.1:9/v1:nothing-here",
                    cwd=tmp_path)
    assert proc.returncode == 2
    assert "unreachable" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    proc = subprocess.run([sys.executable, "-m", "evoforge", "run", "bin_packing", "--llm",
                           "openai:gpt-4.1-mini"], cwd=tmp_path, text=True,
                          capture_output=True, timeout=60, env=env)
    assert proc.returncode == 2
    assert "OPENAI_API_KEY" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    # nothing was evaluated before failing
    import sqlite3

    with sqlite3.connect(tmp_path / "evoforge.db") as conn:
        assert conn.execute("SELECT count(*) FROM candidates").fetchone()[0] == 0


@pytest.mark.slow
def test_openevolve_folder_with_openevolve_llm_config(tmp_path: Path) -> None:
    def script(request: dict[str, Any]) -> Reply:
        return Reply.diff("        total += v", "        total = total + v")

    with FakeLLMServer(script, models=["gpt-4o-mini", "gpt-4o"]) as server:
        folder = tmp_path / "oe"
        shutil.copytree(OPENEVOLVE, folder)
        config = yaml.safe_load((folder / "config.yaml").read_text())
        config["llm"]["api_base"] = server.base_url
        (folder / "config.yaml").write_text(yaml.safe_dump(config))
        proc = evoforge("run", str(folder), "--budget", "6", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        names = {r.body.get("model") for r in server.chat_requests}
    assert names <= {"gpt-4o-mini", "gpt-4o"} and names
    info = status(tmp_path)
    assert info["models"]


@pytest.mark.slow
def test_local_smollm2_reply_is_applied() -> None:
    """The real local model, through the proposer, makes a program that applies.

    At most two proposals in the expression mode (the answer already opened, stopped
    at the line end); the first applied one ends the test.
    """
    import asyncio
    import importlib.util
    import random
    import time

    for module in ("torch", "transformers", "gguf", "accelerate"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed (make test runs evoforge install-local)")
    from evoforge.candidate import Candidate, Status, normalized_hash
    from evoforge.config import LLMConfig
    from evoforge.problem import extract_regions, load_problem
    from evoforge.proposers.llm.backend import Backend
    from evoforge.proposers.llm.local import find_smollm2_gguf
    from evoforge.proposers.llm.proposer import LLMProposer, parse_llm_spec
    from evoforge.proposers.llm.types import LLMError

    try:
        find_smollm2_gguf()
    except LLMError as exc:
        pytest.skip(str(exc))
    problem = load_problem("bin_packing")
    llm = LLMConfig.model_validate({"modes": ["expression"], "mutation_operators": False})
    config = problem.config.model_copy(update={"llm": llm})
    spec = parse_llm_spec("local:smollm2")
    backend = Backend([spec])
    proposer = LLMProposer(problem.template, config, [spec], backend, problem.path)
    code = problem.initial_program
    parent = Candidate(id=1, seq=0, island=0, parent_ids=(), operator="initial", code=code,
                       code_hash=normalized_hash(code), status=Status.OK, score=-5.4867,
                       fitness=-5.4867, metrics={"combined_score": -5.4867})

    async def propose() -> list[Any]:
        start = time.perf_counter()
        await backend.check()  # loads the model
        print(f"local model: load {time.perf_counter() - start:.1f} s")
        proposals = []
        for seed in range(2):
            began = time.perf_counter()
            proposal = await proposer.propose_async(parent, [], random.Random(seed))
            assert proposal is not None and proposal.operator == "llm:expression"
            assert proposal.completion_tokens > 0 and proposal.prompt_tokens > 0
            print(f"proposal {seed}: {time.perf_counter() - began:.1f} s, "
                  f"{proposal.rejected or 'applied'}")
            proposals.append(proposal)
            if proposal.rejected is None:
                break
        return proposals

    proposals = asyncio.run(propose())
    applied = [p for p in proposals if p.rejected is None]
    assert applied, [p.rejected for p in proposals]
    new = applied[0].code
    assert new != code
    extract_regions(problem.template, new)  # the fixed parts are kept
    compile(new, "proposal", "exec")
    # a new return line (the expression mode may extend the old expression)
    assert "    return -np.arange(len(bins), dtype=float)\n" not in new


@pytest.mark.slow
def test_profile_of_the_parent_reaches_the_prompt(tmp_path: Path) -> None:
    """A built-in speed problem (ppr) with evaluator.profile: a child's prompt names the
    parent's hot spots, which the profiler found inside the candidate's own process (the
    kit runs the candidate apart from the evaluator)."""
    replies = iter(range(9, 0, -1))

    def reply(request: dict[str, Any]) -> Reply:
        return Reply.diff("y[v] += share", f"y[v] += share * {next(replies)} / {next(replies)}")

    source = tmp_path / "ppr"
    shutil.copytree(PROBLEMS / "ppr", source)
    config = yaml.safe_load((source / "config.yaml").read_text())
    config["evaluator"]["profile"] = True
    # a profiled second run is skipped when the first came close to the timeout: on a
    # loaded machine ppr's 10 s would be close
    config["evaluator"]["timeout"] = 120
    (source / "config.yaml").write_text(yaml.safe_dump(config))
    with FakeLLMServer(reply) as server:
        folder = problem_copy(tmp_path / "run", {"models": [model(server.base_url)],
                                                 "modes": ["diff"],
                                                 "mutation_operators": False},
                              source=source)
        proc = evoforge("run", str(folder), "--budget", "2", "--workers", "1", cwd=tmp_path)
        prompts = [user_text(r.body) for r in server.chat_requests]
    assert proc.returncode == 0, proc.stderr
    assert prompts
    first = prompts[0]
    assert "profile of one evaluation" in first, first
    # the initial program spends its time in ppr(), in its power-iteration loop
    assert "ppr() line" in first and "hottest lines of the evolve regions" in first
    assert "y[v] += share" in first.split("hottest lines")[1]


def test_llm_spec_prices() -> None:
    from evoforge.proposers.llm.prices import price_table
    from evoforge.proposers.llm.proposer import parse_llm_spec

    spec = parse_llm_spec("openai:gpt-4.1-mini@0.5/2")
    assert (spec.name, spec.price_in, spec.price_out) == ("gpt-4.1-mini", 0.5, 2.0)
    spec = parse_llm_spec("http://127.0.0.1:8000/v1:qwen2.5-coder@.2/0.6")
    assert (spec.api_base, spec.name, spec.price_in, spec.price_out) == (
        "http://127.0.0.1:8000/v1", "qwen2.5-coder", 0.2, 0.6)
    # without a price: the shipped table by name, else unknown; the local model is free
    date, table = price_table()
    assert date[:2] == "20" and "gpt-4.1-mini" in table
    spec = parse_llm_spec("openai:gpt-4.1-mini")
    assert (spec.price_in, spec.price_out) == table["gpt-4.1-mini"]
    assert parse_llm_spec("http://127.0.0.1:8000/v1:qwen2.5-coder").cost(1, 1) is None
    assert parse_llm_spec("local:smollm2").cost(10**6, 10**6) == 0.0
    for bad in ("openai:gpt-4.1-mini@cheap/1", "openai:gpt-4.1-mini@1"):
        with pytest.raises(ValueError, match="IN/OUT"):
            parse_llm_spec(bad)


@pytest.mark.slow
def test_caps_from_the_command_line_and_resume(tmp_path: Path) -> None:
    """--llm NAME@IN/OUT with --max-cost stops the run, and resume keeps the cap;
    without a price --max-cost says so at start; --max-tokens stops the run."""
    with FakeLLMServer(lambda r: Reply.text("no code here", prompt_tokens=1000,
                                             completion_tokens=1000)) as server:
        priced = f"{server.base_url}:fake-model@1000/1000"  # $2 a reply
        proc = evoforge("run", "bin_packing", "--budget", "500", "--llm", priced,
                        "--max-cost", "5", "--run-name", "capped", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert "cannot be enforced" not in proc.stdout
        info = status(tmp_path)
        assert info["stop_reason"] == "cost"
        sent = len(server.chat_requests)
        proc = evoforge("resume", "--run-name", "capped", "--budget", "50", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert "stopped: cost" in proc.stdout
        assert len(server.chat_requests) - sent <= 2  # at most what was already in flight

        unpriced = f"{server.base_url}:fake-model"
        proc = evoforge("run", "bin_packing", "--budget", "500", "--llm", unpriced,
                        "--max-cost", "5", "--max-tokens", "10000", "--run-name", "tokens",
                        cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    warning = [line for line in proc.stdout.splitlines() if "cannot be enforced" in line]
    assert len(warning) == 1 and "--max-tokens" in warning[0], proc.stdout
    assert "stopped: tokens" in proc.stdout
    info = json.loads(evoforge("status", "--run-name", "tokens", "--json",
                               cwd=tmp_path).stdout)
    used = sum(m["prompt_tokens"] + m["completion_tokens"] for m in info["models"].values())
    assert 10000 <= used < 10000 + 2 * 2000
