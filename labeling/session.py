"""The labeling session: what happens when a person labels, undoes or skips a line.

Every action is one transaction in SQLite before the caller moves on; retraining is only *requested*
here (a background worker does it), so a key press never waits for a model.
"""

from __future__ import annotations

from sqlite_utils import Database

from labeling.queue import QueueItem, build_queue, claim, release
from labeling.strategies import EmptyPoolError
from store import labels as label_store
from store.scripts import get_line
from store.types import LineLabel


def record_label(db: Database, line_id: int, label: str, *, annotator: str) -> dict:
    """Persist a human label (its own transaction) and return what was stored."""
    event_id = label_store.add_label(db, line_id, label, annotator=annotator)
    line = get_line(db, line_id)
    return {"event_id": event_id, "line_id": line_id, "script_id": line["script_id"],
            "label": LineLabel.parse(label).value, "annotator": annotator}


def record_group_label(db: Database, line_ids: list[int], label: str, *, annotator: str) -> dict:
    """Apply one label to a group of near-identical lines, in one transaction."""
    event_ids = label_store.add_labels(db, line_ids, label, annotator=annotator)
    return {"event_ids": event_ids, "line_ids": line_ids, "label": LineLabel.parse(label).value,
            "annotator": annotator}


def undo(db: Database, *, annotator: str, script_id: int | None = None) -> dict | None:
    """Undo the annotator's latest label (appends an undo event; nothing is deleted)."""
    return label_store.undo_last(db, annotator=annotator, script_id=script_id)


def next_item(db: Database, *, script_id: int | None, annotator: str, strategy: str = "margin",
              skip: set[int] | frozenset[int] = frozenset(), random_share: float = 0.1) -> QueueItem | None:
    """The most useful unlabeled line for this annotator, claimed so nobody else gets it; None when done."""
    try:
        items = build_queue(db, script_id=script_id, strategy=strategy, n=len(skip) + 5, annotator=annotator,
                            random_share=random_share)
    except EmptyPoolError:
        release(db, annotator)
        return None
    for item in items:
        if item.line_id in skip:
            continue
        if claim(db, item.group_line_ids, annotator):
            return item
    return None


def labels_since_last_model(db: Database) -> int:
    """Human label events since the current line model was trained (drives "retrain every N")."""
    row = db.execute(
        "SELECT COALESCE(MAX(n_labels), 0) FROM model_versions WHERE kind = 'lines' AND is_current = 1").fetchone()
    return label_store.count_human_labels(db) - int(row[0])
