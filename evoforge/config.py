"""Run configuration: evoforge's own keys and OpenEvolve's, read from ``config.yaml``.

The configuration is a pydantic model. :func:`load_config` reads a problem's
``config.yaml``: evoforge's keys and the OpenEvolve keys that have a counterpart
are mapped onto the model; every other key is reported back as a warning, never
an error, so an OpenEvolve problem folder runs unchanged.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError


class ConfigError(ValueError):
    """A config file that cannot be used; the message names the file and the fix."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ObjectiveConfig(_Model):
    """Which metric is optimised, and in which direction."""

    metric: str = "combined_score"
    direction: Literal["maximize", "minimize"] = "maximize"


class EvaluatorConfig(_Model):
    """How candidates are evaluated."""

    timeout: float = Field(60.0, gt=0, description="wall-clock seconds per evaluation")
    memory_mb: int = Field(4096, gt=0, description="address-space limit of the evaluation")
    output_cap_kb: int = Field(64, gt=0, description="stdout/stderr kept per candidate")
    cascade_evaluation: bool = Field(
        True, description="run evaluate_stage1, 2, ... when the evaluator defines them")
    cascade_thresholds: list[float] = Field(
        default_factory=lambda: [0.5, 0.75, 0.9],
        description="objective a program needs after stage k to run stage k+1 "
        "(OpenEvolve's defaults)")
    test_timeout: float = Field(600.0, gt=0, description="seconds for the test-split score")
    isolation: Literal["fork", "spawn"] = Field(
        "fork", description="fork: workers fork a child per candidate; spawn: new interpreter"
    )
    network: bool = Field(False, description="let candidates use the network")
    file_mb: int = Field(64, gt=0, description="largest file (stdout included) a candidate writes")
    max_processes: int = Field(64, gt=0, description="processes a candidate may run at once")
    probe_inputs: list[list[Any]] | None = Field(
        None, description="functional hashing inputs, one list of positional arguments per "
        "call (instead of the evaluator's probe_inputs())"
    )
    profile: bool = Field(False, description="profile each candidate's evaluation (cProfile "
                          "and a line sampler) into the 'profile' artifact for its children's "
                          "prompts")


class FeatureConfig(_Model):
    """One axis of the MAP-Elites grid."""

    name: str
    bins: int = Field(10, ge=1)
    min: float | None = None
    max: float | None = None


class ArchiveConfig(_Model):
    """The archive: islands of MAP-Elites grids."""

    num_islands: int = Field(4, ge=1)
    population_size: int = Field(1000, ge=1, description="cap on occupied cells, all islands")
    archive_size: int = Field(100, ge=1, description="elites kept for exploitation")
    feature_dimensions: list[FeatureConfig] = Field(
        default_factory=lambda: [FeatureConfig(name="code_size"), FeatureConfig(name="diversity")]
    )
    exploitation_ratio: float = Field(0.7, ge=0, le=1)
    exploration_ratio: float = Field(0.2, ge=0, le=1)
    migration_interval: int = Field(50, ge=1, description="evaluations between migrations")
    migration_rate: float = Field(0.1, ge=0, le=1)
    num_inspirations: int = Field(3, ge=0)
    lexicase_ratio: float = Field(
        0.3, ge=0, le=1, description="share of parents chosen by epsilon-lexicase selection "
        "over per-instance scores (artifacts['instance_scores']), where the evaluator reports them"
    )
    restart_after: int = Field(
        300, ge=0, description="evaluations without a new best after which the island with "
        "the worst best (never the best's own) is emptied and reseeded with the initial "
        "program, taking no migrants for as many evaluations again (0: off)"
    )
    exhausted_avoidance: float = Field(
        2.0, ge=0, description="how strongly parents whose recent children were mostly "
        "wasted (functional or exact duplicates, rejected, failed, timed out) are avoided: "
        "a drawn parent with at least 8 recorded children is kept with probability "
        "(1 - its share of wasted children) ** this, at least 0.05, else drawn again "
        "(up to 4 draws); 0 keeps every parent"
    )
    exhausted_window: int = Field(
        20, ge=1, description="how many of a parent's most recent children its share of "
        "wasted children covers (exhausted_avoidance)"
    )


class MutationConfig(_Model):
    """The model-free proposer."""

    bandit: Literal["thompson", "ucb"] = "thompson"
    operators: list[str] | None = None
    primitives: list[str] | None = Field(
        None, description="expression templates like 'np.maximum({0}, {1})'"
    )
    simplify_every: int = Field(
        100, ge=0, description="evaluations between simplification passes on the best "
        "program (needs probe_inputs; 0 disables)"
    )
    stall_after: int = Field(
        200, ge=0, description="proposal outcomes without a new best after which the run "
        "counts as stalled: constant tuning (constant, tune, cmaes) then gets at most "
        "a tenth of the proposals, structural operators the rest (0 disables)"
    )
    skip_equivalent: bool = Field(
        True, description="drop a program before it is proposed when it equals one the "
        "proposer already made up to obvious identities (x + 0, 1 * x, --x, "
        "np.maximum(x, x), folded constants, a comparison written the other way round) or "
        "when it adds a collapsed sub-expression its parent lacks (x - x, x / x, 0 * x, "
        "x / 0, a comparison of two constants); such programs mostly behave like one "
        "already evaluated. Each counts as a failure of the operator that made it"
    )
    waste_avoidance: float = Field(
        0.0, ge=0, description="how strongly edits of kinds that mostly made wasted "
        "children (failed, functional duplicates) are avoided: a drawn edit is kept with "
        "probability (1 - its kind's share of wasted children) ** this, at least 0.05, "
        "else drawn again; 0 (the default: not shown to pay, see docs/benchmarks.md) "
        "keeps every edit"
    )
    fresh_tuning: int = Field(
        4, ge=0, description="tuning proposals (tune) given to each new structure: a "
        "child of a structural edit that added numeric literals and scored below the best, "
        "whose constants were never fitted (a threshold band, say, that beats the best only "
        "once its bounds move); each proposal moves one of the literals the edit added "
        "(halved, doubled, times 0.8, times 1.25, in turn); the best 8 such children wait, "
        "while one does a fifth of the proposals tune it, and a step that beats its "
        "structure waits in turn (0: off)"
    )
    initial_sweep: int = Field(
        24, ge=0, description="the initial program's numeric literals stepped one at a "
        "time at the start of a run, at most this many (drawn at random when it has "
        "more): each halved, then doubled (0 set to -1, then 1), as tuning proposals "
        "of the new-structure queue (see fresh_tuning); a switch such as RELAX_ROUNDS = "
        "0 is tried on by itself instead of waiting for a random move of every literal "
        "(0: off)"
    )
    max_nodes: int | None = Field(
        None, ge=0, description="bloat control: a child whose evolve regions grow past this "
        "many AST nodes (and past its parent's) is not proposed, the operator tries again; "
        "None (the default): 4 times the initial program's size, at least 64; 0: no limit"
    )
    site_avoidance: float = Field(
        2.0, ge=0, description="how strongly edits are avoided in sub-trees whose edits "
        "mostly made wasted children in this run: each sub-tree on the way from the "
        "edited statement to the change (the condition of an np.where, say, for any "
        "change inside it) keeps its own share, and a drawn edit is kept with "
        "probability (1 - the largest share on its way) ** this, at least 0.05, else "
        "drawn again; 0 keeps every edit"
    )


class LLMModelConfig(BaseModel):
    """One model; read now, used by the LLM proposer."""

    model_config = ConfigDict(extra="allow")
    name: str
    api_base: str | None = None
    weight: float = 1.0


class LLMConfig(BaseModel):
    """LLM settings as read from the config (OpenEvolve's ``llm`` section included).

    evoforge's own keys are typed fields; OpenEvolve's per-model defaults
    (``temperature``, ``max_tokens``, ``timeout``, ...) stay extras that reach every model.
    """

    model_config = ConfigDict(extra="allow")
    models: list[LLMModelConfig] = Field(default_factory=list)
    modes: list[str] | None = Field(
        None, description="proposal modes (diff, rewrite, crossover, plan, function, "
        "expression); default: by the models' prompt style")
    mutation_operators: bool = Field(
        True, description="let the bandit pick model-free operators next to the modes")
    novelty_threshold: float = Field(
        0.95, gt=0, le=1, description="reject a model's program this similar to an "
        "evaluated one")
    fuzzy_similarity: float = Field(
        0.9, gt=0, le=1, description="how closely a SEARCH block must match the parent")
    num_ideas: int = Field(4, ge=1, description="ideas asked for in the plan mode")
    prompt_style: Literal["full", "small"] | None = Field(
        None, description="prompt style of every model (default: small for the local model)")
    max_concurrency: int | None = Field(
        None, ge=1, description="model requests in flight at once, all models together "
        "(default: enough to keep the workers busy, from the observed model latency and "
        "evaluation time, at most 16 per worker)")
    reproducible: bool = Field(
        False, description="no proposal runs ahead of the evaluators (one request at a "
        "time, made when a worker is free): with --workers 1, a deterministic evaluator and "
        "a deterministic model, the same seed gives the same run")
    max_cost: float | None = Field(
        None, ge=0, description="stop once the models cost this many US dollars")
    max_total_tokens: int | None = Field(
        None, ge=1, description="stop once the models used this many tokens")


class ProblemFiles(_Model):
    """Where a problem's files are when they are not the folder's standard names."""

    program: str
    evaluator: str
    config: str | None = None


class RunConfig(_Model):
    """Everything a run needs to know, with sane defaults."""

    max_iterations: int = Field(1000, ge=1, description="evaluation budget")
    max_time: float | None = Field(None, gt=0, description="seconds")
    target: float | None = None
    random_seed: int | None = Field(
        0, description="None (OpenEvolve's null) draws a seed at run creation and stores it"
    )
    workers: int = Field(1, ge=1)
    ordered_lag: int = Field(
        0, ge=0, description="model-free runs: use the results in the order the proposals "
        "were made, proposal k seeing exactly the results before k - N; with a deterministic "
        "evaluator the same seed then gives the same run with 1 to N workers. 0: use each "
        "result as it arrives (fastest, not reproducible with several workers)")
    objective: ObjectiveConfig = Field(default_factory=ObjectiveConfig)
    evaluator: EvaluatorConfig = Field(default_factory=EvaluatorConfig)
    database: ArchiveConfig = Field(default_factory=ArchiveConfig)
    mutation: MutationConfig = Field(default_factory=MutationConfig)
    diff_based_evolution: bool = True
    system_message: str | None = None
    llm: LLMConfig = Field(default_factory=LLMConfig)
    score_round: int | None = Field(
        None, description="decimals the objective is rounded to before comparison"
    )
    language: str | None = Field(
        None, description="the program's language (default: from the file suffix)")
    file_suffix: str | None = Field(
        None, description="suffix of the candidate file (default: the initial program's)")
    allow_failing_initial: bool = Field(
        False, description="start the run even when the initial program fails")
    problem_files: ProblemFiles | None = Field(
        None, description="set by the CLI for 'evoforge run PROGRAM EVALUATOR'")

    @property
    def maximize(self) -> bool:
        """True when a higher objective is better."""
        return self.objective.direction == "maximize"


# OpenEvolve keys evoforge maps, as (section, key) -> handler name. Keys not listed
# here nor in evoforge's own schema are ignored with a warning.
_OPENEVOLVE_LLM_KEYS = {
    "primary_model",
    "primary_model_weight",
    "secondary_model",
    "secondary_model_weight",
    "api_base",
    "api_key",
    "temperature",
    "top_p",
    "max_tokens",
    "timeout",
    "retries",
    "retry_delay",
    "models",
    "evaluator_models",
    # evoforge's own llm keys, read by the LLM proposer
    "modes",
    "mutation_operators",
    "novelty_threshold",
    "fuzzy_similarity",
    "num_ideas",
    "prompt_style",
    "max_concurrency",
    "reproducible",
    "max_cost",
    "max_total_tokens",
}


_ENV_REF = re.compile(r"^\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?$")


def _llm_from_openevolve(section: dict[str, Any], warnings: list[str]) -> dict[str, Any]:
    """OpenEvolve's ``llm`` section as evoforge's: section-level settings reach every model.

    As OpenEvolve's ``LLMConfig.__post_init__`` and ``update_model_params``
    (``openevolve/config.py``): ``api_base`` and ``retries`` reach each entry of
    ``models`` that does not set them itself; ``api_key: ${VAR}`` names a variable.
    """
    out: dict[str, Any] = {k: v for k, v in section.items() if k != "models"}
    shared: dict[str, Any] = {}
    if section.get("api_base"):
        shared["api_base"] = section["api_base"]
    if section.get("retries") is not None:
        shared["max_retries"] = section["retries"]
    key = section.get("api_key")
    if isinstance(key, str) and key:
        ref = _ENV_REF.match(key.strip())
        if ref:  # ${VAR}: the key lives in the environment, which is where evoforge reads it
            shared["api_key_env"] = ref.group(1)
        else:
            warnings.append("llm.api_key (evoforge reads keys from the environment only)")
    if section.get("top_p") is not None:
        warnings.append("llm.top_p (not sent; temperature is)")
    models: list[dict[str, Any]] = []
    for entry in section.get("models") or []:
        if isinstance(entry, dict) and "name" in entry:
            models.append({**shared, **{k: v for k, v in entry.items() if v is not None}})
    # OpenEvolve's defaults: the secondary model weighs 0.2 and is dropped at 0
    for prefix, default_weight in (("primary", 1.0), ("secondary", 0.2)):
        name = section.get(f"{prefix}_model")
        weight = section.get(f"{prefix}_model_weight", default_weight)
        if name and weight:
            models.append({**shared, "name": name, "weight": weight})
    out["models"] = models
    for k in ("primary_model", "secondary_model", "primary_model_weight",
              "secondary_model_weight", "api_key", "top_p", "retries"):
        out.pop(k, None)
    return out


def _features(value: Any) -> list[dict[str, Any]]:
    feats: list[dict[str, Any]] = []
    for item in value or []:
        if isinstance(item, str):
            feats.append({"name": item})
        elif isinstance(item, dict):
            feats.append(dict(item))
        else:
            raise TypeError(f"feature_dimensions entry {item!r} is neither a name nor a mapping")
    return feats


_SECTIONS = {"evaluator", "database", "mutation", "prompt", "llm"}

# OpenEvolve names for settings evoforge has under another name
_EVALUATOR_ALIASES = {"memory_limit_mb": "memory_mb"}


def normalize(raw: dict[str, Any], warnings: list[str]) -> dict[str, Any]:
    """Map a raw YAML mapping onto :class:`RunConfig` fields.

    Unknown keys are dropped and described in ``warnings``.
    """
    out: dict[str, Any] = {}
    simple = {"max_iterations", "max_time", "target", "random_seed", "workers",
              "diff_based_evolution", "score_round", "system_message", "language",
              "file_suffix", "allow_failing_initial", "problem_files", "ordered_lag"}
    for key, value in raw.items():
        if key in _SECTIONS and value is not None and not isinstance(value, dict):
            raise TypeError(f"'{key}' must be a mapping of keys, not {type(value).__name__}")
        if value is None and key in _SECTIONS:
            continue
        if key in simple:
            out[key] = value
        elif key == "objective":
            if isinstance(value, str):
                out["objective"] = {"metric": value}
            else:
                out["objective"] = value
        elif key == "evaluator" and isinstance(value, dict):
            known = set(EvaluatorConfig.model_fields)
            section = {_EVALUATOR_ALIASES.get(k, k): v for k, v in value.items()}
            out["evaluator"] = {k: v for k, v in section.items() if k in known}
            warnings.extend(f"evaluator.{k}" for k in section if k not in known)
        elif key == "database" and isinstance(value, dict):
            known = set(ArchiveConfig.model_fields)
            sec = {k: v for k, v in value.items() if k in known}
            if "feature_dimensions" in sec:
                sec["feature_dimensions"] = _features(sec["feature_dimensions"])
                bins = value.get("feature_bins")
                if isinstance(bins, int):
                    for f in sec["feature_dimensions"]:
                        f.setdefault("bins", bins)
                elif isinstance(bins, dict):
                    for f in sec["feature_dimensions"]:
                        if f["name"] in bins:
                            f.setdefault("bins", bins[f["name"]])
            out["database"] = sec
            warnings.extend(
                f"database.{k}" for k in value if k not in known and k != "feature_bins"
            )
        elif key == "mutation" and isinstance(value, dict):
            out["mutation"] = value
        elif key == "prompt" and isinstance(value, dict):
            if "system_message" in value:
                out["system_message"] = value["system_message"]
            warnings.extend(f"prompt.{k}" for k in value if k != "system_message")
        elif key == "llm" and isinstance(value, dict):
            out["llm"] = _llm_from_openevolve(value, warnings)
            warnings.extend(
                f"llm.{k}" for k in value if k not in _OPENEVOLVE_LLM_KEYS
            )
        else:
            warnings.append(key)
    if out.get("diff_based_evolution") is False:
        # OpenEvolve then asks for whole programs: no diff mode unless llm.modes says so
        llm = out.setdefault("llm", {})
        llm.setdefault("modes", ["rewrite", "crossover", "plan"])
    return out


def read_yaml_mapping(path: Path) -> dict[str, Any]:
    """A YAML file whose top level is a mapping (empty file: {}).

    Raises:
        ConfigError: with a one-line message naming the file, for text that is not
            UTF-8, not YAML, or not a mapping.
    """
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: is not UTF-8 text; save it as UTF-8") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}:{where} is not valid YAML; fix the syntax") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of keys at the top level")
    return raw


def load_config(path: Path | None, warnings: list[str] | None = None) -> RunConfig:
    """Read ``path`` (a ``config.yaml``) into a :class:`RunConfig`.

    Args:
        path: the file, or None for the defaults.
        warnings: if given, receives one line per key that has no counterpart.

    Raises:
        ConfigError: when the file is not YAML or a value is invalid.
    """
    if path is None or not path.exists():
        return RunConfig()
    raw = read_yaml_mapping(path)
    ignored: list[str] = []
    try:
        data = normalize(raw, ignored)
        config = RunConfig.model_validate(data)
    except (ValidationError, TypeError) as exc:
        raise ConfigError(f"{path}: {first_error(exc)}") from None
    if warnings is not None and ignored:
        # one line: a dozen lines of ignored logging keys would bury the one that matters
        noun = "key has" if len(ignored) == 1 else f"{len(ignored)} keys have"
        warnings.append(f"{path.name}: {noun} no counterpart in evoforge and "
                        f"{'is' if len(ignored) == 1 else 'are'} ignored: "
                        + ", ".join(ignored))
    return config


def first_error(exc: Exception) -> str:
    """The first problem a validation error names, on one line: ``'key.sub': message``."""
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        return f"'{loc}': {err['msg']}"
    return str(exc)
