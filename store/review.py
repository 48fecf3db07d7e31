"""Outcomes of label review (confident-learning queue): append-only, one row per reviewer decision."""

from __future__ import annotations

from sqlite_utils import Database

from store.db import immediate, now
from store.scripts import get_line
from store.scheme import load_scheme
from store.types import ScriptlabelError

OUTCOMES = ("confirmed", "fixed")


def record_outcome(db: Database, line_id: int, outcome: str, *, label: str, previous_label: str | None,
                   suggested: str | None, annotator: str, fix_source: str = "human",
                   client_event_id: str | None = None) -> int | None:
    """Record a review decision in one transaction; a `fixed` outcome appends the new label event with it.

    With a `client_event_id` (a decision sent from the labeling view) it is applied once: a resend
    returns None and writes nothing.
    """
    if outcome not in OUTCOMES:
        raise ScriptlabelError(f"review outcome must be one of {', '.join(OUTCOMES)}, not {outcome!r}")
    value = load_scheme(db).parse(label)
    get_line(db, line_id)
    stamp = now()
    with immediate(db):
        if client_event_id is not None and db.execute(
                "SELECT 1 FROM review_outcomes WHERE client_event_id = ?", [client_event_id]).fetchone():
            return None
        if outcome == "fixed":
            db.execute(
                """INSERT INTO label_events(line_id, label, annotator, source, created_at, suggested, suggested_version,
                                            client_event_id)
                   SELECT ?1, ?2, ?3, ?4, ?5,
                          (SELECT label FROM predictions WHERE line_id = ?1 ORDER BY rowid DESC LIMIT 1),
                          (SELECT version FROM predictions WHERE line_id = ?1 ORDER BY rowid DESC LIMIT 1), ?6""",
                [line_id, value, annotator or "anonymous", fix_source, stamp, client_event_id])
        cursor = db.execute(
            "INSERT INTO review_outcomes(line_id, outcome, label, previous_label, suggested, annotator, created_at, "
            "client_event_id) VALUES (?,?,?,?,?,?,?,?)",
            [line_id, outcome, value, previous_label, suggested, annotator or "anonymous", stamp, client_event_id])
    return int(cursor.lastrowid)


def reviewed_labels(db: Database) -> dict[int, str]:
    """line_id → the label its latest review left it with."""
    return {int(r[0]): r[1] for r in db.execute(
        """SELECT line_id, label FROM review_outcomes o
           WHERE outcome_id = (SELECT MAX(outcome_id) FROM review_outcomes o2 WHERE o2.line_id = o.line_id)""")}


def review_history(db: Database, line_id: int | None = None) -> list[dict]:
    where, params = ("WHERE line_id = ?", [line_id]) if line_id is not None else ("", [])
    return list(db.query(f"SELECT * FROM review_outcomes {where} ORDER BY outcome_id", params))


def outcome_count(db: Database) -> int:
    return db.execute("SELECT COUNT(*) FROM review_outcomes").fetchone()[0]
