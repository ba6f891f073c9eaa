"""Tests of the feature space: raw feature values and their binning."""

from __future__ import annotations

import math

import pytest

from evoforge.archive import FeatureSpace
from evoforge.archive.features import bin_index, histogram_distance, stripped_size
from evoforge.config import ArchiveConfig, FeatureConfig

INITIAL = '''\
"""Sum of squares."""


def solve(xs):
    # accumulate
    total = 0
    for x in xs:
        total += x * x
    return total
'''

LONGER = INITIAL + '''

def helper(values, scale=2.0):
    result = []
    for v in values:
        if v > 0:
            result.append(v * scale)
        else:
            result.append(-v / scale)
    return sorted(result)
'''

DIFFERENT = '''\
class Solver:
    def __init__(self, k):
        self.k = k

    def solve(self, xs):
        return [self.k * x if x else None for x in xs]


try:
    import math
except ImportError:
    math = None
with open("f") as fh:
    data = {k: v for k, v in enumerate(fh)}
'''


def space(*dims: FeatureConfig, initial: str = INITIAL) -> FeatureSpace:
    config = ArchiveConfig(feature_dimensions=list(dims)) if dims else ArchiveConfig()
    return FeatureSpace(config, initial)


def test_default_dimensions_are_code_size_and_diversity() -> None:
    fs = space()
    assert fs.names == ["code_size", "diversity"]
    values = fs.compute(INITIAL, {})
    assert set(values) == {"code_size", "diversity"}
    assert all(isinstance(v, float) for v in values.values())


def test_compute_is_deterministic() -> None:
    a = space().compute(DIFFERENT, {})
    b = space().compute(DIFFERENT, {})
    fs = space()
    assert a == b == fs.compute(DIFFERENT, {}) == fs.compute(DIFFERENT, {})
    assert space().cell(a) == space().cell(b)


def test_code_size_ignores_comments_and_blank_lines() -> None:
    padded = "# header comment\n\n\n" + INITIAL.replace("    total = 0", "    total = 0  # zero")
    fs = space(FeatureConfig(name="code_size"))
    assert fs.compute(padded, {}) == fs.compute(INITIAL, {})
    assert stripped_size(INITIAL) < len(INITIAL)


def test_code_size_grows_with_longer_code_and_moves_cells() -> None:
    fs = space(FeatureConfig(name="code_size", bins=8))
    small = fs.compute(INITIAL, {})["code_size"]
    big = fs.compute(LONGER, {})["code_size"]
    assert big > small
    assert small == fs.initial_size
    # the initial program sits at log2 ratio 0, in the middle of [-2, 2]
    assert fs.cell({"code_size": small}) == (4,)
    assert fs.cell({"code_size": big})[0] > 4
    # a quarter of the size or less clips to bin 0, four times or more to the last bin
    assert fs.cell({"code_size": small / 8}) == (0,)
    assert fs.cell({"code_size": small * 8}) == (7,)


def test_code_size_of_unparsable_code_falls_back_to_length() -> None:
    fs = space(FeatureConfig(name="code_size"))
    broken = "def f(:\n    return 1\n"
    assert fs.compute(broken, {})["code_size"] == len(broken)


def test_complexity_is_an_alias_of_code_size() -> None:
    fs = space(FeatureConfig(name="complexity"))
    ref = space(FeatureConfig(name="code_size"))
    assert fs.compute(LONGER, {})["complexity"] == ref.compute(LONGER, {})["code_size"]


def test_diversity_is_zero_for_the_initial_program_and_grows_with_structure() -> None:
    fs = space(FeatureConfig(name="diversity", bins=10))
    assert fs.compute(INITIAL, {})["diversity"] == 0.0
    # comments and formatting do not change the shape
    reformatted = INITIAL.replace("total = 0", "total=0   # start")
    assert fs.compute(reformatted, {})["diversity"] == 0.0
    small_change = INITIAL.replace("total += x * x", "total += x * x + 1")
    d_small = fs.compute(small_change, {})["diversity"]
    d_big = fs.compute(DIFFERENT, {})["diversity"]
    assert 0.0 < d_small < d_big <= 2.0
    assert fs.cell({"diversity": 0.0}) == (0,)
    assert fs.cell({"diversity": d_big}) > fs.cell({"diversity": d_small})
    # above the default max of 1 clips to the last bin
    assert fs.cell({"diversity": 1.7}) == (9,)


def test_diversity_of_unparsable_code_is_maximal() -> None:
    fs = space(FeatureConfig(name="diversity"))
    assert fs.compute("def (", {})["diversity"] == 2.0
    assert histogram_distance({}, {}) == 0.0
    assert histogram_distance({"A": 1.0}, {"B": 1.0}) == 2.0


def test_metric_features_are_read_from_metrics() -> None:
    fs = space(FeatureConfig(name="latency", bins=4, min=0.0, max=8.0))
    assert fs.compute(INITIAL, {"latency": 3, "other": 1.0}) == {"latency": 3.0}
    assert fs.cell({"latency": 3.0}) == (1,)


def test_missing_metric_raises_a_clear_key_error() -> None:
    fs = space(FeatureConfig(name="latency"))
    with pytest.raises(KeyError, match="latency"):
        fs.compute(INITIAL, {"score": 1.0})


def test_non_numeric_metric_raises() -> None:
    fs = space(FeatureConfig(name="latency"))
    with pytest.raises(TypeError, match="latency"):
        fs.compute(INITIAL, {"latency": "fast"})


def test_cell_with_missing_feature_raises() -> None:
    fs = space(FeatureConfig(name="latency", min=0, max=1))
    with pytest.raises(KeyError, match="latency"):
        fs.cell({"other": 1.0})


def test_explicit_min_max_binning_and_clipping() -> None:
    fs = space(
        FeatureConfig(name="a", bins=5, min=0.0, max=10.0),
        FeatureConfig(name="b", bins=3, min=-1.0, max=1.0),
    )
    assert fs.shape == (5, 3)
    assert fs.cell({"a": 0.0, "b": -1.0}) == (0, 0)
    assert fs.cell({"a": 1.99, "b": -0.34}) == (0, 0)
    assert fs.cell({"a": 2.0, "b": 0.0}) == (1, 1)
    assert fs.cell({"a": 9.99, "b": 0.99}) == (4, 2)
    assert fs.cell({"a": 10.0, "b": 1.0}) == (4, 2)
    assert fs.cell({"a": -50.0, "b": 7.0}) == (0, 2)
    assert fs.cell({"a": math.inf, "b": -math.inf}) == (4, 0)
    assert fs.cell({"a": math.nan, "b": 0.0}) == (0, 1)
    # explicit ranges are not widened by observed values
    fs.compute(INITIAL, {"a": 100.0, "b": 0.0})
    assert fs.range("a") == (0.0, 10.0)


def test_explicit_bounds_override_builtin_defaults() -> None:
    fs = space(FeatureConfig(name="diversity", bins=4, min=0.0, max=2.0))
    assert fs.cell({"diversity": 1.2}) == (2,)
    assert space(FeatureConfig(name="diversity", bins=4)).cell({"diversity": 1.2}) == (3,)


def test_adaptive_range_grows_with_observed_values() -> None:
    fs = space(FeatureConfig(name="m", bins=4))
    assert fs.range("m") is None
    fs.compute(INITIAL, {"m": 10.0})
    assert fs.range("m") == (10.0, 10.0)
    assert fs.cell({"m": 10.0}) == (0,)
    fs.compute(INITIAL, {"m": 18.0})
    assert fs.range("m") == (10.0, 18.0)
    assert fs.cell({"m": 10.0}) == (0,)
    assert fs.cell({"m": 13.0}) == (1,)
    assert fs.cell({"m": 18.0}) == (3,)
    # cell() alone does not observe; observe() does, and ignores non-finite values
    fs.cell({"m": 100.0})
    assert fs.range("m") == (10.0, 18.0)
    fs.observe({"m": math.nan})
    fs.observe({"m": 2.0})
    assert fs.range("m") == (2.0, 18.0)


def test_adaptive_range_with_one_configured_bound() -> None:
    fs = space(FeatureConfig(name="m", bins=2, min=0.0))
    fs.observe({"m": 4.0})
    assert fs.range("m") == (0.0, 4.0)
    assert fs.cell({"m": 1.0}) == (0,)
    assert fs.cell({"m": 3.0}) == (1,)


def test_duplicate_dimension_names_rejected() -> None:
    with pytest.raises(ValueError, match="distinct"):
        space(FeatureConfig(name="m"), FeatureConfig(name="m"))


def test_bin_index_edges() -> None:
    assert bin_index(0.5, 0.0, 1.0, 1) == 0
    assert bin_index(5.0, 5.0, 5.0, 4) == 0
    assert bin_index(6.0, 5.0, 5.0, 4) == 3

