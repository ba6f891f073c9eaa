"""A model given with ``--llm`` takes its request limit from the config's llm section,
as a model listed in the config does (found by bench/peers: it was held at 4)."""

from __future__ import annotations

from pathlib import Path

import yaml

from evoforge.config import RunConfig
from evoforge.problem import load_problem
from evoforge.proposers.llm.proposer import MODEL_REQUESTS, specs_from_config
from evoforge.run.pace import LOOKAHEAD_PER_WORKER
from evoforge.run.service import create_run
from evoforge.storage import SQLStorage

PROGRAM = "# EVOLVE-BLOCK-START\ndef value():\n    return 0\n# EVOLVE-BLOCK-END\n"
EVALUATOR = "def evaluate(program_path):\n    return {'combined_score': 0.0}\n"


def stored_specs(tmp_path: Path, llm: dict[str, object], flag: str) -> list:  # type: ignore[type-arg]
    folder = tmp_path / "p"
    folder.mkdir()
    (folder / "initial_program.py").write_text(PROGRAM)
    (folder / "evaluator.py").write_text(EVALUATOR)
    (folder / "config.yaml").write_text(yaml.safe_dump({"llm": llm}))
    storage = SQLStorage(str(tmp_path / "runs.db"))
    run = create_run(storage, load_problem(folder), llm=[flag])
    return specs_from_config(RunConfig.model_validate(run.config))


def test_llm_flag_follows_llm_max_concurrency(tmp_path: Path) -> None:
    [spec] = stored_specs(tmp_path, {"max_concurrency": 24}, "http://127.0.0.1:9/v1:m@1/2")
    assert (spec.name, spec.max_concurrency, spec.price_in, spec.api_key_env) == ("m", 24, 1, None)


def test_llm_flag_without_a_limit_leaves_it_to_the_loop(tmp_path: Path) -> None:
    [spec] = stored_specs(tmp_path, {"modes": ["diff"]}, "http://127.0.0.1:9/v1:m")
    assert spec.max_concurrency == MODEL_REQUESTS
    # one model does not hold back the loop's default look-ahead of up to 4 workers
    assert spec.max_concurrency >= 4 * LOOKAHEAD_PER_WORKER


def test_local_model_keeps_one_request_at_a_time(tmp_path: Path) -> None:
    [spec] = stored_specs(tmp_path, {"max_concurrency": 24}, "local:smollm2")
    assert spec.max_concurrency == 1
