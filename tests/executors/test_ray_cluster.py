"""The Ray executor on a two-node cluster on loopback: hostile candidates contained on both."""

from __future__ import annotations

import asyncio
import importlib.util
import uuid
from pathlib import Path

import pytest

from evoforge.evaluation.sandbox import EvalJob, EvalOutcome
from evoforge.testing.conformance_executor import EVALUATOR, ExecutorConformance

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                       reason="ray is not installed (pip install 'evoforge[ray]')"),
]


def test_faults_are_contained_on_every_node(tmp_path: Path) -> None:
    import ray
    from ray.cluster_utils import Cluster

    from evoforge.executors.ray_executor import RayExecutor

    evaluator = tmp_path / "evaluator.py"
    evaluator.write_text(EVALUATOR)
    pid_file = Path("/dev/shm") / f"evoforge-cluster-{uuid.uuid4().hex}"
    hang = ("    import os, subprocess\n    p = subprocess.Popen(['sleep', '600'])\n"
            f"    open({str(pid_file)!r}, 'w').write(f'{{os.getpid()}} {{p.pid}}')\n"
            "    while True:\n        pass\n")
    bodies = {
        "hang": (hang, {"timeout": 3.0}),
        "fork bomb": ("    import os\n    while True:\n        os.fork()\n",
                      {"timeout": 20.0, "max_processes": 16}),
        "memory bomb": ("    chunks = []\n    while True:\n"
                        "        chunks.append(bytearray(10**8))\n", {"memory_mb": 512}),
        "ok": ("    return 1.5\n", {}),
    }
    # a head and one worker node, one CPU each: the two actors land one on each node
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    try:
        cluster.add_node(num_cpus=1)
        ray.init(address=cluster.address, include_dashboard=False, log_to_driver=False)
        cluster.wait_for_nodes()

        async def main() -> tuple[dict[str, EvalOutcome], set[str]]:
            executor = RayExecutor(2)
            try:
                jobs = {name: EvalJob(code=f"def f():\n{body}", evaluator_path=evaluator,
                                      **{"timeout": 60.0, "memory_mb": 1024, **kw})  # type: ignore[arg-type]
                        for name, (body, kw) in bodies.items()}
                outcomes = await asyncio.gather(*(executor.evaluate(j) for j in jobs.values()))
                nodes = {node for node, _ in ray.get([a.where.remote() for a in executor._actors])}
                return dict(zip(jobs, outcomes, strict=True)), nodes
            finally:
                await executor.close()

        outcomes, nodes = asyncio.run(main())
        assert len(ray.nodes()) == 2
        assert len(nodes) == 2, "the two fork-server actors did not run on two nodes"
    finally:
        ray.shutdown()
        cluster.shutdown()
    assert outcomes["ok"].status == "ok" and outcomes["ok"].metrics == {"combined_score": 1.5}
    assert outcomes["hang"].status == "timeout", outcomes["hang"].error
    assert outcomes["fork bomb"].status in ("failed", "timeout"), outcomes["fork bomb"].error
    assert outcomes["memory bomb"].status == "failed"
    assert "memory" in (outcomes["memory bomb"].error or "").lower()
    pids = [int(p) for p in pid_file.read_text().split()]
    pid_file.unlink()
    assert ExecutorConformance.wait_gone(pids) == []  # the hang's child died with it
