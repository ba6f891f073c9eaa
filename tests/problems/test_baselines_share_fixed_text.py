"""Every built-in problem's baselines are complete programs a user can score, and each keeps
its problem's fixed text (everything outside the evolve regions) exactly: a baseline that
drifted from its problem would be scored against a different driver than the search's."""

from __future__ import annotations

from pathlib import Path

import pytest

from evoforge.problem.blocks import parse_blocks

PROBLEMS = Path(__file__).resolve().parents[2] / "evoforge" / "problems"
BASELINES = sorted(
    (folder.name, path.name)
    for folder in PROBLEMS.iterdir() if (folder / "initial_program.py").is_file()
    for path in (folder / "baselines").glob("*.py")
)


def test_every_problem_ships_baselines() -> None:
    with_baselines = {problem for problem, _ in BASELINES}
    problems = {f.name for f in PROBLEMS.iterdir() if (f / "initial_program.py").is_file()}
    assert problems and with_baselines == problems


@pytest.mark.parametrize(("problem", "baseline"), BASELINES)
def test_baseline_keeps_the_fixed_text(problem: str, baseline: str) -> None:
    initial = parse_blocks((PROBLEMS / problem / "initial_program.py").read_text())
    text = (PROBLEMS / problem / "baselines" / baseline).read_text()
    ours = parse_blocks(text)
    assert ours.fixed == initial.fixed, f"{problem}/baselines/{baseline} changed the fixed text"
    assert len(ours.regions) == len(initial.regions)
    compile(text, baseline, "exec")
