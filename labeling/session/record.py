"""Recording labels one call at a time: the CLI's `label`, the Script page's buttons, benches (a lead's
adjudication is labeling.team.adjudication's). Each is its own transaction.

The Label page's browser view goes through labeling/session/sync.py instead (events with client ids);
what comes next is labeling/session/queue.py's.

Every action is one transaction in SQLite before the caller moves on; retraining is only *requested*
here (a background worker does it), so a key press never waits for a model.
"""

from __future__ import annotations

from sqlite_utils import Database

from store import labels as label_store
from store.scripts import get_line
from store.scheme import load_scheme


def record_label(db: Database, line_id: int, label: str, *, annotator: str) -> dict:
    """Persist a human label (its own transaction) and return what was stored."""
    event_id = label_store.add_label(db, line_id, label, annotator=annotator)
    line = get_line(db, line_id)
    return {"event_id": event_id, "line_id": line_id, "script_id": line["script_id"],
            "label": load_scheme(db).parse(label), "annotator": annotator}


def record_group_label(db: Database, line_ids: list[int], label: str, *, annotator: str) -> dict:
    """Apply one label to a group of near-identical lines, in one transaction."""
    event_ids = label_store.add_labels(db, line_ids, label, annotator=annotator)
    return {"event_ids": event_ids, "line_ids": line_ids, "label": load_scheme(db).parse(label),
            "annotator": annotator}


def labels_since_last_model(db: Database) -> int:
    """Human label events since the newest line model (current or candidate) was trained: drives "retrain
    every N". Counting from the newest, not the current, keeps a roll-back or a candidate that was not
    promoted from starting a run on every key press."""
    from store.models import newest_version_n_labels

    return label_store.count_human_labels(db) - newest_version_n_labels(db, "lines")
