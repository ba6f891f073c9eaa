"""``evoforge report``: PNG plots (matplotlib) and ``report.md`` for one run.

The numbers are those of ``evoforge status --json`` (the same function computes
them); ``status.json`` beside the report holds them exactly.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from evoforge.report import facts
from evoforge.storage import RunRecord, Storage

STATUS_COLOURS = {"ok": "#2563eb", "failed": "#dc2626", "timeout": "#f97316",
                  "duplicate": "#a3a3a3", "rejected": "#7c3aed"}


def _num(value: Any) -> str:
    """A number exactly as JSON writes it (repr), so that it equals status --json."""
    if value is None:
        return "-"
    return json.dumps(value)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    return plt


def _all_points(storage: Storage, run_id: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    after = -1
    while True:
        page = facts.score_points(storage, run_id, after_seq=after)
        out.extend(page["points"])
        if not page["points"]:
            return out
        after = page["last_seq"]


def plot_scores(storage: Storage, run: RunRecord, info: dict[str, Any], path: Path) -> None:
    """Every finished candidate's score over evaluations, the best-so-far line and
    the initial program and baselines as horizontal lines."""
    plt = _pyplot()
    points = _all_points(storage, run.id)
    fig, ax = plt.subplots(figsize=(9, 4.5))
    scored = [p["score"] for p in points if p["score"] is not None]
    lines = {"initial": info["initial_score"]}
    for name, scores in (info.get("baselines") or {}).items():
        if (scores or {}).get("train") is not None:
            lines[f"baseline {name}"] = scores["train"]
    known = scored + [v for v in lines.values() if v is not None]
    low, high = min(known, default=0.0), max(known, default=0.0)
    # unscored candidates go on a row just below the lowest score
    low -= 0.06 * ((high - low) or abs(low) or 1.0)
    for status, colour in STATUS_COLOURS.items():
        xs = [p["evaluation"] for p in points if p["status"] == status]
        ys = [p["score"] if p["score"] is not None else low
              for p in points if p["status"] == status]
        if xs:
            ax.scatter(xs, ys, s=10, color=colour, label=f"{status} ({len(xs)})", zorder=2)
    best_x: list[int] = []
    best_y: list[float] = []
    best_fit = -math.inf
    for p in points:
        if p["status"] == "ok" and p["fitness"] is not None and p["fitness"] > best_fit:
            best_fit = p["fitness"]
            best_x.append(p["evaluation"])
            best_y.append(p["score"])
    if best_x:
        best_x.append(points[-1]["evaluation"])
        best_y.append(best_y[-1])
        ax.step(best_x, best_y, where="post", color="#111827", lw=2, label="best so far",
                zorder=3)
    for i, (name, value) in enumerate(lines.items()):
        if value is not None:
            ax.axhline(value, ls="--", lw=1.2, color=f"C{i + 2}", label=name, zorder=1)
    ax.set_xlabel("evaluations")
    ax.set_ylabel("score (unscored candidates: the row below)")
    ax.set_title(f"run {run.name}: score over evaluations")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="best")
    else:
        ax.text(0.5, 0.5, "no finished candidate yet", ha="center", transform=ax.transAxes)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_archive(storage: Storage, run: RunRecord, path: Path) -> str | None:
    """Heat maps of the best fitness per MAP-Elites cell, one per island.

    Returns:
        None when written, else why there is no plot.
    """
    grids, why = facts.archive_grids(storage, run)
    if not grids:
        return why
    import numpy as np

    plt = _pyplot()
    lo, hi = facts.colour_range(grids)
    fig, axes = plt.subplots(1, len(grids), figsize=(3.2 * len(grids) + 1, 3.6), squeeze=False)
    image = None
    for ax, grid in zip(axes[0], grids, strict=True):
        data = np.array([[np.nan if v is None else v for v in row] for row in grid.cells],
                        dtype=float)
        image = ax.imshow(data, origin="lower", cmap="viridis", vmin=lo, vmax=hi,
                          aspect="auto")
        ax.set_title(f"island {grid.island} ({grid.placed} ok)", fontsize=9)
        ax.set_xlabel(grid.x_name, fontsize=8)
        ax.set_ylabel(grid.y_name, fontsize=8)
    if image is not None:
        fig.colorbar(image, ax=axes[0].tolist(), extend="min",
                     label="best fitness in cell")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


def plot_operators(info: dict[str, Any], path: Path) -> None:
    """Stacked bars of outcomes per operator, with the bandit's improvement rate."""
    plt = _pyplot()
    ops = list(info["operators"])
    fig, ax = plt.subplots(figsize=(max(5.0, 1.1 * len(ops) + 2), 4))
    bottom = [0] * len(ops)
    for status, colour in STATUS_COLOURS.items():
        counts = [int(info["operators"][op].get(status, 0)) for op in ops]
        ax.bar(ops, counts, bottom=bottom, color=colour, label=status)
        bottom = [b + c for b, c in zip(bottom, counts, strict=True)]
    for i, op in enumerate(ops):
        rate = info["operators"][op].get("improvement_rate")
        if rate is not None:
            ax.annotate(f"{rate:.2f}", (i, bottom[i]), ha="center", va="bottom", fontsize=8)
    ax.set_ylabel("proposals (label: improvements per pull)")
    ax.set_title("operators")
    ax.tick_params(axis="x", labelrotation=30, labelsize=8)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _markdown(storage: Storage, run: RunRecord, info: dict[str, Any],
              plots: list[str], archive_note: str | None) -> str:
    best = storage.best(run.id)
    out = [f"# Run {run.name}", "",
           f"Problem `{run.problem}`, seed {run.seed}, status {info['status']}"
           f" (stop reason: {info['stop_reason'] or '-'}).", "",
           "| fact | value |", "| --- | --- |"]
    for key in ("evaluated", "budget", "ok", "failed", "timeouts", "duplicates", "rejected",
                "pending", "best_score", "best_id", "initial_score", "elapsed_seconds",
                "evals_per_second"):
        out.append(f"| {key} | {_num(info[key])} |")
    test = info.get("test") or {}
    if test:
        out.append(f"| test best | {_num(test.get('best'))} |")
        out.append(f"| test initial | {_num(test.get('initial'))} |")
    for name, scores in (info.get("baselines") or {}).items():
        out.append(f"| baseline {name} (train / test) | {_num(scores.get('train'))} / "
                   f"{_num(scores.get('test'))} |")
    fh = info["functional_hashing"]
    out.append(f"| functional hashing hits / probed | {_num(fh['hits'])} / "
               f"{_num(fh['probed'])} |")
    out += ["", "## Plots", ""]
    out += [f"![{name}]({name})" for name in plots]
    if archive_note:
        out.append(f"No archive plot: {archive_note}.")
    out += ["", "## Operators", "", "| operator | proposed | ok | failed | timeout | duplicate "
            "| rejected | bandit pulls | improvement rate |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for op, e in info["operators"].items():
        out.append(f"| {op} | {e['proposed']} | {e.get('ok', 0)} | {e.get('failed', 0)} | "
                   f"{e.get('timeout', 0)} | {e.get('duplicate', 0)} | {e.get('rejected', 0)}"
                   f" | {_num(e.get('bandit_pulls'))} | {_num(e.get('improvement_rate'))} |")
    if info["models"]:
        out += ["", "## Models", "", "| model | prompt tokens | completion tokens | cost $ |",
                "| --- | --- | --- | --- |"]
        for model, e in info["models"].items():
            out.append(f"| {model} | {int(e['prompt_tokens'])} | "
                       f"{int(e['completion_tokens'])} | {_num(e['cost'])} |")
    out += ["", "## Lineage of the best program", ""]
    if best is None:
        out.append("No successful candidate yet.")
    else:
        out += ["| step | candidate | operator | score | change |",
                "| --- | --- | --- | --- | --- |"]
        for i, step in enumerate(facts.lineage(storage, best)):
            change = "-" if step.change is None else f"{step.change:+.6g}"
            out.append(f"| {i} | {step.id} | {step.operator} | {_num(step.score)} | {change} |")
        fence = "```"
        while fence in best.code:  # a fence the program cannot close
            fence += "`"
        out += ["", f"## Best program (candidate {best.id}, score {_num(best.score)})", "",
                f"{fence}python", best.code.rstrip("\n"), fence]
    return "\n".join(out) + "\n"


def write_report(storage: Storage, run: RunRecord, out_dir: Path) -> list[Path]:
    """Write ``report.md``, ``status.json`` and the PNG plots of ``run`` into ``out_dir``.

    Args:
        storage: the storage the run is in (read only).
        run: the run.
        out_dir: created if missing; existing report files are replaced.

    Returns:
        The files written.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    info = facts.status_of(storage, run)
    written: list[Path] = []
    plot_scores(storage, run, info, out_dir / "score.png")
    plots = ["score.png"]
    archive_note = plot_archive(storage, run, out_dir / "archive.png")
    if archive_note is None:
        plots.append("archive.png")
    if info["operators"]:
        plot_operators(info, out_dir / "operators.png")
        plots.append("operators.png")
    written += [out_dir / p for p in plots]
    (out_dir / "status.json").write_text(json.dumps(info, indent=2) + "\n")
    (out_dir / "report.md").write_text(_markdown(storage, run, info, plots, archive_note))
    written += [out_dir / "status.json", out_dir / "report.md"]
    return written
