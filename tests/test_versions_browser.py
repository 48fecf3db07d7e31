"""In headless Chromium: bulk-accept a page and undo it on the Script page; on the Models page see version 0
(the shipped model), a candidate a retrain left because a version was pinned, and the pinned version."""

from __future__ import annotations

import sqlite3

import pytest

from browser_support import App, _goto, _idle, _nav, _sample_pdf, _screenshot, require_browser

pytestmark = [pytest.mark.slow, pytest.mark.browser]
require_browser()  # skips this module without Chromium or Playwright


def _accepted(db_path) -> int:
    conn = sqlite3.connect(db_path)
    try:
        return conn.execute(
            """SELECT COUNT(*) FROM label_events e WHERE e.source = 'accepted' AND e.action = 'set'
                 AND NOT EXISTS (SELECT 1 FROM label_events u WHERE u.undoes_event_id = e.event_id)""").fetchone()[0]
    finally:
        conn.close()


def _pick(page, picker, option: str) -> None:
    """Choose an option of a select box. The Models page polls its training runs every 2 s, and a poll
    can close an open dropdown: open it again until the option is there."""
    for _ in range(10):
        _idle(page)
        picker.click()
        try:
            page.get_by_role("option", name=option).click(timeout=2_000)
            return
        except Exception:  # playwright's TimeoutError: the poll closed it
            page.keyboard.press("Escape")
    raise AssertionError(f"could not pick {option!r}")


@pytest.fixture
def versioned(tmp_path, db_path):
    """The sample with three real retrains: v1, v2 promoted; rolled back to v1 (pinned); v3 a candidate."""
    from labeling.ingest.pipeline import ingest_path
    from labeling.training.lines import train_line_version
    from labeling.training.runs import make_current
    from store import labels as label_store
    from store.db import open_db
    from app_builders import sample_gold_lines

    db = open_db(db_path)
    script_id = ingest_path(db, _sample_pdf(tmp_path)).script_id
    gold = sample_gold_lines(db, script_id)
    for start in range(3):
        for row in gold.iloc[start:600:30].itertuples():
            label_store.add_label(db, int(row.line_id), row.gold, annotator="ana")
        version, _, metrics = train_line_version(db)
        if start == 1:
            make_current(db, 1, by="lead")
    assert metrics["promotion"]["decision"] == "candidate" and version == 3
    db.close()
    app = App(db_path, tmp_path / "streamlit.log")
    yield app, script_id
    app.stop()


def test_bulk_accept_a_page_undo_it_and_see_version_0_a_candidate_and_a_pinned_version(browser, versioned, db_path):
    app, script_id = versioned
    page = browser.new_page(viewport={"width": 1500, "height": 1100})
    _goto(page, app, query=f"annotator=ana&script={script_id}")
    _nav(page, "Script")
    box = page.locator(".st-key-accept_box")
    box.get_by_text("one page", exact=True).click()
    _idle(page)
    box.get_by_test_id("stSelectbox").click()
    page.get_by_role("option", name="2", exact=True).click()
    _idle(page)
    summary = box.get_by_text("on page 2 · expected errors")
    summary.wait_for(timeout=30_000)
    text = summary.inner_text()
    lines = int(text.split(" lines")[0].split()[-1])
    assert lines > 0 and "suggestions of v1" in text, text
    _screenshot(page, "bulk-accept-preview")
    box.get_by_role("button", name=f"Accept {lines} suggestions").click()
    page.get_by_text(f"Accepted {lines} suggestions of v1 as one batch").wait_for(timeout=30_000)
    assert _accepted(db_path) == lines
    _screenshot(page, "bulk-accept-done")
    box.get_by_role("button", name="Undo").click()
    page.get_by_text(f"Took back the batch of {lines} accepted suggestions").wait_for(timeout=30_000)
    assert _accepted(db_path) == 0
    box.get_by_text(f"{lines} lines").first.wait_for(timeout=30_000)  # the page can be accepted again

    _nav(page, "Models")
    page.get_by_text("v1 is pinned as the current line model").wait_for(timeout=30_000)
    page.get_by_text("The shipped model learned from").wait_for()  # its one description
    shown = page.get_by_text("v3 · candidate")  # the newest version, shown first, with why it is not current
    shown.wait_for()
    assert "v1 was pinned as current, so this one waits as a candidate" in shown.inner_text()
    _screenshot(page, "models-candidate")
    picker = page.get_by_test_id("stSelectbox").filter(has=page.get_by_text("Version", exact=True))
    _pick(page, picker, "v1 (lines · current)")
    page.get_by_text("v1 · current · pinned").wait_for(timeout=30_000)
    _pick(page, picker, "v0 (lines · previous)")
    base = page.get_by_text("v0 · previous")
    base.wait_for(timeout=30_000)
    assert "the model scriptlabel ships with" in base.inner_text()
    _screenshot(page, "models-version-0")
    _nav(page, "Label")  # the labeling view says which version suggests, and that it is pinned
    page.get_by_text("model v1 · pinned").wait_for(timeout=30_000)
    page.close()
