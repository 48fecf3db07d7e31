"""Every page of the Streamlit app, driven by AppTest on a temporary database."""

from __future__ import annotations

import sys

import pytest

from conftest import REPO, SCREENPLAY_LINES, make_text_pdf
from labeling.ingest.pipeline import ingest_path
from store import labels as label_store
from store import models as model_store
from store import scripts as script_store
from store import sequences as sequence_store
from store.db import open_db

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # app_pages is imported as a package, as `streamlit run` makes it


@pytest.fixture
def app_db(db_path, tmp_path, monkeypatch):
    """A database holding one two-page PDF script; the app is pointed at it through the environment."""
    monkeypatch.setenv("SCRIPTLABEL_DB", str(db_path))
    monkeypatch.setenv("SCRIPTLABEL_SAMPLE", "0")
    monkeypatch.setenv("SCRIPTLABEL_RETRAIN_EVERY", "0")
    db = open_db(db_path)
    result = ingest_path(db, make_text_pdf(tmp_path / "lighthouse.pdf", pages=2))
    yield db, result.script_id
    db.close()


def open_page(page: str | None = None, *, annotator: str | None = "ana") -> AppTest:
    at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=60)
    if annotator:
        at.query_params["annotator"] = annotator
    at.run()
    if page:
        at.switch_page(f"app_pages/{page}.py")
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def button(at: AppTest, key: str):
    return at.button(key=key)


def table(at: AppTest, column: str):
    """The first dataframe on the page with this column (read-only tables carry no user key)."""
    for frame in at.dataframe:
        value = frame.value
        if column in value.columns:
            return value
    raise AssertionError(f"no table with a {column!r} column")


def test_scripts_page_lists_progress(app_db):
    db, script_id = app_db
    first = int(script_store.lines_frame(db, script_id)["line_id"][0])
    label_store.add_label(db, first, "scene_heading", annotator="ana")
    at = open_page("scripts")
    assert at.title[0].value == "Scripts"
    [row] = at.dataframe[0].value.to_dict("records")
    assert row["title"] == "Lighthouse" and row["lines"] == 20 and row["labeled"] == 1 and row["scene_heading"] == 1


def uploaders(at: AppTest) -> list:
    """The Scripts page's uploader (app_pages/uploader, a components v2 element) as AppTest sees it."""
    return [c for c in at.get("bidi_component") if c.proto.component_name == "scriptlabel_uploader"]


def test_scripts_page_mounts_the_streaming_uploader_and_reports_each_upload(app_db, tmp_path):
    import json

    from labeling.ingest import jobs as ingest_jobs
    from store import jobs as job_store
    from store.db import database_uid

    db, _ = app_db
    at = open_page("scripts")
    [mounted] = uploaders(at)  # the browser sends each chosen file to /api/upload (tests/test_upload_api.py)
    data = json.loads(mounted.proto.json)
    assert not at.get("file_uploader")  # Streamlit's own uploader would hold a file in the server's memory
    text = "INT. CLOCK SHOP - DAY\n\nTim winds a clock.\n\n                      TIM\n          Noon again.\n"
    other = "EXT. PIER - NIGHT\n\nGulls.\n"
    # what the route does with each file once streamed: one job per chosen file, however often it is sent
    for name, body, client_id in [("clock_shop.txt", text, "c-1"), ("pier.txt", other, "c-2"), ("pier.txt", other, "c-2")]:
        ingest_jobs.start_upload(db, name, body.encode(), client_id=client_id)
    uploads = [j for j in job_store.list_jobs(db) if j.file_name != "lighthouse.pdf"]
    assert sorted(j.file_name for j in uploads) == ["clock_shop.txt", "pier.txt"]
    _wait_for_jobs(db)  # the uploads run in background processes
    at.run()
    assert not at.exception and not at.error
    shown = " ".join(s.value for s in at.success)
    assert "Clock Shop" in shown and "4 lines" in shown and "Pier" in shown
    assert sorted(s.title for s in script_store.list_scripts(db)) == ["Clock Shop", "Lighthouse", "Pier"]
    assert "Clock Shop" in table(at, "title")["title"].tolist()
    # the page's database, the person and the limits go to the browser (the route checks them again)
    assert (data["database"], data["annotator"], data["api"]) == (database_uid(db), "ana", "/api/upload")
    assert (data["max_pages"], data["max_bytes"]) == (600, 1024 * 2**20)


def _wait_for_jobs(db, timeout_s: float = 90.0) -> None:
    import time

    from store import jobs as job_store

    deadline = time.monotonic() + timeout_s
    while job_store.list_jobs(db, active_only=True):
        assert time.monotonic() < deadline, "the upload job did not finish"
        time.sleep(0.2)


def test_scripts_page_shows_running_uploads_with_progress(app_db):
    import os

    from store import jobs as job_store

    db, _ = app_db
    job_id = job_store.create_job(db, file_name="long_scan.pdf", pid=os.getpid())  # alive: this process
    job_store.start_job(db, job_id)
    job_store.job_progress(db, job_id, 2, 5)
    at = open_page("scripts")
    [bar] = [p for p in at.get("progress") if "long\\\\_scan.pdf" in str(p.proto)]  # escaped: shown as typed
    assert "page 2 of 5" in str(bar.proto)
    job_store.fail_job(db, job_id, error="long_scan.pdf: a page is damaged; print it to a new PDF")
    at.run()
    assert any("a page is damaged" in e.value for e in at.error)


def test_a_database_from_a_newer_version_is_a_message_not_a_traceback(app_db, db_path):
    db, _ = app_db
    with db.atomic():
        db.execute("INSERT INTO _sqlite_migrations(migration_set, name, applied_at) "
                   "VALUES ('scriptlabel', '9000_from_the_future', 'later')")
    at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=60)
    at.run()
    assert not at.exception and "newer version of scriptlabel" in at.error[0].value


def test_scripts_page_shows_ingest_errors_and_changes_nothing(app_db):
    from labeling.ingest import jobs as ingest_jobs

    db, _ = app_db
    at = open_page("scripts")
    ingest_jobs.start_upload(db, "broken.pdf", b"%PDF-1.4 not a pdf at all", client_id="broken-1")
    _wait_for_jobs(db)
    at.run()
    assert at.error and "broken.pdf" in at.error[0].value
    assert "/tmp" not in at.error[0].value and "--" not in at.error[0].value  # written for the app
    assert len(script_store.list_scripts(db)) == 1


def test_scripts_page_deletes_only_after_confirmation(app_db):
    db, script_id = app_db
    at = open_page("scripts")
    button(at, "delete").click()
    at.run()
    assert "cannot be undone" in at.warning[0].value
    button(at, "delete_cancel").click()
    at.run()
    assert len(script_store.list_scripts(db)) == 1
    button(at, "delete").click()
    at.run()
    button(at, "delete_confirm").click()
    at.run()
    assert script_store.list_scripts(db) == []
    assert at.info and "No scripts yet" in at.info[0].value


def label_view_data(at: AppTest) -> dict:
    """What the Label page hands the browser-side view (the component's JSON data)."""
    import json

    [view] = [node for node in at.main.children.values() if getattr(node, "type", "") == "bidi_component"]
    assert view.proto.component_name == "scriptlabel_label_view"
    return json.loads(view.proto.json)


def test_label_page_asks_for_a_name_first(app_db):
    at = open_page("label", annotator=None)
    assert at.text_input(key="label_name").label == "Your name"  # a way in on the page itself
    at.sidebar.text_input(key="annotator").set_value("bea")
    at.run()
    assert label_view_data(at)["annotator"] == "bea"
    assert at.query_params["annotator"] == ["bea"] or at.query_params["annotator"] == "bea"


def test_label_page_hands_the_view_this_database_the_script_and_the_order(app_db, tmp_path):
    db, script_id = app_db
    other = ingest_path(db, make_text_pdf(tmp_path / "second.pdf")).script_id
    at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=60)
    at.query_params.update({"annotator": "ana", "script": str(other), "order": "script"})
    at.run()
    at.switch_page("app_pages/label.py")
    at.run()
    assert not at.exception
    data = label_view_data(at)
    from store.db import database_uid

    assert (data["database"], data["annotator"], data["script_id"], data["strategy"]) == (
        database_uid(db), "ana", other, "script")
    assert data["keys"]["c"] == "character" and data["api"] == "/api/label"
    # the chosen script is one setting for every page, shown by title
    assert at.sidebar.selectbox(key="script").value == other
    at.switch_page("app_pages/script_view.py")
    at.run()
    assert at.sidebar.selectbox(key="script").value == other
    at.sidebar.selectbox(key="script").set_value(0)  # "All scripts"
    at.switch_page("app_pages/label.py")
    at.run()
    assert label_view_data(at)["script_id"] is None


def test_label_page_survives_its_script_being_deleted(app_db, tmp_path):
    db, script_id = app_db
    other = ingest_path(db, make_text_pdf(tmp_path / "second.pdf")).script_id
    at = open_page("label")
    at.sidebar.selectbox(key="script").set_value(script_id)
    at.run()
    assert label_view_data(at)["script_id"] == script_id
    script_store.delete_script(db, script_id)
    at.run()
    assert not at.exception
    assert label_view_data(at)["script_id"] is None
    assert any(f"(#{other})" in option for option in at.sidebar.selectbox(key="script").options)


def test_script_view_shows_lines_filters_and_relabels(app_db):
    db, script_id = app_db
    at = open_page("script_view")
    table = at.dataframe(key="view_table").value
    assert list(table["text"]) == [t for t, _, _ in SCREENPLAY_LINES]  # page 1
    assert "whole script" in at.image[0].captions[0]  # the label strip
    at.text_input(key="view_search").set_value("late again")
    at.run()
    assert list(at.dataframe(key="view_table").value["line_no"]) == [5, 15]
    at.session_state["view_table"] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    at.run()
    button(at, "key_dialogue").click()
    at.run()
    line_id = int(script_store.lines_frame(db, script_id).set_index("line_no").loc[5, "line_id"])
    assert label_store.label_history(db, line_id)[-1]["label"] == "dialogue"
    assert at.dataframe(key="view_table").value["shown"].iloc[0] == "dialogue"


def test_sequences_page_rates_with_number_keys(app_db):
    db, script_id = app_db
    at = open_page("sequences")
    current = at.session_state["seq_current"]
    assert at.subheader[0].value.startswith("sq0010")
    assert list(at.dataframe(key="seq_table").value["code"]) == ["sq0010", "sq0020", "sq0030", "sq0040"]
    button(at, "rate_4").click()
    at.run()
    ratings = sequence_store.current_ratings(db, script_id=script_id)
    assert ratings.set_index("sequence_id").loc[current, "value"] == 4
    assert at.session_state["seq_current"] != current  # moved on to the next unrated one
    at.selectbox(key="seq_department").set_value("fx")
    at.run()
    button(at, "rate_2").click()
    at.run()
    assert len(sequence_store.current_ratings(db, department="fx", script_id=script_id)) == 1


def test_sequences_page_merges_renames_splits_and_undoes(app_db, db_path):
    """Split, merge and Undo are elements that post to the app's own route (tests/test_sequence_api.py and,
    clicked in Chromium, tests/test_browser_sequences.py); the page mounts them with the sequence and the
    version it shows, and says what happened, with Undo, once an edit is made."""
    import app_builders as builders

    db, script_id = app_db
    at = open_page("sequences")
    first = sequence_store.list_sequences(db, script_id)[0]
    second = sequence_store.list_sequences(db, script_id)[1]
    [editor] = [c for c in builders.sequence_edit_controls(at) if c["mode"] == "edit"]
    assert editor["sequence"] == {"sequence_id": first.sequence_id, "version": 1, "code": first.code,
                                  "first_line_no": first.first_line_no, "last_line_no": first.last_line_no}
    assert editor["next"]["code"] == second.code and editor["api"] == "/api/sequences/edit"
    merge = builders.post_sequence_edit(db, db_path, "merge", sequence_id=first.sequence_id, version=1)
    at.session_state["seq_edit_notice"] = merge["edit"]["edit_id"]  # what the element reports to the page
    at.run()
    assert len(sequence_store.list_sequences(db, script_id)) == 3
    notice = " ".join(s.value for s in at.success)
    assert f"into {first.code}" in notice and "Merged" in notice  # what happened, with Undo beside it
    assert {"mode": "undo", "edit_id": merge["edit"]["edit_id"]}.items() <= [
        c for c in builders.sequence_edit_controls(at) if c["mode"] == "undo"][0].items()
    [editor] = [c for c in builders.sequence_edit_controls(at) if c["mode"] == "edit"]
    assert editor["sequence"]["version"] == 2 and editor["sequence"]["last_line_no"] == second.last_line_no

    form = [t for t in at.text_input if t.label == "Title"][0]
    form.set_value("Tim Time")
    [t for t in at.text_input if t.label == "Code"][0].set_value("sq0400")
    [b for b in at.button if b.label == "Rename"][0].click()
    at.run()
    renamed = sequence_store.get_sequence(db, first.sequence_id)
    assert (renamed["code"], renamed["title"]) == ("sq0400", "Tim Time")

    split = builders.post_sequence_edit(db, db_path, "split", sequence_id=first.sequence_id, version=3,
                                        at_line_no=first.first_line_no + 2, title="The Storm")
    at.session_state["seq_edit_notice"] = split["edit"]["edit_id"]
    at.session_state["seq_current"] = split["show"]
    at.run()
    assert f"Split sq0400 at line {first.first_line_no + 2} → sq0400A “The Storm”" in " ".join(
        s.value for s in at.success)
    assert len(sequence_store.list_sequences(db, script_id)) == 4
    assert "sq0400A" in at.subheader[0].value  # the page shows the new sequence, ready to name or rate
    builders.post_sequence_edit(db, db_path, "undo", edit_id=split["edit"]["edit_id"])
    at.run()
    assert len(sequence_store.list_sequences(db, script_id)) == 3
    assert any("Undone: split sq0400" in i.value for i in at.info)
    assert not at.exception


def test_script_page_bulk_accepts_a_page_refuses_a_stale_version_and_undoes(app_db):
    import app_builders as builders

    db, script_id = app_db
    builders.predict(db, script_id, label="dialogue", confidence=0.995)
    at = open_page("script_view")
    at.radio(key="accept_scope").set_value("one page")
    at.selectbox(key="accept_page").set_value(2)
    at.run()
    text = " ".join(m.value for m in at.markdown)
    # page 2: 10 lines, the two INT./EXT. headings left to their rule; 8 × (1 − 0.995) expected errors
    assert "**8 lines** on page 2 · expected errors **0.04**" in text and "**v1**" in text
    v2 = builders.predict(db, script_id, label="dialogue", confidence=0.995)  # a retrain since the preview
    button(at, "accept_confirm").click()
    at.run()
    assert any(f"came from model v1, but v{v2} is current" in e.value for e in at.error)
    assert db.execute("SELECT COUNT(*) FROM label_events").fetchone()[0] == 0
    assert f"**v{v2}**" in " ".join(m.value for m in at.markdown)
    button(at, "accept_confirm").click()
    at.run()
    assert any("Accepted 8 suggestions" in s.value for s in at.success) and not at.exception
    effective = label_store.effective_labels(db, script_id)
    assert (effective["label_source"] == "accepted").sum() == 8
    [batch] = label_store.accept_batches(db, script_id)
    assert (batch.page, batch.model_version, batch.lines) == (2, v2, 8)
    assert "**0 lines**" in " ".join(m.value for m in at.markdown)
    button(at, f"accept_undo_{batch.batch_id}").click()
    at.run()
    assert label_store.accept_batches(db, script_id)[0].undone_at is not None
    assert "accepted" not in set(label_store.effective_labels(db, script_id)["label_source"])
    assert "**8 lines**" in " ".join(m.value for m in at.markdown) and not at.exception


def test_models_page_shows_versions_and_rolls_back(app_db):
    db, script_id = app_db
    at = open_page("models")
    [v0] = table(at, "why").to_dict("records")
    assert (v0["version"], v0["status"]) == (0, "current") and "ships with" in v0["why"]
    assert "Suggestions now come from v0" in " ".join(i.value for i in at.info)
    assert "The shipped model learned from" in " ".join(m.value for m in at.markdown)
    assert "No model yet" not in " ".join(i.value for i in at.info)
    v1 = model_store.register_version(db, kind="lines", path="a", metrics={}, n_labels=10)
    v2 = model_store.register_version(db, kind="lines", path="b", metrics={}, n_labels=20)
    ids = list(script_store.lines_frame(db, script_id)["line_id"])
    label_store.add_label(db, ids[0], "action", annotator="ana")
    label_store.add_label(db, ids[0], "dialogue", annotator="bob")
    at = open_page("models")
    versions = table(at, "why")
    assert list(versions["version"]) == [v2, v1, 0] and list(versions["status"]) == ["current", "previous", "previous"]
    assert any("Team page" in c.value for c in at.caption)  # agreement moved there (tests/test_team_page.py)
    at.selectbox(key="model_version").set_value(v1)
    at.run()
    assert "roll back: pins it" in button(at, "rollback").label
    button(at, "rollback").click()
    at.run()
    assert model_store.current_version(db).version == v1 and model_store.get_pin(db)["version"] == v1
    assert "Suggestions now come from v1**" in " ".join(i.value for i in at.info)
    assert any(f"v{v1} is pinned" in w.value for w in at.warning)
    assert table(at, "why").set_index("version").loc[v1, "pinned"]
    v3 = model_store.register_version(db, kind="lines", path="c", metrics={}, n_labels=30, make_current=False,
                                      promotion={"decision": "candidate", "reason": f"v{v1} is pinned as current"})
    at.run()
    assert at.selectbox(key="model_version").value == v3  # a new version is shown, not the old pick
    assert table(at, "why").set_index("version").loc[v3, "status"] == "candidate"
    button(at, "unpin_lines").click()
    at.run()
    assert model_store.get_pin(db) is None and not any("pinned" in w.value for w in at.warning)
    at.selectbox(key="model_version").set_value(v1)
    at.run()
    assert model_store.is_pinned(db, v1)  # the version rolled back to is also kept from pruning
    at.toggle(key=f"pin_{v1}_1").set_value(False)
    at.run()
    assert not model_store.is_pinned(db, v1) and not at.exception


def test_models_page_retrain_button_queues_a_run(app_db, monkeypatch):
    calls = []

    def fake_request(db_path, **kwargs):
        calls.append((str(db_path), kwargs))
        return 7

    monkeypatch.setattr("labeling.training.runs.request_training", fake_request)
    at = open_page("models")
    button(at, "retrain_lines").click()
    at.run()
    assert calls == [(str(app_db[0].execute("PRAGMA database_list").fetchone()[2]), {"kind": "lines"})]


def test_export_page_offers_every_format(app_db):
    db, script_id = app_db
    at = open_page("export")
    assert at.download_button(key="export_download").label == "Download csv"
    assert "20 lines" in at.caption[0].value and "exactly as stored" in at.caption[0].value
    at.selectbox(key="export_format").set_value("xlsx")
    at.run()
    assert at.download_button(key="export_download").label == "Download xlsx"
    assert "nothing runs as a formula" in at.caption[0].value
    at.selectbox(key="export_format").set_value("fountain")
    at.sidebar.selectbox(key="script").set_value(0)  # all scripts
    at.run()
    assert "one script" in at.warning[0].value
    at.sidebar.selectbox(key="script").set_value(script_id)
    at.run()
    assert at.download_button(key="export_download").label == "Download fountain"
    at.toggle(key="export_human").set_value(True)
    at.run()
    assert "0 lines" in at.caption[0].value


def test_models_page_reports_a_failed_run(app_db):
    db, _ = app_db
    run_id = model_store.create_run(db, kind="lines")
    model_store.fail_run(db, run_id, error="not enough labels: label at least 20 lines")
    at = open_page("models")
    assert "not enough labels" in at.warning[0].value.lower()


def test_first_start_loads_the_sample_into_an_empty_database(db_path, monkeypatch):
    from conftest import SAMPLE_DIR

    if not (SAMPLE_DIR / "tim_time.pdf").exists():
        pytest.skip("the sample screenplay is not built yet")
    monkeypatch.setenv("SCRIPTLABEL_DB", str(db_path))
    monkeypatch.setenv("SCRIPTLABEL_SAMPLE", "1")
    at = open_page("scripts")
    [row] = at.dataframe[0].value.to_dict("records")
    assert row["title"] == "Tim Time" and row["lines"] > 500


def test_no_sample_when_switched_off(db_path, monkeypatch):
    monkeypatch.setenv("SCRIPTLABEL_DB", str(db_path))
    monkeypatch.setenv("SCRIPTLABEL_SAMPLE", "0")
    at = open_page("label")
    assert "No scripts yet" in at.info[0].value
    assert script_store.list_scripts(open_db(db_path)) == []


def test_sequences_page_shows_predictions_most_uncertain_first(app_db):
    db, script_id = app_db
    ids = [s.sequence_id for s in sequence_store.list_sequences(db, script_id)]
    sequence_store.save_sequence_predictions(db, 5, "overall", [
        {"sequence_id": sid, "value": 3, "expected": 2.8, "uncertainty": u, "probs": {"3": 0.6}}
        for sid, u in zip(ids, [0.1, 0.7, 0.3, 0.2])])
    at = open_page("sequences")
    assert at.session_state["seq_current"] == ids[1]
    predicted = [m for m in at.metric if m.label == "Predicted"][0]
    assert predicted.value == "2.8 ± 0.70"


def test_models_page_shows_a_complexity_comparison(app_db):
    db, _ = app_db
    metrics = {"department": "fx", "n_sequences": 12, "winner": "ridge", "verdict": "no better than the baseline",
               "cv": {"majority": {"accuracy": 0.5, "mae": 0.6, "qwk": 0.0, "ci95": {}},
                      "ridge": {"accuracy": 0.55, "mae": 0.5, "qwk": 0.2, "ci95": {}}}}
    version = model_store.register_version(db, kind="complexity", department="fx", path="c", metrics=metrics,
                                           n_labels=12)
    at = open_page("models")
    at.selectbox(key="model_version").set_value(version)
    at.run()
    assert list(table(at, "qwk")["model"]) == ["ridge", "majority"]
    assert table(at, "macro_f1").set_index("version").loc[version, "accuracy"] == 0.55


def test_sequences_page_shows_the_text_pages_similar_and_undoes(app_db):
    db, script_id = app_db
    at = open_page("sequences")
    current = at.session_state["seq_current"]
    [block] = [c for c in at.code if "LIGHTHOUSE" in c.value]
    assert block.value.splitlines()[0] == "INT. LIGHTHOUSE KITCHEN - NIGHT"
    assert any(line.startswith(" " * 22 + "MARGO") for line in block.value.splitlines())
    # page thumbnails, from the app's own page route (it checks the session and restricted scripts)
    assert any(f'src="/api/label/page/{script_id}/1"' in m.value and "page 1" in m.value for m in at.markdown)
    similar = table(at, "similarity")
    assert len(similar) == 3 and "rating" in similar.columns  # the other three sequences of the script
    assert at.button(key="rate_3").label == "3 · moderate"
    assert at.button(key="seq_undo").disabled  # nothing rated yet
    button(at, "rate_3").click()
    at.run()
    at.session_state["seq_current"] = current
    at.run()
    assert not at.button(key="seq_undo").disabled
    button(at, "seq_undo").click()
    at.run()
    assert sequence_store.current_ratings(db, script_id=script_id).empty
    assert db.execute("SELECT COUNT(*) FROM sequence_ratings").fetchone()[0] == 2  # the rating and its undo
    assert not at.exception


def test_export_page_exports_sequences(app_db):
    db, script_id = app_db
    sequence_store.add_rating(db, sequence_store.list_sequences(db, script_id)[0].sequence_id, 4, annotator="ana")
    at = open_page("export")
    at.radio(key="export_what").set_value("sequences")
    at.run()
    assert not at.exception
    assert at.download_button(key="export_seq_download").label == "Download sequences csv"
    preview = table(at, "department")
    assert len(preview) == 4 * len(sequence_store.departments(db))
    at.toggle(key="export_seq_rated").set_value(True)
    at.run()
    assert list(table(at, "department")["rating"]) == [4]


def test_home_gives_a_way_in_then_progress_continue_model_state_and_ratings_waiting(app_db):
    db, script_id = app_db
    at = open_page(annotator=None)
    assert at.title[0].value == "Home"
    at.text_input(key="home_name").set_value("ana").run()  # the name, right there on the first screen
    assert at.text_input(key="annotator").value == "ana"
    text = " ".join(m.value for m in at.markdown)
    assert "Start labeling “Lighthouse”" in text  # nothing labeled yet
    assert any("0 of 20 lines labeled" in str(p.proto) for p in at.get("progress"))
    assert any("shipped model" in i.value for i in at.info)
    assert "of 4 sequences** of “Lighthouse” have no overall complexity rating" in text

    first = int(script_store.lines_frame(db, script_id)["line_id"][0])
    label_store.add_label(db, first, "scene_heading", annotator="ana")
    for sequence in sequence_store.list_sequences(db, script_id):
        sequence_store.add_rating(db, sequence.sequence_id, 3, annotator="ana")
    at.run()
    text = " ".join(m.value for m in at.markdown)
    assert "Continue labeling “Lighthouse”" in text and f"script={script_id}" in " ".join(c.value for c in at.caption)
    assert "no overall complexity rating" not in text  # nothing waiting any more
    assert any("1 of 20 lines labeled" in str(p.proto) for p in at.get("progress"))
    button(at, "home_label").click().run()
    assert not at.exception


def test_label_page_without_a_name_asks_for_it_right_there(app_db):
    at = open_page("label", annotator=None)
    at.text_input(key="label_name").set_value("ben").run()
    assert at.text_input(key="annotator").value == "ben" and not at.exception
    assert label_view_data(at)["annotator"] == "ben"  # the view is mounted, ready for keys
