"""Scripts, pages and lines: creating them page by page, listing, reading them back."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlite_utils import Database

from store.connection import data_dir, immediate, now
from store.types import FlaggedPage, Line, NotFoundError, PageInfo, ScriptlabelError

if TYPE_CHECKING:  # pandas only inside the functions that return frames: light commands never load it
    import pandas as pd

LINE_COLUMNS = (
    "line_id, script_id, line_no, page, text, original_text, x0, y0, x1, y1, indent, gap_before, "
    "source_line_no, ocr_confidence, sequence_id"
)


@dataclass(frozen=True)
class ScriptSummary:
    script_id: int
    title: str
    format: str
    pages: int
    lines: int
    labeled: int
    status: str
    created_at: str


READY = "status = 'ready'"  # a script is visible only once its ingest finished (lines, predictions, sequences)
LOW_CONFIDENCE = 0.5  # a page read by OCR at a lower mean word confidence is flagged (noise, a photo, a bad scan)


def find_script_by_sha(db: Database, sha256: str) -> dict | None:
    """The finished script with these source bytes (unfinished ingests are not duplicates)."""
    rows = list(db.query(f"SELECT * FROM scripts WHERE source_sha256 = ? AND {READY} ORDER BY script_id LIMIT 1",
                         [sha256]))
    return rows[0] if rows else None


def find_ingesting_by_sha(db: Database, sha256: str) -> dict | None:
    """A script with these source bytes whose ingest is running right now (dead ones were rolled back)."""
    rows = list(db.query(
        "SELECT s.*, j.job_id FROM scripts s JOIN ingest_jobs j ON j.script_id = s.script_id "
        "WHERE s.source_sha256 = ? AND s.status = 'ingesting' AND j.status IN ('queued', 'running') "
        "ORDER BY s.script_id LIMIT 1", [sha256]))
    return rows[0] if rows else None


def create_script(db: Database, *, title: str, format: str, source_name: str, sha256: str,
                  job_id: int | None = None) -> int:
    """A new script in status 'ingesting', owned by ingest job `job_id` (in the same transaction, so a
    crash can never leave an unfinished script that no job claims while its process still runs)."""
    with db.atomic():
        cursor = db.execute(
            "INSERT INTO scripts(title, format, source_name, source_sha256, status, created_at) "
            "VALUES (?, ?, ?, ?, 'ingesting', ?)",
            [title, format, source_name, sha256, now()],
        )
        if job_id is not None:
            db.execute("UPDATE ingest_jobs SET script_id = ? WHERE job_id = ?", [cursor.lastrowid, job_id])
    return int(cursor.lastrowid)


def set_source_path(db: Database, script_id: int, source_path: str) -> None:
    with db.atomic():
        db.execute("UPDATE scripts SET source_path = ? WHERE script_id = ?", [source_path, script_id])


def add_page(db: Database, script_id: int, page: PageInfo, lines: list[Line]) -> int:
    """Store one page and its lines (with any imported labels) in one transaction.

    Line numbers continue from the lines already stored, so pages must arrive in order.
    Returns the number of lines stored.
    """
    with db.atomic():
        db.execute(
            "INSERT INTO pages(script_id, page, width, height, image_path, dpi, text_source, flag, flag_note) "
            "VALUES (?,?,?,?,?,?,?,?,?)",
            [script_id, page.page, page.width, page.height, page.image_path, page.dpi, page.text_source, page.flag,
             page.flag_note or ""],
        )
        start = db.execute("SELECT COALESCE(MAX(line_no), 0) FROM lines WHERE script_id = ?", [script_id]).fetchone()[0]
        stamp = now()
        for offset, line in enumerate(lines, 1):
            cursor = db.execute(
                "INSERT INTO lines(script_id, line_no, page, text, original_text, x0, y0, x1, y1, indent, "
                "gap_before, source_line_no, ocr_confidence) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                [
                    script_id, start + offset, page.page, line.text, line.text, line.x0, line.y0, line.x1, line.y1,
                    line.indent, line.gap_before, line.source_line_no, line.ocr_confidence,
                ],
            )
            if line.imported_label:
                db.execute(
                    "INSERT INTO label_events(line_id, label, annotator, source, created_at) VALUES (?,?,?,?,?)",
                    [cursor.lastrowid, line.imported_label, "import", "imported", stamp],
                )
        db.execute(
            "UPDATE scripts SET pages = MAX(pages, ?), ocr_pages = ocr_pages + ?, line_count = line_count + ? "
            "WHERE script_id = ?",
            [page.page, 1 if page.text_source == "ocr" else 0, len(lines), script_id],
        )
    return len(lines)


def finish_script(db: Database, script_id: int, *, job_id: int | None = None, result: dict | None = None) -> None:
    """Make a completely stored script visible — and mark its job done — in one transaction."""
    with db.atomic():
        db.execute("UPDATE scripts SET status = 'ready' WHERE script_id = ?", [script_id])
        if job_id is not None:
            db.execute("UPDATE ingest_jobs SET status = 'done', script_id = ?, result = ?, finished_at = ? "
                       "WHERE job_id = ?", [script_id, json.dumps(result or {}), now(), job_id])


def has_human_labels(db: Database, script_id: int) -> bool:
    row = db.execute("SELECT EXISTS(SELECT 1 FROM label_events e JOIN lines l USING (line_id) "
                     "WHERE l.script_id = ? AND e.source = 'human')", [script_id]).fetchone()
    return bool(row[0])


def keep_incomplete(db: Database, script_id: int) -> None:
    """Make an interrupted ingest that people already labeled visible, its title saying how far it got
    (labels are never thrown away; its missing pages can be ingested again as another script)."""
    with db.atomic():
        db.execute("UPDATE scripts SET status = 'ready', title = title || ' (incomplete: stopped after page ' || pages || ')' "
                   "WHERE script_id = ? AND status = 'ingesting'", [script_id])


def delete_script(db: Database, script_id: int, *, only_unfinished: bool = False) -> None:
    """Delete a script and everything hanging off it (lines, labels, sequences, ratings), then the page
    images and source copy it made in this database's media folder (once the rows are gone).

    `only_unfinished` deletes nothing if the script finished meanwhile (the roll-back of an ingest).
    Files outside this database's own media folder are never touched: they may belong to another database.
    """
    script = get_script(db, script_id, include_unfinished=True)
    files = [r[0] for r in db.execute("SELECT image_path FROM pages WHERE script_id = ? AND image_path IS NOT NULL",
                                      [script_id])]
    if script.get("source_path"):
        files.append(script["source_path"])
    with db.atomic():
        where = " AND status = 'ingesting'" if only_unfinished else ""
        if db.execute(f"DELETE FROM scripts WHERE script_id = ?{where}", [script_id]).rowcount == 0:
            return
    base = data_dir(db).resolve()
    for name in files:
        path = Path(name)
        if path.resolve().is_relative_to(base):
            try:
                path.unlink(missing_ok=True)
            except OSError:
                pass  # the rows are gone; a file that cannot be removed now is swept on a later open
    page_dir = base / "pages" / str(script_id)
    shutil.rmtree(page_dir, ignore_errors=True)  # OCR may have left images no row points at yet


def get_script(db: Database, script_id: int, *, include_unfinished: bool = False) -> dict:
    """One script's row; a script still being ingested counts as missing unless `include_unfinished`."""
    rows = list(db.query("SELECT * FROM scripts WHERE script_id = ?", [script_id]))
    if not rows:
        raise NotFoundError(f"no script with id {script_id}; list them with `scriptlabel scripts`")
    if rows[0]["status"] != "ready" and not include_unfinished:
        raise NotFoundError(f"script {script_id} is still being ingested; it appears once its ingest finished "
                            "(see the Scripts page)")
    return rows[0]


def visible_script_ids(db: Database) -> list[int]:
    return [r[0] for r in db.execute(f"SELECT script_id FROM scripts WHERE {READY} ORDER BY script_id")]


def list_scripts(db: Database) -> list[ScriptSummary]:
    """Every finished script (unfinished ingests are not listed)."""
    sql = f"""
        SELECT s.script_id, s.title, s.format, s.pages, s.status, s.created_at,
               s.line_count AS lines, COALESCE(h.labeled, 0) AS labeled
        FROM scripts s LEFT JOIN (
            SELECT l.script_id, COUNT(DISTINCT e.line_id) AS labeled FROM label_events e
            JOIN lines l ON l.line_id = e.line_id WHERE e.source = 'human' GROUP BY l.script_id) h
          ON h.script_id = s.script_id
        WHERE s.{READY} ORDER BY s.script_id
    """
    return [
        ScriptSummary(
            script_id=r["script_id"], title=r["title"], format=r["format"], pages=r["pages"], lines=r["lines"],
            labeled=r["labeled"], status=r["status"], created_at=r["created_at"],
        )
        for r in db.query(sql)
    ]


def has_more_lines_than(db: Database, n: int) -> bool:
    """Whether the library holds more than `n` lines, without counting all of them."""
    return db.execute("SELECT COUNT(*) FROM (SELECT 1 FROM lines LIMIT ?)", [n + 1]).fetchone()[0] > n


def count_lines(db: Database, script_id: int | None = None) -> int:
    """Lines of one script, or of the whole library."""
    if script_id is None:
        return db.execute("SELECT COUNT(*) FROM lines").fetchone()[0]
    return db.execute("SELECT COUNT(*) FROM lines WHERE script_id = ?", [script_id]).fetchone()[0]


def low_confidence_pages(db: Database, script_id: int | None = None, *, threshold: float = LOW_CONFIDENCE
                         ) -> dict[int, list[tuple[int, float]]]:
    """Pages whose OCR'd words had a mean confidence under `threshold`: {script_id: [(page, mean), ...]}."""
    # Only scripts with OCR'd pages can have any: their lines are read through the script index.
    scripts = [script_id] if script_id is not None else [
        r[0] for r in db.execute("SELECT script_id FROM scripts WHERE ocr_pages > 0 ORDER BY script_id")]
    out: dict[int, list[tuple[int, float]]] = {}
    for sid in scripts:
        for page, mean in db.execute(
                "SELECT page, AVG(ocr_confidence) FROM lines WHERE script_id = ? AND ocr_confidence IS NOT NULL "
                "GROUP BY page HAVING AVG(ocr_confidence) < ? ORDER BY page", [sid, threshold]):
            out.setdefault(sid, []).append((page, round(mean, 3)))
    return out


def flagged_pages(db: Database, script_id: int | None = None) -> list[FlaggedPage]:
    """Pages stored without lines and why (blank, no_text, unreadable, timed_out), of one script or all."""
    where, params = ("AND script_id = ?", [script_id]) if script_id is not None else ("", [])
    return [FlaggedPage(script_id=r[0], page=r[1], flag=r[2], note=r[3] or "", image_path=r[4])
            for r in db.execute(f"SELECT script_id, page, flag, flag_note, image_path FROM pages "
                                f"WHERE flag IS NOT NULL {where} ORDER BY script_id, page", params)]


def get_pages(db: Database, script_id: int) -> list[PageInfo]:
    return [
        PageInfo(page=r["page"], width=r["width"], height=r["height"], image_path=r["image_path"], dpi=r["dpi"],
                 text_source=r["text_source"], flag=r["flag"], flag_note=r["flag_note"] or "")
        for r in db.query("SELECT * FROM pages WHERE script_id = ? ORDER BY page", [script_id])
    ]


def line_places(db: Database, script_id: int) -> dict[int, tuple[int | None, int]]:
    """line_no -> (sequence_id, page) for every line of a script."""
    return {r[0]: (r[1], r[2]) for r in db.execute(
        "SELECT line_no, sequence_id, page FROM lines WHERE script_id = ?", [script_id])}


def lines_frame(db: Database, script_id: int | None = None) -> pd.DataFrame:
    """All stored lines (of one script, or every script) in reading order, with page sizes."""
    import pandas as pd

    # Every script means every finished one; a named script is read whatever its state (ingest needs that).
    where = "WHERE l.script_id = ?" if script_id is not None else \
        "WHERE l.script_id IN (SELECT script_id FROM scripts WHERE status = 'ready')"
    params = [script_id] if script_id is not None else []
    sql = f"""
        SELECT l.line_id, l.script_id, l.line_no, l.page, l.text, l.original_text, l.x0, l.y0, l.x1, l.y1,
               l.indent, l.gap_before, l.source_line_no, l.ocr_confidence, l.sequence_id,
               p.width AS page_width, p.height AS page_height
        FROM lines l LEFT JOIN pages p ON p.script_id = l.script_id AND p.page = l.page
        {where} ORDER BY l.script_id, l.line_no
    """
    return pd.read_sql_query(sql, db.conn, params=params)


def get_line(db: Database, line_id: int) -> dict:
    rows = list(db.query(f"SELECT {LINE_COLUMNS} FROM lines WHERE line_id = ?", [line_id]))
    if not rows:
        raise NotFoundError(f"no line with id {line_id}; find ids with `scriptlabel queue` or an export")
    return rows[0]


def edit_line_text(db: Database, line_id: int, text: str, *, annotator: str,
                   client_event_id: str | None = None) -> bool:
    """Correct a line's (OCR) text; the original stays in `original_text`, every edit in `text_edits`.

    With a `client_event_id` (an edit sent from the browser) the edit is applied once: a resend returns
    False and changes nothing.
    """
    get_line(db, line_id)
    with immediate(db):
        if client_event_id is not None and db.execute(
                "SELECT 1 FROM text_edits WHERE client_event_id = ?", [client_event_id]).fetchone():
            return False
        db.execute("INSERT INTO text_edits(line_id, text, annotator, created_at, client_event_id) VALUES (?,?,?,?,?)",
                   [line_id, text, annotator, now(), client_event_id])
        db.execute("UPDATE lines SET text = ? WHERE line_id = ?", [text, line_id])
    return True


# --- reads for the labeling view: a few lines at a time, by id or by position ----------------

def text_edit_count(db: Database) -> int:
    """How many text corrections were ever made (a change counter: corrections are only appended)."""
    return db["text_edits"].count


def _rows(db: Database, sql: str, params: list) -> list[dict]:
    return [dict(r) for r in db.query(sql, params)]


def lines_with_pages(line_ids: list[int], *, db: Database) -> list[dict]:
    """These lines with their text, original text, box and page (size, image)."""
    if not line_ids:
        return []
    marks = ",".join("?" * len(line_ids))
    return _rows(db, f"""
        SELECT l.line_id, l.script_id, l.line_no, l.page, l.text, l.original_text, l.x0, l.y0, l.x1, l.y1,
               l.indent, p.width AS page_width, p.height AS page_height, p.image_path
        FROM lines l LEFT JOIN pages p ON p.script_id = l.script_id AND p.page = l.page
        WHERE l.line_id IN ({marks})""", list(line_ids))


def lines_by_id(db: Database, line_ids: list[int]) -> list[dict]:
    if not line_ids:
        return []
    marks = ",".join("?" * len(line_ids))
    return _rows(db, f"SELECT line_id, script_id, line_no, page, text, indent FROM lines WHERE line_id IN ({marks}) "
                     "ORDER BY script_id, line_no", list(line_ids))


def line_ids_between(db: Database, script_id: int, first_line_no: int, last_line_no: int) -> list[int]:
    return [r[0] for r in db.execute(
        "SELECT line_id FROM lines WHERE script_id = ? AND line_no BETWEEN ? AND ? ORDER BY line_no",
        [script_id, first_line_no, last_line_no])]


def line_window(db: Database, script_id: int, first_line_no: int, last_line_no: int) -> list[dict]:
    """Lines of a script between two line numbers, each with the newest model suggestion."""
    return _rows(db, """
        SELECT l.line_id, l.line_no, l.page, l.text,
               (SELECT p.label FROM predictions p WHERE p.line_id = l.line_id ORDER BY p.rowid DESC LIMIT 1)
                   AS suggestion
        FROM lines l WHERE l.script_id = ? AND l.line_no BETWEEN ? AND ? ORDER BY l.line_no""",
                 [script_id, first_line_no, last_line_no])


def find_line(db: Database, script_id: int, *, line_no: int | None = None, page: int | None = None) -> dict:
    """The line with this number, or the first line of this page; NotFoundError says what exists."""
    if line_no is not None:
        rows = _rows(db, "SELECT line_id, line_no, page, text, indent FROM lines WHERE script_id = ? AND line_no = ?",
                     [script_id, line_no])
    else:
        rows = _rows(db, "SELECT line_id, line_no, page, text, indent FROM lines WHERE script_id = ? AND page = ? "
                         "ORDER BY line_no LIMIT 1", [script_id, page])
    if not rows:
        last_line, pages = db.execute("SELECT MAX(line_no), MAX(page) FROM lines WHERE script_id = ?",
                                      [script_id]).fetchone()
        what = f"line {line_no}" if line_no is not None else f"page {page}"
        raise NotFoundError(f"this script has no {what}: it has lines 1-{last_line or 0} on pages 1-{pages or 0}")
    return rows[0]


def lines_by_text(db: Database, script_id: int, text: str) -> list[dict]:
    """Lines of a script whose text equals `text` once whitespace is squeezed (candidates for "identical")."""
    squeezed = " ".join(text.split())
    return [r for r in _rows(db, "SELECT line_id, line_no, page, text, indent FROM lines WHERE script_id = ? "
                                 "AND length(text) BETWEEN ? AND ?", [script_id, len(squeezed), len(text) + 40])
            if " ".join(r["text"].split()) == squeezed]


def page_image(db: Database, script_id: int, page: int) -> Path | None:
    """The stored image of one page (None when the page has none, e.g. text or Fountain input)."""
    row = db.execute("SELECT image_path FROM pages WHERE script_id = ? AND page = ?", [script_id, page]).fetchone()
    if not row or not row[0]:
        return None
    path = Path(row[0])
    return path if path.exists() else None


def change_stamp(db: Database) -> tuple:
    """Changes with every ingest, delete, status change and text correction (for the app's caches)."""
    scripts = db.execute("SELECT COUNT(*), COALESCE(MAX(script_id), 0), "
                         "COALESCE(SUM(length(status) * script_id + length(title)), 0), "
                         "group_concat(title || status, '|') FROM scripts").fetchone()
    edits = db.execute("SELECT COALESCE(MAX(edit_id), 0) FROM text_edits").fetchone()[0]
    flags = db.execute("SELECT COALESCE(MAX(flag_id), 0) FROM line_flags").fetchone()[0]
    return scripts[:3] + (hash(scripts[3]), edits, flags)


def random_line_ids(db: Database, n: int, *, seed: int | None = None) -> list[int]:
    """About `n` line ids drawn uniformly (by id, so no scan of the table)."""
    import random

    # Two queries: SQLite answers MIN or MAX of the key from the index alone, but not both in one SELECT.
    low = db.execute("SELECT MIN(line_id) FROM lines").fetchone()[0]
    high = db.execute("SELECT MAX(line_id) FROM lines").fetchone()[0]
    if low is None:
        return []
    rng = random.Random(seed)
    picks = sorted({rng.randint(low, high) for _ in range(n)})
    found: list[int] = []
    for start in range(0, len(picks), 5000):
        chunk = picks[start:start + 5000]
        found += [r[0] for r in db.execute(
            f"SELECT line_id FROM lines WHERE line_id IN ({','.join('?' * len(chunk))})", chunk)]
    return found


QUEUE_LINE_COLUMNS = ("line_id", "script_id", "line_no", "page", "text", "indent")


def queue_lines(db: Database, script_id: int | None = None) -> list[tuple]:
    """The lines the label queue ranks (of one script, or every finished one) in reading order, as tuples
    of QUEUE_LINE_COLUMNS."""
    where = "WHERE script_id = ?" if script_id is not None else \
        "WHERE script_id IN (SELECT script_id FROM scripts WHERE status = 'ready')"
    return db.execute(f"SELECT line_id, script_id, line_no, page, text, indent FROM lines {where} "
                      "ORDER BY script_id, line_no", [script_id] if script_id is not None else []).fetchall()


def lines_of(db: Database, line_ids: list[int]) -> list[tuple]:
    """`queue_lines` rows for these lines only, in reading order."""
    rows: list[tuple] = []
    for start in range(0, len(line_ids), 5000):
        chunk = list(line_ids[start:start + 5000])
        rows += db.execute(f"SELECT line_id, script_id, line_no, page, text, indent FROM lines "
                           f"WHERE line_id IN ({','.join('?' * len(chunk))})", chunk).fetchall()
    return sorted(rows, key=lambda r: (r[1], r[2]))


def script_titles(db: Database) -> dict[int, str]:
    """script_id → title of every finished script (what pickers need, without counting lines)."""
    return {r[0]: r[1] for r in db.execute(f"SELECT script_id, title FROM scripts WHERE {READY} ORDER BY script_id")}


def clone_script(db: Database, script_id: int, *, title: str) -> int:
    """A copy of a finished script as a new one — pages, lines and their newest predictions — in one
    transaction (benchmarks build large libraries this way; labels and sequences are not copied)."""
    source = get_script(db, script_id)
    import uuid

    with db.atomic():
        new = int(db.execute(
            "INSERT INTO scripts(title, format, source_name, source_sha256, pages, status, ocr_pages, created_at) "
            "VALUES (?, ?, ?, ?, ?, 'ready', ?, ?)",
            [title, source["format"], source["source_name"], uuid.uuid4().hex, source["pages"], source["ocr_pages"],
             now()]).lastrowid)
        db.execute("INSERT INTO pages(script_id, page, width, height, image_path, dpi, text_source) "
                   "SELECT ?, page, width, height, NULL, dpi, text_source FROM pages WHERE script_id = ?",
                   [new, script_id])
        db.execute("UPDATE scripts SET line_count = (SELECT line_count FROM scripts WHERE script_id = ?) "
                   "WHERE script_id = ?", [script_id, new])
        db.execute("""INSERT INTO lines(script_id, line_no, page, text, original_text, x0, y0, x1, y1, indent,
                                        gap_before, source_line_no, ocr_confidence)
                      SELECT ?, line_no, page, text, original_text, x0, y0, x1, y1, indent, gap_before,
                             source_line_no, ocr_confidence FROM lines WHERE script_id = ? ORDER BY line_no""",
                   [new, script_id])
        db.execute("""INSERT INTO predictions(line_id, version, label, confidence, margin, probs, classes)
                      SELECT n.line_id, p.version, p.label, p.confidence, p.margin, p.probs, p.classes
                      FROM lines o JOIN lines n ON n.script_id = ? AND n.line_no = o.line_no
                      JOIN predictions p ON p.line_id = o.line_id
                      WHERE o.script_id = ?
                        AND p.rowid = (SELECT MAX(p2.rowid) FROM predictions p2 WHERE p2.line_id = o.line_id)""",
                   [new, script_id])
    return new


class PageHasHumanWork(ScriptlabelError):
    """The page's lines carry labels, edits or flags people made: re-reading it would drop them."""


def replace_page(db: Database, script_id: int, page: PageInfo, lines: list[Line]) -> int:
    """A page read again: its lines replaced (later line numbers and sequence spans shifted to match) and
    its flag set to the new reading's, in one transaction. Refused (PageHasHumanWork, nothing changed)
    when a person labeled, edited or flagged one of its lines. Returns the change in line count."""
    with immediate(db):
        old = [r[0] for r in db.execute("SELECT line_id FROM lines WHERE script_id = ? AND page = ? ORDER BY line_no",
                                        [script_id, page.page])]
        if old and db.execute(
                f"SELECT EXISTS(SELECT 1 FROM label_events WHERE line_id IN ({','.join('?' * len(old))}) "
                f"AND source != 'rule') OR EXISTS(SELECT 1 FROM text_edits WHERE line_id IN ({','.join('?' * len(old))}))"
                f" OR EXISTS(SELECT 1 FROM line_flags WHERE line_id IN ({','.join('?' * len(old))}))",
                old * 3).fetchone()[0]:
            raise PageHasHumanWork(f"page {page.page} of script {script_id} has lines people labeled, edited or flagged")
        first = db.execute("SELECT COALESCE(MAX(line_no), 0) + 1 FROM lines WHERE script_id = ? AND page < ?",
                           [script_id, page.page]).fetchone()[0]
        last_old = first + len(old) - 1
        delta = len(lines) - len(old)
        db.execute("DELETE FROM lines WHERE script_id = ? AND page = ?", [script_id, page.page])
        if delta:
            # Two steps: shifting in place would collide with UNIQUE(script_id, line_no) half-way.
            db.execute("UPDATE lines SET line_no = -line_no WHERE script_id = ? AND line_no > ?", [script_id, last_old])
            db.execute("UPDATE lines SET line_no = -line_no + ? WHERE script_id = ? AND line_no < 0", [delta, script_id])
            db.execute("UPDATE sequences SET first_line_no = first_line_no + ? WHERE script_id = ? AND first_line_no > ?",
                       [delta, script_id, last_old])
            db.execute("UPDATE sequences SET last_line_no = CASE WHEN last_line_no > ? THEN last_line_no + ? "
                       "ELSE ? END WHERE script_id = ? AND last_line_no >= ?",
                       [last_old, delta, last_old + delta, script_id, first])
            db.execute("DELETE FROM sequences WHERE script_id = ? AND last_line_no < first_line_no", [script_id])
        for offset, line in enumerate(lines):
            db.execute(
                "INSERT INTO lines(script_id, line_no, page, text, original_text, x0, y0, x1, y1, indent, gap_before, "
                "source_line_no, ocr_confidence, sequence_id) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?, "
                "(SELECT sequence_id FROM sequences WHERE script_id = ? AND ? BETWEEN first_line_no AND last_line_no "
                "ORDER BY first_line_no LIMIT 1))",
                [script_id, first + offset, page.page, line.text, line.text, line.x0, line.y0, line.x1, line.y1,
                 line.indent, line.gap_before, line.source_line_no, line.ocr_confidence, script_id, first + offset])
        db.execute("UPDATE pages SET width = ?, height = ?, image_path = ?, dpi = ?, flag = ?, flag_note = ? "
                   "WHERE script_id = ? AND page = ?",
                   [page.width, page.height, page.image_path, page.dpi, page.flag, page.flag_note or "", script_id,
                    page.page])
        db.execute("UPDATE scripts SET line_count = line_count + ? WHERE script_id = ?", [delta, script_id])
    return delta
