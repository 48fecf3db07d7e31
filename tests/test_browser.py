"""End to end in headless Chromium: upload, label by keyboard, retrain, export; and a crash mid-labeling."""

from __future__ import annotations

import re
import signal
import sqlite3
import time

import pandas as pd
import pytest

from browser_support import (
    App, _current_line, _goto, _human_labels, _label_by_keyboard, _line_base_env, _nav, _press, _sample_pdf,
    _screenshot, _wait_for_line, _wait_saved, require_browser)
from conftest import make_text_pdf

pytestmark = [pytest.mark.slow, pytest.mark.browser]
require_browser()  # skips this module without Chromium or Playwright


def test_upload_label_by_keyboard_export_and_retrain(browser, tmp_path, db_path):
    app = App(db_path, tmp_path / "streamlit.log", env=_line_base_env(tmp_path))
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
        _goto(page, app, "scripts")
        page.locator('input[type="file"]').set_input_files(str(_sample_pdf(tmp_path)))
        page.get_by_text("stored as").wait_for(timeout=120_000)  # the background job ended
        _screenshot(page, "scripts")

        _nav(page, "Label")
        _screenshot(page, "label")
        pressed = _label_by_keyboard(page, 20)
        stored = _human_labels(db_path)
        for script_id, line_no, label in pressed:
            assert stored.get((script_id, line_no)) == label, (line_no, label)
        # u brings the last line back and takes its label away; labeling it again stores the new label
        back = _press(page, "u", _current_line(page))
        assert back == pressed[-1][:2]
        _wait_saved(page)
        assert back not in _human_labels(db_path)
        _press(page, "o", back)
        _wait_saved(page)
        assert _human_labels(db_path)[back] == "other"

        _nav(page, "Script")
        _screenshot(page, "script")
        _nav(page, "Sequences")
        _screenshot(page, "sequences")

        _nav(page, "Export")
        with page.expect_download() as download:
            page.get_by_role("button", name="Download csv").click()
        out = tmp_path / "export.csv"
        download.value.save_as(out)
        _screenshot(page, "export")
        frame = pd.read_csv(out)
        conn = sqlite3.connect(db_path)
        assert len(frame) == conn.execute("SELECT COUNT(*) FROM lines").fetchone()[0]
        has_predictions = conn.execute("SELECT COUNT(*) FROM predictions").fetchone()[0] > 0
        conn.close()
        human = frame[frame["label_source"] == "human"].set_index(["script_id", "line_no"])["label"]
        for key, label in _human_labels(db_path).items():
            assert human[key] == label
        assert (frame["label_source"] == "model").any() == has_predictions

        _nav(page, "Models")
        page.get_by_role("button", name="Retrain the line model").click()
        toast = page.get_by_text(re.compile(r"Training run \d+ started")).first
        toast.wait_for(timeout=30_000)
        run_id = int(re.search(r"\d+", toast.inner_text()).group())
        conn = sqlite3.connect(db_path)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            status, error, version = conn.execute(
                "SELECT status, error, version FROM training_runs WHERE run_id = ?", [run_id]).fetchone()
            if status in ("done", "failed"):
                break
            time.sleep(1)
        conn.close()
        assert status == "done", (status, error)
        # the page notices by itself (the status fragment polls) and shows the new current version
        page.get_by_text(f"Suggestions now come from v{version}").wait_for(timeout=30_000)
        _screenshot(page, "models")

        _nav(page, "Label")  # suggestions come from the new model: Enter accepts one
        page.get_by_text(f"model v{version}").wait_for(timeout=30_000)
        # the prefetched batch is re-ranked by the new model: the next line carries its suggestion
        page.wait_for_function(f"window.__scriptlabelView.buffer.length && "
                               f"window.__scriptlabelView.buffer[0].model_version === {version}", timeout=30_000)
        here = _press(page, "a", _current_line(page))
        suggestion = page.evaluate("window.__scriptlabelView.current.suggestion")
        assert page.evaluate("window.__scriptlabelView.current.model_version") == version
        _press(page, "Enter", here)
        _wait_saved(page)
        assert _human_labels(db_path)[here] == suggestion
    finally:
        app.stop()


def test_no_label_is_lost_when_the_app_is_killed(browser, tmp_path, db_path):
    from labeling.ingest.pipeline import ingest_path
    from store.db import open_db

    db = open_db(db_path)
    ingest_path(db, make_text_pdf(tmp_path / "lighthouse.pdf", pages=3))
    db.close()
    app = App(db_path, tmp_path / "streamlit.log")
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        _goto(page, app, "label")
        pressed = _label_by_keyboard(page, 6)
        last = _current_line(page)
        page.keyboard.press("d")  # one more key, and the server dies right after it
        app.stop(signal.SIGKILL)
        pressed.append((*last, "dialogue"))
    finally:
        app.stop()
    stored = _human_labels(db_path)
    for script_id, line_no, label in pressed[:-1]:
        assert stored[(script_id, line_no)] == label
    conn = sqlite3.connect(db_path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()

    # The last key may not have reached the server: the tab kept it and sends it when the app is back.
    restarted = App(db_path, tmp_path / "streamlit-2.log", port=app.port)
    try:
        page.reload()
        _wait_for_line(page)
        _wait_saved(page)
        stored = _human_labels(db_path)
        assert [stored.get((s, n)) for s, n, _ in pressed] == [label for _, _, label in pressed]
        assert _current_line(page) not in stored  # labeled lines are not asked again
        conn = sqlite3.connect(db_path)
        assert conn.execute("SELECT COUNT(*) FROM label_events").fetchone()[0] == len(pressed)
        conn.close()
    finally:
        restarted.stop()


def test_upload_abandoned_mid_way_finishes_and_keeps_every_label(browser, tmp_path, db_path):
    """Upload, then close the tab and stop the server at once: the background job still finishes, and
    the labels people gave elsewhere are all there."""
    from labeling.ingest.pipeline import ingest_path
    from store import jobs as job_store
    from store import labels as label_store
    from store import scripts as script_store
    from store.db import open_db

    db = open_db(db_path)
    base = ingest_path(db, make_text_pdf(tmp_path / "base.pdf")).script_id
    for line_id in script_store.lines_frame(db, base)["line_id"][:3]:
        label_store.add_label(db, int(line_id), "action", annotator="ana")
    app = App(db_path, tmp_path / "streamlit.log")
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        _goto(page, app, "scripts")
        page.locator('input[type="file"]').set_input_files(str(make_text_pdf(tmp_path / "upload.pdf", pages=30)))
        deadline = time.monotonic() + 60
        while not [j for j in job_store.list_jobs(db) if j.file_name == "upload.pdf"]:
            assert time.monotonic() < deadline, "the upload never started a job"
            time.sleep(0.1)
        page.close()
    finally:
        app.stop()  # the whole server process group goes; the job runs in its own session
    deadline = time.monotonic() + 180
    while (job := next(j for j in job_store.list_jobs(db) if j.file_name == "upload.pdf")).active:
        assert time.monotonic() < deadline, f"the job is still {job.status}"
        time.sleep(0.3)
    assert job.status == "done", job.error
    assert [s.title for s in script_store.list_scripts(db)] == ["Base", "Upload"]
    assert len(label_store.current_labels(db, base)) == 3
