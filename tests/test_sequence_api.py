"""The Sequences page's split, merge and undo route (labeling/sequences/api.py): a click carries the sequence id
and the version it saw, is applied and audited once however often it arrives, and a stale click changes
nothing; sign-in, the page header, the database and restricted scripts are checked as for labels."""

from __future__ import annotations

import json
import uuid

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

import app_builders
from labeling.accounts import api as account_api
from labeling.sequences import api as sequence_api
from store import accounts
from store import sequences as sequence_store
from store.db import database_uid

HEADERS = {"X-Scriptlabel": "1"}


@pytest.fixture
def client(db_path, db):
    app = Starlette(routes=sequence_api.routes(db_path) + account_api.routes(db_path))
    return TestClient(app, base_url="http://testserver", follow_redirects=False)


@pytest.fixture
def script(db, tmp_path) -> int:
    script_id = app_builders.pdf_script(db, tmp_path, pages=2)
    assert len(sequence_store.list_sequences(db, script_id)) >= 3
    return script_id


def _click(db, action: str, **fields) -> dict:
    return {"database": database_uid(db), "action": action, "client_id": f"click-{uuid.uuid4().hex}",
            "annotator": "lee", **fields}


def _spans(db, script_id: int) -> list[tuple]:
    return [(s.code, s.first_line_no, s.last_line_no) for s in sequence_store.list_sequences(db, script_id)]


def _audited(db, action: str) -> list[dict]:
    return [json.loads(r["detail"]) for r in accounts.audit_log(db) if r["action"] == action]


def test_a_split_is_applied_once_however_often_the_click_arrives(client, db, script):
    first = sequence_store.list_sequences(db, script)[0]
    click = _click(db, "split", sequence_id=first.sequence_id, version=1, at_line_no=first.first_line_no + 2,
                   title="The Storm")
    answer = client.post("/api/sequences/edit", json=click, headers=HEADERS)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["edit"]["text"] == f"split {first.code} at line {first.first_line_no + 2} → {first.code}A “The Storm”"
    new_id = body["show"]
    after = _spans(db, script)
    again = client.post("/api/sequences/edit", json=click, headers=HEADERS)  # a retry of the same click
    assert again.status_code == 200 and again.json() == body
    assert _spans(db, script) == after and len(_audited(db, "sequence_split")) == 1
    assert sequence_store.get_sequence(db, new_id)["title"] == "The Storm"
    assert sequence_store.get_sequence(db, first.sequence_id)["version"] == 2


def test_a_double_clicked_merge_merges_and_is_audited_once(client, db, script):
    """Two clicks on the same button (two click ids, the version the page showed): the second is refused."""
    first = sequence_store.list_sequences(db, script)[0]
    before = _spans(db, script)
    one = client.post("/api/sequences/edit", json=_click(db, "merge", sequence_id=first.sequence_id, version=1),
                      headers=HEADERS)
    two = client.post("/api/sequences/edit", json=_click(db, "merge", sequence_id=first.sequence_id, version=1),
                      headers=HEADERS)
    assert one.status_code == 200 and two.status_code == 409 and two.json()["changed"] is True
    assert f"{first.code} changed since this page showed it" in two.json()["error"]
    assert _spans(db, script) == [(before[0][0], before[0][1], before[1][2])] + before[2:]  # merged once
    assert len(_audited(db, "sequence_merge")) == 1


def test_undo_puts_the_sequences_back_once_and_a_click_from_before_it_is_refused(client, db, script):
    first = sequence_store.list_sequences(db, script)[0]
    before = _spans(db, script)
    merge = client.post("/api/sequences/edit", json=_click(db, "merge", sequence_id=first.sequence_id, version=1),
                        headers=HEADERS).json()
    undo = _click(db, "undo", edit_id=merge["edit"]["edit_id"])
    undone = client.post("/api/sequences/edit", json=undo, headers=HEADERS)
    assert undone.status_code == 200 and undone.json()["edit"]["undone_at"] and undone.json()["show"] == first.sequence_id
    assert _spans(db, script) == before
    # Undo clicked again (another click id): nothing more happens, nothing more is recorded
    assert client.post("/api/sequences/edit", json=_click(db, "undo", edit_id=merge["edit"]["edit_id"]),
                       headers=HEADERS).status_code == 200
    assert len(_audited(db, "sequence_edit_undo")) == 1
    # the spans are as they were, but a click made before the merge (version 1) is refused: it saw another state
    stale = client.post("/api/sequences/edit", json=_click(db, "merge", sequence_id=first.sequence_id, version=1),
                        headers=HEADERS)
    assert stale.status_code == 409 and _spans(db, script) == before


@pytest.mark.parametrize("fields, message", [
    ({"action": "explode"}, "action must be one of split, merge, undo"),
    ({"client_id": "x"}, "client_id must be"),
    ({"version": "two"}, "version must be a whole number"),
    ({"at_line_no": None}, "at_line_no must be a whole number"),
    ({"at_line_no": 1}, "is not inside"),
    ({"sequence_id": 999999}, "no sequence with id 999999"),
])
def test_a_bad_click_is_refused_with_what_to_fix_and_nothing_changes(client, db, script, fields, message):
    first = sequence_store.list_sequences(db, script)[0]
    before = _spans(db, script)
    click = _click(db, "split", sequence_id=first.sequence_id, version=1, at_line_no=first.first_line_no + 1)
    answer = client.post("/api/sequences/edit", json=click | fields, headers=HEADERS)
    assert answer.status_code in (400, 404) and message in answer.json()["error"]
    assert "Traceback" not in answer.text and _spans(db, script) == before


def test_only_the_apps_page_on_this_database_may_edit(client, db, script):
    first = sequence_store.list_sequences(db, script)[0]
    click = _click(db, "merge", sequence_id=first.sequence_id, version=1)
    assert client.post("/api/sequences/edit", json=click).status_code == 403  # no header: another site's form
    other = client.post("/api/sequences/edit", json=click | {"database": "another"}, headers=HEADERS)
    assert other.status_code == 409 and other.json()["reload"] is True
    assert client.post("/api/sequences/edit", content=b"{not json", headers=HEADERS).status_code == 400
    assert len(sequence_store.list_sequences(db, script)) == len(_spans(db, script)) and not _audited(db, "sequence_merge")


def test_with_accounts_the_session_says_who_and_only_leads_restructure(client, db, script):
    accounts.add_user(db, "ana", role="annotator", password="pw-ana-123")
    accounts.add_user(db, "lee", role="lead", password="pw-lee-123")
    first = sequence_store.list_sequences(db, script)[0]
    before = _spans(db, script)
    click = _click(db, "merge", sequence_id=first.sequence_id, version=1, annotator="lee")  # a name is not a session
    assert client.post("/api/sequences/edit", json=click, headers=HEADERS).status_code == 401
    client.post("/api/account/login", data={"name": "ana", "password": "pw-ana-123", "next": "/sequences"})
    refused = client.post("/api/sequences/edit", json=click, headers=HEADERS)
    assert refused.status_code == 403 and "lead" in refused.json()["error"] and _spans(db, script) == before
    accounts.restrict_script(db, script, ["ana"])
    client.post("/api/account/login", data={"name": "lee", "password": "pw-lee-123", "next": "/sequences"})
    assert client.post("/api/sequences/edit", json=click, headers=HEADERS).status_code == 404  # not hers to see
    accounts.unrestrict_script(db, script)
    done = client.post("/api/sequences/edit", json=click, headers=HEADERS)
    assert done.status_code == 200 and done.json()["edit"]["annotator"] == "lee"
    assert [r["actor"] for r in accounts.audit_log(db) if r["action"] == "sequence_merge"] == ["lee"]
