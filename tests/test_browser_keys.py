"""Keys return to the page after any widget choice, on every page that has keys (issue 25): a department
chosen on the Sequences page, a filter toggled and a row picked on the Script page, an order chosen on the
Label page — the next key press acts, as a person expects, without Esc and a click first."""

from __future__ import annotations

import time

import pytest

from conftest import make_text_pdf
from browser_support import App, _query, _goto, _idle, _screenshot, _wait_for_line, _wait_saved, require_browser

pytestmark = [pytest.mark.slow, pytest.mark.browser]
require_browser()


def _wait_for(predicate, what: str, page=None, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    if page is not None:
        _screenshot(page, "keys-timeout")
    raise AssertionError(f"timed out waiting for {what}")


def choose(page, label: str, option: str) -> None:
    """Pick an option of a selectbox with the mouse, as a person does."""
    page.get_by_role("combobox", name=label).click()
    page.get_by_role("option", name=option, exact=True).click()
    _idle(page)


@pytest.fixture
def app(tmp_path, db_path):
    from labeling.ingest.pipeline import ingest_path
    from store.db import open_db

    db = open_db(db_path)
    ingest_path(db, make_text_pdf(tmp_path / "lighthouse.pdf", pages=2))
    db.close()
    running = App(db_path, tmp_path / "streamlit.log")
    yield running
    running.stop()


def test_sequences_page_keys_work_after_choosing_a_department(browser, app, db_path):
    page = browser.new_page(viewport={"width": 1400, "height": 1200})
    _goto(page, app, "sequences")
    choose(page, "Department", "fx")
    assert page.evaluate("() => document.activeElement === document.body")  # the dropdown let go
    page.keyboard.press("4")
    _wait_for(lambda: _query(db_path, "SELECT department, value FROM sequence_ratings") == [("fx", 4)],
              "the fx rating from key 4", page)
    _idle(page)
    choose(page, "Department", "lighting")
    page.keyboard.press("2")
    _wait_for(lambda: ("lighting", 2) in _query(db_path, "SELECT department, value FROM sequence_ratings"),
              "the lighting rating from key 2", page)


def test_script_page_keys_work_after_a_toggle_and_a_row_pick(browser, app, db_path):
    page = browser.new_page(viewport={"width": 1400, "height": 1200})
    _goto(page, app, "script_view")
    page.get_by_text("Unlabeled", exact=True).click()  # a filter toggle
    _idle(page)
    grid = page.get_by_test_id("stDataFrame").first
    box = grid.bounding_box()
    page.mouse.click(box["x"] + 12, box["y"] + 55)  # the first row's selection cell
    _idle(page)
    page.get_by_role("button", name="dialogue").wait_for(timeout=30_000)
    page.keyboard.press("d")
    _wait_for(lambda: _query(db_path, "SELECT label FROM label_events WHERE source = 'human'") == [("dialogue",)],
              "the label from key d", page)


def test_label_page_keys_work_after_choosing_an_order(browser, app, db_path):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    _goto(page, app, "label")
    choose(page, "Order", "script")
    _idle(page)  # the new order's view is drawn by the rerun the choice starts; a key before it goes to the old one
    _wait_for_line(page)
    page.keyboard.press("a")
    _wait_saved(page)
    _wait_for(lambda: _query(db_path, "SELECT label FROM label_events WHERE source = 'human'") == [("action",)],
              "the label from key a", page)
