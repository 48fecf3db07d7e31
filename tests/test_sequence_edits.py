"""Splits and merges are stored as edits a person can see and undo (issue 25): undo puts lines, ratings,
tags and predictions back where they were, carries the edit's id, and is idempotent; a click delivered
twice edits once."""

from __future__ import annotations

import pytest

from store import sequences as sequence_store
from store.types import ScriptlabelError


def _layout(db, script_id) -> list[tuple]:
    """(sequence_id, code, title, first, last, lines that point at it) of every sequence of the script."""
    return [(s.sequence_id, s.code, s.title, s.first_line_no, s.last_line_no, s.lines)
            for s in sequence_store.list_sequences(db, script_id)]


def _ratings(db) -> list[tuple]:
    return [tuple(r) for r in db.execute(
        "SELECT rating_id, sequence_id, department, value FROM sequence_ratings ORDER BY rating_id").fetchall()]


def test_split_says_what_happened_and_undo_restores_the_sequence(db, pdf_script):
    before = _layout(db, pdf_script)
    first = sequence_store.list_sequences(db, pdf_script)[0]
    at = first.first_line_no + 1
    new_id = sequence_store.split_sequence(db, first.sequence_id, at, annotator="ana", client_id="click-1")
    [edit] = sequence_store.sequence_edits(db, pdf_script)
    assert (edit.kind, edit.sequence_id, edit.other_sequence_id, edit.at_line_no) == ("split", first.sequence_id,
                                                                                      new_id, at)
    assert edit.describe() == f"split {first.code} at line {at} → {first.code}A “untitled”"
    assert len(_layout(db, pdf_script)) == len(before) + 1
    sequence_store.add_rating(db, new_id, 4, annotator="ana")  # a rating given to the new part since

    undone = sequence_store.undo_sequence_edit(db, edit.edit_id, annotator="ana")
    assert undone.undone_at is not None and undone.undone_by == "ana"
    after = _layout(db, pdf_script)
    assert after == before
    assert [(seq, value) for _, seq, _, value in _ratings(db)] == [(first.sequence_id, 4)]  # kept, on the whole
    assert sequence_store.undo_sequence_edit(db, edit.edit_id) == undone  # again: nothing more happens
    assert _layout(db, pdf_script) == before


def test_merge_undo_brings_the_absorbed_sequence_back_with_its_ratings(db, pdf_script):
    first, second = sequence_store.list_sequences(db, pdf_script)[:2]
    sequence_store.rename_sequence(db, second.sequence_id, title="The Storm")
    before = _layout(db, pdf_script)
    own = sequence_store.add_rating(db, second.sequence_id, 5, department="fx", annotator="ana")
    theirs = sequence_store.add_rating(db, first.sequence_id, 2, department="fx", annotator="ben")
    db.execute("INSERT INTO sequence_predictions(sequence_id, department, version, value, expected, uncertainty, "
               "probs) VALUES (?, 'fx', 3, 4, 4.1, 0.3, '[0,0,0.1,0.8,0.1]')", [second.sequence_id])
    db.conn.commit()

    sequence_store.merge_with_next(db, first.sequence_id, annotator="ana", client_id="m-1")
    sequence_store.merge_with_next(db, first.sequence_id, annotator="ana", client_id="m-1")  # delivered twice
    assert len(_layout(db, pdf_script)) == len(before) - 1
    [edit] = sequence_store.sequence_edits(db, pdf_script)
    assert edit.describe() == (f"merged {second.code} “The Storm” (from line {second.first_line_no}) "
                               f"into {first.code}")
    later = sequence_store.add_rating(db, first.sequence_id, 3, department="overall", annotator="ana")

    sequence_store.undo_sequence_edit(db, edit.edit_id, annotator="ana")
    assert _layout(db, pdf_script) == before
    by_id = {rating_id: seq for rating_id, seq, _, _ in _ratings(db)}
    assert by_id == {own: second.sequence_id, theirs: first.sequence_id, later: first.sequence_id}
    assert db.execute("SELECT value FROM sequence_predictions WHERE sequence_id = ?",
                      [second.sequence_id]).fetchall() == [(4,)]


def test_a_split_clicked_twice_splits_once(db, pdf_script):
    first = sequence_store.list_sequences(db, pdf_script)[0]
    one = sequence_store.split_sequence(db, first.sequence_id, first.first_line_no + 1, client_id="c")
    two = sequence_store.split_sequence(db, first.sequence_id, first.first_line_no + 1, client_id="c")
    assert one == two and len(sequence_store.sequence_edits(db, pdf_script)) == 1


def test_undo_goes_newest_first_and_leaves_everything_as_it_was_when_refused(db, pdf_script):
    original = _layout(db, pdf_script)
    first = sequence_store.list_sequences(db, pdf_script)[0]
    new_id = sequence_store.split_sequence(db, first.sequence_id, first.first_line_no + 1)
    sequence_store.merge_with_next(db, new_id)  # the new part absorbs the next sequence
    split, merge = sorted(sequence_store.sequence_edits(db, pdf_script), key=lambda e: e.edit_id)
    layout = _layout(db, pdf_script)
    with pytest.raises(ScriptlabelError, match="undo the later “merged .* first"):
        sequence_store.undo_sequence_edit(db, split.edit_id)
    assert _layout(db, pdf_script) == layout
    sequence_store.undo_sequence_edit(db, merge.edit_id)
    sequence_store.undo_sequence_edit(db, split.edit_id)
    assert _layout(db, pdf_script) == original


def test_a_split_outside_the_sequence_is_refused_and_stores_nothing(db, pdf_script):
    first = sequence_store.list_sequences(db, pdf_script)[0]
    with pytest.raises(ScriptlabelError, match="is not inside"):
        sequence_store.split_sequence(db, first.sequence_id, first.first_line_no)
    assert sequence_store.sequence_edits(db, pdf_script) == []
