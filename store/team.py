"""The team's tables: project settings (the overlap share), work assigned to people, and the reads behind
overlap, agreement, adjudication and per-person progress."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from sqlite_utils import Database

from store.db import immediate, now
from store.types import NotFoundError, ScriptlabelError

if TYPE_CHECKING:  # pandas inside the functions that use it: the CLI's queue loads none
    import pandas as pd

HASH_MULTIPLIER = 2654435761  # Knuth's multiplicative hash: ids spread evenly over [0, 2**32)
HASH_RANGE = 2**32


def overlap_hash(item_id: int) -> float:
    """Where an id falls in [0, 1): a line (or script, or sequence) is an overlap item when this is below the
    share. The same formula as `_overlap_sql`, so Python and SQL agree on every id."""
    return ((int(item_id) * HASH_MULTIPLIER) % HASH_RANGE) / HASH_RANGE


def _overlap_sql(column: str) -> str:
    return f"((({column}) * {HASH_MULTIPLIER}) % {HASH_RANGE}) < ?"


def _threshold(share: float) -> int:
    return int(round(float(share) * HASH_RANGE))


# --- project settings ----------------------------------------------------------------------------

def get_setting(db: Database, key: str, default=None):
    row = db.execute("SELECT value FROM project_settings WHERE key = ?", [key]).fetchone()
    return default if row is None else json.loads(row[0])


def set_setting(db: Database, key: str, value, *, by: str) -> dict:
    """Store a setting; returns {"before", "after"} for the audit log (one transaction)."""
    with immediate(db):
        row = db.execute("SELECT value FROM project_settings WHERE key = ?", [key]).fetchone()
        db.execute("INSERT INTO project_settings(key, value, updated_by, updated_at) VALUES (?,?,?,?) "
                   "ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_by = excluded.updated_by, "
                   "updated_at = excluded.updated_at", [key, json.dumps(value), by or "anonymous", now()])
    return {"before": None if row is None else json.loads(row[0]), "after": value}


def setting_stamp(db: Database, key: str) -> tuple[str, str] | None:
    row = db.execute("SELECT updated_by, updated_at FROM project_settings WHERE key = ?", [key]).fetchone()
    return None if row is None else (row[0], row[1])


# --- overlap: lines waiting for more people --------------------------------------------------------

def overlap_waiting(db: Database, *, annotator: str, share: float, people: int, by_script: bool,
                    script_id: int | None = None) -> dict[int, int]:
    """Overlap lines that fewer than `people` persons labeled, none of them `annotator`, and no lead
    adjudicated (nor imported, nor bulk-accepted): line_id → how many persons labeled it so far."""
    where = "AND l.script_id = ?" if script_id is not None else ""
    params = [_threshold(share)] + ([script_id] if script_id is not None else []) + [people, annotator]
    rows = db.execute(
        f"""WITH h AS (
                SELECT DISTINCT e.line_id, e.annotator FROM label_events e JOIN lines l ON l.line_id = e.line_id
                WHERE e.action = 'set' AND e.source = 'human'
                  AND {_overlap_sql('l.script_id' if by_script else 'l.line_id')} {where}
                  AND NOT EXISTS (SELECT 1 FROM label_events u WHERE u.undoes_event_id = e.event_id))
            SELECT h.line_id, COUNT(*) FROM h GROUP BY h.line_id
            HAVING COUNT(*) < ? AND SUM(h.annotator = ?) = 0
               AND NOT EXISTS (SELECT 1 FROM label_events e WHERE e.line_id = h.line_id AND e.action = 'set'
                               AND e.source IN ('adjudicated', 'imported', 'accepted')
                               AND NOT EXISTS (SELECT 1 FROM label_events u WHERE u.undoes_event_id = e.event_id))""",
        params).fetchall()
    return {int(r[0]): int(r[1]) for r in rows}


def human_labelers(db: Database, line_ids: list[int]) -> dict[int, set[str]]:
    """line_id → the persons whose human label on it is in force."""
    out: dict[int, set[str]] = {}
    for start in range(0, len(line_ids), 5000):
        chunk = list(line_ids[start:start + 5000])
        for line_id, name in db.execute(
                f"""SELECT DISTINCT e.line_id, e.annotator FROM label_events e
                    WHERE e.line_id IN ({",".join("?" * len(chunk))}) AND e.action = 'set' AND e.source = 'human'
                      AND NOT EXISTS (SELECT 1 FROM label_events u WHERE u.undoes_event_id = e.event_id)""", chunk):
            out.setdefault(int(line_id), set()).add(name)
    return out


def own_labels(db: Database, line_ids: list[int], annotator: str) -> dict[int, str]:
    """line_id → this person's own human label in force (what the view may show on an overlap line)."""
    out: dict[int, str] = {}
    for start in range(0, len(line_ids), 5000):
        chunk = list(line_ids[start:start + 5000])
        for line_id, label in db.execute(
                f"""SELECT e.line_id, e.label FROM label_events e
                    WHERE e.line_id IN ({",".join("?" * len(chunk))}) AND e.annotator = ? AND e.action = 'set'
                      AND e.source = 'human'
                      AND NOT EXISTS (SELECT 1 FROM label_events u WHERE u.undoes_event_id = e.event_id)
                    ORDER BY e.event_id""", chunk + [annotator]):
            out[int(line_id)] = label
    return out


def overlap_sequences(db: Database, sequence_ids: list[int], share: float) -> set[int]:
    return {int(i) for i in sequence_ids if overlap_hash(i) < share}


def rating_raters(db: Database, *, department: str, script_id: int | None = None) -> pd.DataFrame:
    """Each person's rating in force per sequence: sequence_id, script_id, annotator, source, value, rating_id,
    created_at (human ratings and adjudicated ones)."""
    import pandas as pd

    where = "AND s.script_id = ?" if script_id is not None else ""
    params: list = [department] + ([script_id] if script_id is not None else [])
    return pd.read_sql_query(
        f"""SELECT r.sequence_id, s.script_id, s.code, s.title, r.annotator, r.source, r.value, r.rating_id,
                   r.created_at
            FROM sequence_ratings r JOIN sequences s USING (sequence_id)
            WHERE r.department = ? {where} AND r.value IS NOT NULL AND r.undoes_rating_id IS NULL
              AND NOT EXISTS (SELECT 1 FROM sequence_ratings u WHERE u.undoes_rating_id = r.rating_id)
              AND r.rating_id = (SELECT MAX(r2.rating_id) FROM sequence_ratings r2
                                 WHERE r2.sequence_id = r.sequence_id AND r2.department = r.department
                                   AND r2.annotator = r.annotator AND r2.source = r.source
                                   AND r2.value IS NOT NULL AND r2.undoes_rating_id IS NULL
                                   AND NOT EXISTS (SELECT 1 FROM sequence_ratings u
                                                   WHERE u.undoes_rating_id = r2.rating_id))
            ORDER BY r.rating_id""", db.conn, params=params)


def add_adjudicated_rating(db: Database, sequence_id: int, value: int, *, department: str, by: str) -> int:
    """A lead's decision on a rating people disagree on; the same decision again is a no-op."""
    if not 1 <= int(value) <= 5:
        raise ScriptlabelError(f"complexity must be between 1 and 5, not {value}")
    with immediate(db):
        if db.execute("SELECT 1 FROM sequences WHERE sequence_id = ?", [sequence_id]).fetchone() is None:
            raise NotFoundError(f"no sequence with id {sequence_id}; list them with `scriptlabel sequences`")
        row = db.execute("""SELECT rating_id, value FROM sequence_ratings r WHERE sequence_id = ? AND department = ?
                              AND source = 'adjudicated' AND value IS NOT NULL
                              AND NOT EXISTS (SELECT 1 FROM sequence_ratings u WHERE u.undoes_rating_id = r.rating_id)
                            ORDER BY rating_id DESC LIMIT 1""", [sequence_id, department]).fetchone()
        if row is not None and row[1] == int(value):
            return int(row[0])
        cursor = db.execute("INSERT INTO sequence_ratings(sequence_id, department, value, annotator, created_at, "
                            "source) VALUES (?,?,?,?,?, 'adjudicated')",
                            [sequence_id, department, int(value), by or "anonymous", now()])
    return int(cursor.lastrowid)


# --- adjudicated labels ----------------------------------------------------------------------------

def add_adjudicated_label(db: Database, line_id: int, label: str, *, by: str, client_event_id: str) -> str:
    """Store a lead's decision on a line as source `adjudicated`, once per client id: "stored" or "duplicate"."""
    with immediate(db):
        if db.execute("SELECT 1 FROM label_events WHERE client_event_id = ? LIMIT 1", [client_event_id]).fetchone():
            return "duplicate"
        if db.execute("SELECT 1 FROM lines WHERE line_id = ?", [line_id]).fetchone() is None:
            raise NotFoundError(f"no line with id {line_id}")
        db.execute("INSERT INTO label_events(line_id, label, annotator, source, created_at, client_event_id) "
                   "VALUES (?, ?, ?, 'adjudicated', ?, ?)", [line_id, label, by or "anonymous", now(), client_event_id])
    return "stored"


def label_table(db: Database, script_id: int | None = None) -> pd.DataFrame:
    """Each person's label in force per line (human and adjudicated): event_id, line_id, script_id, line_no,
    text, annotator, source, label, created_at."""
    import pandas as pd

    where = "AND l.script_id = ?" if script_id is not None else ""
    params = [script_id] if script_id is not None else []
    return pd.read_sql_query(
        f"""WITH live AS (
                SELECT e.event_id, e.line_id, e.annotator, e.source, e.label, e.created_at,
                       ROW_NUMBER() OVER (PARTITION BY e.line_id, e.annotator, e.source ORDER BY e.event_id DESC) AS r
                FROM label_events e JOIN lines l ON l.line_id = e.line_id
                WHERE e.action = 'set' AND e.source IN ('human', 'adjudicated') {where}
                  AND NOT EXISTS (SELECT 1 FROM label_events u WHERE u.undoes_event_id = e.event_id))
            SELECT live.event_id, live.line_id, l.script_id, l.line_no, l.page, l.text, live.annotator, live.source,
                   live.label, live.created_at
            FROM live JOIN lines l ON l.line_id = live.line_id JOIN scripts s ON s.script_id = l.script_id
            WHERE live.r = 1 AND s.status = 'ready' ORDER BY live.event_id""", db.conn, params=params)


# --- per-person progress -----------------------------------------------------------------------------

def person_activity(db: Database) -> pd.DataFrame:
    """Each human label event not undone: annotator, created_at, label, suggested (the suggestion shown)."""
    import pandas as pd

    return pd.read_sql_query(
        """SELECT e.annotator, e.created_at, e.label, e.suggested FROM label_events e
           WHERE e.action = 'set' AND e.source = 'human'
             AND NOT EXISTS (SELECT 1 FROM label_events u WHERE u.undoes_event_id = e.event_id)
           ORDER BY e.event_id""", db.conn)


# --- work assigned to people ---------------------------------------------------------------------------

def assign(db: Database, name: str, script_id: int, *, page: int | None = None, by: str) -> bool:
    """Give a script (or one page of it) to a person; True when new, False when it was assigned already."""
    with immediate(db):
        if db.execute("SELECT 1 FROM scripts WHERE script_id = ?", [script_id]).fetchone() is None:
            raise NotFoundError(f"no script with id {script_id}")
        if page is not None and db.execute("SELECT 1 FROM lines WHERE script_id = ? AND page = ? LIMIT 1",
                                           [script_id, page]).fetchone() is None:
            raise NotFoundError(f"script {script_id} has no page {page}; pick a page that has lines")
        cursor = db.execute("INSERT OR IGNORE INTO work_assignments(name, script_id, page, assigned_by, created_at) "
                            "VALUES (?,?,?,?,?)", [name, script_id, page, by or "anonymous", now()])
    return cursor.rowcount > 0


def unassign(db: Database, assignment_id: int) -> dict | None:
    """Take an assignment back; returns it (None when it was gone already)."""
    with immediate(db):
        rows = list(db.query("SELECT * FROM work_assignments WHERE assignment_id = ?", [assignment_id]))
        db.execute("DELETE FROM work_assignments WHERE assignment_id = ?", [assignment_id])
    return rows[0] if rows else None


def assignments(db: Database, name: str | None = None) -> list[dict]:
    where, params = ("WHERE a.name = ?", [name]) if name is not None else ("", [])
    return [dict(r) for r in db.query(
        f"""SELECT a.assignment_id, a.name, a.script_id, s.title, a.page, a.assigned_by, a.created_at
            FROM work_assignments a JOIN scripts s USING (script_id) {where}
            ORDER BY a.name, a.script_id, IFNULL(a.page, 0)""", params)]


def assigned_line_ids(db: Database, name: str) -> set[int]:
    """Lines of the scripts and pages assigned to this person."""
    return {int(r[0]) for r in db.execute(
        """SELECT l.line_id FROM work_assignments a JOIN lines l ON l.script_id = a.script_id
           AND (a.page IS NULL OR l.page = a.page) WHERE a.name = ?""", [name])}


def remove_person_work(db: Database, name: str) -> None:
    with immediate(db):
        db.execute("DELETE FROM work_assignments WHERE name = ?", [name])


# --- what a sequence change would touch (the confirmation a lead sees first) ---------------------------

def sequence_footprint(db: Database, sequence_id: int) -> dict:
    """A sequence's span, its line and rating counts, and the sequence after it (None for the last)."""
    rows = list(db.query("SELECT * FROM sequences WHERE sequence_id = ?", [sequence_id]))
    if not rows:
        raise NotFoundError(f"no sequence with id {sequence_id}; list them with `scriptlabel sequences`")
    seq = rows[0]

    def counted(s: dict) -> dict:
        lines = db.execute("SELECT COUNT(*) FROM lines WHERE sequence_id = ?", [s["sequence_id"]]).fetchone()[0]
        ratings = db.execute("SELECT COUNT(*) FROM sequence_ratings WHERE sequence_id = ? AND value IS NOT NULL",
                             [s["sequence_id"]]).fetchone()[0]
        return {"sequence_id": s["sequence_id"], "code": s["code"], "title": s["title"],
                "first_line_no": s["first_line_no"], "last_line_no": s["last_line_no"], "lines": int(lines),
                "ratings": int(ratings)}

    after = list(db.query("SELECT * FROM sequences WHERE script_id = ? AND first_line_no > ? "
                          "ORDER BY first_line_no LIMIT 1", [seq["script_id"], seq["first_line_no"]]))
    return {**counted(seq), "script_id": seq["script_id"], "next": counted(after[0]) if after else None}


def count_overlap_lines(db: Database, *, share: float, by_script: bool) -> tuple[int, int]:
    """(lines of ready scripts in the overlap, lines of ready scripts)."""
    row = db.execute(
        f"""SELECT COALESCE(SUM({_overlap_sql('l.script_id' if by_script else 'l.line_id')}), 0), COUNT(*)
            FROM lines l JOIN scripts s ON s.script_id = l.script_id WHERE s.status = 'ready'""",
        [_threshold(share)]).fetchone()
    return int(row[0]), int(row[1])
