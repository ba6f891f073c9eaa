"""Main-process cost per evaluation of an LLM run against an instant model (issue 11.2).

A trivial OpenEvolve-format problem, FakeLLMServer answering at once with a new
program each time, 2 local workers. Prints wall and CPU milliseconds of the controller
process per evaluation; run it from any checkout to compare two versions::

    python bench/loop_overhead.py 2000
    PYTHONPATH=/path/to/other/checkout python bench/loop_overhead.py 2000

``--apart`` also measures with the model in a process of its own
(``bench/peers/server.py``, answering with diffs): the in-process server's threads take
the GIL from the loop, so every system call of the loop (a pipe write to a worker, a
directory removed) waits to take it back; a real endpoint is another process.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

import evoforge
from evoforge.candidate import Status
from evoforge.problem import load_problem
from evoforge.run import create_run, execute
from evoforge.storage import SQLStorage
from evoforge.testing import FakeLLMServer, Reply

SERVER = Path(__file__).resolve().parent / "peers" / "server.py"
PROGRAM = "# EVOLVE-BLOCK-START\ndef value():\n    return 0\n# EVOLVE-BLOCK-END\n"
EVALUATOR = (
    "import importlib.util\n\n\ndef evaluate(program_path):\n"
    "    spec = importlib.util.spec_from_file_location('c', program_path)\n"
    "    module = importlib.util.module_from_spec(spec)\n"
    "    spec.loader.exec_module(module)\n"
    "    return {'combined_score': float(module.value())}\n")


@contextlib.contextmanager
def _endpoint(apart: bool) -> Iterator[tuple[str, str]]:
    """The model's base URL and the mode that suits its replies."""
    if not apart:
        counter = itertools.count(1)

        def reply(request: dict[str, Any]) -> Reply:
            return Reply.rewrite(f"def value():\n    return {next(counter)}\n")

        with FakeLLMServer(reply) as server:
            yield server.base_url, "rewrite"
        return
    server = subprocess.Popen([sys.executable, str(SERVER), "--model", "counter"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        yield json.loads(server.stdout.readline())["base_url"], "diff"
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(timeout=30)


def measure(budget: int, workers: int = 2, apart: bool = False) -> dict[str, Any]:
    """One run of ``budget`` evaluations; wall and CPU ms per evaluation."""
    with tempfile.TemporaryDirectory() as tmp, _endpoint(apart) as (url, mode):
        folder = Path(tmp) / "trivial"
        folder.mkdir()
        (folder / "initial_program.py").write_text(PROGRAM)
        (folder / "evaluator.py").write_text(EVALUATOR)
        (folder / "config.yaml").write_text(yaml.safe_dump({"llm": {
            "models": [{"name": "fake", "api_base": url, "api_key_env": None}],
            "modes": [mode], "mutation_operators": False}}))
        storage = SQLStorage(str(Path(tmp) / "runs.db"))
        record = create_run(storage, load_problem(folder), budget=budget, workers=workers)
        wall, cpu = time.perf_counter(), time.process_time()
        execute(storage, record, workers=workers, summarize=False)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        counts = storage.counts(record.id)
    evaluated = sum(counts.get(s, 0) for s in (Status.OK, Status.FAILED, Status.TIMEOUT))
    return {"evoforge": str(Path(evoforge.__file__).parent), "budget": budget,
            "model": "own process" if apart else "in-process thread",
            "evaluated": evaluated, "wall_ms_per_eval": round(1000 * wall / evaluated, 2),
            "cpu_ms_per_eval": round(1000 * cpu / evaluated, 2)}


if __name__ == "__main__":
    apart = "--apart" in sys.argv[1:]
    for n in [int(a) for a in sys.argv[1:] if a != "--apart"] or [2000]:
        print(json.dumps(measure(n)), flush=True)
        if apart:
            print(json.dumps(measure(n, apart=True)), flush=True)
