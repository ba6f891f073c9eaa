"""The objective of a candidate from whatever its evaluator returned.

OpenEvolve evaluators return more than numbers: an ``"error"`` string on failure,
nested ``"artifacts"`` dicts, comparison tables. Such values are kept with the
candidate (stored and shown) but only finite, non-boolean numbers count for the
objective and for metric features.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from evoforge.config import RunConfig

COMBINED_SCORE = "combined_score"


def numeric_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The metrics that are finite numbers (booleans and text left out), as floats."""
    out: dict[str, float] = {}
    for name, value in metrics.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if math.isfinite(value):
            out[name] = float(value)
    return out


def objective_of(config: RunConfig, metrics: Mapping[str, Any],
                 features: Iterable[str] = ()) -> tuple[float | None, str | None]:
    """The objective value from ``metrics``, or None and the reason it is missing.

    The configured metric when present. Without it, and when the objective is
    OpenEvolve's ``combined_score``, the average of the numeric metrics that are
    not feature dimensions (all numeric metrics when only feature dimensions are
    numeric; 0.0 when none is), as OpenEvolve's ``get_fitness_score`` in
    ``openevolve/utils/metrics_utils.py`` does; booleans and text never count.

    Args:
        config: the run configuration (objective metric).
        metrics: everything the evaluator returned.
        features: names of the feature dimensions, left out of the average.
    """
    name = config.objective.metric
    if not metrics:
        return None, "the evaluator returned no metrics"
    if name in metrics:
        value = metrics[name]
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None, (f"metric {name!r} (the objective) is a {type(value).__name__}, "
                          f"not a number: {value!r}"[:300])
        if not math.isfinite(value):
            return None, (f"the objective metric {name!r} is "
                          f"{'NaN' if math.isnan(value) else 'infinite'}")
        return float(value), None
    if name == COMBINED_SCORE:
        numbers = numeric_metrics(metrics)
        excluded = set(features)
        usable = {k: v for k, v in numbers.items() if k not in excluded} or numbers
        if usable:
            return math.fsum(usable.values()) / len(usable), None
        # nothing numeric (an "error" text alone): OpenEvolve's fitness is then 0.0
        return 0.0, None
    return None, f"the evaluator returned no {name!r} metric (the objective)"


def fitness_of(config: RunConfig, score: float) -> float:
    """``score`` oriented so that higher is better, rounded if the config says so."""
    value = score if config.maximize else -score
    if config.score_round is not None:
        value = round(value, config.score_round)
    return value


def unwrap(metrics: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(metrics, artifacts) of a dict shaped like an EvaluationResult, else (metrics, {}).

    Some OpenEvolve evaluators return ``{"metrics": {...}, "artifacts": {...}}`` as a
    plain dict on their error paths.
    """
    inner = metrics.get("metrics")
    if isinstance(inner, dict) and set(metrics) <= {"metrics", "artifacts"}:
        artifacts = metrics.get("artifacts")
        return dict(inner), dict(artifacts) if isinstance(artifacts, dict) else {}
    return dict(metrics), {}


def error_text(metrics: Mapping[str, Any],
               artifacts: Mapping[str, Any] | None = None) -> str | None:
    """The error an evaluator reported in its metrics or artifacts (a string), if any."""
    for source in (metrics, artifacts or {}):
        trace = source.get("traceback") or source.get("full_traceback")
        if isinstance(trace, str) and trace.strip():  # its last line names the exception
            return trace.strip().splitlines()[-1][:300]
        for key in ("error", "error_message", "stderr", "failure"):
            value = source.get(key)
            if isinstance(value, str) and value.strip():
                return value.strip().splitlines()[-1][:300]
    return None
