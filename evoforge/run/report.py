"""The run report: what ``status``, ``runs`` and the dashboard show of a run.

The one place that turns stored counts and the proposer's saved statistics into
reported facts (``evaluated = ok + failed + timeout`` included).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from evoforge.candidate import Candidate, Status
from evoforge.report.facts import parent_diff
from evoforge.storage.base import RunRecord, Storage

EVALUATED = (Status.OK, Status.FAILED, Status.TIMEOUT)


def evaluated_of(counts: Mapping[Any, int]) -> int:
    """Finished evaluations among candidate counts by status: ok + failed + timeout."""
    return sum(int(counts.get(status, 0)) for status in EVALUATED)


def client_stats(stats: Mapping[str, Any] | None) -> dict[str, Any]:
    """Per model, what the LLM proposer saved of its client (retries, seconds)."""
    clients = (stats or {}).get("clients")
    return dict(clients) if isinstance(clients, Mapping) else {}


def bandit_arms(stats: Mapping[str, Any] | None) -> dict[str, Any]:
    """Per operator, the bandit arm the proposer saved (pulls, reward_sum)."""
    bandit = (stats or {}).get("bandit", {})
    arms = bandit.get("arms", bandit) if isinstance(bandit, Mapping) else {}
    return dict(arms) if isinstance(arms, Mapping) else {}


def model_table(store: Storage, record: RunRecord) -> dict[str, Any]:
    """Per model: tokens, cost, retries, and the apply success rate per mode."""
    clients = client_stats(record.proposer_stats)
    out: dict[str, Any] = {}
    for model, by_mode in store.model_stats(record.id).items():
        entry: dict[str, Any] = {"prompt_tokens": 0, "completion_tokens": 0, "cost": 0.0,
                                 "retries": (clients.get(model) or {}).get("retries", 0),
                                 "modes": {}}
        for mode, row in by_mode.items():
            proposed = sum(int(v) for k, v in row.items() if k in {s.value for s in Status})
            rejected = int(row.get(Status.REJECTED, 0))
            entry["modes"][mode] = {"proposed": proposed, "applied": proposed - rejected,
                                    "apply_rate": (proposed - rejected) / proposed
                                    if proposed else None,
                                    "ok": int(row.get(Status.OK, 0))}
            for key in ("prompt_tokens", "completion_tokens", "cost"):
                entry[key] += row.get(key, 0)
        client = clients.get(model) or {}
        if client.get("seconds"):
            # generation time of the local model (remote clients do not time requests)
            entry["seconds"] = client["seconds"]
            entry["tokens_per_second"] = client.get("tokens_per_second")
            proposed = sum(m["proposed"] for m in entry["modes"].values())
            entry["seconds_per_proposal"] = client["seconds"] / proposed if proposed else None
        out[model] = entry
    return out


def run_report(store: Storage, record: RunRecord) -> dict[str, Any]:
    """The facts ``evoforge status``, ``runs`` and the dashboard show, as one JSON-able
    dict; they only render it."""
    counts = store.counts(record.id)
    evaluated = evaluated_of(counts)
    best = store.best(record.id)
    initial = next(iter(store.iter_candidates(record.id, None)), None)
    summary = record.summary or {}
    ops = store.operator_counts(record.id)
    arms = bandit_arms(record.proposer_stats)
    operators: dict[str, Any] = {}
    for op, by_status in sorted(ops.items()):
        entry: dict[str, Any] = {"proposed": sum(by_status.values()), **by_status}
        arm = arms.get(op) if isinstance(arms, dict) else None
        if isinstance(arm, dict):
            pulls = arm.get("pulls", 0)
            entry["bandit_pulls"] = pulls
            entry["improvement_rate"] = (arm.get("reward_sum", 0.0) / pulls) if pulls else None
        operators[op] = entry
    return {
        "run": record.name,
        "problem": record.problem,
        "status": record.status,
        "budget": record.budget,
        "seed": record.seed,
        "evaluated": evaluated,
        "ok": counts.get(Status.OK, 0),
        "failed": counts.get(Status.FAILED, 0),
        "timeouts": counts.get(Status.TIMEOUT, 0),
        "duplicates": counts.get(Status.DUPLICATE, 0),
        "pending": counts.get(Status.PENDING, 0),
        "best_score": best.score if best else None,
        "best_id": best.id if best else None,
        "initial_score": initial.score if initial else None,
        "elapsed_seconds": round(record.elapsed_seconds, 3),
        "evals_per_second": (evaluated / record.elapsed_seconds
                             if record.elapsed_seconds else None),
        "test": summary.get("test"),
        "baselines": summary.get("baselines"),
        "stop_reason": summary.get("stop_reason"),
        "parents_redrawn": summary.get("parents_redrawn"),
        "functional_hashing": store.functional_stats(record.id),
        "rejected": counts.get(Status.REJECTED, 0),
        "models": model_table(store, record),
        "operators": operators,
    }


def stopped_stage(cand: Candidate) -> dict[str, Any] | None:
    """The cascade stage a candidate stopped at (missed its threshold), if any."""
    for stage in cand.stages or []:
        if stage.get("stopped"):
            return stage
    return None


def candidate_dict(store: Storage, cand: Candidate) -> dict[str, Any]:
    """Everything ``evoforge show`` prints about one candidate, JSON-able."""
    parent, diff = parent_diff(store, cand)
    artifacts = dict(cand.artifacts or {})
    stopped = stopped_stage(cand)
    return {
        "id": cand.id, "seq": cand.seq, "status": str(cand.status),
        "operator": cand.operator, "island": cand.island,
        "parent_ids": list(cand.parent_ids), "score": cand.score, "fitness": cand.fitness,
        "error": cand.error, "duplicate_of": cand.duplicate_of,
        "eval_seconds": cand.eval_seconds, "metrics": cand.metrics or {},
        "features": cand.features or {},
        "stdout": artifacts.pop("stdout", None), "stderr": artifacts.pop("stderr", None),
        "artifacts": artifacts, "stages": cand.stages or [],
        "stopped_at_stage": stopped["stage"] if stopped else None,
        "model": cand.model, "cost": cand.cost, "code": cand.code, "diff": diff,
    }
