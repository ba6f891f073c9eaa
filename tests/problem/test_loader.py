"""Loading problem folders (evoforge.problem.loader)."""

from __future__ import annotations

from pathlib import Path

import pytest

from evoforge.config import RunConfig
from evoforge.problem.loader import (
    Problem,
    ProblemError,
    builtin_problems,
    load_problem,
    resolve_problem_path,
)

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "problems" / "openevolve_style"

PROGRAM = """\
import math


# EVOLVE-BLOCK-START
def solve(x):
    return math.sqrt(x)
# EVOLVE-BLOCK-END
"""

EVALUATOR = """\
def evaluate(program_path):
    return {"combined_score": 1.0}
"""


def make_problem(root: Path, *, program: str | bytes | None = PROGRAM,
                 evaluator: str | bytes | None = EVALUATOR,
                 config: str | bytes | None = None, name: str = "prob") -> Path:
    folder = root / name
    folder.mkdir()
    for filename, content in (("initial_program.py", program), ("evaluator.py", evaluator),
                              ("config.yaml", config)):
        if content is None:
            continue
        if isinstance(content, bytes):
            (folder / filename).write_bytes(content)
        else:
            (folder / filename).write_text(content)
    return folder


def problem_error(folder: Path | str) -> str:
    with pytest.raises(ProblemError) as info:
        load_problem(folder)
    message = str(info.value)
    assert "\n" not in message.strip(), f"message is not one line: {message!r}"
    assert message.strip(), "empty message"
    return message


# --- valid folders ----------------------------------------------------------------


def test_valid_folder_without_config_uses_defaults(tmp_path: Path) -> None:
    folder = make_problem(tmp_path)
    p = load_problem(folder)
    assert isinstance(p, Problem)
    assert p.name == "prob"
    assert p.path == folder.resolve()
    assert p.builtin is False
    assert p.template.regions == ("def solve(x):\n    return math.sqrt(x)\n",)
    assert p.initial_program == PROGRAM
    assert p.evaluator_path == folder.resolve() / "evaluator.py"
    assert p.config == RunConfig()
    assert p.config.max_iterations == 1000
    assert p.config.objective.metric == "combined_score"
    assert p.config.maximize
    assert p.warnings == []
    assert p.baselines == {}
    assert "evaluate" in p.evaluator_functions
    assert not p.has_test_split


def test_valid_folder_as_string_path(tmp_path: Path) -> None:
    folder = make_problem(tmp_path)
    assert load_problem(str(folder)).initial_program == PROGRAM


def test_empty_config_means_defaults(tmp_path: Path) -> None:
    folder = make_problem(tmp_path, config="# nothing set yet\n")
    assert load_problem(folder).config == RunConfig()


def test_openevolve_fixture_folder() -> None:
    p = load_problem(FIXTURE)
    assert p.name == "openevolve_style"
    assert p.has_test_split
    assert {"evaluate", "evaluate_test", "EvaluationResult"} <= p.evaluator_functions
    assert p.config.max_iterations == 50
    assert p.config.random_seed == 7
    assert p.config.evaluator.timeout == 20
    assert p.config.database.num_islands == 3
    assert p.config.database.population_size == 200
    assert p.config.system_message == "You improve a summing function."
    assert [m.name for m in p.config.llm.models] == ["gpt-4o-mini", "gpt-4o"]
    # OpenEvolve keys without a counterpart: warned about, one line each, naming the file.
    # OpenEvolve keys without a counterpart: one warning line naming the file and them all
    assert len(p.warnings) == 1
    line = p.warnings[0]
    for key in ("checkpoint_interval", "log_level", "database.elite_selection_ratio",
                "evaluator.parallel_evaluations"):
        assert key in line
    assert "\n" not in line and line.startswith("config.yaml: 4 keys")
    # the template splits at the block; the fixed text around it survives
    assert p.template.regions[0].startswith("def solve(values):")
    assert p.template.fixed[-1].endswith("return solve([1, 2, 3])\n")


def test_baselines_discovered() -> None:
    p = load_problem(FIXTURE)
    assert p.baselines == {"builtin_sum": FIXTURE.resolve() / "baselines" / "builtin_sum.py"}


def test_baselines_folder_sorted(tmp_path: Path) -> None:
    folder = make_problem(tmp_path)
    (folder / "baselines").mkdir()
    for name in ("zeta", "alpha", "mid"):
        (folder / "baselines" / f"{name}.py").write_text("def solve(x):\n    return x\n")
    assert list(load_problem(folder).baselines) == ["alpha", "mid", "zeta"]


@pytest.mark.parametrize(
    ("evaluator", "expected"),
    [
        (EVALUATOR, False),
        (EVALUATOR + "\n\ndef evaluate_test(program_path):\n    return {'x': 1}\n", True),
        (EVALUATOR + "\n\nasync def evaluate_test(program_path):\n    return {'x': 1}\n", True),
        (EVALUATOR + "\n\nevaluate_test = evaluate\n", True),
        (EVALUATOR + "\n\ndef evaluate_testing(program_path):\n    return {}\n", False),
        # a nested function is not an evaluator entry point
        (EVALUATOR + "\n\ndef outer():\n    def evaluate_test(p):\n        pass\n", False),
    ],
    ids=["none", "def", "async-def", "assign", "other-name", "nested"],
)
def test_evaluate_test_detection(tmp_path: Path, evaluator: str, expected: bool) -> None:
    folder = make_problem(tmp_path, evaluator=evaluator)
    assert load_problem(folder).has_test_split is expected


def test_evaluate_imported_counts(tmp_path: Path) -> None:
    folder = make_problem(tmp_path, evaluator="from helpers import evaluate\n")
    assert "evaluate" in load_problem(folder).evaluator_functions


def test_builtin_problem_by_name() -> None:
    builtins = builtin_problems()
    assert "bin_packing" in builtins
    assert all((path / "initial_program.py").is_file() for path in builtins.values())
    path, builtin = resolve_problem_path("bin_packing")
    assert builtin is True
    assert path == builtins["bin_packing"]
    p = load_problem("bin_packing")
    assert p.builtin is True
    assert p.name == "bin_packing"
    assert p.baselines  # bin_packing ships baselines


def test_folder_wins_over_builtin_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_problem(tmp_path, name="bin_packing")
    monkeypatch.chdir(tmp_path)
    p = load_problem("bin_packing")
    assert p.builtin is False
    assert p.path == (tmp_path / "bin_packing").resolve()


# --- malformed folders: one-line ProblemError naming the file ---------------------


def test_missing_initial_program(tmp_path: Path) -> None:
    folder = make_problem(tmp_path, program=None)
    message = problem_error(folder)
    assert str(folder / "initial_program.py") in message
    assert "missing" in message


def test_missing_evaluator(tmp_path: Path) -> None:
    folder = make_problem(tmp_path, evaluator=None)
    message = problem_error(folder)
    assert str(folder / "evaluator.py") in message
    assert "missing" in message


def test_no_evolve_block_evolves_the_whole_file(tmp_path: Path) -> None:
    # as OpenEvolve: a program without markers is evolved whole
    program = "def solve(x):\n    return x\n"
    folder = make_problem(tmp_path, program=program)
    p = load_problem(folder)
    assert p.template.regions == (program,)
    assert p.template.fixed == ("", "")
    assert p.template.render(["def solve(x):\n    return 2 * x\n"]) == (
        "def solve(x):\n    return 2 * x\n")


@pytest.mark.parametrize(
    "program",
    [
        "# EVOLVE-BLOCK-START\nx = 1\n",
        "x = 1\n# EVOLVE-BLOCK-END\n",
        "# EVOLVE-BLOCK-START\n# EVOLVE-BLOCK-START\nx = 1\n# EVOLVE-BLOCK-END\n",
    ],
    ids=["unclosed", "end-only", "nested"],
)
def test_unbalanced_markers(tmp_path: Path, program: str) -> None:
    folder = make_problem(tmp_path, program=program)
    assert str(folder / "initial_program.py") in problem_error(folder)


@pytest.mark.parametrize(
    ("program", "line"),
    [
        ("import math\n\ndef solve(x:\n    return x\n"
         "# EVOLVE-BLOCK-START\ny = 1\n# EVOLVE-BLOCK-END\n", 3),
        ("import math\n# EVOLVE-BLOCK-START\ndef solve(x)\n    return x\n"
         "# EVOLVE-BLOCK-END\n", 3),
        ("# EVOLVE-BLOCK-START\nx = 1\n    y = 2\n# EVOLVE-BLOCK-END\n", 3),
        ('# EVOLVE-BLOCK-START\nx = 1\n\n\ns = """never closed\n# EVOLVE-BLOCK-END\n', 5),
    ],
    ids=["outside-block", "inside-block", "indent", "unterminated-string"],
)
def test_syntax_error_in_initial_program(tmp_path: Path, program: str, line: int) -> None:
    folder = make_problem(tmp_path, program=program)
    message = problem_error(folder)
    assert str(folder / "initial_program.py") in message
    assert f"line {line}" in message
    assert "initial program" in message


def test_syntax_error_in_evaluator(tmp_path: Path) -> None:
    folder = make_problem(tmp_path, evaluator="import os\n\ndef evaluate(program_path)\n    pass\n")
    message = problem_error(folder)
    assert str(folder / "evaluator.py") in message
    assert "line 3" in message
    assert "evaluator" in message


def test_evaluator_without_evaluate(tmp_path: Path) -> None:
    folder = make_problem(tmp_path, evaluator="def score(program_path):\n    return {}\n")
    message = problem_error(folder)
    assert str(folder / "evaluator.py") in message
    assert "'evaluate'" in message


def test_evaluate_only_nested_is_not_enough(tmp_path: Path) -> None:
    evaluator = "class Scorer:\n    def evaluate(self, program_path):\n        return {}\n"
    folder = make_problem(tmp_path, evaluator=evaluator)
    assert "'evaluate'" in problem_error(folder)


def test_non_utf8_program(tmp_path: Path) -> None:
    program = b"# EVOLVE-BLOCK-START\nx = '\xe9'\n# EVOLVE-BLOCK-END\n"
    folder = make_problem(tmp_path, program=program)
    message = problem_error(folder)
    assert str(folder / "initial_program.py") in message
    assert "UTF-8" in message


@pytest.mark.parametrize(
    ("config", "needle"),
    [
        ("max_iterations: [1, 2\nrandom_seed: 3\n", "YAML"),
        ("database:\n\t- num_islands: 2\n", "YAML"),
        ("max_iterations: lots\n", "max_iterations"),
        ("evaluator:\n  timeout: -5\n", "evaluator.timeout"),
        ("database:\n  num_islands: many\n", "database.num_islands"),
        ("objective:\n  metric: time\n  direction: sideways\n", "objective.direction"),
        ("objective: 5\n", "objective"),
        ("database:\n  feature_dimensions: [3]\n", "feature_dimensions"),
        ("- just\n- a list\n", "mapping"),
        ("mutation:\n  bandit: greedy\n", "mutation.bandit"),
    ],
    ids=["bad-yaml", "tab-indent", "max-iterations-lots", "negative-timeout", "islands-string",
         "direction", "objective-int", "feature-int", "top-level-list", "bandit"],
)
def test_invalid_config(tmp_path: Path, config: str, needle: str) -> None:
    folder = make_problem(tmp_path, config=config)
    message = problem_error(folder)
    assert str(folder / "config.yaml") in message
    assert needle in message


def test_bad_yaml_names_line(tmp_path: Path) -> None:
    folder = make_problem(tmp_path, config="max_iterations: 5\nrandom_seed: 1\nfoo: [1,\nbar: 2\n")
    message = problem_error(folder)
    assert "line 4" in message or "line 5" in message


@pytest.mark.parametrize("spec", ["no_such_problem_zz", "/no/such/folder/anywhere"])
def test_unknown_problem(spec: str) -> None:
    message = problem_error(spec)
    assert spec in message
    assert "bin_packing" in message  # lists the built-ins


def test_path_to_a_file_is_not_a_problem(tmp_path: Path) -> None:
    folder = make_problem(tmp_path)
    message = problem_error(folder / "initial_program.py")
    assert "initial_program.py" in message


def test_problem_error_is_value_error() -> None:
    assert issubclass(ProblemError, ValueError)


# --- known bugs -------------------------------------------------------------------


def test_non_utf8_config(tmp_path: Path) -> None:
    folder = make_problem(tmp_path, config=b"# caf\xe9\nmax_iterations: 3\n")
    assert str(folder / "config.yaml") in problem_error(folder)


def test_nul_byte_in_program_message(tmp_path: Path) -> None:
    folder = make_problem(tmp_path, program="# EVOLVE-BLOCK-START\nx = 1\0\n# EVOLVE-BLOCK-END\n")
    message = problem_error(folder)
    assert str(folder / "initial_program.py") in message
    assert "None" not in message


def test_annotated_evaluate_counts(tmp_path: Path) -> None:
    evaluator = ("from typing import Callable\n\n\ndef _impl(p):\n    return {}\n\n\n"
                 "evaluate: Callable = _impl\n")
    folder = make_problem(tmp_path, evaluator=evaluator)
    assert "evaluate" in load_problem(folder).evaluator_functions


def test_section_of_wrong_type_is_rejected(tmp_path: Path) -> None:
    folder = make_problem(tmp_path, config="evaluator: 5\n")
    assert "evaluator" in problem_error(folder)


def test_other_languages_keep_their_suffix_and_comment_markers(tmp_path: Path) -> None:
    folder = make_problem(tmp_path, program=None)
    rust = "use std::cmp;\n// EVOLVE-BLOCK-START\nfn f() -> u32 { 1 }\n// EVOLVE-BLOCK-END\n"
    (folder / "initial_program.rs").write_text(rust)
    p = load_problem(folder)
    assert (p.language, p.file_suffix, p.is_python) == ("rust", ".rs", False)
    assert p.template.regions == ("fn f() -> u32 { 1 }\n",)
    assert p.template.language == "rust"
    # file_suffix and language from the config win (OpenEvolve's keys)
    (folder / "config.yaml").write_text("language: R\nfile_suffix: r\n")
    (folder / "initial_program.r").write_text("# EVOLVE-BLOCK-START\nf <- 1\n# EVOLVE-BLOCK-END\n")
    p = load_problem(folder)
    assert (p.language, p.file_suffix, p.program_path.name) == ("r", ".r", "initial_program.r")


def test_openevolve_file_names_are_found(tmp_path: Path) -> None:
    folder = make_problem(tmp_path, program=None, evaluator=None)
    (folder / "init_program.py").write_text(PROGRAM)
    (folder / "evaluator_stub.py").write_text(EVALUATOR)
    (folder / "config_phase_2.yaml").write_text("max_iterations: 9\n")
    (folder / "config_phase_1.yaml").write_text("max_iterations: 7\n")
    p = load_problem(folder)
    assert p.program_path.name == "init_program.py"
    assert p.evaluator_path.name == "evaluator_stub.py"
    assert p.config_name == "config_phase_1.yaml" and p.config.max_iterations == 7
    p = load_problem(folder, config=folder / "config_phase_2.yaml")
    assert p.config.max_iterations == 9
