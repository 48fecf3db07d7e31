"""The app's upload route: a chosen file streamed to disk as it arrives, then ingested in the background.

Streamlit's own uploader keeps an upload in the server's memory as long as its widget holds it (a 400 MB
scan: 400 MB of the server, per upload, until the page is left) and has no streaming mode. The Scripts
page's uploader (app_pages/uploader) sends each chosen file here instead, as the request body of
`POST /api/upload?name=FILE&client_id=ID&database=UID`, which is written to the uploads folder in 1 MB
chunks and never held whole; then `labeling.ingest.jobs.start_staged` queues its job, as for any upload.

The same locks as the labeling view's routes (labeling/session/api.py): the custom header a cross-site
form cannot send, a valid session when sign-in is on (and a role that may ingest), the page's database.
Limits before a byte is stored: the declared size (Content-Length) against SCRIPTLABEL_MAX_UPLOAD_MB, the
free disk space, a known file type; while streaming, the bytes actually received; once staged, a PDF's
pages against SCRIPTLABEL_MAX_PAGES (the worker checks pages and text limits again before it stores).
A file name is only a name: its folders, control characters and excess length are dropped. Each request
stages into a folder of its own, so parallel uploads never meet; the browser's id for the chosen file
makes a request sent twice (or twice at once) one job.
"""

from __future__ import annotations

import logging
import re
import shutil
import unicodedata
from pathlib import Path

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from labeling.accounts import access
from labeling.accounts.api import session_token
from labeling.ingest import jobs as ingest_jobs
from store import accounts
from store import jobs as job_store
from store.db import ThreadConnections, data_dir, database_uid
from store.types import ScriptlabelError

log = logging.getLogger("scriptlabel.upload_api")
UPLOAD_PATH = "/api/upload"
HEADER = "x-scriptlabel"
SUFFIXES = (".pdf", ".txt", ".text", ".fountain", ".spmd", ".fdx")
CHUNK = 1 << 20
MAX_NAME_BYTES = 200  # file systems allow 255 bytes a name; room for the folder's own suffixes
DISK_MARGIN = 256 << 20  # free space left after an upload: the database and page images need room too
_CLIENT_ID = re.compile(r"[A-Za-z0-9_.:-]{1,128}")


def safe_file_name(raw: str) -> str:
    """The bare name of an uploaded file: no folders (either slash), no control or format characters, not
    '.' or '..', at most MAX_NAME_BYTES (its suffix kept); 'upload' when nothing is left."""
    name = re.split(r"[/\\]", raw or "")[-1]
    name = "".join(ch for ch in unicodedata.normalize("NFC", name) if unicodedata.category(ch)[0] != "C")
    name = name.strip().strip(".") if set(name.strip()) <= {"."} else name.strip()
    stem, dot, suffix = name.rpartition(".")
    if not dot or len(suffix) > 12:
        stem, suffix = name, ""
    while len((stem + (f".{suffix}" if suffix else "")).encode()) > MAX_NAME_BYTES:
        stem = stem[:-1]
    name = (stem.strip() or "upload") + (f".{suffix}" if suffix else "")
    return name


def _json(status: int, message: str, **extra) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status, headers={"Cache-Control": "no-store"})


def routes(db_path: str | Path, *, limits, oidc: bool = False) -> list[Route]:
    """The upload route for the database at `db_path`; `limits` (labeling.ingest.pipeline.IngestLimits) are
    the app's."""
    from starlette.concurrency import run_in_threadpool

    db_path = Path(db_path).resolve()
    db = ThreadConnections(db_path).get

    def who_uploads(token: str | None, typed_name: str) -> access.Identity | Response:
        database = db()
        if not access.sign_in_enabled(database, oidc=oidc):
            return access.single_user(typed_name or "local")
        user = accounts.session_user(database, token)
        if user is None:
            return _json(401, "sign in first: your session has ended", signin=True)
        who = access.from_user(user, via="session")
        try:
            return access.require(who, "ingest")
        except ScriptlabelError as exc:
            return _json(403, str(exc))

    def before_body(params, token: str | None, declared: int | None) -> tuple[access.Identity, str] | Response:
        """Everything that can be refused before a byte of the body is read: (who, the file's safe name)."""
        who = who_uploads(token, str(params.get("annotator", ""))[:100])
        if isinstance(who, Response):
            return who
        if params.get("database") != database_uid(db()):
            return _json(409, "this page was opened on another database: reload the page", reload=True)
        name = safe_file_name(params.get("name", ""))
        if not name.lower().endswith(SUFFIXES):
            return _json(415, f"{name}: not a screenplay file this app reads; upload a PDF, plain text (.txt), "
                              "Fountain or Final Draft (.fdx) file")
        if declared is not None:
            if declared == 0:
                return _json(400, f"{name}: the file is empty; nothing to ingest")
            try:
                limits.check_size(Path(name), declared)
            except ScriptlabelError as exc:  # names no path; its hint (split with qpdf) is for this person
                return _json(413, str(exc))
            free = shutil.disk_usage(data_dir(db())).free
            if declared + DISK_MARGIN > free:
                return _json(507, f"{name}: the server has {free / 2**20:,.0f} MB of disk free, too little for "
                                  f"{declared / 2**20:,.0f} MB; nothing was stored — ask an admin to free space")
        return who, name

    def finish(staged: Path, name: str, client_id: str | None, who: access.Identity) -> Response:
        """The staged file's PDF pages against the limit, then its job (one per client id)."""
        if name.lower().endswith(".pdf"):
            try:
                _check_pages(staged, name)
            except ScriptlabelError as exc:  # names no path; its hint (split with qpdf) is for this person
                shutil.rmtree(staged.parent, ignore_errors=True)
                return _json(413, str(exc))
        try:
            job_id = ingest_jobs.start_staged(db(), staged, limits=limits, client_id=client_id)
        except ScriptlabelError as exc:
            shutil.rmtree(staged.parent, ignore_errors=True)
            return _json(400, ingest_jobs.message_for_app(str(exc), staged=staged, file_name=name))
        if staged.exists():  # this request's job (a copy that lost the race to the same id was dropped)
            accounts.audit(db(), who.name, "ingest", detail={"file": name, "job": job_id})
        return JSONResponse({"job_id": job_id, "file": name}, headers={"Cache-Control": "no-store"})

    def _check_pages(staged: Path, name: str) -> None:
        from labeling.ingest.pdf.mupdf import pymupdf

        try:
            with pymupdf.open(staged) as doc:
                pages = doc.page_count
        except Exception:  # MuPDF's own errors: the worker says what is wrong with the file, as for any upload
            return
        limits.check_pages(Path(name), pages)

    async def upload(request: Request) -> Response:
        if request.headers.get(HEADER) != "1":
            return _json(403, "uploads to this address come from the app's Scripts page only")
        params = request.query_params
        client_id = params.get("client_id") or None
        if client_id is not None and not _CLIENT_ID.fullmatch(client_id):
            return _json(400, "bad upload id")
        try:
            declared = int(request.headers["content-length"]) if "content-length" in request.headers else None
        except ValueError:
            return _json(400, "bad Content-Length")
        checked = await run_in_threadpool(before_body, params, session_token(request), declared)
        if isinstance(checked, Response):
            return checked
        who, name = checked
        if client_id is not None and (existing := await run_in_threadpool(job_store.job_for_client, db(), client_id)):
            return JSONResponse({"job_id": existing, "file": name}, headers={"Cache-Control": "no-store"})
        staged = await run_in_threadpool(ingest_jobs.staging_path, db(), name)
        received, buffered = 0, bytearray()
        try:
            with staged.open("wb") as out:
                async for chunk in request.stream():
                    received += len(chunk)
                    if received > limits.max_bytes:
                        raise _TooLarge
                    buffered += chunk
                    if len(buffered) >= CHUNK:
                        await run_in_threadpool(out.write, bytes(buffered))
                        buffered.clear()
                if buffered:
                    await run_in_threadpool(out.write, bytes(buffered))
        except _TooLarge:
            shutil.rmtree(staged.parent, ignore_errors=True)
            try:
                limits.check_size(Path(name), received)
            except ScriptlabelError as exc:
                return _json(413, str(exc))
        except ClientDisconnect:  # the tab closed or the person cancelled: nothing stays behind
            shutil.rmtree(staged.parent, ignore_errors=True)
            return Response(status_code=499)
        except OSError as exc:  # a full disk, a permission: the half-written file goes
            shutil.rmtree(staged.parent, ignore_errors=True)
            log.error("upload of %s could not be staged: %s", name, exc)
            return _json(507, f"{name}: the server could not store the file ({exc.strerror or exc}); nothing was "
                              "stored — ask an admin")
        if not received:
            shutil.rmtree(staged.parent, ignore_errors=True)
            return _json(400, f"{name}: the file is empty; nothing to ingest")
        if declared is not None and received != declared:
            shutil.rmtree(staged.parent, ignore_errors=True)
            return _json(400, f"{name}: the upload was cut short ({received:,} of {declared:,} bytes); choose the "
                              "file again")
        try:
            return await run_in_threadpool(finish, staged, name, client_id, who)
        except Exception:  # never a traceback in the browser
            shutil.rmtree(staged.parent, ignore_errors=True)
            log.exception("upload of %s failed", name)
            return _json(500, f"{name}: the server could not start its ingest; nothing was stored — try again")

    return [Route(UPLOAD_PATH, upload, methods=["POST"])]


class _TooLarge(Exception):
    pass
