"""End to end in headless Chromium: upload, label by keyboard, retrain, export; and a crash mid-labeling.

Runs `streamlit run streamlit_app.py` on a temporary database and drives it with Playwright (Debian's
/usr/bin/chromium; never `playwright install`). Screenshots of each page go to test-artifacts/.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

from conftest import REPO, SAMPLE_DIR, SCREENPLAY_LINES, make_text_pdf

pytestmark = [pytest.mark.slow, pytest.mark.browser]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = REPO / "test-artifacts"
LINE_CAPTION = re.compile(r"Script #(\d+) · page (\d+) · line (\d+)")
# Keys pressed in turn; `c` goes through the page's own listener (Streamlit reserves C), the rest are
# native button shortcuts.
KEYS = "acdhpto"
KEY_LABELS = {"h": "scene_heading", "a": "action", "c": "character", "d": "dialogue", "p": "parenthetical",
              "t": "transition", "o": "other"}

if not CHROMIUM.exists():  # pragma: no cover - depends on the machine
    pytest.skip("Debian chromium is not installed at /usr/bin/chromium", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class App:
    """One `streamlit run` process on a database; stop() kills only the process group it started."""

    def __init__(self, db_path: Path, log_path: Path, env: dict | None = None):
        self.db_path = db_path
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, SCRIPTLABEL_DB=str(db_path), SCRIPTLABEL_SAMPLE="0", PYTHONUNBUFFERED="1",
                   **(env or {}))
        self.log = open(log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(REPO / "streamlit_app.py"),
             "--server.port", str(self.port), "--server.address", "127.0.0.1", "--server.headless", "true",
             "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
            cwd=REPO, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as response:
                    if response.read() == b"ok":
                        return
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"streamlit did not start; see {log_path}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(timeout=30)
        self.log.close()


@pytest.fixture
def browser():
    with sync_api.sync_playwright() as p:
        instance = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield instance
        instance.close()


def _screenshot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    _idle(page)
    page.wait_for_timeout(500)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _idle(page) -> None:
    """Wait until the app script is not running (its widgets and shortcuts are all in place)."""
    page.locator('[data-testid="stApp"][data-test-script-state="notRunning"]').wait_for(timeout=60_000)
    page.wait_for_timeout(150)


def _settle(page) -> None:
    # Right after a page loads, Streamlit registers button shortcuts a moment after the first render
    # (~0.6 s here); a person never types that fast, a test does.
    _idle(page)
    page.wait_for_timeout(1500)


def _goto(page, app: App, path: str = "") -> None:
    page.goto(f"{app.url}/{path}?annotator=ana")
    page.get_by_role("heading", level=1).first.wait_for(timeout=60_000)
    _settle(page)


def _nav(page, title: str) -> None:
    page.get_by_test_id("stSidebarNav").get_by_role("link", name=title, exact=True).click()
    page.get_by_role("heading", name=title, level=1).wait_for(timeout=60_000)
    _settle(page)


def _current_line(page) -> tuple[int, int]:
    """(script_id, line_no) of the line on the Label page."""
    caption = page.get_by_text(LINE_CAPTION).first
    caption.wait_for(timeout=60_000)
    match = LINE_CAPTION.search(caption.inner_text())
    return int(match.group(1)), int(match.group(3))


def _press(page, key: str, before: tuple[int, int]) -> tuple[int, int]:
    """Press a key on the Label page and wait until the next line is on screen."""
    _idle(page)
    page.keyboard.press(key)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        page.wait_for_timeout(100)
        try:
            now = _current_line(page)
        except sync_api.TimeoutError:
            continue
        if now != before:
            return now
    _screenshot(page, "failed-key")
    raise AssertionError(f"key {key!r} did not move on from line {before} "
                         f"(focus on {page.evaluate('document.activeElement.tagName')})")


def _label_by_keyboard(page, n: int) -> list[tuple[int, int, str]]:
    """Label n lines, one key each; returns (script_id, line_no, label) as shown and pressed."""
    done = []
    here = _current_line(page)
    for i in range(n):
        key = KEYS[i % len(KEYS)]
        nxt = _press(page, key, here)
        done.append((here[0], here[1], KEY_LABELS[key]))
        here = nxt
    return done


def _human_labels(db_path: Path) -> dict[tuple[int, int], str]:
    """Effective human label per (script_id, line_no), read straight from SQLite."""
    conn = sqlite3.connect(db_path)
    try:
        rows = conn.execute(
            """SELECT l.script_id, l.line_no, e.label FROM label_events e JOIN lines l USING (line_id)
               WHERE e.source = 'human' AND e.action = 'set' AND e.annotator = 'ana'
                 AND NOT EXISTS (SELECT 1 FROM label_events u WHERE u.undoes_event_id = e.event_id)
               ORDER BY e.event_id""").fetchall()
    finally:
        conn.close()
    return {(s, n): label for s, n, label in rows}


def _line_base_env(tmp_path: Path) -> dict:
    """The shipped line model when it is built; else a stand-in base fitted here on a labeled screenplay.

    Retraining fits an adapter on top of a base model, so the end-to-end retrain needs one either way.
    """
    from labeling.line_training import PRETRAINED_DIR

    if any(PRETRAINED_DIR.glob("*.json")):
        return {}
    from labeling.formats.fountain import parse_fountain
    from labeling.ingest import ingest_path
    from models.line_classifier import LineClassifier
    from store.db import open_db
    from store.scripts import lines_frame

    scratch = open_db(tmp_path / "base" / "scratch.db")
    fountain = SAMPLE_DIR / "tim_time.fountain"
    if fountain.exists():
        pdf = _sample_pdf(tmp_path)
        gold = {line.text: line.imported_label for line in parse_fountain(fountain.read_text())}
    else:
        pdf = make_text_pdf(tmp_path / "base" / "lines.pdf", pages=3)
        gold = {text: label for text, _, label in SCREENPLAY_LINES}
    frame = lines_frame(scratch, ingest_path(scratch, pdf).script_id)
    scratch.close()
    out = tmp_path / "base" / "lines"
    LineClassifier().fit(frame, frame["text"].map(gold).to_numpy(dtype=object)).save(out)
    return {"SCRIPTLABEL_LINE_BASE": str(out)}


def _sample_pdf(tmp_path: Path) -> Path:
    sample = SAMPLE_DIR / "tim_time.pdf"
    return sample if sample.exists() else make_text_pdf(tmp_path / "tim_time.pdf", pages=4)


def test_upload_label_by_keyboard_export_and_retrain(browser, tmp_path, db_path):
    app = App(db_path, tmp_path / "streamlit.log", env=_line_base_env(tmp_path))
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
        _goto(page, app)
        page.locator('input[type="file"]').set_input_files(str(_sample_pdf(tmp_path)))
        page.get_by_role("button", name="Ingest").click()
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
        assert back not in _human_labels(db_path)
        _press(page, "o", back)
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
        page.get_by_text(f"Current line model: v{version},").wait_for(timeout=30_000)
        _screenshot(page, "models")

        _nav(page, "Label")  # suggestions come from the new model: Enter accepts one
        page.get_by_text("sure — press").wait_for(timeout=30_000)
        here = _current_line(page)
        note = page.get_by_text(re.compile(r"^Suggestion: ")).first.inner_text()
        suggestion = note.split(":", 1)[1].split("·")[0].strip().replace(" ", "_")
        _press(page, "Enter", here)
        assert _human_labels(db_path)[here] == suggestion
    finally:
        app.stop()


def test_no_label_is_lost_when_the_app_is_killed(browser, tmp_path, db_path):
    from labeling.ingest import ingest_path
    from store.db import open_db

    db = open_db(db_path)
    ingest_path(db, make_text_pdf(tmp_path / "lighthouse.pdf", pages=3))
    db.close()
    app = App(db_path, tmp_path / "streamlit.log")
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        _goto(page, app, "label")
        # apply-to-all is on by default: each key labels a line and its copies on the other pages
        pressed = _label_by_keyboard(page, 6)
        page.keyboard.press("d")  # one more key, and the server dies right after it
        app.stop(signal.SIGKILL)
    finally:
        app.stop()
    stored = _human_labels(db_path)
    for script_id, line_no, label in pressed:
        assert stored[(script_id, line_no)] == label
    assert len(stored) >= 3 * len(pressed)  # every copy of each line got its label too
    assert set(stored.values()) <= set(KEY_LABELS.values())
    conn = sqlite3.connect(db_path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()

    restarted = App(db_path, tmp_path / "streamlit-2.log")
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        _goto(page, restarted, "label")
        here = _current_line(page)
        assert here not in stored  # labeled lines are not asked again
        assert _human_labels(db_path) == stored
    finally:
        restarted.stop()


def test_upload_abandoned_mid_way_finishes_and_keeps_every_label(browser, tmp_path, db_path):
    """Upload, then close the tab and stop the server at once: the background job still finishes, and
    the labels people gave elsewhere are all there."""
    from labeling.ingest import ingest_path
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
        _goto(page, app)
        page.locator('input[type="file"]').set_input_files(str(make_text_pdf(tmp_path / "upload.pdf", pages=30)))
        page.get_by_role("button", name="Ingest").click()
        deadline = time.monotonic() + 60
        while not job_store.list_jobs(db):
            assert time.monotonic() < deadline, "the upload never started a job"
            time.sleep(0.1)
        page.close()
    finally:
        app.stop()  # the whole server process group goes; the job runs in its own session
    deadline = time.monotonic() + 180
    while (job := job_store.list_jobs(db)[0]).active:
        assert time.monotonic() < deadline, f"the job is still {job.status}"
        time.sleep(0.3)
    assert job.status == "done", job.error
    assert [s.title for s in script_store.list_scripts(db)] == ["Base", "Upload"]
    assert len(label_store.current_labels(db, base)) == 3
