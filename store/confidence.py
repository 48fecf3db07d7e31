"""The confidence people were shown with each suggestion, against the label they then gave."""

from __future__ import annotations

import pandas as pd
from sqlite_utils import Database


def shown_confidence_outcomes(db: Database, *, after_event: int = 0) -> pd.DataFrame:
    """Human labels (not undone) given beside a suggestion whose confidence is known.

    Columns: event_id, line_id, label, suggested, suggested_version, confidence (what was shown),
    correct (the person kept the suggestion).
    """
    frame = pd.read_sql_query(
        """SELECT e.event_id, e.line_id, e.label, e.suggested, e.suggested_version,
                  e.suggested_confidence AS confidence
           FROM label_events e
           WHERE e.source = 'human' AND e.action = 'set' AND e.suggested IS NOT NULL
             AND e.suggested_confidence IS NOT NULL AND e.event_id > ?
             AND NOT EXISTS (SELECT 1 FROM label_events u WHERE u.undoes_event_id = e.event_id)
           ORDER BY e.event_id""", db.conn, params=[after_event])
    frame["correct"] = frame["label"] == frame["suggested"]
    return frame
