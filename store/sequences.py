"""Sequences (groups of lines), their complexity ratings and tags."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from sqlite_utils import Database

from store.accounts import audit_in_transaction
from store.db import immediate, now
from store.team import sequence_footprint
from store.types import NotFoundError, ScriptlabelError, Sequence, SequenceEdit

if TYPE_CHECKING:  # pandas only inside the functions that return frames: light commands never load it
    import pandas as pd


class RatingError(ScriptlabelError, ValueError):
    pass


def list_sequences(db: Database, script_id: int | None = None) -> list[Sequence]:
    """A script's sequences, or those of every finished script (an unfinished ingest has none to show)."""
    where, params = ("WHERE s.script_id = ?", [script_id]) if script_id is not None else (
        "WHERE s.script_id IN (SELECT script_id FROM scripts WHERE status = 'ready')", [])
    sql = f"""
        SELECT s.*, (SELECT COUNT(*) FROM lines l WHERE l.sequence_id = s.sequence_id) AS n_lines
        FROM sequences s {where} ORDER BY s.script_id, s.first_line_no
    """
    return [
        Sequence(sequence_id=r["sequence_id"], script_id=r["script_id"], code=r["code"], title=r["title"],
                 first_line_no=r["first_line_no"], last_line_no=r["last_line_no"], lines=r["n_lines"])
        for r in db.query(sql, params)
    ]


def get_sequence(db: Database, sequence_id: int) -> dict:
    rows = list(db.query("SELECT * FROM sequences WHERE sequence_id = ?", [sequence_id]))
    if not rows:
        raise NotFoundError(f"no sequence with id {sequence_id}; list them with `scriptlabel sequences`")
    return rows[0]


def has_human_sequence_data(db: Database, script_id: int) -> bool:
    """True once a person edited a sequence or rated/tagged one: automatic re-derivation must stop then."""
    row = db.execute(
        """SELECT EXISTS(SELECT 1 FROM sequences WHERE script_id = ? AND manual = 1)
              OR EXISTS(SELECT 1 FROM sequence_ratings r JOIN sequences s USING (sequence_id) WHERE s.script_id = ?)
              OR EXISTS(SELECT 1 FROM sequence_tags t JOIN sequences s USING (sequence_id) WHERE s.script_id = ?)""",
        [script_id, script_id, script_id],
    ).fetchone()
    return bool(row[0])


def replace_sequences(db: Database, script_id: int, spans: list[tuple[int, int, str]]) -> int:
    """Replace a script's sequences by `spans` (first_line_no, last_line_no, title), coded sq0010, sq0020…"""
    with db.atomic():
        db.execute("UPDATE lines SET sequence_id = NULL WHERE script_id = ?", [script_id])
        db.execute("DELETE FROM sequences WHERE script_id = ?", [script_id])
        for index, (first, last, title) in enumerate(spans, 1):
            cursor = db.execute(
                "INSERT INTO sequences(script_id, code, title, first_line_no, last_line_no) VALUES (?,?,?,?,?)",
                [script_id, f"sq{index * 10:04d}", title, first, last],
            )
            db.execute("UPDATE lines SET sequence_id = ? WHERE script_id = ? AND line_no BETWEEN ? AND ?",
                       [cursor.lastrowid, script_id, first, last])
    return len(spans)


def rename_sequence(db: Database, sequence_id: int, *, code: str | None = None, title: str | None = None) -> None:
    get_sequence(db, sequence_id)
    with db.atomic():
        if code is not None:
            db.execute("UPDATE sequences SET code = ?, manual = 1 WHERE sequence_id = ?", [code.strip(), sequence_id])
        if title is not None:
            db.execute("UPDATE sequences SET title = ?, manual = 1 WHERE sequence_id = ?", [title.strip(), sequence_id])
        db.execute("UPDATE sequences SET version = version + 1 WHERE sequence_id = ?", [sequence_id])


class SequenceEditError(ScriptlabelError):
    pass


class SequenceChangedError(SequenceEditError):
    """The sequence a click acted on changed since the page showed it: nothing was done."""


def _check_version(seq: dict, expected_version: int | None) -> None:
    if expected_version is not None and int(seq["version"]) != int(expected_version):
        raise SequenceChangedError(
            f"{seq['code']} changed since this page showed it (a split, merge or rename since, or the same click "
            "twice): nothing was done; look at it again and choose again")


def _span(footprint: dict) -> dict:
    return {k: footprint[k] for k in ("sequence_id", "code", "title", "first_line_no", "last_line_no", "lines")}


def merge_with_next(db: Database, sequence_id: int, *, annotator: str = "anonymous",
                    client_id: str | None = None, expected_version: int | None = None, audit: bool = False) -> int:
    """Merge a sequence with the one after it; ratings and tags of both are kept on the merged sequence.

    Stored as an edit (`sequence_edits`) with what undoing it needs; `client_id` (the click's id) makes a
    click delivered twice merge once; with `expected_version` (what the click saw) a sequence changed
    since is refused (SequenceChangedError); with `audit`, the audit record (`annotator`, spans before and
    after) is written in the same transaction, so a repeat records nothing."""
    with immediate(db):
        done = _edit_by_client(db, client_id)
        if done is not None:
            return done.sequence_id
        seq = get_sequence(db, sequence_id)
        _check_version(seq, expected_version)
        rows = list(db.query(
            "SELECT * FROM sequences WHERE script_id = ? AND first_line_no > ? ORDER BY first_line_no LIMIT 1",
            [seq["script_id"], seq["first_line_no"]]))
        if not rows:
            raise SequenceEditError(f"sequence {seq['code']} is the last one of its script; there is nothing to merge "
                                    "it with")
        nxt = rows[0]
        before = sequence_footprint(db, sequence_id) if audit else None
        moved = {table: [r[0] for r in db.execute(f"SELECT {key} FROM {table} WHERE sequence_id = ?",
                                                  [nxt["sequence_id"]])]
                 for table, key in (("sequence_ratings", "rating_id"), ("sequence_tags", "tag_event_id"))}
        predictions = [dict(r) for r in db.query("SELECT * FROM sequence_predictions WHERE sequence_id = ?",
                                                 [nxt["sequence_id"]])]
        db.execute("UPDATE sequences SET last_line_no = ?, manual = 1, version = version + 1 WHERE sequence_id = ?",
                   [nxt["last_line_no"], sequence_id])
        db.execute("UPDATE lines SET sequence_id = ? WHERE sequence_id = ?", [sequence_id, nxt["sequence_id"]])
        for table in ("sequence_ratings", "sequence_tags"):
            db.execute(f"UPDATE {table} SET sequence_id = ? WHERE sequence_id = ?", [sequence_id, nxt["sequence_id"]])
        db.execute("DELETE FROM sequences WHERE sequence_id = ?", [nxt["sequence_id"]])
        _record_edit(db, "merge", seq, other=nxt, at_line_no=nxt["first_line_no"], annotator=annotator,
                     client_id=client_id,
                     detail={"kept": {"last_line_no": seq["last_line_no"], "manual": seq["manual"]},
                             "absorbed": dict(nxt), "moved": moved, "predictions": predictions})
        if before is not None:
            audit_in_transaction(db, annotator, "sequence_merge", script_id=seq["script_id"], detail={
                "sequence_id": sequence_id, "before": [_span(before), _span(before["next"])],
                "after": [_span(sequence_footprint(db, sequence_id))], "lines_moved": before["next"]["lines"],
                "ratings_moved": before["next"]["ratings"]})
    return sequence_id


def split_sequence(db: Database, sequence_id: int, at_line_no: int, *, code: str | None = None,
                   title: str = "", annotator: str = "anonymous", client_id: str | None = None,
                   expected_version: int | None = None, audit: bool = False) -> int:
    """Split a sequence so that a new one starts at `at_line_no`; returns the new sequence's id.

    Stored as an edit (`sequence_edits`) with what undoing it needs; `client_id`, `expected_version` and
    `audit` as for `merge_with_next`."""
    title = (title or "").strip()
    with immediate(db):
        done = _edit_by_client(db, client_id)
        if done is not None:
            return done.other_sequence_id
        seq = get_sequence(db, sequence_id)
        _check_version(seq, expected_version)
        if not seq["first_line_no"] < at_line_no <= seq["last_line_no"]:
            raise SequenceEditError(
                f"line {at_line_no} is not inside {seq['code']} (lines {seq['first_line_no'] + 1}–"
                f"{seq['last_line_no']}); pick a line of the sequence after its first")
        before = sequence_footprint(db, sequence_id) if audit else None
        new_code = (code or "").strip() or _next_code(db, seq)
        db.execute("UPDATE sequences SET last_line_no = ?, manual = 1, version = version + 1 WHERE sequence_id = ?",
                   [at_line_no - 1, sequence_id])
        cursor = db.execute(
            "INSERT INTO sequences(script_id, code, title, first_line_no, last_line_no, manual) VALUES (?,?,?,?,?,1)",
            [seq["script_id"], new_code, title, at_line_no, seq["last_line_no"]])
        new_id = int(cursor.lastrowid)
        db.execute("UPDATE lines SET sequence_id = ? WHERE script_id = ? AND line_no BETWEEN ? AND ?",
                   [new_id, seq["script_id"], at_line_no, seq["last_line_no"]])
        _record_edit(db, "split", seq, other={"sequence_id": new_id, "code": new_code, "title": title},
                     at_line_no=at_line_no, annotator=annotator, client_id=client_id,
                     detail={"kept": {"last_line_no": seq["last_line_no"], "manual": seq["manual"]}})
        if before is not None:
            second = sequence_footprint(db, new_id)
            audit_in_transaction(db, annotator, "sequence_split", script_id=seq["script_id"], detail={
                "sequence_id": sequence_id, "at_line_no": int(at_line_no), "before": [_span(before)],
                "after": [_span(sequence_footprint(db, sequence_id)), _span(second)], "lines_moved": second["lines"]})
    return new_id


def _record_edit(db: Database, kind: str, seq: dict, *, other: dict, at_line_no: int, annotator: str,
                 client_id: str | None, detail: dict) -> None:
    db.execute(
        """INSERT INTO sequence_edits(script_id, kind, sequence_id, other_sequence_id, at_line_no, code, other_code,
                                      other_title, detail, client_id, annotator, created_at)
           VALUES (?,?,?,?,?,?,?,?,?,?,?,?)""",
        [seq["script_id"], kind, seq["sequence_id"], other["sequence_id"], at_line_no, seq["code"], other["code"],
         other["title"] or "", json.dumps(detail), client_id, annotator or "anonymous", now()])


def _edit(row: dict) -> SequenceEdit:
    return SequenceEdit(**{key: row[key] for key in (
        "edit_id", "script_id", "kind", "sequence_id", "other_sequence_id", "at_line_no", "code", "other_code",
        "other_title", "annotator", "created_at", "undone_at", "undone_by")})


def _edit_by_client(db: Database, client_id: str | None) -> SequenceEdit | None:
    if not client_id:
        return None
    rows = list(db.query("SELECT * FROM sequence_edits WHERE client_id = ?", [client_id]))
    return _edit(rows[0]) if rows else None


def sequence_edit(db: Database, *, edit_id: int | None = None, client_id: str | None = None) -> SequenceEdit:
    """One stored split or merge, by its id or by the id of the click that made it."""
    rows = list(db.query("SELECT * FROM sequence_edits WHERE edit_id = ?", [edit_id])) if edit_id is not None \
        else list(db.query("SELECT * FROM sequence_edits WHERE client_id = ?", [client_id]))
    if not rows:
        raise NotFoundError(f"no split or merge with id {edit_id if edit_id is not None else client_id}")
    return _edit(rows[0])


def sequence_edits(db: Database, script_id: int, *, limit: int = 5) -> list[SequenceEdit]:
    """A script's latest splits and merges, newest first (undone ones included, marked)."""
    return [_edit(r) for r in db.query(
        "SELECT * FROM sequence_edits WHERE script_id = ? ORDER BY edit_id DESC LIMIT ?", [script_id, limit])]


def undo_sequence_edit(db: Database, edit_id: int, *, annotator: str = "anonymous", audit: bool = False
                       ) -> SequenceEdit:
    """Take back a split or merge; idempotent (undoing it again returns it as it is).

    Splits and merges undo newest first: a later one not undone over the same sequences must go first,
    so the lines and ratings are put back exactly where they were. Undoing a split gives the new
    sequence's lines, ratings and tags back to the one it came from; undoing a merge brings the absorbed
    sequence back under its own id with its lines, the ratings and tags it had and its predictions.
    With `audit`, the record is written in the same transaction, once: undoing it again records nothing."""
    with immediate(db):
        rows = list(db.query("SELECT * FROM sequence_edits WHERE edit_id = ?", [edit_id]))
        if not rows:
            raise NotFoundError(f"no split or merge with id {edit_id}")
        row = rows[0]
        if row["undone_at"] is not None:
            return _edit(row)
        ids = (row["sequence_id"], row["other_sequence_id"])
        later = list(db.query(
            """SELECT * FROM sequence_edits WHERE script_id = ? AND edit_id > ? AND undone_at IS NULL
                 AND (sequence_id IN (?, ?) OR other_sequence_id IN (?, ?)) ORDER BY edit_id DESC LIMIT 1""",
            [row["script_id"], edit_id, *ids, *ids]))
        if later:
            raise SequenceEditError(f"cannot undo “{_edit(row).describe()}”: undo the later “"
                                    f"{_edit(later[0]).describe()}” first")
        detail = json.loads(row["detail"])
        kept = _sequence_or_none(db, row["sequence_id"])
        if kept is None:
            raise SequenceEditError(f"cannot undo “{_edit(row).describe()}”: {row['code']} no longer exists")
        if row["kind"] == "split":
            _undo_split(db, row, kept, detail)
        else:
            _undo_merge(db, row, kept, detail)
        db.execute("UPDATE sequence_edits SET undone_at = ?, undone_by = ? WHERE edit_id = ?",
                   [now(), annotator or "anonymous", edit_id])
        if audit:
            audit_in_transaction(db, annotator, "sequence_edit_undo", script_id=row["script_id"],
                                 detail={"edit_id": int(edit_id), "kind": row["kind"], "what": _edit(row).describe()})
    return sequence_edit(db, edit_id=edit_id)


def _sequence_or_none(db: Database, sequence_id: int) -> dict | None:
    rows = list(db.query("SELECT * FROM sequences WHERE sequence_id = ?", [sequence_id]))
    return rows[0] if rows else None


def _undo_split(db: Database, row: dict, kept: dict, detail: dict) -> None:
    new = _sequence_or_none(db, row["other_sequence_id"])
    if new is None or kept["last_line_no"] != row["at_line_no"] - 1 or new["first_line_no"] != row["at_line_no"]:
        raise SequenceEditError(f"cannot undo “{_edit(row).describe()}”: the sequences changed since")
    db.execute("UPDATE sequences SET last_line_no = ?, manual = ?, version = version + 1 WHERE sequence_id = ?",
               [new["last_line_no"], detail["kept"]["manual"], kept["sequence_id"]])
    db.execute("UPDATE lines SET sequence_id = ? WHERE sequence_id = ?", [kept["sequence_id"], new["sequence_id"]])
    for table in ("sequence_ratings", "sequence_tags"):  # given to the new sequence since: kept, on the whole again
        db.execute(f"UPDATE {table} SET sequence_id = ? WHERE sequence_id = ?",
                   [kept["sequence_id"], new["sequence_id"]])
    db.execute("DELETE FROM sequences WHERE sequence_id = ?", [new["sequence_id"]])


def _undo_merge(db: Database, row: dict, kept: dict, detail: dict) -> None:
    absorbed = detail["absorbed"]
    if _sequence_or_none(db, absorbed["sequence_id"]) is not None or kept["last_line_no"] != absorbed["last_line_no"]:
        raise SequenceEditError(f"cannot undo “{_edit(row).describe()}”: the sequences changed since")
    db.execute("UPDATE sequences SET last_line_no = ?, manual = ?, version = version + 1 WHERE sequence_id = ?",
               [detail["kept"]["last_line_no"], detail["kept"]["manual"], kept["sequence_id"]])
    columns = list(absorbed)
    db.execute(f"INSERT INTO sequences({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})",
               [absorbed[c] for c in columns])
    # back under its id, but not as it was when a page last showed it: a click from then is refused
    db.execute("UPDATE sequences SET version = version + 1 WHERE sequence_id = ?", [absorbed["sequence_id"]])
    db.execute("UPDATE lines SET sequence_id = ? WHERE script_id = ? AND line_no BETWEEN ? AND ?",
               [absorbed["sequence_id"], kept["script_id"], absorbed["first_line_no"], absorbed["last_line_no"]])
    for table, key in (("sequence_ratings", "rating_id"), ("sequence_tags", "tag_event_id")):
        for chunk_start in range(0, len(detail["moved"][table]), 500):
            chunk = detail["moved"][table][chunk_start:chunk_start + 500]
            db.execute(f"UPDATE {table} SET sequence_id = ? WHERE sequence_id = ? AND {key} IN "
                       f"({', '.join('?' for _ in chunk)})", [absorbed["sequence_id"], kept["sequence_id"], *chunk])
    for prediction in detail["predictions"]:
        columns = list(prediction)
        db.execute(f"INSERT OR IGNORE INTO sequence_predictions({', '.join(columns)}) "
                   f"VALUES ({', '.join('?' for _ in columns)})", [prediction[c] for c in columns])


def _next_code(db: Database, seq: dict) -> str:
    codes = {r[0] for r in db.execute("SELECT code FROM sequences WHERE script_id = ?", [seq["script_id"]])}
    base = seq["code"]
    for suffix in "ABCDEFGHIJKLMNOPQRSTUVWXYZ":
        if f"{base}{suffix}" not in codes:
            return f"{base}{suffix}"
    return f"{base}-{len(codes)}"


def departments(db: Database) -> list[str]:
    return [r[0] for r in db.execute("SELECT name FROM departments ORDER BY rowid")]


def add_department(db: Database, name: str) -> str:
    name = name.strip().lower()
    if not name or not name.replace("_", "").replace("-", "").isalnum():
        raise RatingError(f"department name {name!r} must be a single word (letters, digits, - or _)")
    with db.atomic():
        db.execute("INSERT OR IGNORE INTO departments(name) VALUES (?)", [name])
    return name


def add_rating(db: Database, sequence_id: int, value: int, *, department: str = "overall",
               annotator: str = "anonymous") -> int:
    """Record a human complexity rating (1–5) in its own transaction."""
    try:
        value = int(value)
    except (TypeError, ValueError):
        raise RatingError(f"complexity must be a whole number 1–5, not {value!r}") from None
    if not 1 <= value <= 5:
        raise RatingError(f"complexity must be between 1 and 5, not {value}")
    if department not in departments(db):
        raise RatingError(f"unknown department {department!r}: use one of {', '.join(departments(db))} "
                          "or add it on the Sequences page")
    get_sequence(db, sequence_id)
    annotator = annotator or "anonymous"
    with db.atomic():
        # A repeated key press (a rerun delivered twice) must not stack a second identical rating:
        # an undo would then seem to do nothing. The same value again from whoever rated last is a no-op.
        in_force = _rating_in_force(db, sequence_id, department)
        if in_force is not None and in_force["annotator"] == annotator and in_force["value"] == value:
            return int(in_force["rating_id"])
        cursor = db.execute(
            "INSERT INTO sequence_ratings(sequence_id, department, value, annotator, created_at) VALUES (?,?,?,?,?)",
            [sequence_id, department, value, annotator, now()])
    return int(cursor.lastrowid)


def _rating_in_force(db: Database, sequence_id: int, department: str) -> dict | None:
    rows = list(db.query(
        """SELECT rating_id, value, annotator FROM sequence_ratings r
           WHERE sequence_id = ? AND department = ? AND undoes_rating_id IS NULL
             AND NOT EXISTS (SELECT 1 FROM sequence_ratings u WHERE u.undoes_rating_id = r.rating_id)
           ORDER BY rating_id DESC LIMIT 1""", [sequence_id, department]))
    return rows[0] if rows else None


def own_rating(db: Database, sequence_id: int, *, department: str, annotator: str) -> dict | None:
    """This annotator's latest rating of the sequence that is not undone: rating_id, value (or None)."""
    rows = list(db.query(
        """SELECT rating_id, value, created_at FROM sequence_ratings r
           WHERE sequence_id = ? AND department = ? AND annotator = ? AND value IS NOT NULL
             AND undoes_rating_id IS NULL AND source = 'human'
             AND NOT EXISTS (SELECT 1 FROM sequence_ratings u WHERE u.undoes_rating_id = r.rating_id)
           ORDER BY rating_id DESC LIMIT 1""", [sequence_id, department, annotator or "anonymous"]))
    return rows[0] if rows else None


def current_ratings(db: Database, *, department: str = "overall", script_id: int | None = None) -> pd.DataFrame:
    """Rating in force per sequence: a lead's adjudicated one, else the latest (across annotators):
    sequence_id, script_id, value, annotator."""
    import pandas as pd

    where = "AND s.script_id = ?" if script_id is not None else ""
    params: list = [department] + ([script_id] if script_id is not None else [])
    sql = f"""
        SELECT r.sequence_id, s.script_id, r.value, r.annotator, r.created_at
        FROM sequence_ratings r JOIN sequences s USING (sequence_id)
        WHERE r.department = ? {where}
          AND r.rating_id = (SELECT rating_id FROM sequence_ratings r2
                             WHERE r2.sequence_id = r.sequence_id AND r2.department = r.department
                               AND r2.undoes_rating_id IS NULL
                               AND NOT EXISTS (SELECT 1 FROM sequence_ratings u
                                               WHERE u.undoes_rating_id = r2.rating_id)
                             ORDER BY r2.source = 'adjudicated' DESC, r2.rating_id DESC LIMIT 1)
          AND r.value IS NOT NULL
    """
    return pd.read_sql_query(sql, db.conn, params=params)


def undo_rating(db: Database, sequence_id: int, *, department: str = "overall", annotator: str = "anonymous",
                rating_id: int | None = None) -> dict | None:
    """Take back this annotator's latest rating of a sequence in a department by appending an undo row.

    The rating before it (anyone's) is in force again. With `rating_id` (the rating the person saw),
    exactly that rating is taken back, and a repeated request is a no-op: an undo delivered twice
    never takes back an older rating. Returns the undone rating or None when there is nothing to undo.
    """
    get_sequence(db, sequence_id)
    annotator = annotator or "anonymous"
    with db.atomic():
        target = own_rating(db, sequence_id, department=department, annotator=annotator)
        if target is None or (rating_id is not None and target["rating_id"] != rating_id):
            return None
        db.execute(
            "INSERT INTO sequence_ratings(sequence_id, department, value, annotator, created_at, undoes_rating_id) "
            "VALUES (?, ?, NULL, ?, ?, ?)", [sequence_id, department, annotator, now(), target["rating_id"]])
    return target


def ratings_since(db: Database, department: str, after_rating_id: int = 0) -> int:
    """Rating events (ratings and undos) in a department after `after_rating_id`: what a retrain waits for."""
    return db.execute("SELECT COUNT(*) FROM sequence_ratings WHERE department = ? AND rating_id > ?",
                      [department, after_rating_id]).fetchone()[0]


def relabels_in_rated_sequences(db: Database, department: str, after_event_id: int = 0) -> int:
    """Label events after `after_event_id` that may change a rated sequence's components.

    Counted: undos, and labels that differ from the suggestion shown (a label that agrees with it
    leaves the sequence's line types as they were).
    """
    return db.execute(
        """SELECT COUNT(*) FROM label_events e JOIN lines l USING (line_id)
           WHERE e.event_id > ? AND (e.action = 'undo' OR e.suggested IS NULL OR e.label != e.suggested)
             AND l.sequence_id IN (SELECT sequence_id FROM sequence_ratings
                                   WHERE department = ? AND value IS NOT NULL)""",
        [after_event_id, department]).fetchone()[0]


def max_rating_id(db: Database) -> int:
    return db.execute("SELECT COALESCE(MAX(rating_id), 0) FROM sequence_ratings").fetchone()[0]


def set_tag(db: Database, sequence_id: int, tag: str, present: bool = True, *, annotator: str = "anonymous") -> int:
    tag = tag.strip().lower()
    if not tag:
        raise RatingError("a tag needs a name, e.g. crowd, water, fire, vehicles, creatures")
    get_sequence(db, sequence_id)
    with db.atomic():
        cursor = db.execute(
            "INSERT INTO sequence_tags(sequence_id, tag, present, annotator, created_at) VALUES (?,?,?,?,?)",
            [sequence_id, tag, int(bool(present)), annotator or "anonymous", now()])
    return int(cursor.lastrowid)


def set_tags(db: Database, sequence_id: int, tags: list[str], present: bool = True, *,
             annotator: str = "anonymous") -> list[int]:
    """Record several tags at once: all of them (one transaction) or, if one is blank, none."""
    names = [tag.strip().lower() for tag in tags]
    if not names or not all(names):
        raise RatingError(f"sequence {sequence_id}: a tag is blank; nothing was stored — give each tag a name, "
                          "e.g. crowd, water, fire, vehicles, creatures")
    get_sequence(db, sequence_id)
    stamp = now()
    with db.atomic():
        return [int(db.execute(
            "INSERT INTO sequence_tags(sequence_id, tag, present, annotator, created_at) VALUES (?,?,?,?,?)",
            [sequence_id, name, int(bool(present)), annotator or "anonymous", stamp]).lastrowid) for name in names]


def current_tags(db: Database, script_id: int | None = None) -> pd.DataFrame:
    import pandas as pd

    where = "AND s.script_id = ?" if script_id is not None else ""
    params = [script_id] if script_id is not None else []
    sql = f"""
        SELECT t.sequence_id, s.script_id, t.tag, t.present
        FROM sequence_tags t JOIN sequences s USING (sequence_id)
        WHERE t.tag_event_id = (SELECT MAX(tag_event_id) FROM sequence_tags t2
                                WHERE t2.sequence_id = t.sequence_id AND t2.tag = t.tag) {where}
    """
    return pd.read_sql_query(sql, db.conn, params=params)


def save_sequence_predictions(db: Database, version: int, department: str, rows: list[dict]) -> None:
    """rows: {sequence_id, value, expected, uncertainty, probs (dict rating → p)}."""
    with db.atomic():
        db.conn.executemany(
            "INSERT OR REPLACE INTO sequence_predictions(sequence_id, department, version, value, expected, "
            "uncertainty, probs) VALUES (?,?,?,?,?,?,?)",
            [(r["sequence_id"], department, version, int(r["value"]), float(r["expected"]), float(r["uncertainty"]),
              json.dumps(r["probs"])) for r in rows])


def latest_sequence_predictions(db: Database, *, department: str = "overall",
                                script_id: int | None = None) -> pd.DataFrame:
    import pandas as pd

    where = "AND s.script_id = ?" if script_id is not None else ""
    params: list = [department] + ([script_id] if script_id is not None else [])
    sql = f"""
        SELECT p.sequence_id, p.version, p.value, p.expected, p.uncertainty, p.probs
        FROM sequence_predictions p JOIN sequences s USING (sequence_id)
        WHERE p.department = ? {where}
          AND p.rowid = (SELECT MAX(p2.rowid) FROM sequence_predictions p2
                         WHERE p2.sequence_id = p.sequence_id AND p2.department = p.department)
    """
    return pd.read_sql_query(sql, db.conn, params=params)


def change_stamp(db: Database) -> tuple:
    """Changes with every merge, split, rename, rating, tag and sequence prediction (for the app's caches)."""
    spans = db.execute("SELECT COUNT(*), group_concat(sequence_id || ':' || first_line_no || '-' || last_line_no "
                       "|| ':' || code || ':' || title, '|') FROM sequences").fetchone()
    events = db.execute("SELECT (SELECT COALESCE(MAX(rating_id), 0) FROM sequence_ratings), "
                        "(SELECT COALESCE(MAX(tag_event_id), 0) FROM sequence_tags), "
                        "(SELECT COUNT(*) FROM sequence_predictions)").fetchone()
    return (spans[0], hash(spans[1]), *events)


def sequence_scripts(db: Database) -> dict[int, int]:
    """sequence_id -> script_id of every sequence."""
    return dict(db.execute("SELECT sequence_id, script_id FROM sequences").fetchall())


def count_sequences(db: Database) -> int:
    return db.execute("SELECT COUNT(*) FROM sequences").fetchone()[0]


def unrated_counts(db: Database, *, department: str = "overall") -> dict[int, tuple[int, int]]:
    """Per finished script: (sequences with no rating in force for `department`, all its sequences)."""
    rows = db.execute(
        """SELECT s.script_id, COUNT(*) AS total,
                  SUM(NOT EXISTS (SELECT 1 FROM sequence_ratings r WHERE r.sequence_id = s.sequence_id
                        AND r.department = ? AND r.value IS NOT NULL
                        AND NOT EXISTS (SELECT 1 FROM sequence_ratings u WHERE u.undoes_rating_id = r.rating_id)))
           FROM sequences s JOIN scripts c ON c.script_id = s.script_id AND c.status = 'ready'
           GROUP BY s.script_id""", [department]).fetchall()
    return {int(script_id): (int(unrated), int(total)) for script_id, total, unrated in rows}
