"""Run configuration: evoforge's keys and OpenEvolve's (evoforge.config)."""

from __future__ import annotations

from pathlib import Path

import pytest

from evoforge.config import ConfigError, RunConfig, load_config

OPENEVOLVE_CONFIG = """\
# Configuration in OpenEvolve's format
max_iterations: 250
checkpoint_interval: 10
log_level: "INFO"
log_dir: null
random_seed: 42
diff_based_evolution: false
max_code_length: 10000

llm:
  primary_model: "gemini-2.0-flash-lite"
  primary_model_weight: 0.8
  secondary_model: "gemini-2.0-flash"
  secondary_model_weight: 0.2
  api_base: "https://generativelanguage.googleapis.com/v1beta/openai/"
  temperature: 0.7
  top_p: 0.95
  max_tokens: 4096

prompt:
  system_message: |
    You are an expert programmer.
    Make the function faster.
  num_top_programs: 3

database:
  population_size: 500
  archive_size: 20
  num_islands: 5
  elite_selection_ratio: 0.2
  exploitation_ratio: 0.6
  feature_dimensions: ["complexity", "diversity"]
  feature_bins: 8

evaluator:
  timeout: 90
  cascade_evaluation: true
  cascade_thresholds: [0.5, 0.75]
  parallel_evaluations: 4
"""

IGNORED = {
    "checkpoint_interval",
    "log_level",
    "log_dir",
    "max_code_length",
    "prompt.num_top_programs",
    "database.elite_selection_ratio",
    "evaluator.parallel_evaluations",
    "llm.top_p",
}


def write(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def ignored_keys(warnings: list[str]) -> set[str]:
    # all ignored keys come in one line, so that the one that matters is not buried
    assert len(warnings) == 1 and "\n" not in warnings[0]
    head, _, names = warnings[0].partition(" are ignored: ")
    assert head.startswith("config.yaml: ") and head.endswith("keys have no counterpart in "
                                                              "evoforge and")
    return {name.split(" (")[0] for name in names.split(", ")}


def test_openevolve_config_maps_onto_run_config(tmp_path: Path) -> None:
    warnings: list[str] = []
    config = load_config(write(tmp_path, OPENEVOLVE_CONFIG), warnings)
    assert config.max_iterations == 250
    assert config.random_seed == 42
    assert config.diff_based_evolution is False
    assert config.system_message == "You are an expert programmer.\nMake the function faster.\n"
    # evaluator
    assert config.evaluator.timeout == 90.0
    assert isinstance(config.evaluator.timeout, float)
    assert config.evaluator.cascade_thresholds == [0.5, 0.75]
    # database -> archive
    db = config.database
    assert db.num_islands == 5
    assert db.population_size == 500
    assert db.archive_size == 20
    assert db.exploitation_ratio == 0.6
    assert [(f.name, f.bins) for f in db.feature_dimensions] == [("complexity", 8),
                                                                 ("diversity", 8)]
    # llm: primary and secondary become weighted models sharing the api_base
    models = [(m.name, m.api_base, m.weight) for m in config.llm.models]
    base = "https://generativelanguage.googleapis.com/v1beta/openai/"
    assert models == [("gemini-2.0-flash-lite", base, 0.8), ("gemini-2.0-flash", base, 0.2)]
    extra = config.llm.model_extra or {}
    assert extra["temperature"] == 0.7
    assert "top_p" not in extra  # not sent: named among the ignored keys instead
    assert extra["max_tokens"] == 4096
    assert "primary_model" not in extra and "secondary_model" not in extra
    # keys without counterpart: warnings, not errors
    assert ignored_keys(warnings) == IGNORED
    assert config.evaluator.cascade_evaluation is True


def test_openevolve_defaults_kept_for_unset_fields(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, OPENEVOLVE_CONFIG))
    default = RunConfig()
    assert config.objective == default.objective
    assert config.evaluator.memory_mb == default.evaluator.memory_mb
    assert config.evaluator.output_cap_kb == default.evaluator.output_cap_kb
    assert config.database.migration_interval == default.database.migration_interval
    assert config.workers == default.workers
    assert config.mutation == default.mutation


def test_llm_primary_model_without_weight(tmp_path: Path) -> None:
    text = "llm:\n  primary_model: m1\n  api_base: http://localhost:8000/v1\n  temperature: 0.2\n"
    config = load_config(write(tmp_path, text))
    assert [(m.name, m.api_base, m.weight) for m in config.llm.models] == [
        ("m1", "http://localhost:8000/v1", 1.0),
    ]
    assert (config.llm.model_extra or {})["temperature"] == 0.2


def test_llm_secondary_model_default_weight_matches_openevolve(tmp_path: Path) -> None:
    text = "llm:\n  primary_model: m1\n  secondary_model: m2\n"
    config = load_config(write(tmp_path, text))
    assert [(m.name, m.weight) for m in config.llm.models] == [("m1", 1.0), ("m2", 0.2)]


def test_llm_models_list(tmp_path: Path) -> None:
    text = "llm:\n  models:\n    - name: a\n      weight: 0.3\n    - name: b\n      weight: 0.7\n"
    config = load_config(write(tmp_path, text))
    assert [(m.name, m.weight) for m in config.llm.models] == [("a", 0.3), ("b", 0.7)]


def test_feature_bins_per_feature(tmp_path: Path) -> None:
    text = ("database:\n  feature_dimensions:\n    - complexity\n    - name: score\n"
            "      bins: 3\n      min: 0\n      max: 1\n"
            "  feature_bins: {complexity: 6, score: 9}\n")
    config = load_config(write(tmp_path, text))
    feats = config.database.feature_dimensions
    assert [(f.name, f.bins, f.min, f.max) for f in feats] == [
        ("complexity", 6, None, None),
        ("score", 3, 0.0, 1.0),  # an explicit bins wins over feature_bins
    ]


def test_unknown_keys_warn_and_never_fail(tmp_path: Path) -> None:
    text = ("checkpoint_interval: 5\nlog_level: DEBUG\n"
            "database:\n  elite_selection_ratio: 0.1\n  num_islands: 2\n"
            "evaluator:\n  parallel_evaluations: 8\n  timeout: 5\n"
            "llm:\n  primary_model: m\n  some_future_key: 1\n"
            "prompt:\n  template_dir: prompts\n")
    warnings: list[str] = []
    config = load_config(write(tmp_path, text), warnings)
    assert config.database.num_islands == 2
    assert config.evaluator.timeout == 5
    assert ignored_keys(warnings) == {
        "checkpoint_interval", "log_level", "database.elite_selection_ratio",
        "evaluator.parallel_evaluations", "llm.some_future_key", "prompt.template_dir",
    }


def test_warnings_list_optional(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "checkpoint_interval: 5\nmax_iterations: 3\n"))
    assert config.max_iterations == 3


def test_objective_mapping(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "objective:\n  metric: time\n  direction: minimize\n"))
    assert config.objective.metric == "time"
    assert config.objective.direction == "minimize"
    assert config.maximize is False


def test_objective_as_a_name(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "objective: time\n"))
    assert config.objective.metric == "time"
    assert config.objective.direction == "maximize"
    assert config.maximize is True


def test_default_objective() -> None:
    config = RunConfig()
    assert config.objective.metric == "combined_score"
    assert config.maximize is True


def test_evoforge_own_keys(tmp_path: Path) -> None:
    text = ("max_iterations: 10\nmax_time: 30\ntarget: -0.5\nworkers: 3\nscore_round: 4\n"
            "evaluator:\n  memory_mb: 512\n  output_cap_kb: 8\n  test_timeout: 100\n"
            "mutation:\n  bandit: ucb\n  primitives: ['({0} + {1})']\n")
    warnings: list[str] = []
    config = load_config(write(tmp_path, text), warnings)
    assert warnings == []
    assert (config.max_iterations, config.max_time, config.target) == (10, 30.0, -0.5)
    assert (config.workers, config.score_round) == (3, 4)
    assert config.evaluator.memory_mb == 512
    assert config.evaluator.output_cap_kb == 8
    assert config.evaluator.test_timeout == 100
    assert config.mutation.bandit == "ucb"
    assert config.mutation.primitives == ["({0} + {1})"]


def test_missing_file_and_none_mean_defaults(tmp_path: Path) -> None:
    assert load_config(None) == RunConfig()
    assert load_config(tmp_path / "absent.yaml") == RunConfig()
    assert load_config(write(tmp_path, "")) == RunConfig()


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("max_iterations: lots\n", "'max_iterations'"),
        ("max_iterations: 0\n", "'max_iterations'"),
        ("objective:\n  metric: t\n  direction: up\n", "'objective.direction'"),
        ("database:\n  exploitation_ratio: 1.5\n", "'database.exploitation_ratio'"),
        ("mutation:\n  unknown_knob: 1\n", "'mutation.unknown_knob'"),
        ("a: [1,\n", "not valid YAML"),
        ("42\n", "mapping"),
    ],
)
def test_invalid_values_raise_config_error(tmp_path: Path, text: str, needle: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(str(path))
    assert needle in message
    assert "\n" not in message


def test_openevolve_null_random_seed(tmp_path: Path) -> None:
    load_config(write(tmp_path, "random_seed: null\nmax_iterations: 5\n"))
