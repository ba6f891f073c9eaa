"""How the dashboard's pages scale with the size of a run, as ratios from one run.

A synthetic run of N candidates (realistic code size, 7 in 9 ok) is written to a
SQLite file; the dashboard serves it on 127.0.0.1 and each page is fetched once to
warm up and then timed (median of 3). Prints milliseconds per page at each size and
the ratio between the largest and the smallest size.

Run with ``.venv/bin/python bench/dashboard.py [N ...]`` (default 2000 20000).
"""

from __future__ import annotations

import random
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import uvicorn

from evoforge.dashboard.app import create_app
from evoforge.storage import SQLStorage

PAGES = ("/", "/fragments/runs/1", "/api/runs/1/points", "/candidates/{mid}")


def make_run(path: Path, n: int) -> None:
    """A stopped run of ``n`` candidates with features, parents and three operators."""
    storage = SQLStorage(str(path))
    run = storage.create_run(name="bench", problem="p", problem_path="/p",
                             config={"database": {"num_islands": 4}}, seed=1, budget=n)
    rng = random.Random(1)
    body = "def f(x):\n" + "    y = x * 1.0 + 0.5\n" * 40 + "    return y\n"
    now = time.time()
    rows = []
    for seq in range(n):
        status = rng.choice(["ok"] * 7 + ["failed", "duplicate"])
        fit = -rng.random() * 10 if status == "ok" else None
        rows.append({
            "run_id": run.id, "seq": seq, "island": seq % 4,
            "parent_ids": [max(1, seq - rng.randint(1, 50))] if seq else [],
            "operator": rng.choice(["a", "b", "c"]), "code": f"{body}# {seq}\n",
            "code_hash": str(seq), "status": status, "score": fit, "fitness": fit,
            "features": ({"code_size": 600 + rng.random() * 200, "diversity": rng.random()}
                         if status == "ok" else None),
            "created_at": now, "finished_at": now, "eval_seconds": 0.1})
    storage.import_candidates(run.id, rows)
    storage.update_run(run.id, status="stopped", elapsed_seconds=100.0)
    storage.close()


def time_pages(path: Path, n: int) -> dict[str, float]:
    """Median milliseconds of each page over the dashboard of ``path``."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(str(path)), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    out = {}
    client = httpx.Client(timeout=300)  # one client: its set-up is not the page's time
    try:
        for page in PAGES:
            url = f"http://127.0.0.1:{port}" + page.format(mid=n // 2)
            client.get(url).raise_for_status()
            times = []
            for _ in range(3):
                start = time.perf_counter()
                client.get(url)
                times.append(time.perf_counter() - start)
            out[page] = 1000 * statistics.median(times)
    finally:
        client.close()
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
    return out


def main() -> None:
    """Measure and print the table."""
    sizes = [int(a) for a in sys.argv[1:]] or [2000, 20000]
    results = {}
    with tempfile.TemporaryDirectory(prefix="evoforge-bench-dash-") as tmp:
        for n in sizes:
            path = Path(tmp) / f"run{n}.db"
            make_run(path, n)
            results[n] = time_pages(path, n)
    lo, hi = min(sizes), max(sizes)
    print(f"{'page':28}" + "".join(f"{f'{n} cand. ms':>16}" for n in sizes)
          + f"{f'ratio {hi}/{lo}':>18}")
    for page in PAGES:
        print(f"{page:28}" + "".join(f"{results[n][page]:16.0f}" for n in sizes)
              + f"{results[hi][page] / results[lo][page]:18.1f}")


if __name__ == "__main__":
    main()
