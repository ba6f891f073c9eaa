"""Measurement kit for problems whose score is speed.

* :func:`measure` runs a callable with warm-up and repeats and reports timing
  statistics (:class:`Measurement`): seconds of CPU time of the calling
  process (``getrusage``, see ``timing.cpu_time``) by default, which other load on the machine
  disturbs less than wall-clock time, or wall time with ``clock="wall"``;
  optional per-call ``timeout`` and total ``budget`` with right-censoring.
* :func:`perf_available`, :func:`count_instructions_cmd` and
  :func:`measure_instructions` give hardware instruction counts through
  ``perf stat`` where the machine allows, and ``None`` otherwise.
* :func:`eff_at_k` and :func:`enamel_efficiency` implement ENAMEL's metric;
  :func:`dpe` EvalPerf's differential performance score.
* ``python -m evoforge.measure.noise`` prints this machine's timing noise.

See ``evoforge/measure/README.md`` for the measured noise and guidance.
"""

from __future__ import annotations

from evoforge.measure.dpe import DPEResult, cluster_costs, dpe, dpe_details
from evoforge.measure.enamel import (
    eff_at_k,
    eff_at_k_weights,
    enamel_efficiency,
    level_efficiency,
    pass_at_k,
)
from evoforge.measure.perf import (
    PerfProbe,
    count_event_cmd,
    count_instructions_cmd,
    measure_event,
    measure_instructions,
    parse_perf_csv,
    perf_available,
    probe_perf,
)
from evoforge.measure.stats import (
    CensoredEstimate,
    censored_median,
    hodges_lehmann,
    iqr,
    mad,
    quantile,
)
from evoforge.measure.timing import CLOCKS, ClockName, Measurement, measure, resolve_clock

__all__ = [
    "CLOCKS",
    "CensoredEstimate",
    "ClockName",
    "DPEResult",
    "Measurement",
    "PerfProbe",
    "censored_median",
    "cluster_costs",
    "count_event_cmd",
    "count_instructions_cmd",
    "dpe",
    "dpe_details",
    "eff_at_k",
    "eff_at_k_weights",
    "enamel_efficiency",
    "hodges_lehmann",
    "iqr",
    "level_efficiency",
    "mad",
    "measure",
    "measure_event",
    "measure_instructions",
    "parse_perf_csv",
    "pass_at_k",
    "perf_available",
    "probe_perf",
    "quantile",
    "resolve_clock",
]
