"""Uploads ingested in the background: the app stages the bytes, queues a job and starts a detached
worker (`python -m labeling.ingest.jobs --db PATH --job ID`), so leaving the page, closing the tab
or the Streamlit session ending does not stop it. Progress and the outcome live in SQLite
(`ingest_jobs`); the Scripts page polls `job_views`. A job that dies is rolled back whole on the
next open (store.jobs): nothing anyone labeled is touched, only the job's own unfinished script.
"""

from __future__ import annotations

import dataclasses

import argparse
import io
import os
import re
import shutil
import sqlite3
import sys
import uuid
from typing import BinaryIO
from dataclasses import dataclass
from pathlib import Path

from sqlite_utils import Database

from store import jobs as job_store
from store.db import data_dir, db_file
from store.types import ScriptlabelError

COPY_CHUNK = 1 << 20
RECENT_S = 15 * 60  # finished jobs stay on the Scripts page this long
_CLI_HINT = re.compile(r"`[^`]*`|(?<!\w)--[a-z][\w-]*")


@dataclass(frozen=True)
class JobView:
    """One job as the Scripts page shows it."""

    job_id: int
    file_name: str
    status: str
    fraction: float
    text: str
    script_id: int | None
    low_confidence_pages: list[int]
    flagged_pages: list[dict] = dataclasses.field(default_factory=list)  # {"page", "flag", "note"}


def message_for_app(message: str, *, staged: str | Path | None, file_name: str) -> str:
    """An error written for the app: the upload's name instead of temp paths, no CLI flags."""
    if staged:
        message = message.replace(str(staged), file_name).replace(str(Path(staged).parent), "")
    parts = [part for part in re.split(r";\s+|\s+—\s+", message) if not _CLI_HINT.search(part)]
    return "; ".join(parts).strip() or f"{file_name}: the file could not be ingested"


def start_upload(db: Database, file_name: str, data: bytes | BinaryIO, *, ocr: str = "auto", limits=None,
                 client_id: str | None = None) -> int:
    """Stage the upload (bytes, or a file object copied in chunks: a 400 MB scan is never copied whole in
    memory) beside the database, queue a job and start its worker; returns the job id.

    `limits` (labeling.ingest.pipeline.IngestLimits): over the size limit nothing is staged; the others
    (pages, text size, line length) are checked by the worker before it stores anything. `client_id` (the
    browser's id of the chosen file) makes it idempotent: the same chosen file seen again by a rerun
    returns its job, and starts nothing."""
    if client_id is not None and (existing := job_store.job_for_client(db, client_id)) is not None:
        return existing
    safe_name = Path(file_name).name or "upload.txt"
    stream = io.BytesIO(data) if isinstance(data, (bytes, bytearray)) else data
    size = _stream_size(stream)
    if not size:
        raise ScriptlabelError(f"{safe_name}: the file is empty; nothing to ingest")
    if limits is not None:
        limits.check_size(Path(safe_name), size)
    staged = staging_path(db, safe_name)
    try:
        with staged.open("wb") as out:
            shutil.copyfileobj(stream, out, COPY_CHUNK)
    except OSError:
        shutil.rmtree(staged.parent, ignore_errors=True)
        raise
    return start_staged(db, staged, ocr=ocr, limits=limits, client_id=client_id)


def staging_path(db: Database, safe_name: str) -> Path:
    """A new folder of its own under the database's uploads folder, and the upload's path in it (the name
    must be a bare file name: labeling.ingest.upload_api.safe_file_name)."""
    if db_file(db) is None:
        raise ScriptlabelError("background ingest needs a database file, not an in-memory one")
    staged = data_dir(db) / "uploads" / uuid.uuid4().hex / safe_name
    staged.parent.mkdir(parents=True, exist_ok=True)
    return staged


def start_staged(db: Database, staged: Path, *, ocr: str = "auto", limits=None, client_id: str | None = None) -> int:
    """Queue a job for a file staged by `staging_path` and start its worker; returns the job id. The same
    `client_id` twice (a rerun, a request sent again, two at once) gives the first job and drops this copy."""
    path = db_file(db)
    if path is None:
        raise ScriptlabelError("background ingest needs a database file, not an in-memory one")
    options = {"ocr": ocr, **({"limits": dataclasses.asdict(limits)} if limits is not None else {})}
    try:
        job_id = job_store.create_job(db, file_name=staged.name, staged_path=str(staged), options=options,
                                      client_id=client_id)
    except sqlite3.IntegrityError:  # the same chosen file, started by a rerun or request that overlapped this one
        shutil.rmtree(staged.parent, ignore_errors=True)
        existing = job_store.job_for_client(db, client_id) if client_id is not None else None
        if existing is None:
            raise
        return existing
    from labeling.processes import start_detached

    proc = start_detached([sys.executable, "-m", "labeling.ingest.jobs", "--db", str(path.resolve()),
                           "--job", str(job_id)],
                          log_path=data_dir(db) / "logs" / f"ingest-{job_id}.log",
                          env=dict(os.environ, OMP_THREAD_LIMIT=os.environ.get("OMP_THREAD_LIMIT", "1")),
                          cwd=Path(__file__).resolve().parents[2])
    job_store.set_job_pid(db, job_id, proc.pid)
    return job_id


def job_started(db: Database, client_id: str) -> bool:
    """True once the chosen file with this browser id has its job."""
    return job_store.job_for_client(db, client_id) is not None


def _stream_size(stream: BinaryIO) -> int:
    here = stream.tell()
    stream.seek(0, io.SEEK_END)
    size = stream.tell() - here
    stream.seek(here)
    return size


def run_job(db: Database, job_id: int, *, workers: int | None = None) -> job_store.IngestJob:
    """Run a queued job in this process (what the worker does); returns the finished job."""
    from labeling.ingest.pipeline import IngestLimits, ingest_path

    job = job_store.get_job(db, job_id)
    if job.status != "queued" or not job.staged_path:
        return job
    staged = Path(job.staged_path)
    try:
        options = job.options or {}
        limits = IngestLimits(**options["limits"]) if options.get("limits") else None
        ingest_path(db, staged, ocr=options.get("ocr", "auto"), workers=workers, job_id=job_id, limits=limits)
    except ScriptlabelError as exc:
        job_store.set_job_error(db, job_id, message_for_app(str(exc), staged=staged, file_name=job.file_name))
    finally:
        staged.unlink(missing_ok=True)
        try:
            staged.parent.rmdir()
        except OSError:
            pass
        job_store.clear_staged(db, job_id)
    return job_store.get_job(db, job_id)


def job_views(db: Database, *, recent_s: float = RECENT_S) -> list[JobView]:
    """Running jobs and the ones that ended in the last `recent_s` seconds, newest first."""
    views = []
    for job in job_store.list_jobs(db, limit=20):
        if not job.active and (job.finished_at is None or job_store.age_s(job.finished_at) > recent_s):
            continue
        low = list((job.result or {}).get("low_confidence_pages", []))
        flagged = list((job.result or {}).get("flagged_pages", []))
        if job.status == "queued":
            fraction, text = 0.0, f"{job.file_name}: waiting to start…"
        elif job.status == "running":
            total = job.pages_total or 0
            fraction = job.pages_done / total if total else 0.0
            text = (f"{job.file_name}: page {job.pages_done} of {total}" if total
                    else f"{job.file_name}: reading the file…")
        elif job.status == "done":
            r = job.result or {}
            fraction = 1.0
            text = (f"{job.file_name}: stored as “{r.get('title', job.file_name)}” — {r.get('pages', 0)} pages, "
                    f"{r.get('lines', 0)} lines, {r.get('sequences', 0)} sequences")
            if flagged:
                from labeling.ingest.pipeline import describe_flagged

                text += (f"; stored without lines: {describe_flagged(flagged)} — see them on the Script page, "
                         "where a page can be read again")
            if low:
                text += (f"; OCR confidence was low on page{'s' if len(low) > 1 else ''} "
                         f"{', '.join(map(str, low))} (noise or a poor scan?) — check them in the Script view")
        else:
            fraction, text = 0.0, job.error or f"{job.file_name}: the file could not be ingested"
        views.append(JobView(job_id=job.job_id, file_name=job.file_name, status=job.status, fraction=fraction,
                             text=text, script_id=job.script_id if job.status == "done" else None,
                             low_confidence_pages=low, flagged_pages=flagged))
    return views


def active_job_ids(db: Database) -> tuple[int, ...]:
    return tuple(job.job_id for job in job_store.list_jobs(db, active_only=True))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run one queued scriptlabel ingest job.")
    parser.add_argument("--db", required=True)
    parser.add_argument("--job", type=int, required=True)
    args = parser.parse_args(argv)

    from store.db import open_db

    db = open_db(args.db, create=False, recover=False)
    job = run_job(db, args.job)
    print(f"ingest job {job.job_id}: {job.status}" + (f" ({job.error})" if job.error else ""), file=sys.stderr)
    return 0 if job.status == "done" else 1


if __name__ == "__main__":
    raise SystemExit(main())
