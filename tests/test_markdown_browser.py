"""Issue 23 item 3 in headless Chromium: Markdown images in titles, sequence names, file names and annotator
names are shown as text on every page, so the browser fetches nothing from the address they name.

A title `![x](http://evil.test/x.png)` in the Scripts page's Uploads panel once made an admin's browser
request that URL (a tracking pixel on confidential drafts). Here the "evil" address is a listener on this
machine that counts every request it gets.
"""

from __future__ import annotations

import http.server
import threading

import pytest

from browser_support import App, _free_port, _screenshot, _settle, _wait_for_line, require_browser
from conftest import make_text_pdf

pytestmark = [pytest.mark.slow, pytest.mark.browser]
require_browser()  # skips this module without Chromium or Playwright
PAGES = ["", "scripts", "label", "script_view", "sequences", "models", "export", "users"]


class _Counter(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self):  # noqa: N802 (http.server's name)
        type(self).hits.append(self.path)
        self.send_response(404)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def listener():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", _free_port()), _Counter)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", _Counter.hits
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def served(tmp_path_factory, listener):
    from labeling.ingest.pipeline import ingest_path
    from store import jobs as job_store
    from store import labels as label_store
    from store import scripts as script_store
    from store import sequences as sequence_store
    from store.db import open_db

    evil, _ = listener
    tmp = tmp_path_factory.mktemp("markdown")
    db_path = tmp / "data" / "scriptlabel.db"
    db = open_db(db_path)
    title = f"![x]({evil}/title.png) Draft <img src='{evil}/title-html.png'>"
    script = ingest_path(db, make_text_pdf(tmp / "draft.pdf", pages=2), title=title)
    first = sequence_store.list_sequences(db, script.script_id)[0].sequence_id
    sequence_store.rename_sequence(db, first, code=f"![c]({evil}/code.png)", title=f"![t]({evil}/seq.png)")
    line = int(script_store.lines_frame(db, script.script_id)["line_id"].iloc[0])
    label_store.add_label(db, line, "scene_heading", annotator=f"![a]({evil}/who.png)")
    job = job_store.create_job(db, file_name=f"![f]({evil}/file.png).pdf")
    job_store.finish_job(db, job, script_id=script.script_id,
                         result={"title": title, "pages": 2, "lines": script.lines, "sequences": 1})
    failed = job_store.create_job(db, file_name=f"![e]({evil}/failed.png).pdf")
    job_store.fail_job(db, failed, error=f"![e]({evil}/error.png).pdf: the file could not be read")
    db.close()
    app = App(db_path, tmp / "streamlit.log", env={"SCRIPTLABEL_RETRAIN_EVERY": "0"})
    yield app, script.script_id
    app.stop()


@pytest.mark.parametrize("path", PAGES)
def test_markdown_in_people_s_text_fetches_nothing_on_any_page(browser, served, listener, path):
    app, script_id = served
    _, hits = listener
    hits.clear()
    page = browser.new_page()
    try:
        page.goto(f"{app.url}/{path}?annotator=ana&script={script_id}")
        if path == "label":
            _wait_for_line(page)
        else:
            page.get_by_role("heading", level=1).first.wait_for(timeout=60_000)
        _settle(page)
        page.wait_for_load_state("networkidle")
        _screenshot(page, f"markdown-{path or 'home'}")
        text = page.evaluate("document.body.innerText")
    finally:
        page.close()
    assert hits == [], f"{path or 'home'}: the browser fetched {hits}"
    if path == "scripts":  # the Scripts page's Uploads panel names the file and the title, as typed
        assert f"![f]({listener[0]}/file.png).pdf" in text and f"![x]({listener[0]}/title.png)" in text
    if path == "sequences":
        assert f"![t]({listener[0]}/seq.png)" in text
