"""Leads restructure, annotators label: sequence rename/merge/split, departments, bulk-accept and the
overlap setting are refused to annotators in the library and in the pages, and every change lands in the
audit log with who, what, before and after (labeling/sequences/edits.py, labeling/session/bulk_accept.py)."""

from __future__ import annotations

import json
import sys

import pytest

import app_builders
from conftest import REPO, make_text_pdf
from labeling.accounts.access import Identity, PermissionDeniedError
from labeling.ingest.pipeline import ingest_path
from labeling.sequences import edits
from labeling.session import bulk_accept
from labeling.team import overlap
from store import accounts
from store import labels as label_store
from store import sequences as sequence_store
from store.db import open_db

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

LEAD = Identity("lee", "lead", "local")
ANNOTATOR = Identity("ana", "annotator", "local")


def _audit(db, action: str) -> list[dict]:
    return [{**row, "detail": json.loads(row["detail"])} for row in accounts.audit_log(db) if row["action"] == action]


@pytest.fixture
def sequences(db, tmp_path) -> list[int]:
    app_builders.pdf_script(db, tmp_path, pages=2)
    ids = [s.sequence_id for s in sequence_store.list_sequences(db)]
    assert len(ids) >= 2
    return ids


def test_an_annotator_cannot_restructure_in_the_library_and_nothing_changes(db, sequences):
    before = [(s.code, s.first_line_no, s.last_line_no) for s in sequence_store.list_sequences(db)]
    first = sequence_store.get_sequence(db, sequences[0])
    for change in (lambda who: edits.rename(db, who, sequences[0], code="sq9999", title="Mine"),
                   lambda who: edits.merge_with_next(db, who, sequences[0]),
                   lambda who: edits.split(db, who, sequences[0], first["first_line_no"] + 1),
                   lambda who: edits.add_department(db, who, "crowd"),
                   lambda who: overlap.set_overlap(db, who, share=0.2)):
        with pytest.raises(PermissionDeniedError, match="lead"):
            change(ANNOTATOR)
    assert [(s.code, s.first_line_no, s.last_line_no) for s in sequence_store.list_sequences(db)] == before
    assert "crowd" not in sequence_store.departments(db) and overlap.get_overlap(db).share == 0.0
    assert accounts.audit_log(db) == []


def test_a_lead_restructures_and_each_change_is_audited_with_before_and_after(db, sequences):
    first, second = (sequence_store.get_sequence(db, i) for i in sequences[:2])
    edits.rename(db, LEAD, sequences[0], code="sq0400", title="Tim Time")
    [renamed] = _audit(db, "sequence_rename")
    assert renamed["actor"] == "lee" and renamed["detail"]["before"] == {"code": first["code"], "title": first["title"]}
    assert renamed["detail"]["after"] == {"code": "sq0400", "title": "Tim Time"}
    sequence_store.add_rating(db, sequences[1], 3, department="overall", annotator="ana")
    merged = edits.merge_with_next(db, LEAD, sequences[0])
    [merge] = _audit(db, "sequence_merge")
    assert [span["code"] for span in merge["detail"]["before"]] == ["sq0400", second["code"]]
    assert merge["detail"]["after"][0]["last_line_no"] == second["last_line_no"]
    assert merge["detail"]["ratings_moved"] == 1 and merge["detail"]["lines_moved"] > 0
    new_id = edits.split(db, LEAD, merged, second["first_line_no"])
    [split] = _audit(db, "sequence_split")
    assert [s["sequence_id"] for s in split["detail"]["after"]] == [merged, new_id]
    assert split["detail"]["after"][1]["first_line_no"] == second["first_line_no"]
    edits.add_department(db, LEAD, "Crowd")
    edits.add_department(db, LEAD, "crowd")  # already there: nothing to log
    [department] = _audit(db, "department_add")
    assert "crowd" not in department["detail"]["before"] and "crowd" in department["detail"]["after"]


def test_bulk_accept_is_a_leads_and_audited(db, tmp_path):
    script_id = app_builders.pdf_script(db, tmp_path, pages=1)
    app_builders.predict(db, script_id, confidence=0.9)
    preview = bulk_accept.preview(db, script_id, above=0.5)
    with pytest.raises(PermissionDeniedError):
        bulk_accept.accept(db, ANNOTATOR, script_id, above=0.5, model_version_seen=preview.model_version,
                           batch_id="accept-role-0001")
    assert label_store.accept_batches(db) == []
    batch = bulk_accept.accept(db, LEAD, script_id, above=0.5, model_version_seen=preview.model_version,
                               batch_id="accept-role-0001")
    with pytest.raises(PermissionDeniedError):
        bulk_accept.undo(db, ANNOTATOR, batch.batch_id)
    bulk_accept.undo(db, LEAD, batch.batch_id)
    [accepted] = _audit(db, "bulk_accept")
    assert accepted["actor"] == "lee" and accepted["detail"]["lines"] == preview.lines
    assert accepted["detail"]["after"]["accepted"] == preview.by_label
    assert _audit(db, "bulk_accept_undo")[0]["detail"]["after"] == {"accepted": 0}


# --- the pages -------------------------------------------------------------------------------------

@pytest.fixture
def app_db(db_path, tmp_path, monkeypatch):
    monkeypatch.setenv("SCRIPTLABEL_DB", str(db_path))
    monkeypatch.setenv("SCRIPTLABEL_SAMPLE", "0")
    monkeypatch.setenv("SCRIPTLABEL_RETRAIN_EVERY", "0")
    monkeypatch.chdir(tmp_path)  # no .streamlit/secrets.toml
    db = open_db(db_path)
    result = ingest_path(db, make_text_pdf(tmp_path / "lighthouse.pdf", pages=2), title="Lighthouse")
    accounts.add_user(db, "ann@studio.example", role="annotator")
    accounts.add_user(db, "lee@studio.example", role="lead")
    accounts.add_user(db, "boss@studio.example", role="admin")
    yield db, result.script_id
    db.close()


def run(page: str, email: str) -> AppTest:
    at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=60)
    at.user = {"is_logged_in": True, "email": email, "name": email.split("@")[0]}
    at.run()
    at.switch_page(f"app_pages/{page}.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _keys(at) -> set[str]:
    return {b.key for b in at.button}


def test_the_sequences_page_offers_restructuring_to_leads_only(app_db):
    db, script_id = app_db
    at = run("sequences", "ann@studio.example")
    assert "seq_add_department" not in _keys(at) and not app_builders.sequence_edit_controls(at)
    assert not [t for t in at.text_input if t.label == "Code"]  # no rename form
    assert any("Leads rename, split and merge" in c.value for c in at.caption)
    at = run("sequences", "lee@studio.example")
    assert "seq_add_department" in _keys(at)
    [editor] = app_builders.sequence_edit_controls(at)
    assert editor["mode"] == "edit" and editor["session"]  # an OIDC lead's view sends her session token
    # the route checks the role again whatever the page showed (tests/test_sequence_api.py)


def test_the_script_page_refuses_bulk_accept_to_annotators(app_db):
    db, script_id = app_db
    at = run("script_view", "ann@studio.example")
    confirm = [b for b in at.button if b.key == "accept_confirm"]
    assert all(b.disabled for b in confirm)
    at = run("script_view", "lee@studio.example")
    assert all(not b.disabled or "0 suggestions" in b.label for b in at.button if b.key == "accept_confirm")


def test_the_team_page_shows_agreement_and_a_lead_settles_with_a_button(app_db):
    db, script_id = app_db
    from store import scripts as script_store

    ids = list(script_store.lines_frame(db, script_id)["line_id"])[:3]
    for line_id, (a, b) in zip(ids, [("action", "action"), ("dialogue", "dialogue"), ("action", "character")]):
        label_store.add_label(db, line_id, a, annotator="ann@studio.example")
        label_store.add_label(db, line_id, b, annotator="bob@studio.example")
    assert not _registered_for(db, "ann@studio.example", "team") and _registered_for(db, "lee@studio.example", "team")
    at = run("team", "lee@studio.example")
    pairs = next(f.value for f in at.dataframe if "ci95" in f.value.columns)
    assert (pairs.loc[0, "n"], pairs.loc[0, "agreement"]) == (3, pytest.approx(2 / 3, abs=1e-4))
    assert any(m.label == "Lines overlapped" and m.value == "3" for m in at.metric)
    at.button(key="adjudicate_character").click()
    at.run()
    assert not at.exception
    effective = label_store.effective_labels(db, script_id).set_index("line_id").loc[ids[2]]
    assert (effective["label"], effective["label_source"]) == ("character", "adjudicated")
    assert any("No line waits for a decision" in c.value for c in at.caption)
    [seq] = [q.sequence_id for q in sequence_store.list_sequences(db, script_id)][:1]
    sequence_store.add_rating(db, seq, 2, department="overall", annotator="ann@studio.example")
    sequence_store.add_rating(db, seq, 4, department="overall", annotator="bob@studio.example")
    at.radio(key="adjudicate_mode").set_value("ratings")
    at.run()
    assert any("1 sequence waits for a decision" in c.value for c in at.caption)
    at.button(key="adjudicate_rate_3").click()
    at.run()
    rating = sequence_store.current_ratings(db, department="overall").set_index("sequence_id").loc[seq]
    assert (rating["value"], rating["annotator"]) == (3, "lee@studio.example")
    at.number_input(key="overlap_share").set_value(0.25)
    at.run()
    at.button(key="overlap_save").click()
    at.run()
    assert overlap.get_overlap(db).share == 0.25 and _audit(db, "overlap")[0]["actor"] == "lee@studio.example"


def _registered_for(db, email, page) -> bool:
    at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=60)
    at.user = {"is_logged_in": True, "email": email, "name": email.split("@")[0]}
    at.run()
    try:
        at.switch_page(f"app_pages/{page}.py")
    except ValueError:
        return False
    return True


def test_an_admin_adds_a_person_and_sees_the_temporary_password_once(app_db):
    db, script_id = app_db
    at = run("users", "boss@studio.example")
    at.text_input(key="user_add_name").set_value("dee")
    at.selectbox(key="user_add_role").set_value("annotator")
    at.button(key="user_add_submit").click()
    at.run()
    assert not at.exception
    [shown] = [c.value for c in at.code]
    assert accounts.authenticate(db, "dee", shown).role == "annotator"
    at.run()
    assert shown not in [c.value for c in at.code]  # once
    at.selectbox(key="assign_person").set_value("dee")
    at.button(key="assign_apply").click()
    at.run()
    from store import team as team_store

    assert [(a["name"], a["script_id"], a["page"]) for a in team_store.assignments(db)] == [("dee", script_id, None)]
    assert [a["action"] for a in accounts.audit_log(db)][:2] == ["assign", "user_add"]
