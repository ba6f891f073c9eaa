"""``evoforge problems``: the built-in problem library (list, show, score)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from evoforge.cli import CLIError, _fmt, app, console
from evoforge.problem.library import objective, read_meta, score_program
from evoforge.problem.loader import Problem, ProblemError, builtin_problems, load_problem

problems_app = typer.Typer(help="The built-in problem library.", no_args_is_help=False,
                           invoke_without_command=True)
app.add_typer(problems_app, name="problems")


@problems_app.callback()
def problems(ctx: typer.Context) -> None:
    """List the built-in problems with their baselines' test scores."""
    if ctx.invoked_subcommand is not None:
        return
    table = Table()
    for col in ("name", "direction", "baselines (test split)", "summary"):
        # a long name (earliest_start_contention) folds onto the next line, not cut
        table.add_column(col, overflow="fold")
    for name, path in builtin_problems().items():
        try:
            meta = read_meta(path)
        except ProblemError as exc:
            table.add_row(name, "-", "-", f"[red]broken:[/] {escape(str(exc))}")
            continue
        if meta is None:
            table.add_row(name, "-", "-", "-")
            continue
        base = ", ".join(f"{b} {_fmt(s.get('test'))}" for b, s in meta.baselines.items())
        table.add_row(name, meta.direction, base or "-", meta.summary)
    console.print(table)


def _builtin(name: str) -> Problem:
    if name not in builtin_problems():
        known = ", ".join(builtin_problems())
        raise CLIError(f"no built-in problem {name!r} (built-ins: {known})")
    return load_problem(name)


@problems_app.command("show")
def problems_show(
    name: Annotated[str, typer.Argument(help="Built-in problem name.")],
    score: Annotated[bool, typer.Option(
        "--score", help="Also score the initial program and every baseline, now.")] = False,
) -> None:
    """Print a problem's README (and, with --score, score its baselines on both splits)."""
    prob = _builtin(name)
    readme = prob.path / "README.md"
    sys.stdout.write(readme.read_text() if readme.exists() else f"{name}: no README\n")
    if not score:
        return
    table = Table(title=f"{name}: {prob.config.objective.metric} "
                        f"({prob.config.objective.direction}), measured now")
    for col in ("program", "train", "test"):
        table.add_column(col, justify="left" if col == "program" else "right")
    programs = {"initial": prob.initial_program,
                **{f"baseline {b}": p.read_text() for b, p in prob.baselines.items()}}
    for label, code in programs.items():
        cells = []
        for function in ("evaluate", "evaluate_test"):
            if function not in prob.evaluator_functions:
                cells.append("-")
                continue
            outcome = score_program(prob, code, function)
            cells.append(_fmt(objective(prob, outcome.metrics)) if outcome.status == "ok"
                         else f"{outcome.status}: {outcome.error}")
        table.add_row(label, *cells)
    console.print(table)


@problems_app.command("score")
def problems_score(
    name: Annotated[str, typer.Argument(help="Built-in problem name.")],
    program: Annotated[Path, typer.Argument(help="Program file to score.")],
    split: Annotated[str, typer.Option(help="test or train.")] = "test",
    as_json: Annotated[bool, typer.Option("--json", help="Print the metrics as JSON.")] = False,
    perplexity: Annotated[bool, typer.Option(
        "--perplexity", help="Check by a real model's perplexity (kv_eviction_real).")] = False,
) -> None:
    """Score any program on a problem's test split (or train), isolated like a candidate."""
    prob = _builtin(name)
    if split not in ("test", "train"):
        raise CLIError(f"--split must be test or train, not {split!r}")
    if not program.is_file():
        raise CLIError(f"{program}: no such file")
    if perplexity:  # the problem's own perplexity.py: report(program) -> a table
        if not (prob.path / "perplexity.py").is_file():
            raise CLIError(f"{name} has no perplexity check")
        from evoforge.problem.kit import load_module
        try:
            check = load_module(prob.path / "perplexity.py", f"_{name}_perplexity")
            console.print(check.report(program), markup=False, soft_wrap=True)
        except ValueError as exc:
            raise CLIError(str(exc)) from None
        return
    function = "evaluate_test" if split == "test" and prob.has_test_split else "evaluate"
    outcome = score_program(prob, program.read_text(), function)
    if outcome.status != "ok":
        raise CLIError(f"{program}: {outcome.status}: {outcome.error}")
    if as_json:
        sys.stdout.write(json.dumps(outcome.metrics) + "\n")
        return
    value = objective(prob, outcome.metrics)
    console.print(f"{name} {split}: {prob.config.objective.metric} = {_fmt(value)} "
                  f"({prob.config.objective.direction})")
    meta = read_meta(prob.path)
    for base, scores in (meta.baselines.items() if meta else []):
        console.print(f"  baseline {base}: {_fmt(scores.get(split))}")
