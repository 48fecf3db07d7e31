"""Looking up the lines an import file names, and writing its labels in one transaction."""

from __future__ import annotations

from sqlite_utils import Database

from store.db import now

# As store.labels: the suggestion shown at the time is kept with the label (here: the latest one).
_INSERT = """
    INSERT INTO label_events(line_id, label, annotator, source, batch, created_at, suggested, suggested_version)
    SELECT ?1, ?2, ?3, ?4, ?5, ?6,
           (SELECT label FROM predictions WHERE line_id = ?1 ORDER BY rowid DESC LIMIT 1),
           (SELECT version FROM predictions WHERE line_id = ?1 ORDER BY rowid DESC LIMIT 1)
"""


def lines_by_id(db: Database, line_ids: list[int]) -> dict[int, dict]:
    """line_id → {script_id, script_title, line_no, text, status} for the ids that exist."""
    out: dict[int, dict] = {}
    ids = sorted(set(line_ids))
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        marks = ",".join("?" * len(chunk))
        for row in db.query(
                f"""SELECT l.line_id, l.script_id, s.title AS script_title, l.line_no, l.text, s.status
                    FROM lines l JOIN scripts s USING (script_id) WHERE l.line_id IN ({marks})""", chunk):
            out[int(row["line_id"])] = row
    return out


def scripts_by_title(db: Database) -> dict[str, list[int]]:
    """Ready scripts' titles → their ids (a title may be shared by several scripts)."""
    out: dict[str, list[int]] = {}
    for row in db.query("SELECT script_id, title FROM scripts WHERE status = 'ready' ORDER BY script_id"):
        out.setdefault(row["title"], []).append(int(row["script_id"]))
    return out


def lines_by_number(db: Database, script_id: int) -> dict[int, dict]:
    """line_no → {line_id, text} of one script."""
    return {int(r["line_no"]): r for r in db.query(
        "SELECT line_id, line_no, text FROM lines WHERE script_id = ?", [script_id])}


def write_labels(db: Database, rows: list[dict], *, batch: str | None = None) -> list[int]:
    """Append label events {line_id, label, annotator, source, created_at} all at once, or none."""
    ids = []
    with db.atomic():
        for row in rows:
            cursor = db.execute(_INSERT, [row["line_id"], row["label"], row["annotator"], row["source"], batch,
                                          row.get("created_at") or now()])
            ids.append(int(cursor.lastrowid))
    return ids
