"""The labeling view's server side: events applied to their own line, once; batches per tab."""

from __future__ import annotations

import uuid

import pytest

import app_builders as builders
from labeling.session import sync as label_sync
from labeling.session.sync import BadEventError, ClientEvent, SyncRequest
from labeling.session.queue import identical_key
from store import flags as flag_store
from store import labels as label_store
from store import scripts as script_store
from store.scripts import delete_script


def _id() -> str:
    return uuid.uuid4().hex


def label_event(line_id: int, label: str = "action", **extra) -> dict:
    return {"client_event_id": _id(), "line_id": line_id, "action": "label", "label": label, **extra}


def request(annotator="ana", tab="tab-aaaaaaaa", **fields) -> SyncRequest:
    raw = {"annotator": annotator, "tab": tab, **fields}
    return SyncRequest.parse(raw)


def test_an_event_labels_exactly_its_line_and_a_resend_stores_nothing(db, pdf_script):
    ids = list(script_store.lines_frame(db, pdf_script)["line_id"])
    event = label_event(ids[3], "dialogue")
    first = label_sync.sync(db, request(events=[event]))
    again = label_sync.sync(db, request(events=[event]))  # the response was lost: the tab sends it again
    assert first["results"][0]["status"] == "stored" and first["results"][0]["line_ids"] == [ids[3]]
    assert again["results"][0]["status"] == "duplicate"
    history = label_store.label_history(db, ids[3])
    assert [(e["label"], e["annotator"], e["client_event_id"]) for e in history] == [
        ("dialogue", "ana", event["client_event_id"])]
    assert all(not label_store.label_history(db, i) for i in ids if i != ids[3])


def test_events_keep_the_suggestion_and_version_the_person_saw_even_when_stale(db, pdf_script):
    ids = list(script_store.lines_frame(db, pdf_script)["line_id"])
    builders.predict(db, pdf_script, label="action")
    newer = builders.predict(db, pdf_script, label="dialogue")  # a retrain landed while the tab showed v-old
    label_sync.sync(db, request(events=[label_event(ids[0], "character", model_version_shown=newer - 1,
                                                    suggestion_shown="action", shown_at="2026-11-29T08:00:00Z")]))
    [row] = label_store.label_history(db, ids[0])
    assert (row["suggested"], row["suggested_version"], row["shown_at"]) == ("action", newer - 1, "2026-11-29T08:00:00Z")
    assert label_store.labels_of_lines(db, [ids[0]])[ids[0]]["label"] == "character"


def test_an_event_for_a_deleted_line_is_answered_and_stores_nothing(db, pdf_script, tmp_path):
    ids = list(script_store.lines_frame(db, pdf_script)["line_id"])
    delete_script(db, pdf_script)
    response = label_sync.sync(db, request(events=[label_event(ids[0])]))
    assert response["results"][0]["status"] == "line_gone"
    assert db.execute("SELECT COUNT(*) FROM label_events").fetchone()[0] == 0


def test_undo_names_the_label_it_takes_back_and_is_idempotent(db, pdf_script):
    ids = list(script_store.lines_frame(db, pdf_script)["line_id"])
    give = label_event(ids[1], "action")
    later = label_event(ids[2], "dialogue")
    undo = {"client_event_id": _id(), "line_id": ids[1], "action": "undo", "undoes": give["client_event_id"]}
    label_sync.sync(db, request(events=[give, later, undo]))
    again = label_sync.sync(db, request(events=[undo]))
    assert again["results"][0]["status"] == "duplicate"
    assert label_store.labels_of_lines(db, ids[1:3]) == {ids[2]: {"label": "dialogue", "source": "human",
                                                                  "annotator": "ana"}}
    # someone else's label cannot be undone by naming it
    other = label_event(ids[3], "other")
    label_sync.sync(db, request(annotator="bob", events=[other]))
    stolen = {"client_event_id": _id(), "line_id": ids[3], "action": "undo", "undoes": other["client_event_id"]}
    assert label_sync.sync(db, request(events=[stolen]))["results"][0]["status"] == "nothing_to_undo"
    assert label_store.labels_of_lines(db, [ids[3]])[ids[3]]["label"] == "other"


def test_text_edits_and_flags_are_bound_to_their_line_and_applied_once(db, pdf_script):
    lines = script_store.lines_frame(db, pdf_script)
    target, other = int(lines["line_id"][4]), int(lines["line_id"][5])
    original = lines["text"][4]
    edit = {"client_event_id": _id(), "line_id": target, "action": "edit", "text": "You're late again, Tim!"}
    flag = {"client_event_id": _id(), "line_id": target, "action": "flag", "flag": "bad_ocr", "note": "smudged"}
    label_sync.sync(db, request(events=[edit, flag]))
    label_sync.sync(db, request(events=[edit, flag]))
    line = script_store.get_line(db, target)
    assert line["text"] == "You're late again, Tim!" and line["original_text"] == original
    assert db.execute("SELECT COUNT(*) FROM text_edits").fetchone()[0] == 1
    assert script_store.get_line(db, other)["text"] == lines["text"][5]
    flags = flag_store.current_flags(db, pdf_script)
    assert flags.to_dict("records") == [{"line_id": target, "flag": "bad_ocr", "flag_note": "smudged",
                                         "flagged_by": "ana"}]
    label_sync.sync(db, request(events=[{"client_event_id": _id(), "line_id": target, "action": "flag",
                                         "flag": "cleared"}]))
    assert flag_store.current_flags(db, pdf_script).empty


@pytest.mark.parametrize("raw, problem", [
    ({"client_event_id": "short", "line_id": 1, "action": "label", "label": "action"}, "client_event_id"),
    ({"client_event_id": "a" * 12, "line_id": 1, "action": "explode"}, "unknown action"),
    ({"client_event_id": "a" * 12, "line_id": 1, "action": "label", "label": "villain!"}, "unknown label"),
    ({"client_event_id": "a" * 12, "line_id": 2**70, "action": "label", "label": "action"}, "out of range"),
    ({"client_event_id": "a" * 12, "line_id": "7; DROP", "action": "label", "label": "action"}, "integer"),
    ({"client_event_id": "a" * 12, "line_id": 1, "action": "edit", "text": "   "}, "new text"),
    ({"client_event_id": "a" * 12, "line_id": 1, "action": "undo"}, "undoes"),
])
def test_malformed_events_are_refused_naming_the_problem(raw, problem):
    with pytest.raises(BadEventError, match=problem):
        ClientEvent.parse(raw)


def test_two_tabs_of_one_person_and_two_people_never_hold_the_same_line(db, pdf_script):
    builders.predict(db, pdf_script, label="action")
    a = label_sync.sync(db, request(tab="tab-one-1111", script_id=pdf_script, want=5))
    b = label_sync.sync(db, request(tab="tab-two-2222", script_id=pdf_script, want=5))
    c = label_sync.sync(db, request(annotator="bob", tab="tab-bob-3333", script_id=pdf_script, want=5))
    batches = [{i["line_id"] for i in r["items"]} for r in (a, b, c)]
    assert all(len(x) == 5 for x in batches)
    assert not (batches[0] & batches[1]) and not (batches[0] & batches[2]) and not (batches[1] & batches[2])
    # a tab keeps what it holds across syncs; what it answered leaves it and is not offered again
    held = sorted(batches[0])
    answered = held[0]
    again = label_sync.sync(db, request(tab="tab-one-1111", script_id=pdf_script, held=held[1:],
                                        events=[label_event(answered)], want=3))
    new = {i["line_id"] for i in again["items"]}
    assert answered not in new and not (new & set(held)) and not (new & batches[1]) and not (new & batches[2])


def test_a_line_labeled_elsewhere_is_dropped_from_the_tab_that_holds_it(db, pdf_script):
    first = label_sync.sync(db, request(script_id=pdf_script, want=3))
    held = [i["line_id"] for i in first["items"]]
    label_store.add_label(db, held[1], "other", annotator="cli-user")
    response = label_sync.sync(db, request(script_id=pdf_script, held=held))
    assert response["drop"] == [held[1]]


def test_items_carry_text_box_page_context_and_identical_lines(db, tmp_path):
    from labeling.ingest.pipeline import ingest_path

    path = tmp_path / "repeats.txt"
    path.write_text("INT. SHOP - DAY\n\nHank waits.\n\n          HANK\n     Hello.\n\n          HANK\n     Again.\n\n"
                    "          Hank --\n     Third.\n\n          HANK\n     Four.\n")
    script = ingest_path(db, path).script_id
    response = label_sync.sync(db, request(script_id=script, strategy="script", want=20))
    items = {i["text"].strip(): i for i in response["items"]}
    hank = items["HANK"]
    assert len(hank["group"]) == 2 and {g["text"].strip() for g in hank["group"]} == {"HANK"}
    assert items["Hank --"]["group"] == []  # different text is not "identical"
    assert [c["line_no"] for c in hank["context"] if c["current"]] == [hank["line_no"]]
    assert response["items"][0]["line_no"] == 1  # script order is reading order
    # applying to the whole group labels exactly the lines the person was shown
    group_ids = [g["line_id"] for g in hank["group"]]
    label_sync.sync(db, request(events=[label_event(hank["line_id"], "character", also_line_ids=group_ids)]))
    assert set(label_store.labels_of_lines(db, [hank["line_id"], *group_ids, items["Hank --"]["line_id"]])) == {
        hank["line_id"], *group_ids}


def test_identical_means_same_text_and_same_layout_level():
    assert identical_key("  HANK  ", 22.0) == identical_key("HANK", 22.4)
    assert identical_key("HANK", 22.0) != identical_key("HANK", 10.0)
    assert identical_key("HANK", 22.0) != identical_key("Hank --", 22.0)
    assert identical_key("CONTINUED: (2)", 0) != identical_key("CONTINUED: (3)", 0)


def test_jump_finds_a_line_or_a_page_and_says_what_exists(db, pdf_script):
    item = label_sync.item_at(db, script_id=pdf_script, line_no=3)
    assert item.line_no == 3
    on_page = label_sync.item_at(db, script_id=pdf_script, page=2)
    assert on_page.page == 2 and len(on_page.group_line_ids) == 2  # page 2 repeats page 1's first line
    with pytest.raises(label_sync.ScriptlabelError, match="has no line 9999"):
        label_sync.item_at(db, script_id=pdf_script, line_no=9999)


def test_a_retrain_is_requested_when_enough_labels_arrived(db, db_path, pdf_script, monkeypatch):
    asked = []
    monkeypatch.setattr("labeling.training.runs.request_training", lambda path, **kw: asked.append(kw) or 1)
    ids = list(script_store.lines_frame(db, pdf_script)["line_id"])
    label_sync.sync(db, request(events=[label_event(i) for i in ids[:2]]), db_path=db_path, retrain_every=3)
    assert asked == []
    label_sync.sync(db, request(events=[label_event(ids[2], "dialogue")]), db_path=db_path, retrain_every=3)
    assert asked == [{"kind": "lines", "trigger": "auto"}]


def test_sync_reports_progress_and_the_model(db, pdf_script):
    ids = list(script_store.lines_frame(db, pdf_script)["line_id"])
    response = label_sync.sync(db, request(script_id=pdf_script, events=[label_event(ids[0])]))
    assert response["progress"] == {"labeled": 1, "total": len(ids)}
    assert response["model"]["version"] == 0  # the shipped model


def test_every_script_of_a_large_library_ranks_an_indexed_candidate_set(db, pdf_script, monkeypatch):
    from labeling.session import queue

    builders.predict(db, pdf_script, label="action", confidence=0.6)
    lines = script_store.lines_frame(db, pdf_script)
    ids = [int(i) for i in lines["line_id"]]
    label_store.add_label(db, ids[0], "scene_heading", annotator="ana")
    full = queue.unlabeled_pool(db)
    monkeypatch.setattr(queue, "LARGE_LIBRARY", 5)  # this small script counts as a large library
    monkeypatch.setattr(queue, "CANDIDATES", 8)
    monkeypatch.setattr(queue, "RANDOM_CANDIDATES", 2)
    sampled = queue.unlabeled_pool(db)
    sampled_ids = {line.line_id for line in sampled}
    assert ids[0] not in sampled_ids and sampled_ids <= {line.line_id for line in full}
    assert 7 <= len(sampled) < len(full) and all(line.probs is not None for line in sampled)
    items = queue.build_queue(db, n=3, random_share=0)
    assert len(items) == 3 and all(i.line_id in sampled_ids for i in items)
