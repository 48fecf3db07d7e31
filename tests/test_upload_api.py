"""The app's upload route (labeling/ingest/upload_api.py) over real HTTP against the real server
(`streamlit run app_server.py`): a file streamed to disk and ingested in the background; refused before
anything is stored without the app's header, without sign-in or the role to ingest, over the byte or page
limit (declared or not), for another database or an unknown type; hostile file names stay names inside
the uploads folder; the same chosen file sent three times at once is one job."""

from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.parse
from pathlib import Path

import pytest

from browser_support import App, _query
from conftest import make_text_pdf
from store import accounts
from store.db import database_uid, open_db

pytestmark = pytest.mark.slow

SCRIPT = "INT. PIER - NIGHT\n\nFog rolls in over the boards.\n\nMARGO\nWho's there?\n"


def script(tag: str) -> bytes:
    """A small screenplay of its own (the same bytes twice would be refused as already ingested)."""
    return (SCRIPT + f"\nTIM\nIt's me, {tag}.\n").encode()


def post(app: App, body: bytes | None, *, name: str = "pier.txt", client_id: str | None = None,
         database: str | None = None, header: bool = True, cookie: str | None = None, chunks=None,
         content_length: int | None = None) -> tuple[int, dict]:
    """One POST /api/upload; `chunks` sends the body chunked (no Content-Length), `content_length` declares a size."""
    params = {"name": name, "database": database if database is not None else app.uid, "annotator": "ana",
              **({"client_id": client_id} if client_id else {})}
    conn = http.client.HTTPConnection("127.0.0.1", app.port, timeout=120)
    headers = {"Content-Type": "application/octet-stream", **({"X-Scriptlabel": "1"} if header else {}),
               **({"Cookie": f"scriptlabel_session={cookie}"} if cookie else {})}
    path = f"/api/upload?{urllib.parse.urlencode(params)}"
    try:
        if chunks is not None:
            conn.request("POST", path, body=iter(chunks), headers=headers, encode_chunked=True)
        else:
            if content_length is not None:
                headers["Content-Length"] = str(content_length)
            conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        raw = response.read()
    except (BrokenPipeError, ConnectionResetError):  # the server answered early and closed: read what it said
        response = conn.getresponse()
        raw = response.read()
    finally:
        conn.close()
    try:
        return response.status, json.loads(raw or b"{}")
    except ValueError:
        return response.status, {"raw": raw[:200].decode("latin-1")}


def staged_files(db_path: Path) -> list[Path]:
    folder = Path(f"{db_path}-media") / "uploads"
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def jobs(db_path: Path) -> list[tuple]:
    return _query(db_path, "SELECT job_id, file_name, status, error FROM ingest_jobs ORDER BY job_id")


def wait_done(db_path: Path, job_id: int, timeout_s: float = 120) -> tuple:
    deadline = time.monotonic() + timeout_s
    while True:
        row = _query(db_path, "SELECT status, error FROM ingest_jobs WHERE job_id = ?", job_id)[0]
        if row[0] in ("done", "failed"):
            return row
        assert time.monotonic() < deadline, f"job {job_id} did not finish: {row}"
        time.sleep(0.3)


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """Single-user on loopback (no accounts), limits of 1 MB and 2 pages a file."""
    folder = tmp_path_factory.mktemp("upload-app")
    db_path = folder / "app.db"
    db = open_db(db_path)
    server = App(db_path, folder / "streamlit.log",
                 env={"SCRIPTLABEL_MAX_UPLOAD_MB": "1", "SCRIPTLABEL_MAX_PAGES": "2"})
    server.uid = database_uid(db)
    yield server
    server.stop()


def test_a_file_is_streamed_to_disk_and_ingested_under_its_own_name(app):
    status, answer = post(app, SCRIPT.encode(), name="pier.txt", client_id="a-1")
    assert status == 200 and answer["file"] == "pier.txt"
    assert wait_done(app.db_path, answer["job_id"]) == ("done", None)
    assert _query(app.db_path, "SELECT title FROM scripts WHERE title LIKE 'pier%'")
    assert ("Fog rolls in over the boards.",) in _query(app.db_path, "SELECT text FROM lines")
    assert not [p for p in staged_files(app.db_path) if p.name == "pier.txt"]  # the worker's copy is cleaned up
    assert ("ana", "ingest") in _query(app.db_path, "SELECT actor, action FROM audit_log WHERE action = 'ingest'")


def test_the_same_chosen_file_sent_again_or_three_times_at_once_is_one_job(app):
    before = len(jobs(app.db_path))
    answers = []
    threads = [threading.Thread(target=lambda: answers.append(post(app, script("twice"), name="twice.txt",
                                                                   client_id="same-file-1")))
               for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    again = post(app, script("twice"), name="twice.txt", client_id="same-file-1")
    ids = {answer["job_id"] for status, answer in answers + [again] if status == 200}
    assert len(ids) == 1 and all(status == 200 for status, _a in answers + [again])
    assert len(jobs(app.db_path)) == before + 1
    job_id = ids.pop()
    assert wait_done(app.db_path, job_id) == ("done", None)
    assert not [p for p in staged_files(app.db_path) if p.name == "twice.txt"]  # the copies were dropped too


@pytest.mark.parametrize("hostile, kept", [
    ("../../../outside.txt", "outside.txt"),
    ("..\\..\\windows.txt", "windows.txt"),
    ("/etc/cron.d/evil.fountain", "evil.fountain"),
    ("new\nline\x00nul\x1b[31m.txt", "newlinenul[31m.txt"),
    ("\u202egnp.txt", "gnp.txt"),  # a right-to-left override that would show the name reversed
    ("x" * 1000 + ".txt", "x" * 196 + ".txt"),
])
def test_a_hostile_file_name_stays_a_name_inside_the_uploads_folder(app, hostile, kept):
    status, answer = post(app, script(repr(hostile)[:40]), name=hostile)
    assert status == 200, answer
    assert answer["file"] == kept
    uploads = Path(f"{app.db_path}-media") / "uploads"
    [(file_name, staged)] = _query(app.db_path, "SELECT file_name, staged_path FROM ingest_jobs WHERE job_id = ?",
                                   answer["job_id"])
    assert file_name == kept and Path(staged).name == kept and Path(staged).parent.parent == uploads
    assert wait_done(app.db_path, answer["job_id"]) == ("done", None)
    assert not (app.db_path.parent.parent / "outside.txt").exists()


@pytest.mark.parametrize("name", ["..", "evil.sh", "noextension", ""])
def test_a_name_that_is_no_screenplay_file_is_refused_before_the_body(app, name):
    before = staged_files(app.db_path)
    status, answer = post(app, SCRIPT.encode(), name=name)
    assert status == 415 and "upload a PDF" in answer["error"]
    assert staged_files(app.db_path) == before


def test_without_the_apps_header_nothing_is_stored(app):
    before = (staged_files(app.db_path), jobs(app.db_path))
    status, answer = post(app, SCRIPT.encode(), header=False)
    assert status == 403 and "Scripts page" in answer["error"]
    assert (staged_files(app.db_path), jobs(app.db_path)) == before


def test_a_page_opened_on_another_database_is_told_to_reload(app):
    status, answer = post(app, SCRIPT.encode(), database="not-this-one")
    assert status == 409 and answer.get("reload") is True


def test_over_the_byte_limit_declared_or_streamed_nothing_is_stored(app):
    before = (staged_files(app.db_path), jobs(app.db_path))
    big = b"x" * (2 * 2**20)
    status, answer = post(app, big, name="huge.pdf")  # Content-Length says 2 MB: refused before reading it
    assert status == 413 and "over the limit of 1 MB" in answer["error"] and "split the PDF" in answer["error"]
    # no Content-Length: the bytes are counted as they come, and the half-written file removed
    status, answer = post(app, None, name="chunked.pdf", chunks=[big[i:i + 65536] for i in range(0, len(big), 65536)])
    assert status == 413 and "over the limit" in answer["error"]
    assert (staged_files(app.db_path), jobs(app.db_path)) == before


def test_a_pdf_over_the_page_limit_is_refused_with_what_to_do(app, tmp_path):
    pdf = make_text_pdf(tmp_path / "long.pdf", pages=3)
    before = (staged_files(app.db_path), jobs(app.db_path))
    status, answer = post(app, pdf.read_bytes(), name="long.pdf")
    assert status == 413 and "3 pages" in answer["error"] and "2" in answer["error"]
    assert str(tmp_path) not in answer["error"] and "uploads" not in answer["error"]  # no server paths
    assert (staged_files(app.db_path), jobs(app.db_path)) == before


def test_an_empty_file_is_refused(app):
    status, answer = post(app, b"", name="empty.txt")
    assert status == 400 and "empty" in answer["error"]


def test_with_sign_in_on_only_a_session_that_may_ingest_uploads(tmp_path):
    db_path = tmp_path / "team.db"
    db = open_db(db_path)
    accounts.add_user(db, "boss", role="admin", password="a long enough password")
    accounts.add_user(db, "ann", role="annotator", password="a long enough password")
    admin, annotator = accounts.create_session(db, "boss"), accounts.create_session(db, "ann")
    server = App(db_path, tmp_path / "streamlit.log")
    server.uid = database_uid(db)
    try:
        status, answer = post(server, SCRIPT.encode(), name="a.txt")
        assert status == 401 and answer.get("signin") is True
        status, answer = post(server, SCRIPT.encode(), name="a.txt", cookie="forged-token")
        assert status == 401
        status, answer = post(server, SCRIPT.encode(), name="a.txt", cookie=annotator)
        assert status == 403 and "admin" in answer["error"]
        assert staged_files(db_path) == [] and jobs(db_path) == []
        status, answer = post(server, script("boss"), name="a.txt", cookie=admin)
        assert status == 200
        assert wait_done(db_path, answer["job_id"]) == ("done", None)
        # the session says who uploaded, whatever name the request carries
        assert ("boss", "ingest") in _query(db_path, "SELECT actor, action FROM audit_log WHERE action = 'ingest'")
    finally:
        server.stop()
