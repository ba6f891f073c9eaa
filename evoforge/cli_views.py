"""``evoforge dashboard`` and ``evoforge report``: views of the runs in a storage."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from evoforge.cli import (
    DEFAULT_URL,
    CLIError,
    RunNameOpt,
    StorageOpt,
    _find_run,
    _open,
    app,
    console,
)


@app.command()
def dashboard(
    storage: StorageOpt = DEFAULT_URL,
    host: Annotated[str, typer.Option(help="Address to bind; only this machine by default.")]
    = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8765,
) -> None:
    """Serve a live, read-only web dashboard of the runs in a storage."""
    try:
        import uvicorn

        from evoforge.dashboard.app import create_app
    except ImportError as exc:
        raise CLIError(f"the dashboard needs its extra: pip install 'evoforge[dashboard]' "
                       f"({exc.name} is missing)") from None
    import socket

    web = create_app(storage)
    try:  # bind here so that a taken port or a bad host is one line, not uvicorn's log
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        raise CLIError(f"cannot serve on {host}:{port}: {exc.strerror or exc}") from None
    console.print(f"evoforge dashboard on http://{host}:{port}/ (Ctrl-C stops it)")
    uvicorn.Server(uvicorn.Config(web, log_level="warning")).run(sockets=[sock])


@app.command()
def report(
    out: Annotated[Path, typer.Option("--out", help="Folder for report.md and the plots.")],
    run_name: RunNameOpt = None,
    storage: StorageOpt = DEFAULT_URL,
) -> None:
    """Write report.md and PNG plots (score, archive, operators) of a run."""
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        raise CLIError("the report needs matplotlib: pip install 'evoforge[report]'")
    from evoforge.report.writer import write_report

    store = _open(storage, read_only=True)
    record = _find_run(store, run_name)
    try:
        written = write_report(store, record, out)
    except OSError as exc:
        raise CLIError(f"cannot write the report to {out}: {exc.strerror or exc}") from None
    console.print(f"report of run [bold]{escape(record.name)}[/] in {out}: "
                  + ", ".join(p.name for p in written))
