"""The labeling view's HTTP routes, through Starlette's test client on a real database file."""

from __future__ import annotations

import uuid

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from labeling.session.api import routes
from store import labels as label_store
from store import scripts as script_store
from store.db import database_uid

HEADERS = {"X-Scriptlabel": "1"}


@pytest.fixture
def client(db_path, db):
    return TestClient(Starlette(routes=routes(db_path, retrain_every=0)))


def body(db, **fields) -> dict:
    return {"database": database_uid(db), "annotator": "ana", "tab": "tab-" + "a" * 10, **fields}


def test_sync_stores_events_and_returns_a_batch(client, db, pdf_script):
    ids = list(script_store.lines_frame(db, pdf_script)["line_id"])
    event = {"client_event_id": uuid.uuid4().hex, "line_id": ids[0], "action": "label", "label": "scene_heading"}
    response = client.post("/api/label/sync", json=body(db, events=[event], want=4, script_id=pdf_script),
                           headers=HEADERS)
    assert response.status_code == 200
    payload = response.json()
    assert payload["results"][0]["status"] == "stored" and len(payload["items"]) == 4
    assert label_store.labels_of_lines(db, [ids[0]])[ids[0]]["label"] == "scene_heading"
    page = payload["items"][0]["page"]
    image = client.get(f"/api/label/page/{pdf_script}/{page}")
    assert image.status_code == 200 and image.content[:4] == b"\x89PNG"
    assert client.get(f"/api/label/page/{pdf_script}/999").status_code == 404


def test_requests_without_the_view_header_are_refused(client, db, pdf_script):
    # a form on another web site cannot set a custom header, so it cannot label here
    response = client.post("/api/label/sync", content=b'{"events": []}', headers={"Content-Type": "text/plain"})
    assert response.status_code == 403
    assert db.execute("SELECT COUNT(*) FROM label_events").fetchone()[0] == 0


def test_a_tab_opened_on_another_database_is_told_to_reload(client, db, pdf_script):
    response = client.post("/api/label/sync", json=body(db, database="0" * 32), headers=HEADERS)
    assert response.status_code == 409 and response.json()["reload"] is True


def test_bad_requests_get_a_message_and_change_nothing(client, db, pdf_script):
    before = db.execute("SELECT COUNT(*) FROM label_events").fetchone()[0]
    bad = [{"client_event_id": uuid.uuid4().hex, "line_id": 1, "action": "label", "label": "villain!"}]
    response = client.post("/api/label/sync", json=body(db, events=bad), headers=HEADERS)
    assert response.status_code == 400 and "unknown label" in response.json()["error"]
    # A well-formed name the project's scheme does not have (a class removed after the page loaded) is
    # answered, not stored: the tab drops it instead of resending it for ever.
    gone = [{"client_event_id": uuid.uuid4().hex, "line_id": 1, "action": "label", "label": "villain"}]
    response = client.post("/api/label/sync", json=body(db, events=gone), headers=HEADERS)
    assert response.status_code == 200 and response.json()["results"][0]["status"] == "unknown_label"
    assert client.post("/api/label/sync", content=b"{not json", headers=HEADERS).status_code == 400
    no_name = client.post("/api/label/sync", json=body(db, annotator=" "), headers=HEADERS)
    assert no_name.status_code == 400 and "Annotator" in no_name.json()["error"]
    assert db.execute("SELECT COUNT(*) FROM label_events").fetchone()[0] == before


def test_jump_returns_the_line_or_says_what_exists(client, db, pdf_script):
    found = client.get("/api/label/jump", params={"script_id": pdf_script, "line_no": 2}, headers=HEADERS)
    assert found.status_code == 200 and found.json()["item"]["line_no"] == 2
    missing = client.get("/api/label/jump", params={"script_id": pdf_script, "page": 40}, headers=HEADERS)
    assert missing.status_code == 400 and "no page 40" in missing.json()["error"]
