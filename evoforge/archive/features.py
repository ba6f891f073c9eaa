"""Feature descriptors of programs and their binning into MAP-Elites cells.

A :class:`FeatureSpace` turns a program (and the metrics its evaluation
returned) into raw feature values, and raw feature values into the bin indices
of a MAP-Elites cell.

Built-in features:

* ``code_size`` (alias ``complexity``, OpenEvolve's name): the length in
  characters of the program with comments, blank lines and formatting
  stripped (the length of ``ast.unparse`` of the parsed module; ``len(code)``
  when the program does not parse). The raw value is that length; it is binned
  on ``log2(size / initial_size)``, over ``[-2, 2]`` unless the feature's
  ``min``/``max`` say otherwise (given in the same log2-ratio units).
* ``diversity``: the L1 distance between the normalized histograms of AST node
  type names of the program and of the initial program: 0 for the same shape,
  at most 2. Binned over ``[0, 1]`` unless ``min``/``max`` are given; larger
  values clip to the last bin.

* ``score`` (OpenEvolve's name): the candidate's objective; the run loop passes it
  as the metric ``score`` unless the evaluator returns a metric of that name.

Any other feature name is read from the evaluation metrics, so that a problem
declares its own features by returning them as metrics. Such a feature is
binned over its configured ``min``/``max`` when given; a missing bound is
replaced by the smallest (largest) value observed so far. Values are observed
by :meth:`FeatureSpace.compute` and by :meth:`FeatureSpace.observe` (which the
archive calls on every insertion, so that features restored from storage widen
the range the same way). The range therefore only grows; the archive records
the cell a candidate was placed in, so a candidate never moves when the range
changes later.

Every value is clipped into ``[0, bins - 1]``. Everything is deterministic.
"""

from __future__ import annotations

import ast
import math
from collections import Counter
from collections.abc import Mapping
from typing import Any

from evoforge.config import ArchiveConfig, FeatureConfig

CODE_SIZE = "code_size"
DIVERSITY = "diversity"
_ALIASES = {"complexity": CODE_SIZE}
BUILTIN_FEATURES = (CODE_SIZE, DIVERSITY, *_ALIASES)

_CODE_SIZE_RANGE = (-2.0, 2.0)
_DIVERSITY_RANGE = (0.0, 1.0)
_MAX_DIVERSITY = 2.0


def _parse(code: str) -> ast.Module | None:
    """Parse ``code``; None when it is not valid Python."""
    try:
        return ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def stripped_size(code: str, tree: ast.Module | None = None) -> int:
    """Length of ``code`` without comments, blank lines and formatting.

    Args:
        code: the program text.
        tree: ``ast.parse(code)`` if the caller already has it.

    Returns:
        ``len(ast.unparse(tree))``, or ``len(code)`` when the program does not
        parse (or is too deeply nested to unparse).
    """
    if tree is None:
        tree = _parse(code)
    if tree is None:
        return len(code)
    try:
        return len(ast.unparse(tree))
    except (RecursionError, ValueError):
        return len(code)


def node_histogram(tree: ast.Module | None) -> dict[str, float]:
    """Normalized histogram of the AST node type names of ``tree``.

    Expression contexts (``Load``, ``Store``, ``Del``) are left out: they only
    repeat what the ``Name``/``Attribute``/``Subscript`` nodes already say.

    Args:
        tree: a parsed module, or None for a program that does not parse.

    Returns:
        Node type name -> fraction of all nodes; empty for None.
    """
    if tree is None:
        return {}
    counts = Counter(
        type(node).__name__ for node in ast.walk(tree) if not isinstance(node, ast.expr_context)
    )
    total = sum(counts.values())
    if total == 0:
        return {}
    return {name: n / total for name, n in counts.items()}


def histogram_distance(a: Mapping[str, float], b: Mapping[str, float]) -> float:
    """L1 distance between two normalized histograms, in ``[0, 2]``.

    An empty histogram (a program that does not parse) is at the maximal
    distance 2 from a non-empty one, and at 0 from another empty one.
    """
    if not a or not b:
        return 0.0 if not a and not b else _MAX_DIVERSITY
    keys = sorted(set(a) | set(b))  # sorted: a fixed summation order
    return math.fsum(abs(a.get(k, 0.0) - b.get(k, 0.0)) for k in keys)


def bin_index(value: float, lo: float, hi: float, bins: int) -> int:
    """Bin of ``value`` among ``bins`` equal bins over ``[lo, hi]``, clipped.

    NaN goes to bin 0. When ``hi <= lo`` values up to ``lo`` go to bin 0 and
    larger ones to the last bin.
    """
    if bins <= 1 or math.isnan(value):
        return 0
    if hi <= lo:
        return 0 if value <= lo else bins - 1
    t = (value - lo) / (hi - lo)
    if t <= 0.0:
        return 0
    if t >= 1.0:
        return bins - 1
    return min(int(t * bins), bins - 1)


class FeatureSpace:
    """Computes feature values of programs and bins them into grid cells.

    Args:
        config: the archive configuration; its ``feature_dimensions`` are the
            grid axes, in order.
        initial_code: the initial program, the reference for ``code_size`` and
            ``diversity``.

    Attributes:
        dimensions: the grid axes, in order.
        initial_size: stripped size of the initial program (at least 1).
    """

    def __init__(self, config: ArchiveConfig, initial_code: str) -> None:
        self.dimensions: list[FeatureConfig] = list(config.feature_dimensions)
        names = [dim.name for dim in self.dimensions]
        if len(set(names)) != len(names):
            raise ValueError(f"feature_dimensions names must be distinct, got {names}")
        tree = _parse(initial_code)
        self.initial_size: int = max(1, stripped_size(initial_code, tree))
        self._initial_hist = node_histogram(tree)
        self._needs_tree = any(self._builtin(dim.name) for dim in self.dimensions)
        # observed [lo, hi] of the metric features that lack a configured bound
        self._observed: dict[str, tuple[float, float]] = {}

    @property
    def names(self) -> list[str]:
        """Names of the grid axes, in order."""
        return [dim.name for dim in self.dimensions]

    @property
    def shape(self) -> tuple[int, ...]:
        """Number of bins along each axis."""
        return tuple(dim.bins for dim in self.dimensions)

    @staticmethod
    def _builtin(name: str) -> str | None:
        """The built-in feature ``name`` stands for, or None for a metric feature."""
        name = _ALIASES.get(name, name)
        return name if name in (CODE_SIZE, DIVERSITY) else None

    def compute(self, code: str, metrics: Mapping[str, Any]) -> dict[str, float]:
        """Raw feature values of a program, one per grid axis.

        Also records the values of metric features with an adaptive range
        (see :meth:`observe`).

        Args:
            code: the program text.
            metrics: the metrics its evaluation returned.

        Returns:
            Feature name -> raw value.

        Raises:
            KeyError: a metric feature that ``metrics`` does not contain.
            TypeError: a metric feature whose value is not a number.
        """
        tree = _parse(code) if self._needs_tree else None
        values: dict[str, float] = {}
        for dim in self.dimensions:
            kind = self._builtin(dim.name)
            if kind == CODE_SIZE:
                values[dim.name] = float(stripped_size(code, tree))
            elif kind == DIVERSITY:
                values[dim.name] = histogram_distance(node_histogram(tree), self._initial_hist)
            else:
                values[dim.name] = self._metric(dim.name, metrics)
        self.observe(values)
        return values

    @staticmethod
    def _metric(name: str, metrics: Mapping[str, Any]) -> float:
        if name not in metrics:
            raise KeyError(
                f"feature '{name}' is not a built-in feature ({', '.join(BUILTIN_FEATURES)}) "
                f"and the evaluator returned no metric '{name}'; "
                f"metrics returned: {sorted(metrics)}"
            )
        value = metrics[name]
        if isinstance(value, bool) or not isinstance(value, int | float):
            try:
                return float(value)
            except (TypeError, ValueError):
                raise TypeError(
                    f"feature '{name}': metric value {value!r} is not a number"
                ) from None
        return float(value)

    def observe(self, features: Mapping[str, float]) -> None:
        """Widen the adaptive ranges of metric features to include ``features``.

        Only metric features with a missing ``min`` or ``max`` have a range to
        widen; other names, missing names and non-finite values are ignored.
        Observing the same values twice changes nothing.
        """
        for dim in self.dimensions:
            if self._builtin(dim.name) or (dim.min is not None and dim.max is not None):
                continue
            value = features.get(dim.name)
            if value is None:
                continue
            try:
                x = float(value)
            except (TypeError, ValueError):
                continue
            if not math.isfinite(x):
                continue
            seen = self._observed.get(dim.name)
            if seen is None:
                self._observed[dim.name] = (x, x)
            elif x < seen[0] or x > seen[1]:
                self._observed[dim.name] = (min(seen[0], x), max(seen[1], x))

    def range(self, name: str) -> tuple[float, float] | None:
        """The ``[lo, hi]`` interval axis ``name`` is binned over right now.

        For ``code_size`` it is in ``log2(size / initial_size)`` units. None for
        a metric feature with an adaptive bound and no value observed yet.

        Raises:
            KeyError: ``name`` is not a grid axis.
        """
        for dim in self.dimensions:
            if dim.name == name:
                return self._range(dim)
        raise KeyError(f"'{name}' is not a feature dimension; dimensions: {self.names}")

    def _range(self, dim: FeatureConfig) -> tuple[float, float] | None:
        kind = self._builtin(dim.name)
        if kind is not None:
            lo, hi = _CODE_SIZE_RANGE if kind == CODE_SIZE else _DIVERSITY_RANGE
            return (lo if dim.min is None else dim.min, hi if dim.max is None else dim.max)
        if dim.min is not None and dim.max is not None:
            return (dim.min, dim.max)
        seen = self._observed.get(dim.name)
        if seen is None:
            return None
        return (seen[0] if dim.min is None else dim.min, seen[1] if dim.max is None else dim.max)

    def cell(self, features: Mapping[str, float]) -> tuple[int, ...]:
        """Bin indices of raw feature values, one per axis, each in ``[0, bins - 1]``.

        Does not change the adaptive ranges (call :meth:`observe` for that).

        Raises:
            KeyError: ``features`` lacks one of the axes.
        """
        out: list[int] = []
        for dim in self.dimensions:
            if dim.name not in features:
                raise KeyError(
                    f"candidate features lack '{dim.name}'; have {sorted(features)}"
                )
            value = float(features[dim.name])
            if self._builtin(dim.name) == CODE_SIZE:
                value = math.log2(max(value, 1.0) / self.initial_size)
            bounds = self._range(dim)
            if bounds is None:  # nothing observed yet: the value is the whole range
                bounds = (value, value)
            out.append(bin_index(value, bounds[0], bounds[1], dim.bins))
        return tuple(out)
