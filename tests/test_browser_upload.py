"""Uploading through the Scripts page in headless Chromium: several files chosen at once are each sent to
the app's streaming upload route with their own progress row, ingested in the background and reported;
a file over the page limit gets the server's one-line message in its row and nothing is stored."""

from __future__ import annotations

import pytest

from browser_support import App, _goto, _query, _screenshot, require_browser
from conftest import make_text_pdf

pytestmark = [pytest.mark.slow, pytest.mark.browser]
require_browser()  # skips this module without Chromium or Playwright


def test_several_files_chosen_at_once_stream_ingest_and_a_refused_one_says_why(browser, tmp_path, db_path):
    app = App(db_path, tmp_path / "streamlit.log", env={"SCRIPTLABEL_MAX_PAGES": "3"})
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        _goto(page, app, "scripts")
        pier = tmp_path / "pier.txt"
        pier.write_text("EXT. PIER - NIGHT\n\nGulls circle the lamp.\n\n          MARGO\n     Who's there?\n")
        long_pdf = make_text_pdf(tmp_path / "long.pdf", pages=4)
        page.locator('input[type="file"]').set_input_files(
            [str(make_text_pdf(tmp_path / "lighthouse.pdf", pages=2)), str(pier), str(long_pdf)])
        rows = page.locator(".sl-up-list li")
        rows.filter(has_text="long.pdf").filter(has_text="4 pages is over the limit of 3").wait_for(timeout=60_000)
        for name in ("lighthouse.pdf", "pier.txt"):
            rows.filter(has_text=name).filter(has_text="sent").wait_for(timeout=60_000)
        page.get_by_text("stored as").first.wait_for(timeout=120_000)
        _screenshot(page, "upload-streamed")
        for _ in range(600):
            if len(_query(db_path, "SELECT 1 FROM ingest_jobs WHERE status = 'done'")) == 2:
                break
            page.wait_for_timeout(200)
        assert sorted(r[0] for r in _query(db_path, "SELECT file_name FROM ingest_jobs")) == ["lighthouse.pdf", "pier.txt"]
        assert sorted(r[0] for r in _query(db_path, "SELECT title FROM scripts")) == ["Lighthouse", "Pier"]
        assert rows.filter(has_text="long.pdf").get_attribute("data-kind") == "error"
        # each finished upload is reported by the page with a way to label it
        for report in ("lighthouse.pdf: stored as", "pier.txt: stored as"):
            page.get_by_text(report).wait_for(timeout=60_000)
        assert page.get_by_role("link", name="Label it").count() == 2
    finally:
        app.stop()
