"""How storage copes with a very large run (issue 12.4), on SQLite and PostgreSQL.

A run of N synthetic candidates (default 1,000,000: 70 % ok, 12 % failed, 10 %
duplicates sharing an earlier program's text, 5 % timeouts, 3 % rejected; programs
of about 600 characters) is written through ``SQLStorage.import_candidates`` in
batches. On the full store it then times, each repeated and given as median and p95
milliseconds:

* insertion: ``add_proposal`` (dedup + budget claim + insert, one transaction) and
  ``finish_candidate`` of a new program;
* selection: ``elites`` (the archive's best 100), ``find_code_hash`` (duplicate
  lookup), ``get_candidate`` of a random candidate, ``candidates_since`` near the
  end (incremental sync of 100);
* ``status``: the CLI's ``status_dict``, once;
* ``resume``, once each, as the loop restores a run (``RunState.restore``): the fast
  restore of a large run (counts, usage, next seq, the initial program, the best
  ``RESTORED_ELITES``, pending candidates; hashes looked up later per proposal) and
  the full replay of every row with its program text into the archive, which resume
  does up to ``REPLAY_LIMIT`` evaluated candidates;
* bytes per candidate: the database's size over N.

Run with ``nice -n 10 .venv/bin/python bench/scale.py [--n N] [--backends sqlite,postgresql]``;
PostgreSQL needs EVOFORGE_TEST_POSTGRES (a fresh schema is created and dropped).
Writes bench/out/scale.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa

import evoforge.run.state as state_module
from evoforge.archive import FeatureSpace
from evoforge.candidate import Status
from evoforge.cli import status_dict
from evoforge.config import RunConfig
from evoforge.problem.blocks import whole_file
from evoforge.proposers.mutation import MutationProposer
from evoforge.run.state import RunState
from evoforge.storage import SQLStorage
from evoforge.testing.conformance_storage import postgres_schema

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
BATCH = 20_000
REPS = 200
# restore asks the proposer to load its statistics only when the run stored some
_NO_PROPOSER = MutationProposer(whole_file("def f(x):\n    return x\n"))
STATUSES = ([Status.OK] * 70 + [Status.FAILED] * 12 + [Status.DUPLICATE] * 10
            + [Status.TIMEOUT] * 5 + [Status.REJECTED] * 3)


def _program(k: int) -> str:
    body = "".join(f"    y = y * {k % 97 + i} + {i}.5\n" for i in range(22))
    return f"def f(x):\n    y = x\n{body}    return y  # {k}\n"


def fill(storage: SQLStorage, run_id: int, n: int, rng: random.Random) -> float:
    """Write ``n`` candidates; returns the seconds it took."""
    start = time.perf_counter()
    for first in range(0, n, BATCH):
        rows = []
        for seq in range(first, min(n, first + BATCH)):
            status = rng.choice(STATUSES)
            # a duplicate repeats an earlier program's text: stored once
            key = rng.randrange(seq) if status == Status.DUPLICATE and seq else seq
            ok = status == Status.OK
            fit = -rng.random() * 100 if ok else None
            rows.append({
                "seq": seq, "island": seq % 4, "operator": rng.choice("abc"),
                "parent_ids": [rng.randrange(seq) + 1] if seq else [],
                "code": _program(key), "code_hash": f"{key:064x}", "status": status,
                "score": fit, "fitness": fit,
                "features": ({"code_size": 600.0, "diversity": rng.random()} if ok
                             else None),
                "metrics": {"combined_score": fit} if ok else None,
                "functional_hash": f"f{key}" if ok else None, "eval_seconds": 0.1,
                "duplicate_of": key + 1 if status == Status.DUPLICATE else None})
        storage.import_candidates(run_id, rows)
    return time.perf_counter() - start


def _ms(fn: Callable[[int], Any]) -> dict[str, float]:
    times = []
    for i in range(REPS):
        start = time.perf_counter()
        fn(i)
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return {"median_ms": round(statistics.median(times), 3),
            "p95_ms": round(times[int(0.95 * (len(times) - 1))], 3)}


def _once(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return round(time.perf_counter() - start, 3)


def _size(storage: SQLStorage, path: Path | None) -> int:
    if path is not None:
        with storage.engine.begin() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        return path.stat().st_size
    with storage.engine.connect() as conn:
        return int(conn.execute(sa.text(
            "SELECT SUM(pg_total_relation_size(c.oid)) FROM pg_class c "
            "JOIN pg_namespace s ON s.oid = c.relnamespace "
            "WHERE s.nspname = current_schema() AND c.relkind = 'r'")).scalar_one())


def measure(url: str, n: int, path: Path | None) -> dict[str, Any]:
    """Fill a store at ``url`` and time the operations on it."""
    storage = SQLStorage(url)
    rng = random.Random(12)
    run = storage.create_run(name="scale", problem="p", problem_path="/p",
                             config={"database": {"num_islands": 4}}, seed=1, budget=2 * n)
    out: dict[str, Any] = {"n": n, "fill_s": round(fill(storage, run.id, n, rng), 1)}
    with storage.engine.begin() as conn:  # planner statistics, as after a long run
        conn.exec_driver_sql("ANALYZE")
    out["bytes_per_candidate"] = round(_size(storage, path) / n)
    new: list[int] = []

    def propose(i: int) -> None:
        got = storage.add_proposal(run.id, owner="bench", budget=None, island=0,
                                   parent_ids=[1], operator="a", code=_program(n + i),
                                   code_hash=f"new{i}")
        assert got is not None and got.duplicate_of is None
        new.append(got.id)

    storage.heartbeat(run.id, "bench", 3600)
    out["add_proposal"] = _ms(propose)
    out["finish_candidate"] = _ms(lambda i: storage.finish_candidate(
        new[i], status=Status.OK, score=1.0, fitness=1.0, metrics={"combined_score": 1.0},
        features={"code_size": 600.0, "diversity": 0.5}))
    out["elites_100"] = _ms(lambda i: storage.elites(run.id, 100))
    out["find_code_hash"] = _ms(
        lambda i: storage.find_code_hash(run.id, f"{rng.randrange(n):064x}"))
    out["get_candidate"] = _ms(lambda i: storage.get_candidate(rng.randrange(1, n)))
    cursor = storage.claimed_evaluations(run.id)  # somewhere near the end
    out["candidates_since_100"] = _ms(
        lambda i: storage.candidates_since(run.id, cursor - 150, limit=100))
    record = storage.get_run("scale")
    assert record is not None
    out["status_s"] = _once(lambda: status_dict(storage, record))

    def restore(replay_limit: int) -> None:
        # what resume does before its first proposal: the loop's own RunState.restore
        previous = state_module.REPLAY_LIMIT
        state_module.REPLAY_LIMIT = replay_limit
        try:
            config = RunConfig.model_validate(record.config)
            state = RunState(config, FeatureSpace(config.database, _program(0)),
                             record.budget, [])
            state.restore(storage, record, _NO_PROPOSER)
            assert state.progress.evaluated > 0 and state.best is not None
        finally:
            state_module.REPLAY_LIMIT = previous

    out["resume_fast_s"] = _once(lambda: restore(0))
    out["resume_full_replay_s"] = _once(lambda: restore(2 * n))
    storage.close()
    return out


@contextlib.contextmanager
def _location(backend: str) -> Iterator[tuple[str, Path | None]]:
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="evoforge-scale-") as tmp:
            path = Path(tmp) / "scale.db"
            yield str(path), path
    else:
        base = os.environ.get("EVOFORGE_TEST_POSTGRES")
        if not base:
            raise SystemExit("set EVOFORGE_TEST_POSTGRES for the PostgreSQL part")
        with postgres_schema(base) as url:
            yield url, None


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args(argv)
    results: dict[str, Any] = {}
    for backend in args.backends.split(","):
        with _location(backend) as (url, path):
            results[backend] = measure(url, args.n, path)
        print(json.dumps({backend: results[backend]}, indent=2), flush=True)
    OUT.mkdir(exist_ok=True)
    (OUT / "scale.json").write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
