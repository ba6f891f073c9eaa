"""The dashboard in a real browser (Debian's Chromium, headless, through Playwright).

A real run goes on in the background while the run page is open: the page must
show the evaluation count and the best score grow without a reload.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

from playwright.sync_api import Dialog, Page, expect


def _wait_for_evaluations(db: Path, helpers: Any, name: str, at_least: int,
                          timeout: float = 60) -> dict:  # type: ignore[type-arg]
    import sqlite3

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if db.exists():
            try:
                with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
                    n = conn.execute("SELECT count(*) FROM candidates WHERE status IN "
                                     "('ok', 'failed', 'timeout')").fetchone()[0]
                if n >= at_least:
                    return {"evaluated": n}
            except sqlite3.OperationalError:
                pass  # the run is still creating its tables
        time.sleep(0.2)
    raise AssertionError(f"run {name} did not reach {at_least} evaluations")


def test_run_page_updates_live(page: Page, slow_html_problem: Path, tmp_path: Path,
                               helpers: Any) -> None:
    db = tmp_path / "live.db"
    proc = helpers.start_run(slow_html_problem, db, "live", budget=80)
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    try:
        _wait_for_evaluations(db, helpers, "live", 1)
        with helpers.serve(str(db)) as base:
            page.goto(f"{base}/")
            expect(page.locator("#runs-table")).to_contain_text("live")
            page.click("text=live")
            expect(page.locator("#run-status")).to_have_text("running", timeout=20_000)
            first_count = int(page.locator("#evaluated").inner_text())
            first_best = page.locator("#best-score").inner_text()
            count_points = ("Chart.getChart('score-chart').data.datasets"
                            ".reduce((n, d) => n + d.data.length, 0)")
            # #run-status is in the served HTML; the chart's scripts load after it
            page.wait_for_function("() => typeof Chart !== 'undefined'"
                                   " && Chart.getChart('score-chart') !== undefined",
                                   timeout=20_000)
            first_points = page.evaluate(count_points)
            page.screenshot(path=tmp_path / "run-early.png", full_page=True)
            # the same page, never reloaded: a marker set now must survive
            page.evaluate("window.__not_reloaded = true")
            deadline = time.monotonic() + 45
            while time.monotonic() < deadline:
                count = int(page.locator("#evaluated").inner_text())
                best = page.locator("#best-score").inner_text()
                points = page.evaluate(count_points)
                if count >= first_count + 5 and best != first_best and points > first_points:
                    break
                page.wait_for_timeout(500)
            assert count >= first_count + 5, (first_count, count)
            assert float(best) > float(first_best), (first_best, best)
            assert points > first_points, (first_points, points)
            assert page.evaluate("window.__not_reloaded") is True
            page.screenshot(path=tmp_path / "run-later.png", full_page=True)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=60)
    assert not dialogs


def test_best_candidate_shows_its_diff_and_output_as_text(
        page: Page, finished_run: Path, tmp_path: Path, helpers: Any) -> None:
    status = helpers.status_json(finished_run, "done")
    dialogs: list[Dialog] = []
    page.on("dialog", lambda d: (dialogs.append(d), d.dismiss()))
    with helpers.serve(str(finished_run)) as base:
        page.goto(f"{base}/runs/1")
        page.click("#best-link")
        expect(page).to_have_url(f"{base}/candidates/{status['best_id']}")
        diff = page.locator("#diff")
        expect(diff).to_contain_text(f"+++ candidate {status['best_id']}")
        expect(diff).to_contain_text("def f(x):")
        # the captured stdout holds a script tag: shown as text, never run
        expect(page.locator("pre.artifact").first).to_have_text("<script>alert(1)</script>\n")
        expect(page.locator("#code")).to_contain_text("<script>alert(1)</script>")
        assert page.locator("script", has_text="alert(1)").count() == 0
        page.screenshot(path=tmp_path / "candidate.png", full_page=True)
        # parents are links to their own pages
        page.locator("a.parent").first.click()
        expect(page.locator("#cand-status")).to_have_text("ok")
    assert not dialogs
