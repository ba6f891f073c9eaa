"""The dashboard's HTTP API and pages, over real HTTP, against a database a real run wrote."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest


@pytest.fixture(scope="module")
def base(finished_run: Path, helpers: Any) -> Iterator[str]:
    """One dashboard over the finished run for the whole module."""
    with helpers.serve(str(finished_run)) as url:
        yield url


def test_pages_and_json_agree_with_status(finished_run: Path, helpers: Any) -> None:
    status = helpers.status_json(finished_run, "done")
    with helpers.serve(str(finished_run)) as base:
        runs = httpx.get(f"{base}/api/runs").json()
        assert [r["run"] for r in runs] == ["done"]
        run_id = runs[0]["id"]
        info = httpx.get(f"{base}/api/runs/{run_id}").json()
        for key, value in status.items():
            assert info[key] == value, key
        home = httpx.get(f"{base}/")
        assert home.status_code == 200 and f'href="/runs/{run_id}"' in home.text
        page = httpx.get(f"{base}/runs/{run_id}")
        assert page.status_code == 200
        assert f'<span id="evaluated">{status["evaluated"]}</span>' in page.text
        # the lineage ends at the best candidate and starts at the initial program
        lineage = info["lineage"]
        assert lineage[0]["operator"] == "initial" and lineage[-1]["id"] == status["best_id"]
        assert lineage[-1]["score"] == status["best_score"]
        # every finished candidate is a point; evaluation numbers end at the count
        points = httpx.get(f"{base}/api/runs/{run_id}/points").json()["points"]
        assert len(points) == sum(status[k] for k in ("evaluated", "duplicates", "rejected"))
        assert points[-1]["evaluation"] == status["evaluated"]
        later = httpx.get(f"{base}/api/runs/{run_id}/points",
                          params={"after": points[9]["seq"]}).json()["points"]
        assert later == points[10:]
        # the MAP-Elites grids and the stats are on the page
        fragment = httpx.get(f"{base}/fragments/runs/{run_id}").text
        assert 'table class="heat"' in fragment and 'id="operators"' in fragment


def test_candidate_page_escapes_code_and_output(finished_run: Path, helpers: Any,
                                                base: str) -> None:
    status = helpers.status_json(finished_run, "done")
    page = httpx.get(f"{base}/candidates/{status['best_id']}")
    assert page.status_code == 200
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text  # the stdout, as text
    assert 'id="diff"' in page.text  # the best is not the initial program
    data = httpx.get(f"{base}/api/candidates/{status['best_id']}").json()
    assert data["artifacts"]["stdout"] == "<script>alert(1)</script>\n"


@pytest.mark.parametrize("path", [
    "/runs/999", "/runs/abc", "/runs/-1", "/candidates/999999", "/candidates/1e3",
    "/api/runs/999", "/api/runs/1/points?after=x", "/api/candidates/0",
    "/static/../app.py", "/static/%2e%2e/app.py", "/static/..%2fapp.py",
    "/fragments/runs/999", "/etc/passwd", "/docs", "/openapi.json",
])
def test_unknown_ids_and_path_tricks_are_404(base: str, path: str) -> None:
    assert httpx.get(base + path).status_code == 404


@pytest.mark.parametrize(("path", "detail"), [
    ("/runs/999", "no such run"), ("/candidates/999999", "no such candidate"),
    ("/runs/abc", "not found"), ("/no/such/page", "Not Found"),
])
def test_a_page_that_is_not_there_is_a_page(base: str, path: str, detail: str) -> None:
    page = httpx.get(base + path)
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert detail in page.text and 'href="/"' in page.text


@pytest.mark.parametrize("path", ["/api/runs/999", "/api/candidates/0", "/fragments/runs/999"])
def test_an_unknown_id_in_the_api_is_json(base: str, path: str) -> None:
    answer = httpx.get(base + path)
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/json"
    assert answer.json()["detail"] in ("no such run", "no such candidate", "not found")


def test_no_endpoint_writes(finished_run: Path, helpers: Any) -> None:
    before = finished_run.read_bytes()
    with helpers.serve(str(finished_run)) as base:
        for path in ("/", "/api/runs", "/runs/1", "/candidates/1"):
            for method in ("POST", "PUT", "DELETE", "PATCH"):
                assert httpx.request(method, base + path).status_code == 405
        for path in ("/", "/api/runs", "/runs/1", "/candidates/2", "/api/runs/1/points"):
            assert httpx.get(base + path).status_code == 200
    # the connection itself refuses writes
    from evoforge.storage import open_storage

    store = open_storage(str(finished_run), read_only=True)
    with pytest.raises(Exception, match="readonly"):
        store.update_run(1, status="tampered")
    store.close()
    with sqlite3.connect(finished_run) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert finished_run.read_bytes() == before


def test_dashboard_command_serves_a_run(finished_run: Path, helpers: Any) -> None:
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    proc = subprocess.Popen([sys.executable, "-m", "evoforge", "dashboard", "--storage",
                             str(finished_run), "--port", str(port)],
                            text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                home = httpx.get(f"http://127.0.0.1:{port}/")
                break
            except httpx.ConnectError:
                assert proc.poll() is None, proc.communicate()[1]
                assert time.monotonic() < deadline, "evoforge dashboard did not start"
                time.sleep(0.2)
        assert home.status_code == 200 and "done" in home.text
        assert httpx.get(f"http://127.0.0.1:{port}/runs/1").status_code == 200
        taken = helpers.evoforge("dashboard", "--storage", str(finished_run), "--port",
                                 str(port), cwd=finished_run.parent)
        assert taken.returncode == 2
        assert taken.stderr == f"error: cannot serve on 127.0.0.1:{port}: Address already in use\n"
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=30)


def test_bad_storage_is_one_line(tmp_path: Path, helpers: Any) -> None:
    proc = helpers.evoforge("dashboard", "--storage", str(tmp_path / "missing.db"),
                            cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"error: no SQLite database at {tmp_path / 'missing.db'}"
    assert not (tmp_path / "missing.db").exists()


@pytest.mark.skipif(not os.environ.get("EVOFORGE_TEST_POSTGRES"),
                    reason="EVOFORGE_TEST_POSTGRES is not set")
def test_postgresql_storage_read_only(html_problem: Path, tmp_path: Path, helpers: Any) -> None:
    import uuid

    import sqlalchemy as sa

    from evoforge.storage import open_storage
    from evoforge.storage.sql import normalize_url

    url = os.environ["EVOFORGE_TEST_POSTGRES"]
    name = f"test-dash-{uuid.uuid4().hex[:12]}"
    proc = helpers.evoforge("run", str(html_problem), "--budget", "8", "--workers", "1",
                            "--storage", url, "--run-name", name, cwd=tmp_path)
    try:
        assert proc.returncode == 0, proc.stderr
        status = json.loads(helpers.evoforge("status", "--json", "--storage", url,
                                             "--run-name", name, cwd=tmp_path).stdout)
        store = open_storage(url, read_only=True)
        run = store.get_run(name)
        assert run is not None
        with pytest.raises(Exception, match="read-only"):
            store.update_run(run.id, status="tampered")
        store.close()
        with helpers.serve(url) as base:
            info = httpx.get(f"{base}/api/runs/{run.id}").json()
            assert {k: info[k] for k in status} == status
            assert httpx.get(f"{base}/runs/{run.id}").status_code == 200
            assert httpx.get(f"{base}/candidates/{status['best_id']}").status_code == 200
    finally:
        engine = sa.create_engine(normalize_url(url))
        with engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM candidates WHERE run_id IN "
                                 "(SELECT id FROM runs WHERE name = :n)"), {"n": name})
            conn.execute(sa.text("DELETE FROM runs WHERE name = :n"), {"n": name})
        engine.dispose()


def test_cascade_stages_and_functional_hashing_are_shown(tmp_path: Path, helpers: Any) -> None:
    problem = Path(__file__).resolve().parents[1] / "fixtures" / "problems" / "cascade_probe"
    db = tmp_path / "cascade.db"
    proc = helpers.evoforge("run", str(problem), "--budget", "8", "--workers", "1",
                            "--seed", "1", "--storage", str(db), "--run-name", "cascade",
                            cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    status = helpers.status_json(db, "cascade")
    assert status["functional_hashing"]["probed"] > 0
    with helpers.serve(str(db)) as base:
        page = httpx.get(f"{base}/candidates/{status['best_id']}").text
        stages = page[page.index('id="stages"'):page.index("</table>", page.index('id="stages"'))]
        assert stages.count("<tr>") == 3  # the header and two stages
        assert "stage1 = 1.000000" in stages and "stage2 = 1.000000" in stages
        fragment = httpx.get(f"{base}/fragments/runs/1").text
        fh = status["functional_hashing"]
        assert f"{fh['hits']} of {fh['probed']} probed candidates" in fragment


def test_odd_metrics_and_names_are_served(tmp_path: Path, helpers: Any) -> None:
    from evoforge.candidate import Status
    from evoforge.storage import SQLStorage

    db = tmp_path / "odd.db"
    store = SQLStorage(str(db))
    run = store.create_run(name="<b>odd</b>", problem="<i>p</i>", problem_path="/p",
                           config={}, seed=1, budget=2)
    first = store.add_candidate(run.id, seq=0, island=0, parent_ids=[], operator="initial",
                                code="x = 1\n", code_hash="a", status=Status.PENDING)
    store.finish_candidate(first, status=Status.OK, score=1.0, fitness=1.0,
                           metrics={"combined_score": 1.0, "nan": float("nan"),
                                    "inf": float("inf")})
    store.close()
    with helpers.serve(str(db)) as base:
        data = httpx.get(f"{base}/api/candidates/{first}").json()
        assert data["metrics"] == {"combined_score": 1.0, "nan": None, "inf": None}
        page = httpx.get(f"{base}/candidates/{first}")
        assert page.status_code == 200 and ">nan<" in page.text and ">inf<" in page.text
        home = httpx.get(f"{base}/").text
        assert "&lt;b&gt;odd&lt;/b&gt;" in home and "<b>odd</b>" not in home
        assert httpx.get(f"{base}/runs/{run.id}").status_code == 200


def test_model_statistics_of_an_llm_run(html_problem: Path, tmp_path: Path,
                                        helpers: Any) -> None:
    from evoforge.testing import FakeLLMServer, Reply

    better = Reply.diff("    y = 1.0 * x + 0.5", "    y = 0.3 * x * x - 2 * x + 1")
    db = tmp_path / "llm.db"
    # every proposal from the model: with the model-free operators mixed in, a short run
    # may draw none of the model's arms (they answer at once, ahead of the model)
    config = tmp_path / "config.yaml"
    config.write_text(helpers.CONFIG + "llm: {mutation_operators: false}\n")
    with FakeLLMServer([better], default=Reply.garbage()) as server:
        proc = helpers.evoforge("run", str(html_problem), "--budget", "4", "--workers", "1",
                                "--storage", str(db), "--run-name", "llm",
                                "--config", str(config),
                                "--llm", f"{server.base_url}:fake-model", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    status = helpers.status_json(db, "llm")
    assert status["models"], status
    with helpers.serve(str(db)) as base:
        info = httpx.get(f"{base}/api/runs/1").json()
        assert info["models"] == status["models"]
        fragment = httpx.get(f"{base}/fragments/runs/1").text
        table = fragment[fragment.index('id="models"'):]
        table = table[:table.index("</table>")]
        for name, entry in status["models"].items():
            assert name in table
            tokens = f"{int(entry['prompt_tokens'])} / {int(entry['completion_tokens'])}"
            assert tokens in table
        with sqlite3.connect(db) as conn:
            cid, model = conn.execute("SELECT id, model FROM candidates WHERE model IS NOT "
                                      "NULL ORDER BY id LIMIT 1").fetchone()
        page = httpx.get(f"{base}/candidates/{cid}").text
        assert f"model {model}" in page
