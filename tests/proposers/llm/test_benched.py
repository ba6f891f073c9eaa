"""Every model benched and no model-free arm: the proposer waits for the bench to end
instead of proposing nothing (the loop ends a run after many nothing-proposals in a
row as stalled). Real HTTP to FakeLLMServer, the real client's benching."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from pathlib import Path

from evoforge.candidate import Candidate, Status, normalized_hash
from evoforge.problem import load_problem
from evoforge.proposers.llm.backend import Backend
from evoforge.proposers.llm.client import LLMClient
from evoforge.proposers.llm.proposer import LLMProposer
from evoforge.proposers.llm.types import LLMError, ModelSpec
from evoforge.testing import FakeLLMServer, Reply, write_problem

PROGRAM = """# EVOLVE-BLOCK-START
def value():
    return 0
# EVOLVE-BLOCK-END
"""
BENCH = 0.6


def test_a_benched_model_is_waited_for(tmp_path: Path) -> None:
    replies = [Reply.error(500), Reply.rewrite("def value():\n    return 7\n")]
    with FakeLLMServer(replies) as server:
        spec = ModelSpec(name="fake-model", api_base=server.base_url, api_key_env=None,
                         timeout=5.0, max_retries=0)
        problem = load_problem(write_problem(tmp_path / "p", PROGRAM, config={
            "llm": {"models": [], "modes": ["rewrite"], "mutation_operators": False}}))
        backend = Backend([spec])
        # one failure benches the model for BENCH seconds
        backend.client = LLMClient([spec], bench_after=1, bench_seconds=BENCH)
        proposer = LLMProposer(problem.template, problem.config, [spec], backend)
        parent = Candidate(id=1, seq=0, island=0, parent_ids=(), operator="initial",
                           code=PROGRAM, code_hash=normalized_hash(PROGRAM),
                           status=Status.OK, score=0.0, fitness=0.0)

        async def two() -> tuple[object, object, float]:
            first = await proposer.propose_async(parent, [], random.Random(1))
            assert backend.available_models() == []  # benched now
            start = time.monotonic()
            second = await proposer.propose_async(parent, [], random.Random(2))
            return first, second, time.monotonic() - start

        first, second, waited = asyncio.run(two())
    assert first is not None and (first.rejected or "").startswith("llm:")
    assert second is not None and second.rejected is None, second
    assert "return 7" in second.code
    assert waited >= BENCH * 0.8


def test_a_model_benched_again_and_again_is_not_waited_for() -> None:
    """Down (benched ``down_after`` times with no success between): no wait."""
    with FakeLLMServer([], default=Reply.error(500)) as server:
        spec = ModelSpec(name="fake-model", api_base=server.base_url, api_key_env=None,
                         timeout=5.0, max_retries=0)
        client = LLMClient([spec], bench_after=1, bench_seconds=0.05)

        async def fail_until_down() -> list[float]:
            waits = []
            for _ in range(client.down_after):
                while not client.available_models():
                    await asyncio.sleep(0.01)
                with contextlib.suppress(LLMError):
                    await client.complete(spec.label, [{"role": "user", "content": "x"}])
                waits.append(client.seconds_until_available())
            return waits

        waits = asyncio.run(fail_until_down())
    assert all(w > 0 for w in waits[:-1]) and waits[-1] == 0.0
