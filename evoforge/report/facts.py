"""What the dashboard and the report show about a run, read from storage only.

Every function here reads; none writes. The headline numbers come from
:func:`evoforge.cli.status_dict`, the function behind ``evoforge status --json``,
so that the dashboard, the report and ``status`` always agree.
"""

from __future__ import annotations

import difflib
import math
import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError

from evoforge.candidate import Candidate, Status
from evoforge.storage import RunRecord, SQLStorage, Storage, StorageError
from evoforge.storage.schema import candidates, programs, runs

EVALUATED = (Status.OK, Status.FAILED, Status.TIMEOUT)
# Proposals still waiting for their evaluation; points stop before the first one.
_OPEN = (Status.PENDING,)


def status_of(storage: Storage, run: RunRecord) -> dict[str, Any]:
    """The facts of ``evoforge status --json`` for ``run`` (the same function)."""
    from evoforge.cli import status_dict

    return status_dict(storage, run)


def recent_rate(storage: Storage, run_id: int, window: float = 60.0,
                now: float | None = None) -> float | None:
    """Evaluations per second over the last ``window`` seconds of finished evaluations.

    ``status`` knows a run's speed only once a session ends (its elapsed time is stored
    then); this is the speed of a run that is going on now. None when nothing finished
    in the window.
    """
    c = candidates.c
    now = time.time() if now is None else now
    with _engine(storage).connect() as conn:
        first, n = conn.execute(sa.select(sa.func.min(c.finished_at), sa.func.count()).where(
            c.run_id == run_id, c.finished_at >= now - window,
            c.status.in_([str(s) for s in EVALUATED]))).one()
    if not n or first is None:
        return None
    span = max(now - float(first), 1.0)
    return float(n) / span


def _engine(storage: Storage) -> sa.engine.Engine:
    if not isinstance(storage, SQLStorage):
        raise StorageError("the dashboard and the report need an SQL storage")
    return storage.engine


def run_by_id(storage: Storage, run_id: int) -> RunRecord | None:
    """The run with storage id ``run_id``, or None."""
    with _engine(storage).connect() as conn:
        name = conn.execute(sa.select(runs.c.name).where(runs.c.id == run_id)).scalar()
    return storage.get_run(name) if name is not None else None


def run_of_candidate(storage: Storage, candidate_id: int) -> int | None:
    """The id of the run a candidate belongs to, or None for an unknown candidate."""
    with _engine(storage).connect() as conn:
        value = conn.execute(sa.select(candidates.c.run_id)
                             .where(candidates.c.id == candidate_id)).scalar()
    return int(value) if value is not None else None


def score_points(storage: Storage, run_id: int, after_seq: int = -1,
                 limit: int = 5000) -> dict[str, Any]:
    """Finished candidates after proposal ``after_seq``, for the score chart.

    Points stop before the first candidate still pending, so that a client that
    asks again with ``after_seq`` = the returned ``last_seq`` misses none.

    Returns:
        ``{"points": [...], "last_seq": int}``; a point has ``id``, ``seq``,
        ``evaluation`` (the number of evaluations up to and including it),
        ``status``, ``score`` and ``fitness``.
    """
    c = candidates.c
    evaluated = [str(s) for s in EVALUATED]
    with _engine(storage).connect() as conn:
        before = conn.execute(sa.select(sa.func.count()).where(
            c.run_id == run_id, c.seq <= after_seq, c.status.in_(evaluated))).scalar() or 0
        rows = conn.execute(
            sa.select(c.id, c.seq, c.status, c.score, c.fitness)
            .where(c.run_id == run_id, c.seq > after_seq)
            .order_by(c.seq).limit(limit)).all()
    points: list[dict[str, Any]] = []
    count = int(before)
    last = after_seq
    for cid, seq, status, score, fitness in rows:
        if status in _OPEN:
            break
        if status in evaluated:
            count += 1
        points.append({"id": cid, "seq": seq, "evaluation": count, "status": status,
                       "score": _finite(score), "fitness": _finite(fitness)})
        last = seq
    return {"points": points, "last_seq": last}


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


@dataclass(frozen=True)
class LineageStep:
    """One program on the path from the initial program to the best one."""

    id: int
    seq: int
    operator: str
    status: str
    score: float | None
    change: float | None  # score minus the previous step's score


def lineage(storage: Storage, candidate: Candidate, max_steps: int = 10_000) -> list[LineageStep]:
    """The chain of first parents from the initial program down to ``candidate``."""
    chain: list[Candidate] = [candidate]
    seen = {candidate.id}
    while chain[-1].parent_ids and len(chain) < max_steps:
        parent_id = chain[-1].parent_ids[0]
        if parent_id in seen:  # a cycle would be a storage bug; stop rather than loop
            break
        seen.add(parent_id)
        try:
            chain.append(storage.get_candidate(parent_id))
        except StorageError:
            break
    chain.reverse()
    steps: list[LineageStep] = []
    previous: float | None = None
    for cand in chain:
        change = (cand.score - previous
                  if cand.score is not None and previous is not None else None)
        steps.append(LineageStep(cand.id, cand.seq, cand.operator, str(cand.status),
                                 cand.score, change))
        if cand.score is not None:
            previous = cand.score
    return steps


def parent_diff(storage: Storage, cand: Candidate) -> tuple[Candidate | None, str | None]:
    """A candidate's first parent (None if it has none or it is gone) and the unified
    diff from its code to the candidate's."""
    if not cand.parent_ids:
        return None, None
    try:
        parent = storage.get_candidate(cand.parent_ids[0])
    except StorageError:
        return None, None
    return parent, "".join(difflib.unified_diff(
        parent.code.splitlines(keepends=True), cand.code.splitlines(keepends=True),
        fromfile=f"candidate {parent.id}", tofile=f"candidate {cand.id}"))


def children(storage: Storage, run_id: int, candidate_id: int) -> list[dict[str, Any]]:
    """Candidates of the run that name ``candidate_id`` among their parents."""
    c = candidates.c
    out = []
    with _engine(storage).connect() as conn:
        rows = conn.execute(sa.select(c.id, c.seq, c.parent_ids, c.operator, c.status, c.score)
                            .where(c.run_id == run_id, c.seq > 0).order_by(c.seq)).all()
    for cid, seq, parents, operator, status, score in rows:
        if candidate_id in (parents or ()):
            out.append({"id": cid, "seq": seq, "operator": operator, "status": status,
                        "score": score})
    return out


@dataclass(frozen=True)
class Grid:
    """One island's MAP-Elites grid: best fitness per cell over two feature axes."""

    island: int
    x_name: str
    y_name: str
    x_bins: int
    y_bins: int
    cells: list[list[float | None]]  # cells[y][x], None where empty
    best: list[list[int | None]]  # candidate id of each cell's best
    placed: int


def archive_grids(storage: Storage, run: RunRecord) -> tuple[list[Grid], str | None]:
    """Per island, the best fitness reached in each cell of the first two feature axes.

    Cells are computed the way the archive places candidates (the run's feature
    space, fed the ok candidates in proposal order), so a cell shows the best that
    ever reached it on that island; evictions and migrations are not replayed.

    Returns:
        The grids, and a one-line reason when there are none.
    """
    from evoforge.archive.features import FeatureSpace
    from evoforge.config import ArchiveConfig

    raw = run.config.get("database") or run.config.get("archive")
    try:
        config = ArchiveConfig.model_validate(raw or {})
    except ValidationError:
        return [], "the run's archive configuration could not be read"
    dims = config.feature_dimensions
    if len(dims) < 2:
        return [], "the archive has fewer than two feature axes"
    c = candidates.c
    with _engine(storage).connect() as conn:
        # only the columns the grid needs: the page polls this every few seconds
        ok = conn.execute(sa.select(c.id, c.island, c.fitness, c.features).where(
            c.run_id == run.id, c.status == str(Status.OK)).order_by(c.seq)).all()
        # program text lives in the programs table, once per distinct text
        initial_code = conn.execute(sa.select(programs.c.code)
                                    .join(candidates, c.program_id == programs.c.id)
                                    .where(c.run_id == run.id)
                                    .order_by(c.seq).limit(1)).scalar()
    if not ok or initial_code is None:
        return [], "no successful candidate yet"
    try:
        space = FeatureSpace(config, initial_code)
    except Exception as exc:  # a user's feature definition; show why, never crash a page
        return [], f"feature space unavailable: {exc}"
    x_bins, y_bins = dims[0].bins, dims[1].bins
    grids = {i: Grid(i, dims[0].name, dims[1].name, x_bins, y_bins,
                     [[None] * x_bins for _ in range(y_bins)],
                     [[None] * x_bins for _ in range(y_bins)], 0)
             for i in range(config.num_islands)}
    placed = dict.fromkeys(grids, 0)
    for cid, island, fitness, features in ok:
        if fitness is None or not features or island not in grids:
            continue
        try:
            space.observe(features)
            cell = space.cell(features)
        except (KeyError, ValueError, TypeError):
            continue
        grid = grids[island]
        x, y = cell[0], cell[1]
        old = grid.cells[y][x]
        if old is None or fitness > old:
            grid.cells[y][x] = fitness
            grid.best[y][x] = cid
        placed[island] += 1
    out = [Grid(g.island, g.x_name, g.y_name, g.x_bins, g.y_bins, g.cells, g.best,
                placed[g.island]) for g in grids.values()]
    return out, None


def colour_range(grids: list[Grid]) -> tuple[float, float]:
    """Fitness range for heat-map colours: the 10th percentile to the maximum, so that
    one disastrous cell does not flatten every other; lower values take the lowest colour."""
    values = sorted(v for g in grids for row in g.cells for v in row if v is not None)
    if not values:
        return 0.0, 0.0
    return values[int(0.1 * (len(values) - 1))], values[-1]


def simplification(storage: Storage, run_id: int) -> dict[str, Any]:
    """Simplification passes: proposals, outcomes and code size of the ok ones."""
    c = candidates.c
    with _engine(storage).connect() as conn:
        code = programs.c.code
        rows = conn.execute(sa.select(c.status, c.parent_ids, code)
                            .join(programs, c.program_id == programs.c.id).where(
            c.run_id == run_id, c.operator == "simplify")).all()
        parent_ids = {int(p[0]) for _, p, _ in rows if p}
        parents = dict(conn.execute(sa.select(c.id, code)
                                    .join(programs, c.program_id == programs.c.id).where(
            c.id.in_(parent_ids))).all()) if parent_ids else {}
    by_status: dict[str, int] = {}
    saved: list[int] = []
    for status, parent, code in rows:
        by_status[status] = by_status.get(status, 0) + 1
        if status == Status.OK and parent and parent[0] in parents:
            saved.append(len(parents[parent[0]]) - len(code))
    return {"proposed": len(rows), **by_status,
            "chars_removed_mean": (sum(saved) / len(saved)) if saved else None}
