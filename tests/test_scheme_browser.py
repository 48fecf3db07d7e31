"""A lead merges and adds classes on the Scheme page; the Label page then offers the scheme's keys, and a new
class's key labels the line on screen with that class (read back from SQLite) — in headless Chromium."""

from __future__ import annotations

import sqlite3

import pytest

from browser_support import App, _goto, _screenshot, _wait_for_line, _wait_saved, require_browser
from conftest import make_text_pdf

pytestmark = [pytest.mark.slow, pytest.mark.browser]
require_browser()


@pytest.fixture
def served(tmp_path, db_path):
    from labeling.ingest.pipeline import ingest_path
    from store.db import open_db

    db = open_db(db_path)
    script_id = ingest_path(db, make_text_pdf(tmp_path / "lighthouse.pdf", pages=2)).script_id
    db.close()
    app = App(db_path, tmp_path / "streamlit.log")
    yield app, script_id
    app.stop()


def _stored(db_path) -> list[tuple[int, str, str]]:
    conn = sqlite3.connect(db_path)
    try:
        return conn.execute("SELECT e.line_id, e.label, l.text FROM label_events e JOIN lines l USING (line_id) "
                            "WHERE e.action = 'set' AND e.source = 'human' ORDER BY e.event_id").fetchall()
    finally:
        conn.close()


def _shown(page) -> tuple[int, str]:
    state = _wait_for_line(page)
    return state["line_id"], page.locator('[data-role="text"]').inner_text()


def test_a_lead_merges_and_adds_classes_and_the_new_key_labels_the_line_on_screen(browser, served, db_path):
    app, script_id = served
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    _goto(page, app, "scheme", "annotator=lea")
    # merge: the study's seed scheme folds seven labels into S/C/D/O
    page.get_by_role("button", name="Use the seed scheme (S/C/D/O)").click()
    page.get_by_text("Switched to the seed scheme.").wait_for(timeout=30_000)
    # add: a class of the project's own, with its key
    page.get_by_label("Name", exact=True).fill("shot")
    page.get_by_label("Key", exact=True).fill("k")
    page.get_by_label("Display name (optional)", exact=True).fill("shot line")
    page.get_by_role("button", name="Add class").click()
    page.get_by_text("Added class shot.").wait_for(timeout=30_000)
    # a rule for the first class (S): scene headings by pattern
    page.get_by_label("Pattern", exact=True).fill(r"^INT\.")
    page.get_by_role("button", name="Add rule").click()
    page.get_by_text("Added a rule for S.").wait_for(timeout=30_000)
    _screenshot(page, "scheme-page")

    _goto(page, app, "label", f"annotator=lea&script={script_id}&order=script")
    keys = page.locator('[data-role="keys"] .sl-key')
    titles = [t.strip() for t in keys.all_inner_texts()]
    assert titles[:5] == ["ascene/description", "ccharacter", "ddialog", "oother", "kshot line"], titles
    # the first line in reading order is the heading the rule matches: its suggestion, with its record
    assert page.locator('[data-role="suggest"]').inner_text() == (
        "Rule suggests: scene/description · rule #1, no labeled line to check it on yet — Enter accepts")
    # the help overlay lists the scheme's keys
    page.keyboard.press("?")
    help_text = page.locator('[data-role="help-keys"]').inner_text()
    assert "label as shot line" in help_text and "label as scene/description" in help_text
    assert "label as parenthetical" not in help_text
    page.keyboard.press("Escape")

    first_id, first_text = _shown(page)
    page.keyboard.press("k")  # the new class
    second_id, second_text = _shown(page)
    assert second_id != first_id
    page.keyboard.press("d")  # a merged class
    _wait_saved(page)
    _screenshot(page, "scheme-label")
    assert _stored(db_path) == [(first_id, "shot", first_text), (second_id, "D", second_text)]
