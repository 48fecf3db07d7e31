"""The Sequences page in headless Chromium: the sequence as a screenplay, similar sequences, rate by key, undo."""

from __future__ import annotations

import sqlite3
import time

import pytest

from conftest import make_text_pdf
from browser_support import App, _goto, _idle, _screenshot, require_browser

pytestmark = [pytest.mark.slow, pytest.mark.browser]
require_browser()


def _ratings(db_path) -> list[tuple]:
    conn = sqlite3.connect(db_path)
    try:
        return conn.execute("SELECT sequence_id, value, undoes_rating_id FROM sequence_ratings ORDER BY rating_id"
                            ).fetchall()
    finally:
        conn.close()


def _wait_for(predicate, what: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_sequences_page_shows_the_sequence_rates_and_undoes(browser, tmp_path, db_path):
    from labeling.ingest.pipeline import ingest_path
    from store.db import open_db

    db = open_db(db_path)
    ingest_path(db, make_text_pdf(tmp_path / "lighthouse.pdf", pages=2))
    db.close()
    app = App(db_path, tmp_path / "streamlit.log")
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1400})
        _goto(page, app, "sequences")
        code = page.get_by_test_id("stCode").first
        code.wait_for(timeout=60_000)
        assert "INT. LIGHTHOUSE KITCHEN - NIGHT" in code.inner_text()
        page.get_by_text("Sequences like this one").wait_for(timeout=30_000)
        page.get_by_role("img").first.wait_for(timeout=30_000)  # the page thumbnail
        _screenshot(page, "sequences-view")

        page.keyboard.press("3")
        _wait_for(lambda: len(_ratings(db_path)) == 1, "the rating to be stored")
        [(rated, value, _)] = _ratings(db_path)
        assert value == 3
        _idle(page)
        for _ in range(3):  # rating order: the three unrated sequences, then the rated one
            page.keyboard.press("ArrowRight")
            _idle(page)
        page.get_by_role("heading", name="sq0010").wait_for(timeout=30_000)
        page.get_by_role("button", name="Undo my overall rating").click()
        _wait_for(lambda: len(_ratings(db_path)) == 2, "the undo to be stored")
        assert _ratings(db_path)[1] == (rated, None, 1)
        _idle(page)
        assert page.get_by_role("button", name="Undo my overall rating").is_disabled()
    finally:
        app.stop()
