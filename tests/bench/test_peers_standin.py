"""The stand-in model of the peer benchmarks (bench/peers): it finds the parent in the
prompt and answers with a diff that applies; over real HTTP from its own process.

No peer is installed for these tests; the prompts are built the way the peers lay theirs
out (a heading, then the program in a fenced block, with other programs around it).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import urllib.request
from pathlib import Path
from types import ModuleType

import pytest

from evoforge.problem.blocks import parse_blocks
from evoforge.problem.kit import load_module
from evoforge.proposers.llm.apply import ApplyError, apply_diff

ROOT = Path(__file__).resolve().parents[2]
PEERS = ROOT / "bench" / "peers"
BIN_PACKING = ROOT / "evoforge" / "problems" / "bin_packing"


def _standin() -> ModuleType:
    module = load_module(PEERS / "standin.py", "peers_standin")
    return module


standin = _standin()
PARENT = (BIN_PACKING / "initial_program.py").read_text()
OTHER = PARENT.replace("-np.arange(len(bins), dtype=float)", "bins - item")


def openevolve_style(parent: str) -> str:
    """A prompt laid out like OpenEvolve's diff prompt: history with another program
    first, then the current program under its heading, then the task."""
    return (f"# Program Evolution History\n## Top program\n```python\n{OTHER}```\n\n"
            f"# Current Program\n```python\n{parent}```\n\n# Task\nSuggest improvements.")


def request(text: str) -> dict[str, object]:
    return {"model": "fake-model", "messages": [{"role": "system", "content": "Be brief."},
                                                {"role": "user", "content": text}]}


def test_parent_is_the_program_under_the_heading_not_the_first_block() -> None:
    assert standin.parent_from_prompt(openevolve_style(PARENT)) == PARENT
    evoforge_style = f"# The program to improve\nIts metrics: x\n```python\n{PARENT}```\n"
    assert standin.parent_from_prompt(evoforge_style) == PARENT
    assert standin.parent_from_prompt("no code here") is None


def test_mutation_replies_apply_and_differ_and_broken_ones_do_not() -> None:
    model = standin.MutationModel(seed=3, broken=0.25)
    template = parse_blocks(PARENT)
    applied, broken = [], 0
    for _ in range(24):
        reply = model(request(openevolve_style(PARENT)))
        try:
            result = apply_diff(template, PARENT, reply.content)
        except ApplyError:
            broken += 1
            continue
        assert result.code != PARENT and result.match_levels == ["exact"] * result.edits
        ast.parse(result.code)
        applied.append(result.code)
    assert broken == model.sent["broken"] + model.sent["no_mutation"] and broken >= 1
    assert len(applied) >= 12 and len(set(applied)) >= 6  # seeded, not one fixed reply
    # the same seed gives the same replies in the same order
    again = standin.MutationModel(seed=3, broken=0.25)
    first = [again(request(openevolve_style(PARENT))).content for _ in range(3)]
    model2 = standin.MutationModel(seed=3, broken=0.25)
    assert [model2(request(openevolve_style(PARENT))).content for _ in range(3)] == first


def test_diff_blocks_make_a_search_that_occurs_once() -> None:
    start, end = "# EVOLVE-BLOCK-START\n", "# EVOLVE-BLOCK-END\n"
    parent = start + "a = 1\nb = 2\na = 1\nc = 3\n" + end
    child = start + "a = 1\nb = 2\na = 5\nc = 3\n" + end
    diff = standin.diff_blocks(parent, child)
    search = diff.split("<<<<<<< SEARCH\n")[1].split("\n=======")[0]
    assert parent.count(search) == 1
    assert apply_diff(parse_blocks(parent), parent, diff).code == child


def test_server_process_answers_over_http_with_a_diff_that_applies(tmp_path: Path) -> None:
    stats = tmp_path / "stats.json"
    proc = subprocess.Popen([sys.executable, str(PEERS / "server.py"), "--model", "mutation",
                             "--seed", "1", "--broken", "0", "--primitives-from",
                             str(BIN_PACKING / "config.yaml"), "--stats", str(stats)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        base_url = json.loads(proc.stdout.readline())["base_url"]
        body = json.dumps(request(openevolve_style(PARENT))).encode()
        http = urllib.request.Request(f"{base_url}/chat/completions", data=body,
                                      headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(http, timeout=30) as response:
            content = json.load(response)["choices"][0]["message"]["content"]
    finally:
        proc.stdin.close()
        proc.wait(30)
    code = apply_diff(parse_blocks(PARENT), PARENT, content).code
    assert code != PARENT
    assert json.loads(stats.read_text())["kinds"]["mutation"] == 1


@pytest.mark.parametrize("program", ["trivial"])
def test_counter_replies_count_up(program: str) -> None:
    parent = (PEERS / "problems" / program / "initial_program.py").read_text()
    model = standin.CounterModel()
    codes = [apply_diff(parse_blocks(parent), parent,
                        model(request(f"# Current Program\n```python\n{parent}```")).content).code
             for _ in range(3)]
    assert [c.count(f"return {i}") for i, c in enumerate(codes, 1)] == [1, 1, 1]
