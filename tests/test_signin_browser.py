"""Sign-in in headless Chromium: nothing but the sign-in form before it, the signed-in name on every label,
pages by role even by direct URL, restricted scripts invisible to others."""

from __future__ import annotations

import sqlite3

import pytest

from browser_support import App, _screenshot, _settle, _wait_for_line, _wait_saved, require_browser
from conftest import make_text_pdf

pytestmark = [pytest.mark.slow, pytest.mark.browser]
require_browser()  # skips this module without Chromium or Playwright
OPEN, SECRET = "Open Lighthouse Draft", "Secret Sequel Draft"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from labeling.ingest.pipeline import ingest_path
    from store import accounts
    from store.db import open_db

    tmp = tmp_path_factory.mktemp("signin")
    db_path = tmp / "data" / "scriptlabel.db"
    db = open_db(db_path)
    ingest_path(db, make_text_pdf(tmp / "open.pdf", pages=2), title=OPEN)
    secret = ingest_path(db, make_text_pdf(tmp / "secret.pdf", pages=1), title=SECRET, allow_duplicate=True)
    accounts.add_user(db, "ana", role="annotator", password="pw-ana-123")
    accounts.add_user(db, "root", role="admin", password="pw-root-123")
    accounts.restrict_script(db, secret.script_id, ["root"])
    db.close()
    app = App(db_path, tmp / "streamlit.log", env={"SCRIPTLABEL_RETRAIN_EVERY": "0"})
    yield app, db_path, secret.script_id
    app.stop()


def _sign_in(page, app, name, password, path="label"):
    page.goto(f"{app.url}/{path}")
    page.locator("form#sign-in").wait_for(timeout=30_000)
    page.fill("#name", name)
    page.fill("#password", password)
    page.click("button[type=submit]")


def _script_options(page) -> list[str]:
    """The titles in the sidebar's Script picker (the scripts table is a canvas, so it is read here)."""
    page.get_by_test_id("stSidebar").get_by_test_id("stSelectbox").first.click()
    options = page.get_by_role("option")
    options.first.wait_for(timeout=10_000)
    texts = options.all_inner_texts()
    page.keyboard.press("Escape")
    return texts


def _body_text(page) -> str:
    return page.evaluate("document.body.innerText")


@pytest.mark.parametrize("path", ["", "label", "script_view", "sequences", "models", "export", "users",
                                  "label?annotator=mallory&script=1"])
def test_unauthenticated_requests_see_only_the_sign_in_form(browser, served, path):
    app, _, _ = served
    page = browser.new_page()
    try:
        page.goto(f"{app.url}/{path}")
        page.locator("form#sign-in").wait_for(timeout=30_000)
        assert "/api/account/login" in page.url
        text = _body_text(page)
        assert OPEN not in text and SECRET not in text and "Sign in" in text
    finally:
        page.close()


def test_an_annotator_labels_under_the_signed_in_name_and_reaches_only_her_pages(browser, served):
    app, db_path, secret_id = served
    context = browser.new_context()
    page = context.new_page()
    try:
        _sign_in(page, app, "ana", "wrong-password")
        assert "wrong name or password" in _body_text(page).lower()
        page.fill("#password", "pw-ana-123")
        page.click("button[type=submit]")
        state = _wait_for_line(page)
        cookie = next(c for c in context.cookies() if c["name"] == "scriptlabel_session")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
        assert page.evaluate("document.cookie").find("scriptlabel_session") == -1  # not readable by scripts
        # The page's data claims another name: the server takes the session's.
        page.evaluate("window.__scriptlabelView.cfg.annotator = 'mallory'")
        page.keyboard.press("a")
        _wait_saved(page)
        conn = sqlite3.connect(db_path)
        try:
            rows = conn.execute("SELECT e.annotator, l.script_id FROM label_events e JOIN lines l USING (line_id) "
                                "WHERE e.line_id = ?", [state["line_id"]]).fetchall()
        finally:
            conn.close()
        assert rows == [("ana", rows[0][1])] and rows[0][1] != secret_id
        # A restricted script never reaches her: not in the label API, not in the Scripts page.
        sent = page.evaluate("""async (sid) => (await fetch('/api/label/jump?script_id=' + sid + '&line_no=1',
                                {headers: {'X-Scriptlabel': '1'}})).status""", secret_id)
        assert sent == 400
        page.goto(f"{app.url}/scripts")
        page.get_by_role("heading", name="Scripts", level=1).wait_for(timeout=60_000)
        _settle(page)
        options = " ".join(_script_options(page))
        assert OPEN in options and SECRET not in options and SECRET not in page.content()
        nav = page.get_by_test_id("stSidebarNav").inner_text()
        assert "Label" in nav and "Export" not in nav and "Users" not in nav and "Models" not in nav
        assert page.locator(".st-key-delete").count() == 0 and page.locator(".st-key-ingest").count() == 0
        for path, title in (("export", "Export"), ("users", "Users"), ("models", "Models")):
            page.goto(f"{app.url}/{path}")
            page.get_by_role("heading", level=1).first.wait_for(timeout=60_000)
            _settle(page)
            assert page.get_by_role("heading", name=title, level=1).count() == 0, path
            assert "Audit log" not in _body_text(page)
        _screenshot(page, "signin-annotator")
    finally:
        context.close()


def test_an_admin_sees_the_restricted_script_and_the_audit_log(browser, served):
    app, _, _ = served
    context = browser.new_context()
    page = context.new_page()
    try:
        _sign_in(page, app, "root", "pw-root-123", path="users")
        page.get_by_role("heading", name="Users", level=1).wait_for(timeout=60_000)
        _settle(page)
        assert "Audit log" in _body_text(page)
        page.goto(f"{app.url}/scripts")
        page.get_by_role("heading", name="Scripts", level=1).wait_for(timeout=60_000)
        _settle(page)
        assert SECRET in " ".join(_script_options(page))
        page.locator("form[action='/api/account/logout'] button").click()
        page.locator("form#sign-in").wait_for(timeout=30_000)
        assert not [c for c in context.cookies() if c["name"] == "scriptlabel_session"]
        page.goto(f"{app.url}/users")
        page.locator("form#sign-in").wait_for(timeout=30_000)
    finally:
        context.close()


def test_an_ended_session_shows_the_sign_in_on_the_next_click(browser, served):
    app, db_path, _ = served
    context = browser.new_context()
    page = context.new_page()
    try:
        _sign_in(page, app, "ana", "pw-ana-123", path="script_view")
        page.get_by_role("heading", name="Script", level=1).wait_for(timeout=60_000)
        _settle(page)
        conn = sqlite3.connect(db_path)
        try:
            with conn:
                conn.execute("DELETE FROM sessions WHERE name = 'ana'")  # expired, or the admin removed her
        finally:
            conn.close()
        page.get_by_test_id("stSidebarNav").get_by_role("link", name="Scripts", exact=True).click()
        page.get_by_role("heading", name="Sign in", level=1).wait_for(timeout=60_000)
        assert OPEN not in _body_text(page)
        page.get_by_role("button", name="Sign in with your scriptlabel account").click()
        page.locator("form#sign-in").wait_for(timeout=30_000)
        assert "next=" in page.url
    finally:
        context.close()


# --- issue 23 item 4: page images and Streamlit's media only for a signed-in session ----------------

def _cookie_header(context) -> str:
    return "; ".join(f"{c['name']}={c['value']}" for c in context.cookies())


def _get(url: str, cookie: str | None = None) -> tuple[int, str]:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, headers={"Cookie": cookie} if cookie else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()
            return response.status, response.headers.get("content-type", "")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("content-type", "")


def _absolute(app, src: str) -> str:
    return src if src.startswith("http") else f"{app.url}{src if src.startswith('/') else '/' + src}"


def test_media_metrics_and_page_images_need_a_session_and_restricted_ones_refuse_others(browser, served):
    app, _, secret_id = served
    root = browser.new_context()
    page = root.new_page()
    ana = browser.new_context()
    try:
        _sign_in(page, app, "root", "pw-root-123", path=f"script_view?script={secret_id}")
        page.get_by_role("heading", name="Script", level=1).wait_for(timeout=60_000)
        _settle(page)
        strip = page.locator("img[src*='/media/']").first
        strip.wait_for(timeout=30_000)
        media_url = _absolute(app, strip.get_attribute("src"))
        root_cookie = _cookie_header(root)
        assert _get(media_url)[0] == 401 and _get(media_url, root_cookie)[0] == 200
        assert _get(f"{app.url}/_stcore/metrics")[0] == 401
        assert _get(f"{app.url}/_stcore/metrics", root_cookie)[0] == 200
        assert _get(f"{app.url}/_stcore/health")[0] == 200  # what a load balancer asks stays open

        page.goto(f"{app.url}/sequences?script={secret_id}")
        page.get_by_role("heading", name="Sequences", level=1).wait_for(timeout=60_000)
        _settle(page)
        page.locator("img[alt^='page ']").first.wait_for(timeout=30_000)
        thumbnails = [_absolute(app, img.get_attribute("src")) for img in page.locator("img[alt^='page ']").all()]
        assert thumbnails and not any("/media/" in url for url in thumbnails)  # the app's own, checked route
        ana_page = ana.new_page()
        _sign_in(ana_page, app, "ana", "pw-ana-123")
        _wait_for_line(ana_page)
        ana_cookie = _cookie_header(ana)
        for url in thumbnails:
            assert _get(url)[0] == 401
            status, kind = _get(url, root_cookie)
            assert status == 200 and kind.startswith("image/")
            assert _get(url, ana_cookie)[0] == 404  # restricted to root: not there for ana
    finally:
        root.close()
        ana.close()
