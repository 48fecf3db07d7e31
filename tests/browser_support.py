"""What the browser tests share: the app server on a temporary database, Chromium, and the labeling view.

The app runs as `streamlit run app_server.py` (Streamlit plus the labeling view's routes), driven with
Playwright on Debian's /usr/bin/chromium (never `playwright install`). Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import REPO, SAMPLE_DIR, SCREENPLAY_LINES, make_text_pdf

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = REPO / "test-artifacts"
# Keys pressed in turn (`c` included: Streamlit reserves it for itself, the view takes it first).
KEYS = "acdhpto"
KEY_LABELS = {"h": "scene_heading", "a": "action", "c": "character", "d": "dialogue", "p": "parenthetical",
              "t": "transition", "o": "other"}



def require_browser():
    """Skip the calling test module when Chromium or Playwright is missing."""
    if not CHROMIUM.exists():  # pragma: no cover - depends on the machine
        pytest.skip("Debian chromium is not installed at /usr/bin/chromium", allow_module_level=True)
    return pytest.importorskip("playwright.sync_api")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class App:
    """One `streamlit run` process on a database; stop() kills only the process group it started."""

    def __init__(self, db_path: Path, log_path: Path, env: dict | None = None, port: int | None = None):
        self.db_path = db_path
        self.port = port or _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, SCRIPTLABEL_DB=str(db_path), SCRIPTLABEL_SAMPLE="0", PYTHONUNBUFFERED="1",
                   **(env or {}))
        self.log = open(log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(REPO / "app_server.py"),
             "--server.port", str(self.port), "--server.address", "127.0.0.1", "--server.headless", "true",
             "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
             "--client.toolbarMode", "viewer"],
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


def _screenshot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    _idle(page)
    page.wait_for_timeout(500)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _query(db_path, sql: str, *args) -> list[tuple]:
    """Rows of one query on the app's database, through a connection of the test's own."""
    conn = sqlite3.connect(db_path)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def _idle(page) -> None:
    """Wait until the app script is not running (its widgets and shortcuts are all in place)."""
    page.locator('[data-testid="stApp"][data-test-script-state="notRunning"]').wait_for(timeout=60_000)
    page.wait_for_timeout(150)


def _settle(page) -> None:
    # Right after a page loads, Streamlit registers button shortcuts a moment after the first render
    # (~0.6 s here); a person never types that fast, a test does.
    _idle(page)
    page.wait_for_timeout(1500)


def _goto(page, app: App, path: str = "", query: str = "annotator=ana") -> None:
    page.goto(f"{app.url}/{path}?{query}")
    if path == "label":
        _wait_for_line(page)
        return
    page.get_by_role("heading", level=1).first.wait_for(timeout=60_000)
    _settle(page)


def _nav(page, title: str) -> None:
    page.get_by_test_id("stSidebarNav").get_by_role("link", name=title, exact=True).click()
    if title == "Label":
        _wait_for_line(page)
        return
    page.get_by_role("heading", name=title, level=1).wait_for(timeout=60_000)
    _settle(page)


def _view_state(page) -> dict:
    return page.evaluate("""() => { const v = window.__scriptlabelView;
        if (!v) return {};
        return {line_id: v.current ? v.current.line_id : null, script_id: v.current ? v.current.script_id : null,
                line_no: v.current ? v.current.line_no : null, pending: v.pending.length, buffer: v.buffer.length,
                error: v.lastError, done: v.done}; }""")


def _wait_for_line(page, timeout_s: float = 60) -> dict:
    """Wait until the labeling view shows a line; returns its state."""
    page.wait_for_function("() => window.__scriptlabelView && window.__scriptlabelView.current", timeout=timeout_s * 1000)
    return _view_state(page)


def _current_line(page) -> tuple[int, int]:
    """(script_id, line_no) of the line on the Label page."""
    state = _wait_for_line(page)
    return state["script_id"], state["line_no"]


def _wait_saved(page, timeout_s: float = 60) -> None:
    """Wait until the view has no unsent events (the server said each one is stored)."""
    page.wait_for_function("() => window.__scriptlabelView && window.__scriptlabelView.pending.length === 0 "
                           "&& !window.__scriptlabelView.inflight", timeout=timeout_s * 1000)


def _press(page, key: str, before: tuple[int, int]) -> tuple[int, int]:
    """Press a key on the Label page and return the line shown next (painted in the same frame)."""
    page.keyboard.press(key)
    now = _current_line(page)
    if now == before:
        _screenshot(page, "failed-key")
        raise AssertionError(f"key {key!r} did not move on from line {before}")
    return now


def _label_by_keyboard(page, n: int) -> list[tuple[int, int, str]]:
    """Label n lines, one key each at a person's pace; returns (script_id, line_no, label) as shown and pressed."""
    done = []
    here = _current_line(page)
    for i in range(n):
        key = KEYS[i % len(KEYS)]
        nxt = _press(page, key, here)
        done.append((here[0], here[1], KEY_LABELS[key]))
        here = nxt
        page.wait_for_timeout(150)
    _wait_saved(page)
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
    from labeling.training.lines import PRETRAINED_DIR

    if any(PRETRAINED_DIR.glob("*.json")):
        return {}
    from labeling.ingest.formats.fountain import parse_fountain
    from labeling.ingest.pipeline import ingest_path
    from models.lines.classifier import LineClassifier
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





# What a person saw when they pressed a key, read from the page itself (the text painted in the view,
# inside its shadow root), not from the view's own record of what it showed. Installed before the page
# loads, so this keydown listener runs before the view's and reads the line still on screen.
_SCREEN_AT_KEYS = """
(() => {
  const keys = %s;
  window.__screenAtKey = [];
  let found = null;
  const find = (root) => {
    const el = root.querySelector('[data-role="text"]');
    if (el) return el;
    for (const host of root.querySelectorAll("*")) {
      if (host.shadowRoot) { const inner = find(host.shadowRoot); if (inner) return inner; }
    }
    return null;
  };
  window.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey || !keys.includes(e.key)) return;
    if (!found || !found.isConnected) found = find(document);
    window.__screenAtKey.push(found ? found.textContent.trim() : null);
  }, true);
})();
"""


def record_screen_at_keys(page, keys: str = KEYS) -> None:
    """From now on, every label key pressed on `page` records the line's text as painted on screen."""
    import json

    page.add_init_script(_SCREEN_AT_KEYS % json.dumps(list(keys)))


def screen_at_keys(page) -> list[str]:
    """The text on screen at each label key press since the page (re)loaded, whitespace normalized."""
    return [" ".join((text or "").split()) for text in page.evaluate("window.__screenAtKey")]
