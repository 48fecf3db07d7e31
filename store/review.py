"""Outcomes of label review (confident-learning queue): append-only, one row per reviewer decision."""

from __future__ import annotations

from sqlite_utils import Database

from store.db import now
from store.scripts import get_line
from store.types import LineLabel, ScriptlabelError

OUTCOMES = ("confirmed", "fixed")


def record_outcome(db: Database, line_id: int, outcome: str, *, label: str, previous_label: str | None,
                   suggested: str | None, annotator: str, fix_source: str = "human") -> int:
    """Record a review decision in one transaction; a `fixed` outcome appends the new label event with it."""
    if outcome not in OUTCOMES:
        raise ScriptlabelError(f"review outcome must be one of {', '.join(OUTCOMES)}, not {outcome!r}")
    value = LineLabel.parse(label).value
    get_line(db, line_id)
    stamp = now()
    with db.atomic():
        if outcome == "fixed":
            db.execute(
                """INSERT INTO label_events(line_id, label, annotator, source, created_at, suggested, suggested_version)
                   SELECT ?1, ?2, ?3, ?4, ?5,
                          (SELECT label FROM predictions WHERE line_id = ?1 ORDER BY rowid DESC LIMIT 1),
                          (SELECT version FROM predictions WHERE line_id = ?1 ORDER BY rowid DESC LIMIT 1)""",
                [line_id, value, annotator or "anonymous", fix_source, stamp])
        cursor = db.execute(
            "INSERT INTO review_outcomes(line_id, outcome, label, previous_label, suggested, annotator, created_at) "
            "VALUES (?,?,?,?,?,?,?)", [line_id, outcome, value, previous_label, suggested, annotator or "anonymous",
                                      stamp])
    return int(cursor.lastrowid)


def reviewed_labels(db: Database) -> dict[int, str]:
    """line_id → the label its latest review left it with."""
    return {int(r[0]): r[1] for r in db.execute(
        """SELECT line_id, label FROM review_outcomes o
           WHERE outcome_id = (SELECT MAX(outcome_id) FROM review_outcomes o2 WHERE o2.line_id = o.line_id)""")}


def review_history(db: Database, line_id: int | None = None) -> list[dict]:
    where, params = ("WHERE line_id = ?", [line_id]) if line_id is not None else ("", [])
    return list(db.query(f"SELECT * FROM review_outcomes {where} ORDER BY outcome_id", params))
