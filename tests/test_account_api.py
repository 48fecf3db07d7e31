"""Sign-in routes and the labeling API with accounts: sessions, the signed-in name, restricted scripts."""

from __future__ import annotations

import uuid

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from labeling.accounts import api as account_api
from labeling.session.api import routes as label_routes
from store import accounts
from store import labels as label_store
from store import scripts as script_store
from store.db import database_uid

HEADERS = {"X-Scriptlabel": "1"}


@pytest.fixture
def client(db_path, db):
    app = Starlette(routes=label_routes(db_path, retrain_every=0) + account_api.routes(db_path))
    return TestClient(app, base_url="http://testserver", follow_redirects=False)


def sign_in(client, name, password, next_path="/label"):
    return client.post("/api/account/login", data={"name": name, "password": password, "next": next_path})


def test_safe_next_keeps_only_same_site_paths():
    assert account_api.safe_next("/label?script=2") == "/label?script=2"
    for bad in ("https://evil.example/", "//evil.example", "/\\evil", "javascript:alert(1)", "", None,
                "/api/account/logout"):
        assert account_api.safe_next(bad) == "/"


def test_the_form_signs_in_sets_an_httponly_lax_cookie_and_redirects(client, db):
    accounts.add_user(db, "ana", role="annotator", password="pw-ana-123")
    form = client.get("/api/account/login?next=/export")
    assert form.status_code == 200 and '<form method="post"' in form.text and 'value="/export"' in form.text
    assert "http" not in form.text.split("<body>")[1].replace('"/api/account/login"', "")  # no external assets
    wrong = sign_in(client, "ana", "nope")
    assert wrong.status_code == 401 and "wrong name or password" in wrong.text.lower()
    ok = sign_in(client, "ana", "pw-ana-123", "https://evil.example/")
    assert ok.status_code == 303 and ok.headers["location"] == "/"
    cookie = ok.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/" in cookie
    token = client.cookies.get(account_api.COOKIE)
    assert accounts.session_user(db, token).name == "ana"
    actions = [r["action"] for r in accounts.audit_log(db)]
    assert actions[:2] == ["sign_in", "sign_in_failed"]
    out = client.post("/api/account/logout")
    assert out.status_code == 303 and accounts.session_user(db, token) is None


def test_the_form_escapes_what_was_typed_and_refuses_other_sites(client, db):
    accounts.add_user(db, "ana", role="annotator", password="pw-ana-123")
    echoed = sign_in(client, '"><script>alert(1)</script>', "x", '/"><img src=x>')
    assert "<script>alert(1)" not in echoed.text and "&lt;script&gt;" in echoed.text
    foreign = client.post("/api/account/login", data={"name": "ana", "password": "pw-ana-123"},
                          headers={"Origin": "https://evil.example"})
    assert foreign.status_code == 403


def test_too_many_wrong_passwords_answer_429(client, db):
    accounts.add_user(db, "ana", role="annotator", password="pw-ana-123")
    for _ in range(accounts.FREE_FAILURES):
        sign_in(client, "ana", "wrong")
    locked = sign_in(client, "ana", "pw-ana-123")
    assert locked.status_code == 429 and int(locked.headers["retry-after"]) > 0


def _body(db, **fields) -> dict:
    return {"database": database_uid(db), "annotator": "mallory", "tab": "tab-" + "a" * 10, **fields}


def test_label_api_needs_a_session_once_accounts_exist(client, db, pdf_script):
    accounts.add_user(db, "ana", role="annotator", password="pw-ana-123")
    line = int(script_store.lines_frame(db, pdf_script)["line_id"].iloc[0])
    event = {"client_event_id": uuid.uuid4().hex, "line_id": line, "action": "label", "label": "action"}
    refused = client.post("/api/label/sync", json=_body(db, events=[event]), headers=HEADERS)
    assert refused.status_code == 401 and refused.json()["signin"] is True
    assert client.get(f"/api/label/jump?script_id={pdf_script}&line_no=1", headers=HEADERS).status_code == 401
    assert client.get(f"/api/label/page/{pdf_script}/1").status_code == 401
    assert db.execute("SELECT COUNT(*) FROM label_events").fetchone()[0] == 0
    sign_in(client, "ana", "pw-ana-123")
    stored = client.post("/api/label/sync", json=_body(db, events=[event], want=2), headers=HEADERS)
    assert stored.status_code == 200 and stored.json()["results"][0]["status"] == "stored"
    # the body said "mallory"; the label carries the signed-in name
    assert label_store.labels_of_lines(db, [line])[line]["annotator"] == "ana"


def test_a_restricted_script_does_not_exist_for_others(client, db, pdf_script, tmp_path):
    import app_builders

    other = app_builders.text_script(db, tmp_path)
    accounts.add_user(db, "ana", role="annotator", password="pw-ana-123")
    accounts.add_user(db, "bob", role="annotator", password="pw-bob-123")
    accounts.restrict_script(db, pdf_script, ["ana"])
    sign_in(client, "bob", "pw-bob-123")
    everything = client.post("/api/label/sync", json=_body(db, want=100, strategy="script"), headers=HEADERS).json()
    assert everything["items"] and {i["script_id"] for i in everything["items"]} == {other}
    assert client.post("/api/label/sync", json=_body(db, want=5, script_id=pdf_script),
                       headers=HEADERS).status_code == 404
    assert client.get(f"/api/label/jump?script_id={pdf_script}&line_no=1", headers=HEADERS).status_code == 400
    assert client.get(f"/api/label/page/{pdf_script}/1").status_code == 404
    hidden_line = int(script_store.lines_frame(db, pdf_script)["line_id"].iloc[0])
    event = {"client_event_id": uuid.uuid4().hex, "line_id": hidden_line, "action": "label", "label": "other"}
    answer = client.post("/api/label/sync", json=_body(db, events=[event]), headers=HEADERS).json()
    assert answer["results"][0]["status"] == "line_gone"
    assert hidden_line not in label_store.labels_of_lines(db, [hidden_line])


def test_progress_without_a_script_counts_only_the_scripts_the_person_may_see(client, db, pdf_script, tmp_path):
    """Issue 23 item 7: the progress total once counted every line, scripts restricted to others included."""
    import app_builders

    other = app_builders.text_script(db, tmp_path)
    accounts.add_user(db, "ana", role="annotator", password="pw-ana-123")
    accounts.add_user(db, "bob", role="annotator", password="pw-bob-123")
    accounts.restrict_script(db, pdf_script, ["ana"])
    hidden_line = int(script_store.lines_frame(db, pdf_script)["line_id"].iloc[0])
    label_store.add_label(db, hidden_line, "scene_heading", annotator="ana")
    visible = len(script_store.lines_frame(db, other))
    sign_in(client, "bob", "pw-bob-123")
    progress = client.post("/api/label/sync", json=_body(db), headers=HEADERS).json()["progress"]
    assert progress == {"labeled": 0, "total": visible}
    client.post("/api/account/logout")
    sign_in(client, "ana", "pw-ana-123")
    progress = client.post("/api/label/sync", json=_body(db), headers=HEADERS).json()["progress"]
    assert progress == {"labeled": 1, "total": visible + len(script_store.lines_frame(db, pdf_script))}


def test_the_sync_route_refuses_an_absurd_annotator_name(client, db, pdf_script):
    """Issue 23 item 6: the command line's annotator rule holds in the labeling view's route too."""
    for name, problem in (("", "type your name"), ("x" * 10_000, "1-80"), ("ana\nbob", "control character")):
        answer = client.post("/api/label/sync", json=_body(db, annotator=name, want=1), headers=HEADERS)
        assert answer.status_code == 400 and problem in answer.json()["error"]
    assert client.post("/api/label/sync", json=_body(db, annotator="  ana  ", want=1), headers=HEADERS).status_code == 200


def test_page_requests_without_a_session_are_sent_to_the_form(db_path, db):
    from starlette.middleware import Middleware
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def page(request):
        return PlainTextResponse("the app")

    app = Starlette(routes=account_api.routes(db_path) + [Route("/{path:path}", page)],
                    middleware=[Middleware(account_api.SignInRedirect, db_path=db_path)])
    client = TestClient(app, follow_redirects=False)
    assert client.get("/export").text == "the app"  # no accounts: single-user, nothing in the way
    accounts.add_user(db, "ana", role="annotator", password="pw-ana-123")
    moved = client.get("/export?script=2", headers={"Accept": "text/html"})
    assert moved.status_code == 303 and moved.headers["location"] == "/api/account/login?next=%2Fexport%3Fscript%3D2"
    assert client.get("/_stcore/health").text == "the app" and client.get("/static/js/main.js").text == "the app"
    sign_in(client, "ana", "pw-ana-123")
    assert client.get("/export", headers={"Accept": "text/html"}).text == "the app"


def test_parallel_wrong_passwords_over_http_get_at_most_three_401s(client, db):
    """Issue 23 item 1 through the sign-in route: 20 simultaneous wrong passwords for one name."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    accounts.add_user(db, "ana", role="annotator", password="pw-ana-123")
    barrier = threading.Barrier(20)

    def attempt(i):
        barrier.wait()
        return sign_in(client, "ana", f"guess-{i}").status_code

    with ThreadPoolExecutor(20) as pool:
        codes = list(pool.map(attempt, range(20)))
    assert codes.count(401) <= accounts.FREE_FAILURES and codes.count(429) == 20 - codes.count(401)
    assert codes.count(401) + codes.count(429) == 20
    assert sign_in(client, "ana", "pw-ana-123").status_code == 429  # the right one waits too


def test_with_oidc_streamlits_media_needs_its_signed_sign_in_cookie(db_path, db, monkeypatch):
    """Issue 23: media must require the same sign-in as the pages. With OIDC, the pages go by Streamlit's
    own signed `_streamlit_user` cookie; `/media/` and metrics answer 401 without it, with a forged one,
    or with one that says nobody is signed in."""
    import json

    from starlette.responses import PlainTextResponse
    from streamlit import config
    from streamlit.web.server.starlette.starlette_app_utils import create_signed_value

    monkeypatch.setattr(config, "get_option", lambda name, _get=config.get_option:
                        "a-test-cookie-secret" if name == "server.cookieSecret" else _get(name))

    async def media(scope, receive, send):
        await PlainTextResponse("page image")(scope, receive, send)

    client = TestClient(account_api.SignInRedirect(media, db_path=db_path, oidc=True), base_url="http://testserver")

    def signed(payload: dict, secret: str = "a-test-cookie-secret") -> str:
        return create_signed_value(secret, "_streamlit_user", json.dumps(payload)).decode("latin-1")

    user = {"origin": "http://testserver", "is_logged_in": True, "email": "lee@studio.example"}
    assert client.get("/media/abc.png").status_code == 401
    assert client.get("/_stcore/metrics").status_code == 401
    for cookie in (signed(user, secret="another-secret"), signed({**user, "is_logged_in": False}), "forged"):
        assert client.get("/media/abc.png", headers={"cookie": f"_streamlit_user={cookie}"}).status_code == 401
    shown = client.get("/media/abc.png", headers={"cookie": f"_streamlit_user={signed(user)}"})
    assert shown.status_code == 200 and shown.text == "page image"
    assert client.get("/label", headers={"accept": "text/html"}).status_code == 200  # st.login is the door


def test_an_admins_reset_is_a_one_time_link_where_the_person_sets_a_password(client, db):
    """Issue 24: a reset gives a link (valid once, for a day), not a temporary password to pass on."""
    from labeling.accounts.access import Identity
    from labeling.team import people

    accounts.add_user(db, "root", role="admin", password="pw-root-123")
    accounts.add_user(db, "ana", role="annotator", password="pw-ana-123")
    sign_in(client, "ana", "pw-ana-123")
    ana_session = client.cookies.get(account_api.COOKIE)
    link = people.reset_password(db, Identity("root", "admin", "local"), "ana")
    assert accounts.session_user(db, ana_session) is None  # her open sessions end
    form = client.get(link)
    assert form.status_code == 200 and "Set a password for ana" in form.text and 'type="password"' in form.text
    token = link.split("token=", 1)[1]

    def post(**fields):
        return client.post(account_api.RESET_PATH, data={"token": token, **fields})

    short = post(password="short", again="short")
    assert short.status_code == 400 and "shorter than 8" in short.text
    differ = post(password="ana-new-secret", again="ana-new-secret!")
    assert differ.status_code == 400 and "differ" in differ.text
    foreign = client.post(account_api.RESET_PATH, data={"token": token, "password": "evil-password", "again":
                          "evil-password"}, headers={"origin": "https://evil.example"})
    assert foreign.status_code == 403
    done = post(password="ana-new-secret", again="ana-new-secret")
    assert done.status_code == 303 and done.headers["location"].startswith(account_api.LOGIN_PATH)
    assert accounts.authenticate(db, "ana", "ana-new-secret").name == "ana"
    again = post(password="second-try-pw", again="second-try-pw")  # a link works once
    assert again.status_code == 410 and "ask an admin for a new link" in again.text
    assert client.get(link).status_code == 410
    assert accounts.authenticate(db, "ana", "ana-new-secret")
    assert "password_set" in [r["action"] for r in accounts.audit_log(db)] and token not in str(accounts.audit_log(db))


def test_a_password_link_expires_and_a_newer_one_replaces_it(db):
    accounts.add_user(db, "ana", role="annotator", password="pw-ana-123")
    old = accounts.create_reset_link(db, "ana", by="root", clock=lambda: 1_000.0)
    new = accounts.create_reset_link(db, "ana", by="root", clock=lambda: 2_000.0)
    with pytest.raises(accounts.ResetLinkError):
        accounts.use_reset_link(db, old, "pw-from-old-link", clock=lambda: 2_001.0)  # replaced
    with pytest.raises(accounts.ResetLinkError):
        accounts.use_reset_link(db, new, "pw-too-late-123", clock=lambda: 2_000.0 + accounts.RESET_TTL_S + 1)
    assert accounts.use_reset_link(db, new, "pw-in-time-123", clock=lambda: 2_100.0) == "ana"
    assert accounts.authenticate(db, "ana", "pw-in-time-123")
