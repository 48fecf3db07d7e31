"""Ingest jobs: one row per ingest (CLI or app upload) with its progress, and the roll-back of
ingests whose process died (kill -9, crash, power cut) so no half-done script is ever left behind.

A script stays in status 'ingesting' — invisible to every listing, the queue, exports, sequences and
the duplicate check — until its lines, predictions and sequences are all stored; then it turns
'ready' in one transaction. An ingest whose process is gone is rolled back whole: its rows, its page
images and its source copy. Scripts a person labeled are never deleted this way.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from sqlite_utils import Database

from store.connection import now
from store.types import NotFoundError

ACTIVE = ("queued", "running")
QUEUED_GRACE_S = 120.0
INTERRUPTED = ("the ingest was interrupted before it finished (its program was stopped or crashed); nothing of it "
               "was kept — add the file again")


@dataclass(frozen=True)
class IngestJob:
    job_id: int
    file_name: str
    status: str  # queued | running | done | failed
    pages_done: int
    pages_total: int | None
    error: str | None
    script_id: int | None
    result: dict | None
    created_at: str
    finished_at: str | None
    staged_path: str | None = None
    options: dict | None = None

    @property
    def active(self) -> bool:
        return self.status in ACTIVE


def _job(row: dict) -> IngestJob:
    return IngestJob(job_id=row["job_id"], file_name=row["file_name"], status=row["status"],
                     pages_done=row["pages_done"], pages_total=row["pages_total"], error=row["error"],
                     script_id=row["script_id"], result=json.loads(row["result"]) if row["result"] else None,
                     created_at=row["created_at"], finished_at=row["finished_at"], staged_path=row["staged_path"],
                     options=json.loads(row["options"] or "{}"))


def process_start(pid: int) -> str | None:
    """The start time of process `pid` (clock ticks since boot), to tell a reused pid from the original."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[-1].split()[19]
    except (OSError, IndexError):
        return None


def process_alive(pid: int | None, start: str | None = None) -> bool:
    """True while `pid` runs (a zombie — finished, not yet reaped — counts as gone) and is the same process."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[-1].split()
    except OSError:
        return True  # no /proc: trust kill(0)
    if fields[0] == "Z":
        return False
    return start is None or fields[19] == start


def create_job(db: Database, *, file_name: str, staged_path: str | None = None, options: dict | None = None,
               pid: int | None = None, client_id: str | None = None) -> int:
    """A queued job; with `pid` (the process that will run it) it is owned from the start. `client_id` (the
    browser's id of a chosen file) is UNIQUE: raises sqlite3.IntegrityError when that file has a job."""
    with db.atomic():
        cursor = db.execute(
            "INSERT INTO ingest_jobs(file_name, status, staged_path, options, pid, pid_start, created_at, client_id) "
            "VALUES (?, 'queued', ?, ?, ?, ?, ?, ?)",
            [file_name, staged_path, json.dumps(options or {}), pid, process_start(pid) if pid else None, now(),
             client_id])
    return int(cursor.lastrowid)


def job_for_client(db: Database, client_id: str) -> int | None:
    """The job started for this chosen file, if any."""
    row = db.execute("SELECT job_id FROM ingest_jobs WHERE client_id = ?", [client_id]).fetchone()
    return int(row[0]) if row else None


def set_job_pid(db: Database, job_id: int, pid: int) -> None:
    with db.atomic():
        db.execute("UPDATE ingest_jobs SET pid = ?, pid_start = ? WHERE job_id = ? AND status = 'queued'",
                   [pid, process_start(pid), job_id])


def start_job(db: Database, job_id: int, *, pid: int | None = None) -> None:
    pid = pid or os.getpid()
    with db.atomic():
        db.execute("UPDATE ingest_jobs SET status = 'running', started_at = ?, pid = ?, pid_start = ? "
                   "WHERE job_id = ?", [now(), pid, process_start(pid), job_id])


def job_progress(db: Database, job_id: int, done: int, total: int) -> None:
    with db.atomic():
        db.execute("UPDATE ingest_jobs SET pages_done = ?, pages_total = ? WHERE job_id = ?", [done, total, job_id])


def finish_job(db: Database, job_id: int, *, script_id: int, result: dict) -> None:
    with db.atomic():
        db.execute("UPDATE ingest_jobs SET status = 'done', script_id = ?, result = ?, finished_at = ? "
                   "WHERE job_id = ?", [script_id, json.dumps(result), now(), job_id])


def fail_job(db: Database, job_id: int, *, error: str) -> None:
    with db.atomic():
        db.execute("UPDATE ingest_jobs SET status = 'failed', error = ?, finished_at = ? "
                   "WHERE job_id = ? AND status IN ('queued', 'running')", [error[:2000], now(), job_id])


def set_job_error(db: Database, job_id: int, error: str) -> None:
    """Replace a failed job's message (by one written for the app)."""
    with db.atomic():
        db.execute("UPDATE ingest_jobs SET error = ? WHERE job_id = ? AND status = 'failed'", [error[:2000], job_id])


def clear_staged(db: Database, job_id: int) -> None:
    with db.atomic():
        db.execute("UPDATE ingest_jobs SET staged_path = NULL WHERE job_id = ?", [job_id])


def delete_job(db: Database, job_id: int) -> None:
    with db.atomic():
        db.execute("DELETE FROM ingest_jobs WHERE job_id = ?", [job_id])


def get_job(db: Database, job_id: int) -> IngestJob:
    rows = list(db.query("SELECT * FROM ingest_jobs WHERE job_id = ?", [job_id]))
    if not rows:
        raise NotFoundError(f"no ingest job {job_id}")
    return _job(rows[0])


def list_jobs(db: Database, *, active_only: bool = False, limit: int = 20) -> list[IngestJob]:
    where = "WHERE status IN ('queued', 'running')" if active_only else ""
    return [_job(r) for r in db.query(f"SELECT * FROM ingest_jobs {where} ORDER BY job_id DESC LIMIT ?", [limit])]


def age_s(stamp: str) -> float:
    import datetime as dt

    return (dt.datetime.now(dt.timezone.utc) - dt.datetime.fromisoformat(stamp)).total_seconds()


def sweep_orphan_media(db: Database) -> list[str]:
    """Remove page-image folders of scripts that no longer exist (an OCR worker of a killed ingest may
    finish a page after the roll-back). Ids are never reused and the media folder is this database's own,
    so such a folder belongs to nothing."""
    import shutil

    from store.connection import MEDIA_SUFFIX, db_file

    path = db_file(db)
    media = path.parent / f"{path.name}{MEDIA_SUFFIX}" if path else None
    if media is None or not media.is_dir():
        return []
    # Only ids already handed out when we looked: a script created meanwhile has a higher one.
    row = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'scripts'").fetchone()
    highest = row[0] if row else 0
    known = {r[0] for r in db.execute("SELECT script_id FROM scripts")}
    removed = []
    for folder in (media / "pages", media / "sources"):
        if not folder.is_dir():
            continue
        for entry in os.scandir(folder):
            stem = entry.name.split(".", 1)[0]
            if not stem.isdigit() or int(stem) > highest or int(stem) in known:
                continue
            try:
                shutil.rmtree(entry.path) if entry.is_dir() else os.unlink(entry.path)
            except OSError:
                continue
            removed.append(entry.path)
    return removed


def roll_back_interrupted(db: Database) -> list[int]:
    """Fail the jobs whose process is gone and delete their unfinished scripts (rows and files), and
    delete unfinished scripts no live job owns. Returns the deleted script ids.

    A script people labeled (possible only in a database from an older version, which let people label
    pages while the rest was read) is never deleted: it is kept, visible, its title saying it is incomplete.
    """
    from store.scripts import delete_script, has_human_labels, keep_incomplete

    doomed_jobs = []
    for row in db.query("SELECT job_id, pid, pid_start, status, created_at FROM ingest_jobs "
                        "WHERE status IN ('queued', 'running')"):
        if row["pid"] is None:
            if age_s(row["created_at"]) > QUEUED_GRACE_S:  # its starter never got to record a process
                doomed_jobs.append(row["job_id"])
        elif not process_alive(row["pid"], row["pid_start"]):
            doomed_jobs.append(row["job_id"])
    for job_id in doomed_jobs:
        fail_job(db, job_id, error=INTERRUPTED)
    owned = {r[0] for r in db.execute("SELECT script_id FROM ingest_jobs WHERE status IN ('queued', 'running') "
                                      "AND script_id IS NOT NULL")}
    deleted = []
    for (script_id,) in db.execute("SELECT script_id FROM scripts WHERE status = 'ingesting'").fetchall():
        if script_id in owned:
            continue
        if has_human_labels(db, script_id):
            keep_incomplete(db, script_id)
            continue
        delete_script(db, script_id, only_unfinished=True)
        deleted.append(script_id)
    sweep_orphan_media(db)
    for job_id, path in db.execute("SELECT job_id, staged_path FROM ingest_jobs WHERE status IN ('done', 'failed') "
                                   "AND staged_path IS NOT NULL").fetchall():
        Path(path).unlink(missing_ok=True)  # an upload's bytes are kept only while its job runs
        with db.atomic():
            db.execute("UPDATE ingest_jobs SET staged_path = NULL WHERE job_id = ?", [job_id])
    return deleted
