"""Flags an annotator raises on a line ("unsure", "bad OCR", with a note): append-only, latest per line wins."""

from __future__ import annotations

import pandas as pd
from sqlite_utils import Database

from store.db import immediate, now
from store.types import ScriptlabelError

FLAG_KINDS = ("unsure", "bad_ocr", "cleared")


def add_flag(db: Database, line_id: int, kind: str, *, annotator: str, note: str = "",
             client_event_id: str | None = None) -> str:
    """Flag a line (kind "cleared" ends its flag); returns "stored", "duplicate" or "line_gone"."""
    if kind not in FLAG_KINDS:
        raise ScriptlabelError(f"unknown flag {kind!r}: use one of {', '.join(FLAG_KINDS)}")
    with immediate(db):
        if client_event_id is not None and db.execute(
                "SELECT 1 FROM line_flags WHERE client_event_id = ?", [client_event_id]).fetchone():
            return "duplicate"
        if not db.execute("SELECT 1 FROM lines WHERE line_id = ?", [line_id]).fetchone():
            return "line_gone"
        db.execute("INSERT INTO line_flags(line_id, kind, note, annotator, client_event_id, created_at) "
                   "VALUES (?,?,?,?,?,?)", [line_id, kind, (note or "").strip()[:500], annotator, client_event_id, now()])
    return "stored"


def current_flags(db: Database, script_id: int | None = None) -> pd.DataFrame:
    """The open flag per line (the latest, unless it was cleared): line_id, flag, flag_note, flagged_by."""
    where = "AND l.script_id = ?" if script_id is not None else ""
    frame = pd.read_sql_query(
        f"""SELECT f.line_id, f.kind AS flag, f.note AS flag_note, f.annotator AS flagged_by
            FROM line_flags f JOIN lines l USING (line_id)
            WHERE f.flag_id = (SELECT MAX(g.flag_id) FROM line_flags g WHERE g.line_id = f.line_id) {where}""",
        db.conn, params=[script_id] if script_id is not None else [])
    return frame[frame["flag"] != "cleared"].reset_index(drop=True)
