"""The dashboard's web application: read-only pages and JSON over one storage URL.

Every route is a GET that reads the storage through a read-only connection
(:class:`~evoforge.storage.SQLStorage` with ``read_only=True``): nothing here
writes the database or runs candidate code. Pages are rendered server-side with
Jinja2's autoescaping and Pygments (which escapes what it highlights), so
candidate text always shows as text. Live parts of a page poll a fragment or a
JSON endpoint every few seconds.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import DiffLexer, PythonLexer
from starlette.exceptions import HTTPException as StarletteHTTPException

from evoforge.candidate import Candidate
from evoforge.report import facts
from evoforge.storage import RunRecord, Storage, open_storage

HERE = Path(__file__).resolve().parent
POLL_MS = 2000
_FORMATTER = HtmlFormatter(cssclass="hl", linenos="table")
_DIFF_FORMATTER = HtmlFormatter(cssclass="hl")


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}" if math.isfinite(value) else str(value)
    return str(value)


def _ago(ts: float | None) -> str:
    if not ts:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def _colour(value: float | None, lo: float, hi: float) -> str:
    """Viridis colour of ``value`` on ``[lo, hi]`` (matplotlib's colour map)."""
    if value is None:
        return "transparent"
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    t = 0.5 if hi <= lo else (value - lo) / (hi - lo)
    return str(to_hex(colormaps["viridis"](min(max(t, 0.0), 1.0))))


def _json_safe(value: Any) -> Any:
    """``value`` with NaN and infinities as None: JSON has no such numbers, and a
    candidate's metrics may hold them."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def _int_id(text: str) -> int:
    """A path id: digits only, else 404 (never a validation error that echoes input)."""
    if not text.isdigit() or len(text) > 18:
        raise HTTPException(status_code=404, detail="not found")
    return int(text)


def create_app(url: str) -> FastAPI:
    """The dashboard application over the storage at ``url`` (opened read-only).

    Args:
        url: SQLAlchemy URL or SQLite file path of the storage the runs write.

    Raises:
        StorageError: when the storage cannot be opened.
    """
    storage: Storage = open_storage(url, read_only=True)
    env = Environment(loader=FileSystemLoader(HERE / "templates"),
                      autoescape=select_autoescape(["html"]))
    env.globals.update(fmt=_fmt, when=_ago, poll_ms=POLL_MS)
    templates = Jinja2Templates(env=env)
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        storage.close()

    app = FastAPI(title="evoforge dashboard", docs_url=None, redoc_url=None,
                  openapi_url=None, lifespan=lifespan)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    def not_found(request: Request, detail: str) -> Response:
        # a page where a browser goes (a stale link, a typed address), JSON for the rest
        if request.url.path.startswith(("/api/", "/fragments/", "/static/")):
            return JSONResponse({"detail": detail}, status_code=404)
        return templates.TemplateResponse(request, "not_found.html", {"detail": detail},
                                          status_code=404)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, _exc: RequestValidationError) -> Response:
        return not_found(request, "not found")

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            return not_found(request, str(exc.detail))
        return await http_exception_handler(request, exc)

    grid_cache: dict[int, tuple[tuple[Any, ...], tuple[list[facts.Grid], str | None]]] = {}

    def get_run(run_id: str) -> RunRecord:
        run = facts.run_by_id(storage, _int_id(run_id))
        if run is None:
            raise HTTPException(status_code=404, detail="no such run")
        return run

    def get_candidate(candidate_id: str) -> tuple[Candidate, int]:
        cid = _int_id(candidate_id)
        run_id = facts.run_of_candidate(storage, cid)
        if run_id is None:
            raise HTTPException(status_code=404, detail="no such candidate")
        return storage.get_candidate(cid), run_id

    def runs_rows() -> list[dict[str, Any]]:
        rows = []
        for run in reversed(storage.list_runs()):
            info = facts.status_of(storage, run)
            rows.append({**info, "id": run.id, "created_at": run.created_at,
                         "updated_at": run.updated_at, "live_rate": live_rate(run)})
        return rows

    def live_rate(run: RunRecord) -> float | None:
        return facts.recent_rate(storage, run.id) if run.status == "running" else None

    def run_context(run: RunRecord) -> dict[str, Any]:
        info = facts.status_of(storage, run)
        best = storage.best(run.id)
        steps = facts.lineage(storage, best) if best is not None else []
        # the grids change only with a new ok candidate: reuse them between polls
        key = (run.id, info["ok"], run.updated_at)
        cached = grid_cache.get(run.id)
        if cached is None or cached[0] != key:
            cached = (key, facts.archive_grids(storage, run))
            grid_cache[run.id] = cached
        grids, grid_note = cached[1]
        lo, hi = facts.colour_range(grids)
        colours = [[[_colour(v, lo, hi) for v in row] for row in g.cells] for g in grids]
        return {"run": run, "info": info, "lineage": steps, "grids": grids,
                "live_rate": live_rate(run),
                "grid_note": grid_note, "colours": colours, "grid_range": (lo, hi),
                "simplify": facts.simplification(storage, run.id)}

    @app.get("/", response_class=HTMLResponse)
    def runs_page(request: Request) -> Response:
        return templates.TemplateResponse(request, "runs.html", {"rows": runs_rows()})

    @app.get("/fragments/runs", response_class=HTMLResponse)
    def runs_fragment(request: Request) -> Response:
        return templates.TemplateResponse(request, "runs_table.html", {"rows": runs_rows()})

    @app.get("/api/runs")
    def runs_api() -> Any:
        return _json_safe(runs_rows())

    @app.get("/runs/{run_id}", response_class=HTMLResponse)
    def run_page(request: Request, run_id: str) -> Response:
        run = get_run(run_id)
        ctx = run_context(run)
        summary = run.summary or {}
        lines = {"initial": ctx["info"]["initial_score"]}
        for name, scores in (summary.get("baselines") or {}).items():
            lines[f"baseline {name}"] = (scores or {}).get("train")
        ctx["chart"] = {"points": f"/api/runs/{run.id}/points",
                        "lines": {k: v for k, v in lines.items() if v is not None},
                        "poll_ms": POLL_MS}
        return templates.TemplateResponse(request, "run.html", ctx)

    @app.get("/fragments/runs/{run_id}", response_class=HTMLResponse)
    def run_fragment(request: Request, run_id: str) -> Response:
        return templates.TemplateResponse(request, "run_live.html",
                                          run_context(get_run(run_id)))

    @app.get("/api/runs/{run_id}")
    def run_api(run_id: str) -> Any:
        run = get_run(run_id)
        info = facts.status_of(storage, run)
        best = storage.best(run.id)
        return _json_safe({
            **info, "id": run.id,
            "lineage": [s.__dict__ for s in facts.lineage(storage, best)] if best else [],
            "simplification": facts.simplification(storage, run.id)})

    @app.get("/api/runs/{run_id}/points")
    def points_api(run_id: str, after: int = -1) -> dict[str, Any]:
        return facts.score_points(storage, get_run(run_id).id, after_seq=after)

    @app.get("/candidates/{candidate_id}", response_class=HTMLResponse)
    def candidate_page(request: Request, candidate_id: str) -> Response:
        cand, run_id = get_candidate(candidate_id)
        run = facts.run_by_id(storage, run_id)
        parent, diff = facts.parent_diff(storage, cand)
        diff_html = None
        if diff is not None:
            diff_html = highlight(diff, DiffLexer(), _DIFF_FORMATTER) if diff else ""
        artifacts = {k: v if isinstance(v, str) else json.dumps(v, indent=2, default=str)
                     for k, v in (cand.artifacts or {}).items()}
        return templates.TemplateResponse(request, "candidate.html", {
            "cand": cand, "run": run, "parent": parent,
            "code_html": highlight(cand.code, PythonLexer(), _FORMATTER),
            "diff_html": diff_html, "artifacts": artifacts,
            "metrics": {k: json.dumps(v, default=str) if not isinstance(v, int | float | str)
                        else v for k, v in (cand.metrics or {}).items()},
            "children": facts.children(storage, run_id, cand.id),
            "pygments_css": _FORMATTER.get_style_defs(".hl"),
        })

    @app.get("/api/candidates/{candidate_id}")
    def candidate_api(candidate_id: str) -> Any:
        cand, run_id = get_candidate(candidate_id)
        out = dict(cand.__dict__)
        out["status"] = str(cand.status)
        out["run_id"] = run_id
        return _json_safe(out)

    return app


def serve(url: str, host: str = "127.0.0.1", port: int = 8765) -> None:
    """Serve the dashboard until interrupted."""
    import uvicorn

    uvicorn.run(create_app(url), host=host, port=port, log_level="warning")
