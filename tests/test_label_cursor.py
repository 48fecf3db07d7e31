"""The labeling cursor: what a key press on the Label page does to the database and the queue."""

from __future__ import annotations

import pytest

import app_builders as builders
from conftest import SCREENPLAY_LINES
from labeling import label_cursor as cursors
from labeling.ingest import ingest_path
from store import labels as label_store
from store import scripts as script_store


def _effective(db, line_id):
    return cursors.line_label(label_store.label_history(db, line_id))


def test_line_label_prefers_people_and_respects_undo(db, text_script):
    line_id = int(script_store.lines_frame(db, text_script)["line_id"][0])
    assert _effective(db, line_id) is None
    label_store.add_label(db, line_id, "action", annotator="import", source="imported")
    assert _effective(db, line_id)["source"] == "imported"
    label_store.add_label(db, line_id, "scene_heading", annotator="ana")
    assert _effective(db, line_id) == {"label": "scene_heading", "source": "human", "annotator": "ana"}
    label_store.undo_last(db, annotator="ana")
    assert _effective(db, line_id)["label"] == "action"


def test_label_lands_in_sqlite_and_the_cursor_moves_on(db, pdf_script):
    cursor = cursors.LabelCursor(annotator="ana", script_id=pdf_script)
    first = cursors.advance(db, cursor)
    assert first is not None and cursor.current == first
    cursors.label_current(db, cursor, "dialogue")
    assert _effective(db, first.line_id) == {"label": "dialogue", "source": "human", "annotator": "ana"}
    assert cursor.current is not None and cursor.current.line_id != first.line_id
    assert cursor.labeled == 1 and cursor.last_action_ms is not None


def test_accept_takes_the_suggestion(db, pdf_script):
    builders.predict(db, pdf_script, label="transition", confidence=0.55)
    cursor = cursors.LabelCursor(annotator="ana", script_id=pdf_script)
    item = cursors.advance(db, cursor)
    assert item.suggestion == "transition" and item.confidence == pytest.approx(0.55, abs=1e-3)
    cursors.accept_suggestion(db, cursor)
    assert _effective(db, item.line_id)["label"] == "transition"


def test_skip_and_undo(db, pdf_script):
    cursor = cursors.LabelCursor(annotator="ana", script_id=pdf_script)
    skipped = cursors.advance(db, cursor)
    cursors.skip_current(db, cursor)
    assert cursor.current.line_id != skipped.line_id and skipped.line_id in cursor.skipped
    labeled = cursor.current
    cursors.label_current(db, cursor, "action")
    cursors.undo_last(db, cursor)
    assert cursor.current.line_id == labeled.line_id and _effective(db, labeled.line_id) is None
    assert cursor.undos == 1 and cursor.labeled == 0
    # the skipped line never comes back in this session
    seen = set()
    while cursor.current is not None:
        seen.add(cursor.current.line_id)
        cursors.label_current(db, cursor, "other")
    assert skipped.line_id not in seen and cursor.done
    assert cursors.undo_last(db, cursors.LabelCursor(annotator="nobody")) is None


def test_a_group_of_identical_lines_is_labeled_at_once(db, text_script):
    lines = script_store.lines_frame(db, text_script)
    continued = list(lines.loc[lines["text"] == "CONTINUED:", "line_id"])
    assert len(continued) == 2
    cursor = cursors.LabelCursor(annotator="ana", script_id=text_script, batch_size=50)
    cursors.advance(db, cursor)
    while cursor.current.line_id not in continued:
        cursors.skip_current(db, cursor)
    assert sorted(cursor.current.group_line_ids) == sorted(continued)
    cursors.label_current(db, cursor, "other", apply_to_group=True)
    assert [_effective(db, int(i))["label"] for i in continued] == ["other", "other"]
    assert cursor.labeled == 2
    cursors.undo_last(db, cursor)  # undo takes back the whole group
    assert all(_effective(db, int(i)) is None for i in continued)
    assert cursor.labeled == 0


def test_two_annotators_never_get_the_same_line_and_both_labels_survive(db, pdf_script):
    ana = cursors.LabelCursor(annotator="ana", script_id=pdf_script, batch_size=3)
    bob = cursors.LabelCursor(annotator="bob", script_id=pdf_script, batch_size=3)
    cursors.advance(db, ana)
    cursors.advance(db, bob)
    stored = []
    while ana.current is not None or bob.current is not None:
        if ana.current and bob.current:
            assert not set(ana.current.group_line_ids) & set(bob.current.group_line_ids)
        for cursor, label in ((ana, "action"), (bob, "dialogue")):
            if cursor.current is not None:
                stored.append((cursor.current.line_id, cursor.annotator, label))
                cursors.label_current(db, cursor, label)
    labels = label_store.annotator_labels(db, pdf_script)
    assert len(labels) == len(stored) == 2 * len(SCREENPLAY_LINES)
    assert {(r.line_id, r.annotator, r.label) for r in labels.itertuples()} == set(stored)
    assert ana.labeled > 0 and bob.labeled > 0


def test_a_new_model_re_ranks_the_queue(db, pdf_script):
    cursor = cursors.LabelCursor(annotator="ana", script_id=pdf_script)
    cursors.advance(db, cursor)
    builders.predict(db, pdf_script, label="action", confidence=0.6123)
    cursors.label_current(db, cursor, "action")
    assert cursor.current.suggestion == "action" and cursor.current.confidence == pytest.approx(0.6123, abs=1e-4)


def test_text_edit_keeps_the_original(db, pdf_script):
    cursor = cursors.LabelCursor(annotator="ana", script_id=pdf_script)
    item = cursors.advance(db, cursor)
    cursors.edit_current_text(db, cursor, "  Corrected text  ")
    line = script_store.get_line(db, item.line_id)
    assert line["text"] == "Corrected text" and line["original_text"] == item.text
    assert cursor.current.text == "Corrected text"
    cursors.edit_current_text(db, cursor, "   ")  # blank edits are ignored
    assert script_store.get_line(db, item.line_id)["text"] == "Corrected text"


def test_retarget_switches_annotator_and_releases_claims(db, pdf_script):
    cursor = cursors.LabelCursor(annotator="ana", script_id=pdf_script)
    anas = cursors.advance(db, cursor)
    cursors.retarget(db, cursor, annotator="bob", script_id=pdf_script, strategy="random")
    bobs = cursor.current
    other = cursors.LabelCursor(annotator="cy", script_id=pdf_script, batch_size=100)
    cursors.advance(db, other)
    offered = {i for item in [other.current, *other.batch] for i in item.group_line_ids}
    # ana's claim went with her name; bob's line is held for him
    assert anas.line_id in offered or anas.line_id in bobs.group_line_ids
    assert offered.isdisjoint(bobs.group_line_ids)


def test_the_next_batch_is_prepared_in_the_background(db, db_path, tmp_path):
    path = tmp_path / "long.txt"
    words = [chr(97 + i // 26) + chr(97 + i % 26) for i in range(60)]  # no digits: no two lines group
    path.write_text("\n\n".join(f"The {w} clock ticks in the {w[::-1]} room." for w in words))
    script_id = ingest_path(db, path).script_id
    cursor = cursors.LabelCursor(annotator="ana", script_id=script_id, batch_size=8, db_path=str(db_path))
    cursors.advance(db, cursor)
    seen = []
    for _ in range(30):
        seen.append(cursor.current.line_id)
        cursors.label_current(db, cursor, "action")
    # a new model: the old ranking keeps serving while the new one is ranked in the background,
    # and the new suggestions arrive within a batch
    builders.predict(db, script_id, label="dialogue", confidence=0.6123)
    for _ in range(2 * cursor.batch_size):
        if cursor.current.suggestion == "dialogue":
            break
        seen.append(cursor.current.line_id)
        cursors.label_current(db, cursor, "action")
        if cursor.pending is not None:
            cursor.pending.result()
    assert cursor.current.suggestion == "dialogue" and cursor.current.confidence == pytest.approx(0.6123, abs=1e-4)
    while cursor.current is not None:
        seen.append(cursor.current.line_id)
        cursors.label_current(db, cursor, "action")
    assert len(seen) == len(set(seen)) == 60
    assert cursor.labeled == 60 and cursor.done


def test_a_retrain_is_asked_for_once_per_retrain_every_labels(db, db_path, pdf_script, monkeypatch):
    asked = []
    monkeypatch.setattr("labeling.training.maybe_retrain", lambda path, every, db: asked.append(every))
    cursor = cursors.LabelCursor(annotator="ana", script_id=pdf_script)
    cursors.advance(db, cursor)
    for _ in range(7):
        cursors.label_current(db, cursor, "action", db_path=db_path, retrain_every=3)
    assert asked == [3, 3]
