"""The labeling session: what happens when a person labels, undoes or skips a line."""

from __future__ import annotations

from sqlite_utils import Database

from store import labels as label_store
from store.scripts import get_line


def record_label(db: Database, line_id: int, label: str, *, annotator: str) -> dict:
    """Persist a human label (its own transaction) and return what was stored."""
    event_id = label_store.add_label(db, line_id, label, annotator=annotator)
    line = get_line(db, line_id)
    return {"event_id": event_id, "line_id": line_id, "script_id": line["script_id"],
            "label": label.strip().lower(), "annotator": annotator}
