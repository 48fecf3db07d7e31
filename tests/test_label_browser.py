"""The labeling view at a fluent annotator's pace, in headless Chromium.

Each key labels the line that was on screen when it was pressed, exactly once, in order, whatever the
pace, a reload, a lost connection or a second tab; keys never type into a field nobody opened.
"""

from __future__ import annotations

import sqlite3
import time

import pytest

from browser_support import (
    App, _current_line, _goto, _screenshot, _view_state, _wait_for_line, _wait_saved, record_screen_at_keys,
    require_browser, screen_at_keys, _sample_pdf)

pytestmark = [pytest.mark.slow, pytest.mark.browser]
require_browser()  # skips this module without Chromium or Playwright
KEYS = "acdhpto"
KEY_LABELS = {"h": "scene_heading", "a": "action", "c": "character", "d": "dialogue", "p": "parenthetical",
              "t": "transition", "o": "other"}


@pytest.fixture
def served(tmp_path, db_path):
    """The sample screenplay (1,147 lines, with the shipped model's suggestions) behind a running app."""
    from labeling.ingest.pipeline import ingest_path
    from store.db import open_db

    db = open_db(db_path)
    script_id = ingest_path(db, _sample_pdf(tmp_path)).script_id
    db.close()
    app = App(db_path, tmp_path / "streamlit.log")
    yield app, script_id
    app.stop()


def _texts(db_path) -> list[tuple[int, str]]:
    conn = sqlite3.connect(db_path)
    try:
        return conn.execute("SELECT line_id, text FROM lines ORDER BY line_id").fetchall()
    finally:
        conn.close()


def _label_rows(db_path) -> list[tuple[int, str, str]]:
    """Every label event in the order it was stored: (line_id, label, annotator)."""
    conn = sqlite3.connect(db_path)
    try:
        return conn.execute("SELECT line_id, label, annotator FROM label_events WHERE action = 'set' "
                            "ORDER BY event_id").fetchall()
    finally:
        conn.close()


def _type(page, n: int, delay_ms: int, offset: int = 0) -> None:
    for i in range(n):
        page.keyboard.press(KEYS[(i + offset) % len(KEYS)])
        page.wait_for_timeout(delay_ms)


def _stored_texts(db_path, stored) -> list[str]:
    """The text of each stored label's line, as a person reads it (whitespace normalized)."""
    texts = dict(_texts(db_path))
    return [" ".join(texts[line_id].split()) for line_id, _, _ in stored]


def _shown(page) -> list[tuple[int, str]]:
    """The (line_id, label) of every key press, as the view recorded what was on screen."""
    return [tuple(x) for x in page.evaluate("window.__scriptlabelShown")]


@pytest.mark.parametrize("delay_ms", [40, 80])
def test_200_keys_at_a_fluent_pace_label_200_lines_in_the_order_shown(browser, served, db_path, delay_ms):
    app, script_id = served
    texts = _texts(db_path)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    record_screen_at_keys(page)
    _goto(page, app, "label", f"annotator=ana&script={script_id}")  # ready for keys: no click
    _type(page, 200, delay_ms)
    _wait_saved(page)
    shown = _shown(page)
    stored = _label_rows(db_path)
    assert len(shown) == 200 and len(stored) == 200
    assert _stored_texts(db_path, stored) == screen_at_keys(page)  # each label is on the line on screen, in order
    assert [(line_id, label) for line_id, label, _ in stored] == shown  # and the view's own record agrees
    assert len({line_id for line_id, _ in shown}) == 200
    assert [label for _, label in shown] == [KEY_LABELS[KEYS[i % len(KEYS)]] for i in range(200)]
    assert _texts(db_path) == texts  # no line's text changed
    paints = page.evaluate("window.__scriptlabelPaints")
    assert len(paints) == 200
    _screenshot(page, f"label-after-200-at-{delay_ms}ms")


def test_a_reload_and_a_lost_connection_lose_nothing_and_double_nothing(browser, served, db_path):
    app, script_id = served
    texts = _texts(db_path)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    record_screen_at_keys(page)
    _goto(page, app, "label", f"annotator=ana&script={script_id}")
    _type(page, 60, 40)
    # The connection drops: keys go on (the batch is in the browser), their events wait in localStorage.
    page.route("**/api/label/sync", lambda route: route.abort())
    _type(page, 20, 40, offset=60)
    assert _view_state(page)["pending"] > 0
    before_reload = _shown(page)
    screen_before_reload = screen_at_keys(page)
    page.unroute("**/api/label/sync")
    page.reload()  # mid-way, with unsent events: they are sent again after the reload
    _wait_for_line(page)
    _type(page, 120, 40, offset=80)
    _wait_saved(page)
    shown = before_reload + _shown(page)
    stored = _label_rows(db_path)
    assert len(shown) == 200
    assert _stored_texts(db_path, stored) == screen_before_reload + screen_at_keys(page)  # the text on screen
    assert [(line_id, label) for line_id, label, _ in stored] == shown
    assert len({line_id for line_id, _, _ in stored}) == 200
    assert [label for _, label, _ in stored] == [KEY_LABELS[KEYS[i % len(KEYS)]] for i in range(200)]
    assert _texts(db_path) == texts  # no line's text changed


def test_two_tabs_of_one_annotator_never_show_the_same_line(browser, served, db_path):
    app, script_id = served
    texts = _texts(db_path)
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    first, second = context.new_page(), context.new_page()
    _goto(first, app, "label", f"annotator=ana&script={script_id}")
    _goto(second, app, "label", f"annotator=ana&script={script_id}")
    for i in range(60):
        (first if i % 2 else second).keyboard.press(KEYS[i % len(KEYS)])
        (first if i % 2 else second).wait_for_timeout(30)
    _wait_saved(first)
    _wait_saved(second)
    stored = _label_rows(db_path)
    assert len(stored) == 60 and len({line_id for line_id, _, _ in stored}) == 60
    a, b = {x for x, _ in _shown(first)}, {x for x, _ in _shown(second)}
    assert len(a) == 30 and len(b) == 30 and not a & b
    # every press labeled the line its own tab showed, and no text changed
    assert sorted((line_id, label) for line_id, label, _ in stored) == sorted(_shown(first) + _shown(second))
    assert _texts(db_path) == texts
    assert _current_line(first) != _current_line(second)
    context.close()


def test_keys_never_type_into_a_field_nobody_opened(browser, served, db_path):
    app, script_id = served
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{app.url}/label?script={script_id}")
    # A name typed and confirmed with Enter: the next keys label lines, they do not rename the annotator.
    name = page.get_by_role("textbox", name="Annotator")
    name.click()
    name.fill("bea")
    name.press("Enter")
    _wait_for_line(page)
    page.wait_for_timeout(500)
    page.keyboard.press("a")
    page.keyboard.press("c")  # Streamlit's own "clear caches" key: here it labels a character
    _wait_saved(page)
    assert [(label, who) for _, label, who in _label_rows(db_path)] == [("action", "bea"), ("character", "bea")]
    assert name.input_value() == "bea"
    assert page.get_by_text("Clear caches").count() == 0
    # Choosing a script leaves focus in the picker: the next key labels, it does not type into its filter.
    picker = page.get_by_test_id("stSidebar").get_by_test_id("stSelectbox").first
    picker.click()
    page.get_by_role("option", name=f"(#{script_id})").first.click()
    page.wait_for_timeout(800)
    before = _current_line(page)
    page.keyboard.press("d")
    _wait_saved(page)
    assert _label_rows(db_path)[-1][1] == "dialogue" and _current_line(page) != before
    # Editing text is its own mode: e opens it, Enter saves to this line only, Esc always returns to labeling.
    line_id = _view_state(page)["line_id"]
    page.keyboard.press("e")
    page.keyboard.press("Control+a")
    page.keyboard.type("A CORRECTED LINE")
    page.keyboard.press("Enter")
    page.keyboard.press("e")
    page.keyboard.type("ignored")
    page.keyboard.press("Escape")
    page.keyboard.press("o")
    _wait_saved(page)
    conn = sqlite3.connect(db_path)
    text, original = conn.execute("SELECT text, original_text FROM lines WHERE line_id = ?", [line_id]).fetchone()
    edits = conn.execute("SELECT COUNT(*) FROM text_edits").fetchone()[0]
    conn.close()
    assert text == "A CORRECTED LINE" and original != text and edits == 1
    assert _label_rows(db_path)[-1][:2] == (line_id, "other")
    # No developer toolbar, no Deploy button.
    assert page.get_by_test_id("stAppDeployButton").count() == 0
    _screenshot(page, "label-focus")


def test_undo_flag_jump_and_help_by_key(browser, served, db_path):
    app, script_id = served
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    _goto(page, app, "label", f"annotator=ana&script={script_id}&order=script")
    first = _view_state(page)
    assert first["line_no"] == 1  # script order starts at the top
    page.keyboard.press("o")
    page.keyboard.press("u")  # the line comes back, its label is taken back
    assert _view_state(page)["line_id"] == first["line_id"]
    page.keyboard.press("f")
    page.keyboard.press("2")
    page.keyboard.type("smudged")
    page.keyboard.press("Enter")
    page.keyboard.press("j")
    page.keyboard.type("40")
    page.keyboard.press("Enter")
    page.wait_for_function("window.__scriptlabelView.current.line_no === 40")
    page.keyboard.press("?")
    page.get_by_text("undo your last label").wait_for()
    page.keyboard.press("Escape")
    page.keyboard.press("d")
    _wait_saved(page)
    conn = sqlite3.connect(db_path)
    flags = conn.execute("SELECT line_id, kind, note FROM line_flags").fetchall()
    rows = conn.execute("SELECT l.line_no, e.label, e.action FROM label_events e JOIN lines l USING (line_id) "
                        "ORDER BY e.event_id").fetchall()
    conn.close()
    assert flags == [(first["line_id"], "bad_ocr", "smudged")]
    assert rows == [(1, "other", "set"), (1, None, "undo"), (40, "dialogue", "set")]


def test_a_key_against_a_very_confident_suggestion_asks_are_you_sure(browser, served, db_path):
    app, script_id = served
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    _goto(page, app, "label", f"annotator=ana&script={script_id}&order=script")
    for _ in range(40):  # accept suggestions until one the model is very sure of is on screen
        current = page.evaluate("({s: window.__scriptlabelView.current.suggestion, "
                                "c: window.__scriptlabelView.current.confidence})")
        if current["s"] and current["c"] >= 0.97:
            break
        page.keyboard.press("Enter")
    else:
        pytest.skip("no line the shipped model is 97% sure of in the first 40 lines")
    other = next(k for k, label in KEY_LABELS.items() if label != current["s"])
    page.keyboard.press(other)
    page.get_by_text("Are you sure?").wait_for()
    page.keyboard.press("u")  # one key takes the slip back
    _wait_saved(page)
    conn = sqlite3.connect(db_path)
    last = conn.execute("SELECT action FROM label_events ORDER BY event_id DESC LIMIT 1").fetchone()[0]
    conn.close()
    assert last == "undo"


def test_review_mode_shows_contradicted_labels_and_a_key_fixes_one(browser, tmp_path, db_path):
    from conftest import SCREENPLAY_LINES, make_text_pdf
    from labeling.ingest.pipeline import ingest_path
    from store import labels as label_store
    from store import scripts as script_store
    from store.db import open_db

    db = open_db(db_path)
    pdf = make_text_pdf(tmp_path / "lighthouse.pdf", pages=2)
    flipped = []
    for _ in range(2):  # two labeled scripts, one heading in each mislabeled as dialogue
        script_id = ingest_path(db, pdf, allow_duplicate=True).script_id
        lines = script_store.lines_frame(db, script_id)
        for line_id, label in zip(lines["line_id"], [label for _, _, label in SCREENPLAY_LINES] * 2):
            label_store.add_label(db, int(line_id), label, annotator="ana")
        flipped.append(int(lines["line_id"].iloc[8]))
        label_store.add_label(db, flipped[-1], "dialogue", annotator="ana")
    db.close()
    app = App(db_path, tmp_path / "streamlit.log")
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        _goto(page, app, "label", "annotator=rev&order=review")
        page.get_by_text("the model disagrees").wait_for()
        seen = _view_state(page)["line_id"]
        assert seen in flipped
        page.keyboard.press("h")  # the right label: a fix, recorded as the review's outcome
        _wait_saved(page)
        _screenshot(page, "label-review")
    finally:
        app.stop()
    conn = sqlite3.connect(db_path)
    outcome = conn.execute("SELECT line_id, outcome, label, previous_label, annotator FROM review_outcomes").fetchall()
    conn.close()
    assert outcome == [(seen, "fixed", "scene_heading", "dialogue", "rev")]


def test_a_closed_tabs_unsent_labels_are_sent_by_the_next_tab(browser, served, db_path):
    """Keys pressed while the server was unreachable wait in the browser; the tab closes before they are
    sent; the next tab of this browser sends them, each on the line that was on screen, stored once."""
    app, script_id = served
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    first = context.new_page()
    record_screen_at_keys(first)
    _goto(first, app, "label", f"annotator=ana&script={script_id}")
    first.route("**/api/label/sync", lambda route: route.abort())
    _type(first, 6, 60)
    assert _view_state(first)["pending"] == 6
    seen = screen_at_keys(first)
    first.close(run_before_unload=True)
    assert _label_rows(db_path) == []  # nothing reached the server

    second = context.new_page()
    _goto(second, app, "label", f"annotator=ana&script={script_id}")
    deadline = time.monotonic() + 60
    while len(_label_rows(db_path)) < 6:
        assert time.monotonic() < deadline, "the next tab did not send the closed tab's labels"
        time.sleep(0.3)
    _wait_saved(second)
    stored = _label_rows(db_path)
    assert len(stored) == 6 and {a for _, _, a in stored} == {"ana"}
    assert _stored_texts(db_path, stored) == seen
    assert [label for _, label, _ in stored] == [KEY_LABELS[KEYS[i]] for i in range(6)]
    context.close()
