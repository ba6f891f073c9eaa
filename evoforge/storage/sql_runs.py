"""The SQL storage's runs: create, read and update them, and their candidates' totals."""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa

from evoforge.candidate import Status
from evoforge.storage.base import RunRecord, StorageError
from evoforge.storage.schema import candidates, runs
from evoforge.storage.sql_base import SQLBase

_RUN_FIELDS = {"status", "budget", "elapsed_seconds", "proposer_stats", "summary", "config"}


class RunStore(SQLBase):
    """Runs (create, get, list, update) and per-run totals (counts, usage, model stats)."""

    @staticmethod
    def _run(row: Any) -> RunRecord:
        m = row._mapping
        return RunRecord(**{k: m[k] for k in RunRecord.__dataclass_fields__})

    def create_run(self, *, name: str, problem: str, problem_path: str,
                   config: dict[str, Any], seed: int, budget: int) -> RunRecord:
        now = time.time()
        try:
            with self.engine.begin() as conn:
                conn.execute(runs.insert().values(
                    name=name, problem=problem, problem_path=problem_path, config=config,
                    seed=seed, budget=budget, status="created", created_at=now,
                    updated_at=now, elapsed_seconds=0.0,
                ))
        except sa.exc.IntegrityError:
            raise StorageError(
                f"a run named {name!r} exists already; pick another --run-name "
                "or continue it with 'evoforge resume'"
            ) from None
        run = self.get_run(name)
        assert run is not None
        return run

    def get_run(self, name: str) -> RunRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(runs.select().where(runs.c.name == name)).first()
        return self._run(row) if row is not None else None

    def latest_run(self) -> RunRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(runs.select().order_by(runs.c.id.desc()).limit(1)).first()
        return self._run(row) if row is not None else None

    def list_runs(self) -> list[RunRecord]:
        with self.engine.connect() as conn:
            rows = conn.execute(runs.select().order_by(runs.c.id)).all()
        return [self._run(r) for r in rows]

    def update_run(self, run_id: int, **fields: Any) -> None:
        unknown = set(fields) - _RUN_FIELDS
        if unknown:
            raise StorageError(f"cannot update run fields {sorted(unknown)}")
        with self.engine.begin() as conn:
            conn.execute(runs.update().where(runs.c.id == run_id)
                         .values(updated_at=time.time(), **fields))

    # totals over a run's candidates ------------------------------------------------
    def counts(self, run_id: int) -> dict[str, int]:
        query = (sa.select(candidates.c.status, sa.func.count())
                 .where(candidates.c.run_id == run_id).group_by(candidates.c.status))
        with self.engine.connect() as conn:
            return {str(s): int(n) for s, n in conn.execute(query).all()}

    def operator_counts(self, run_id: int) -> dict[str, dict[str, int]]:
        query = (sa.select(candidates.c.operator, candidates.c.status, sa.func.count())
                 .where(candidates.c.run_id == run_id)
                 .group_by(candidates.c.operator, candidates.c.status))
        out: dict[str, dict[str, int]] = {}
        with self.engine.connect() as conn:
            for op, status, n in conn.execute(query).all():
                out.setdefault(op, {})[status] = int(n)
        return out

    def usage(self, run_id: int) -> dict[str, float]:
        c = candidates.c
        query = sa.select(sa.func.coalesce(sa.func.sum(c.cost), 0.0),
                          sa.func.coalesce(sa.func.sum(c.prompt_tokens), 0),
                          sa.func.coalesce(sa.func.sum(c.completion_tokens), 0)
                          ).where(c.run_id == run_id)
        with self.engine.connect() as conn:
            cost, prompt, completion = conn.execute(query).one()
        return {"cost": float(cost), "prompt_tokens": int(prompt),
                "completion_tokens": int(completion)}

    def model_stats(self, run_id: int) -> dict[str, dict[str, dict[str, float]]]:
        c = candidates.c
        query = (sa.select(c.model, c.operator, c.status, sa.func.count(),
                           sa.func.coalesce(sa.func.sum(c.prompt_tokens), 0),
                           sa.func.coalesce(sa.func.sum(c.completion_tokens), 0),
                           sa.func.coalesce(sa.func.sum(c.cost), 0.0))
                 .where(c.run_id == run_id, c.model.is_not(None))
                 .group_by(c.model, c.operator, c.status))
        out: dict[str, dict[str, dict[str, float]]] = {}
        with self.engine.connect() as conn:
            for model, op, status, n, p_tok, c_tok, cost in conn.execute(query).all():
                entry = out.setdefault(model, {}).setdefault(op, {})
                entry[status] = entry.get(status, 0) + int(n)
                for key, value in (("prompt_tokens", p_tok), ("completion_tokens", c_tok),
                                   ("cost", cost)):
                    entry[key] = entry.get(key, 0) + float(value)
        return out

    def functional_stats(self, run_id: int) -> dict[str, float]:
        dup = candidates.alias("dup")
        orig = candidates.alias("orig")
        c = candidates.c
        hits_q = (sa.select(sa.func.count(), sa.func.coalesce(
                      sa.func.sum(orig.c.eval_seconds - dup.c.eval_seconds), 0.0))
                  .select_from(dup.join(orig, dup.c.duplicate_of == orig.c.id))
                  .where(dup.c.run_id == run_id, dup.c.status == str(Status.DUPLICATE),
                         dup.c.functional_hash.is_not(None)))
        probed_q = (sa.select(sa.func.count()).where(
            c.run_id == run_id, c.functional_hash.is_not(None),
            c.status.in_([str(Status.OK), str(Status.FAILED), str(Status.TIMEOUT)])))
        with self.engine.connect() as conn:
            hits, saved = conn.execute(hits_q).one()
            probed = conn.execute(probed_q).scalar() or 0
        total = int(hits) + int(probed)
        return {"hits": int(hits), "probed": total,
                "hit_rate": (int(hits) / total) if total else 0.0,
                "seconds_saved": max(float(saved or 0.0), 0.0)}
