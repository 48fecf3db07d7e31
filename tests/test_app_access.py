"""The app with sign-in on: only the sign-in page before it, pages by role, identity in every record."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from conftest import REPO, make_text_pdf
from labeling.ingest.pipeline import ingest_path
from store import accounts
from store.db import open_db
from test_app import uploaders

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

PAGES = ["scripts", "label", "script_view", "sequences", "models", "export", "users"]


@pytest.fixture
def app_db(db_path, tmp_path, monkeypatch):
    monkeypatch.setenv("SCRIPTLABEL_DB", str(db_path))
    monkeypatch.setenv("SCRIPTLABEL_SAMPLE", "0")
    monkeypatch.setenv("SCRIPTLABEL_RETRAIN_EVERY", "0")
    monkeypatch.chdir(tmp_path)  # no .streamlit/secrets.toml: OIDC is off
    db = open_db(db_path)
    result = ingest_path(db, make_text_pdf(tmp_path / "lighthouse.pdf", pages=2), title="Lighthouse")
    yield db, result.script_id
    db.close()


def run(page: str | None = None, *, email: str | None = None, annotator: str | None = None) -> AppTest:
    at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=60)
    if email:  # a person signed in through OIDC, as Streamlit reports it after st.login
        at.user = {"is_logged_in": True, "email": email, "name": email.split("@")[0]}
    if annotator:
        at.query_params["annotator"] = annotator
    at.run()
    if page:
        at.switch_page(f"app_pages/{page}.py")
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def titles(at: AppTest) -> list[str]:
    return [t.value for t in at.title]


def text_of(at: AppTest) -> str:
    parts = [e.value for kind in ("title", "markdown", "caption", "subheader", "info", "error", "warning", "success")
             for e in getattr(at, kind)]
    parts += [str(s.options) for s in at.selectbox]
    parts += [str(frame.value.to_dict()) for frame in at.dataframe]
    return "\n".join(map(str, parts))


def registered(at: AppTest) -> list[str]:
    """The pages st.navigation registered for this session (AppTest names them when a switch fails)."""
    import re

    with pytest.raises(ValueError) as failed:
        at.switch_page("app_pages/common.py")  # a file that is never a page
    return [Path(p).stem for p in re.findall(r"'([^']+)'", str(failed.value).split("Known pages:")[1])]


@pytest.mark.parametrize("query", [{}, {"annotator": "mallory"}, {"script": "1"}])
def test_with_an_account_every_page_shows_only_the_sign_in(app_db, query):
    db, _ = app_db
    accounts.add_user(db, "root", role="admin", password="pw-root-123")
    at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=60)
    for key, value in query.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception
    assert titles(at) == ["Sign in"]
    assert "Lighthouse" not in text_of(at) and not at.dataframe and not at.text_input
    assert any("/api/account/login" in h.proto.body for h in at.get("html"))
    assert registered(at) == ["Sign in"]  # no other page exists for this browser, whatever its URL
    for page in PAGES:
        with pytest.raises(ValueError):
            at.switch_page(f"app_pages/{page}.py")


def test_an_annotator_sees_only_annotator_pages_and_no_delete_or_upload(app_db):
    db, _ = app_db
    accounts.add_user(db, "ann@studio.example", role="annotator")
    at = run("scripts", email="ann@studio.example")
    assert titles(at) == ["Scripts"]
    assert not any(b.key in ("delete", "ingest") for b in at.button)
    assert not uploaders(at) and not at.get("file_uploader")
    assert not at.text_input  # no free-text annotator box once signed in
    assert any("ann@studio.example" in c.value for c in at.sidebar.caption)
    assert registered(at) == ["home", "scripts", "label", "script_view", "sequences"]


def test_unknown_oidc_people_start_as_annotators(app_db):
    db, _ = app_db
    accounts.add_user(db, "root", role="admin", password="pw-root-123")
    run(email="New.Person@studio.example")
    assert accounts.get_user(db, "new.person@studio.example").role == "annotator"


def test_an_admin_sees_users_with_the_audit_log_and_a_lead_the_export(app_db):
    db, _ = app_db
    accounts.add_user(db, "boss@studio.example", role="admin")
    accounts.add_user(db, "lee@studio.example", role="lead")
    accounts.audit(db, "root", "delete", script_id=99, detail={"title": "Old draft"})
    at = run("users", email="boss@studio.example")
    assert titles(at) == ["Users"] and "Old draft" in text_of(at)
    at = run("export", email="lee@studio.example")
    assert titles(at) == ["Export"]
    assert "users" not in registered(at) and "models" in registered(at)


def test_a_restricted_script_is_invisible_to_others(app_db, tmp_path):
    db, script_id = app_db
    accounts.add_user(db, "ann@studio.example", role="annotator")
    accounts.add_user(db, "bob@studio.example", role="lead")
    accounts.restrict_script(db, script_id, ["ann@studio.example"])
    assert "Lighthouse" in text_of(run(email="ann@studio.example"))
    for page in ("scripts", "script_view", "sequences", "export"):
        at = run(page, email="bob@studio.example")
        assert "Lighthouse" not in text_of(at), page


def test_single_user_mode_is_unchanged(app_db):
    at = run(annotator="ana")
    assert titles(at) == ["Home"]  # the first screen: a way in
    at = run("scripts", annotator="ana")
    assert titles(at) == ["Scripts"] and at.text_input(key="annotator").value == "ana"
    assert uploaders(at)


def test_titles_and_lines_with_markdown_render_as_text(app_db):
    from store import sequences as sequence_store

    db, script_id = app_db
    first = sequence_store.list_sequences(db, script_id)[0]
    sequence_store.rename_sequence(db, first.sequence_id, code="sq0010",
                                   title="![t](http://127.0.0.1:9/t.png) <img src=x onerror=alert(1)> :red[Draft] `x")
    at = run("sequences", annotator="ana")
    shown = [s.value for s in at.subheader if "sq0010" in s.value]
    import re

    unescaped = re.compile(r"(?<!\\)(!|<img|:red|\[)")  # syntax that would render (an image, HTML, colour)
    assert shown and not any(unescaped.search(v) for v in shown), shown
    assert "\\!\\[t\\]" in shown[0] and "\\<img" in shown[0] and "\\:red\\[" in shown[0]


def test_an_admin_restricts_a_script_from_the_users_page(app_db):
    db, script_id = app_db
    accounts.add_user(db, "boss@studio.example", role="admin")
    accounts.add_user(db, "ann@studio.example", role="annotator")
    at = run("users", email="boss@studio.example")
    at.multiselect(key=f"restrict_names_{script_id}").set_value(["ann@studio.example"])
    at.run()
    at.button(key="restrict_apply").click()
    at.run()
    assert not at.exception and accounts.script_access(db) == {script_id: ["ann@studio.example"]}
    assert accounts.audit_log(db)[0]["action"] == "restrict"
    at.button(key="restrict_clear").click()
    at.run()
    assert accounts.script_access(db) == {}


def test_an_admin_resets_a_password_with_a_one_time_link_shown_once(app_db):
    db, _ = app_db
    accounts.add_user(db, "boss@studio.example", role="admin")
    accounts.add_user(db, "ana", role="annotator", password="pw-ana-123")
    at = run("users", email="boss@studio.example")
    at.selectbox(key="user_pick").set_value("ana")
    at.run()
    at.button(key="user_reset").click()
    at.run()
    assert not at.exception
    [shown] = [c.value for c in at.code if "/api/account/reset?token=" in c.value]
    assert accounts.reset_link_user(db, shown.split("token=", 1)[1]) == "ana"  # the link works, for ana
    assert any("works once, for a day" in w.value for w in at.warning)
    at.run()
    assert not [c for c in at.code if "/api/account/reset" in c.value]  # shown once: the next run forgets it
    at.selectbox(key="user_pick").set_value("boss@studio.example")
    at.run()
    assert at.button(key="user_reset").disabled  # an OIDC person has no password here
