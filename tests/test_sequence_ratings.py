"""Ratings are append-only: undo appends a row and the rating before it is in force again."""

from __future__ import annotations

from store import sequences as sequence_store


def _rating(db, sequence_id, department="overall"):
    frame = sequence_store.current_ratings(db, department=department).set_index("sequence_id")
    return None if sequence_id not in frame.index else int(frame.loc[sequence_id, "value"])


def test_undo_restores_the_previous_rating(db, pdf_script):
    sid = sequence_store.list_sequences(db, pdf_script)[0].sequence_id
    sequence_store.add_rating(db, sid, 2, annotator="bob")
    sequence_store.add_rating(db, sid, 4, annotator="ana")
    sequence_store.add_rating(db, sid, 5, annotator="ana", department="fx")
    assert _rating(db, sid) == 4
    undone = sequence_store.undo_rating(db, sid, annotator="ana")
    assert undone["value"] == 4
    assert _rating(db, sid) == 2 and _rating(db, sid, "fx") == 5
    assert sequence_store.undo_rating(db, sid, annotator="ana") is None  # ana has nothing left in overall
    sequence_store.undo_rating(db, sid, annotator="bob")
    assert _rating(db, sid) is None
    rows = db.execute("SELECT COUNT(*) FROM sequence_ratings").fetchone()[0]
    assert rows == 5  # nothing deleted: three ratings, two undo rows
    sequence_store.add_rating(db, sid, 3, annotator="ana")
    assert _rating(db, sid) == 3


def test_repeated_rating_and_repeated_undo_are_no_ops(db, pdf_script):
    sid = sequence_store.list_sequences(db, pdf_script)[0].sequence_id
    first = sequence_store.add_rating(db, sid, 2, annotator="ana")
    second = sequence_store.add_rating(db, sid, 4, annotator="ana")
    assert sequence_store.add_rating(db, sid, 4, annotator="ana") == second  # the same key twice
    assert db.execute("SELECT COUNT(*) FROM sequence_ratings").fetchone()[0] == 2
    assert sequence_store.undo_rating(db, sid, annotator="ana", rating_id=second)["value"] == 4
    assert sequence_store.undo_rating(db, sid, annotator="ana", rating_id=second) is None  # delivered twice
    assert _rating(db, sid) == 2
    assert sequence_store.own_rating(db, sid, department="overall", annotator="ana")["rating_id"] == first
    sequence_store.add_rating(db, sid, 5, annotator="bob")
    assert sequence_store.add_rating(db, sid, 2, annotator="ana") != first  # ana again after bob: recorded
    assert _rating(db, sid) == 2
