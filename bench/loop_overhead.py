"""Main-process cost per evaluation of an LLM run against an instant model (issue 11.2).

A trivial OpenEvolve-format problem, FakeLLMServer answering at once with a new
program each time, 2 local workers. Prints wall and CPU milliseconds of the controller
process per evaluation; run it from any checkout to compare two versions::

    python bench/loop_overhead.py 2000
    PYTHONPATH=/path/to/other/checkout python bench/loop_overhead.py 2000
"""

from __future__ import annotations

import itertools
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

import evoforge
from evoforge.candidate import Status
from evoforge.problem import load_problem
from evoforge.run import create_run, execute
from evoforge.storage import SQLStorage
from evoforge.testing import FakeLLMServer, Reply

PROGRAM = "# EVOLVE-BLOCK-START\ndef value():\n    return 0\n# EVOLVE-BLOCK-END\n"
EVALUATOR = (
    "import importlib.util\n\n\ndef evaluate(program_path):\n"
    "    spec = importlib.util.spec_from_file_location('c', program_path)\n"
    "    module = importlib.util.module_from_spec(spec)\n"
    "    spec.loader.exec_module(module)\n"
    "    return {'combined_score': float(module.value())}\n")


def measure(budget: int, workers: int = 2) -> dict[str, Any]:
    """One run of ``budget`` evaluations; wall and CPU ms per evaluation."""
    counter = itertools.count(1)

    def reply(request: dict[str, Any]) -> Reply:
        return Reply.rewrite(f"def value():\n    return {next(counter)}\n")

    with tempfile.TemporaryDirectory() as tmp, FakeLLMServer(reply) as server:
        folder = Path(tmp) / "trivial"
        folder.mkdir()
        (folder / "initial_program.py").write_text(PROGRAM)
        (folder / "evaluator.py").write_text(EVALUATOR)
        (folder / "config.yaml").write_text(yaml.safe_dump({"llm": {
            "models": [{"name": "fake", "api_base": server.base_url, "api_key_env": None}],
            "modes": ["rewrite"], "mutation_operators": False}}))
        storage = SQLStorage(str(Path(tmp) / "runs.db"))
        record = create_run(storage, load_problem(folder), budget=budget, workers=workers)
        wall, cpu = time.perf_counter(), time.process_time()
        execute(storage, record, workers=workers, summarize=False)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        counts = storage.counts(record.id)
    evaluated = sum(counts.get(s, 0) for s in (Status.OK, Status.FAILED, Status.TIMEOUT))
    return {"evoforge": str(Path(evoforge.__file__).parent), "budget": budget,
            "evaluated": evaluated, "wall_ms_per_eval": round(1000 * wall / evaluated, 2),
            "cpu_ms_per_eval": round(1000 * cpu / evaluated, 2)}


if __name__ == "__main__":
    for n in (int(a) for a in sys.argv[1:] or ["2000"]):
        print(json.dumps(measure(n)))
