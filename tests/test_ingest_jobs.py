"""Ingest as a job: nothing half-done is ever visible, kill -9 at any point is rolled back whole
(rows and files), and uploads run in a detached background process (labeling/ingest/jobs.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO, make_text_pdf
from labeling.ingest import jobs as ingest_jobs
from labeling.ingest.pipeline import KILL_AT_ENV, ingest_path
from store import jobs as job_store
from store import labels as label_store
from store import scripts as script_store
from store import sequences as sequence_store
from store.db import data_dir, open_db

KILL_POINTS = ["script_created", "page:1", "page:3", "pages_stored", "predicted", "sequenced"]


def _cli(db_path: Path, *args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "labeling.cli", "--db", str(db_path), *args], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})})


def _labeled_base(db_path: Path, tmp_path: Path) -> tuple[int, int]:
    """A database with one finished, labeled script: (its id, its human label count)."""
    db = open_db(db_path)
    base = ingest_path(db, make_text_pdf(tmp_path / "base.pdf", pages=2))
    lines = script_store.lines_frame(db, base.script_id)
    for line_id in lines["line_id"][:5]:
        label_store.add_label(db, int(line_id), "action", annotator="ana")
    db.close()
    return base.script_id, 5


def _fragment_ids(db_path: Path) -> list[int]:
    import sqlite3

    conn = sqlite3.connect(db_path)
    try:
        return [r[0] for r in conn.execute("SELECT script_id FROM scripts WHERE status != 'ready'")]
    finally:
        conn.close()


def _assert_invisible(db, script_id: int, sha_source: Path) -> None:
    """An unfinished script shows nowhere: listings, lines, sequences, exports, the duplicate check."""
    import hashlib

    from labeling.session.queue import unlabeled_pool
    from store.export import export_frame

    assert script_id not in [s.script_id for s in script_store.list_scripts(db)]
    assert script_id not in set(script_store.lines_frame(db)["script_id"])
    assert script_id not in {line.script_id for line in unlabeled_pool(db)}
    assert script_id not in {s.script_id for s in sequence_store.list_sequences(db)}
    assert script_id not in set(export_frame(db)["script_id"])
    assert script_store.find_script_by_sha(db, hashlib.sha256(sha_source.read_bytes()).hexdigest()) is None
    with pytest.raises(Exception, match="still being ingested"):
        script_store.get_script(db, script_id)


@pytest.mark.parametrize("point", KILL_POINTS)
def test_kill_9_during_ingest_is_rolled_back_whole_and_reingest_succeeds(db_path, tmp_path, point):
    base_id, n_labels = _labeled_base(db_path, tmp_path)
    pdf = make_text_pdf(tmp_path / "big.pdf", pages=4)
    killed = _cli(db_path, "ingest", str(pdf), env={KILL_AT_ENV: point})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    [fragment] = _fragment_ids(db_path)

    peek = open_db(db_path, recover=False)  # as another process sees it before any roll-back
    _assert_invisible(peek, fragment, pdf)
    peek.close()

    db = open_db(db_path)  # the next open rolls the dead ingest back: rows and files
    assert _fragment_ids(db_path) == []
    for table in ("lines", "pages", "sequences"):
        assert db.execute(f"SELECT COUNT(*) FROM {table} WHERE script_id = ?", [fragment]).fetchone()[0] == 0
    media = data_dir(db)
    assert not (media / "pages" / str(fragment)).exists() and not (media / "sources" / f"{fragment}.pdf").exists()
    [job] = [j for j in job_store.list_jobs(db) if j.script_id == fragment]
    assert job.status == "failed" and "interrupted" in job.error
    # the labeled script is untouched
    assert len(label_store.current_labels(db, base_id)) == n_labels
    assert (media / "pages" / str(base_id) / "page-0001.png").exists()

    again = _cli(db_path, "ingest", str(pdf))  # not refused as a duplicate of the fragment
    assert again.returncode == 0, again.stderr
    scripts = script_store.list_scripts(db)
    assert [s.title for s in scripts] == ["Base", "Big"] and scripts[1].script_id > fragment  # ids never reused
    assert scripts[1].lines == 40 and sequence_store.list_sequences(db, scripts[1].script_id)


def test_kill_after_ready_keeps_the_finished_script(db_path, tmp_path):
    pdf = make_text_pdf(tmp_path / "done.pdf", pages=2)
    killed = _cli(db_path, "ingest", str(pdf), env={KILL_AT_ENV: "ready"})
    assert killed.returncode == -signal.SIGKILL
    db = open_db(db_path)
    [script] = script_store.list_scripts(db)
    assert script.title == "Done" and script.lines == 20
    assert job_store.list_jobs(db)[0].status == "done"


def test_script_turns_ready_only_after_predictions_and_sequences(db, tmp_path, monkeypatch):
    seen = []
    real_finish = script_store.finish_script

    def spy(db_, script_id, **kwargs):
        row = db_.execute("SELECT status FROM scripts WHERE script_id = ?", [script_id]).fetchone()[0]
        n_preds = db_.execute("SELECT COUNT(*) FROM predictions p JOIN lines l USING (line_id) "
                              "WHERE l.script_id = ?", [script_id]).fetchone()[0]
        n_seqs = db_.execute("SELECT COUNT(*) FROM sequences WHERE script_id = ?", [script_id]).fetchone()[0]
        seen.append((row, n_preds, n_seqs))
        return real_finish(db_, script_id, **kwargs)

    monkeypatch.setattr(script_store, "finish_script", spy)
    result = ingest_path(db, make_text_pdf(tmp_path / "order.pdf"))
    [(status, n_preds, n_seqs)] = seen
    assert status == "ingesting" and n_preds == result.lines and n_seqs == result.sequences > 0


def test_failed_ingest_leaves_no_job_row_and_no_fragment(db, tmp_path, monkeypatch):
    import labeling.ingest.pipeline as ingest_module

    def boom(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ingest_module, "rederive_sequences", boom)
    with pytest.raises(ingest_module.IngestError, match="disk is full"):
        ingest_path(db, make_text_pdf(tmp_path / "full.pdf"))
    assert db.execute("SELECT COUNT(*) FROM scripts").fetchone()[0] == 0
    assert db.execute("SELECT COUNT(*) FROM lines").fetchone()[0] == 0
    assert job_store.list_jobs(db) == []
    assert not any((data_dir(db) / "pages").iterdir())


def test_legacy_fragment_is_rolled_back_but_a_labeled_one_is_kept_and_shown_as_incomplete(db_path, tmp_path):
    db = open_db(db_path)
    keep = ingest_path(db, make_text_pdf(tmp_path / "keep.pdf")).script_id
    stale = ingest_path(db, make_text_pdf(tmp_path / "stale.pdf"), title="Stale", allow_duplicate=True).script_id
    labeled = ingest_path(db, make_text_pdf(tmp_path / "labeled.pdf"), title="Labeled",
                          allow_duplicate=True).script_id
    line = int(script_store.lines_frame(db, labeled)["line_id"].iloc[0])
    label_store.add_label(db, line, "action", annotator="ana")
    # fragments as an older version left them: status 'ingesting', no job owning them
    with db.atomic():
        db.execute("UPDATE scripts SET status = 'ingesting' WHERE script_id IN (?, ?)", [stale, labeled])
        db.execute("DELETE FROM ingest_jobs")
    db.close()
    db = open_db(db_path)
    ids = {r[0] for r in db.execute("SELECT script_id FROM scripts")}
    assert keep in ids and labeled in ids and stale not in ids
    assert len(label_store.current_labels(db, labeled)) == 1
    kept = {s.script_id: s.title for s in script_store.list_scripts(db)}  # visible, and says what it is
    assert kept[labeled] == "Labeled (incomplete: stopped after page 1)"


def test_orphan_media_of_deleted_scripts_is_swept_but_never_a_newer_ones(db, tmp_path):
    sid = ingest_path(db, make_text_pdf(tmp_path / "a.pdf")).script_id
    media = data_dir(db)
    for name in (str(sid + 1), str(sid + 7)):  # a deleted script's leftovers; a folder made after we looked
        (media / "pages" / name).mkdir()
    with db.atomic():
        db.execute("UPDATE sqlite_sequence SET seq = ? WHERE name = 'scripts'", [sid + 1])
    (media / "sources" / f"{sid + 1}.pdf").write_bytes(b"%PDF")
    removed = job_store.sweep_orphan_media(db)
    assert sorted(Path(p).name for p in removed) == [str(sid + 1), f"{sid + 1}.pdf"]
    assert (media / "pages" / str(sid)).exists() and (media / "pages" / str(sid + 7)).exists()
    assert (media / "sources" / f"{sid}.pdf").exists()


def test_live_ingest_is_not_rolled_back_by_another_process(db, tmp_path):
    job_id = job_store.create_job(db, file_name="live.pdf", pid=os.getpid())
    sid = script_store.create_script(db, title="Live", format="pdf", source_name="live.pdf", sha256="x",
                                     job_id=job_id)
    assert job_store.roll_back_interrupted(db) == []
    assert script_store.get_script(db, sid, include_unfinished=True)["status"] == "ingesting"


def test_the_same_file_while_its_ingest_runs_is_refused(db, tmp_path):
    import hashlib

    pdf = make_text_pdf(tmp_path / "twice.pdf")
    job_id = job_store.create_job(db, file_name="twice.pdf", pid=os.getpid())
    script_store.create_script(db, title="Twice", format="pdf", source_name="twice.pdf",
                               sha256=hashlib.sha256(pdf.read_bytes()).hexdigest(), job_id=job_id)
    with pytest.raises(Exception, match="being ingested right now"):
        ingest_path(db, pdf)


def test_job_of_a_reused_pid_counts_as_dead(db):
    job_id = job_store.create_job(db, file_name="x.pdf", pid=os.getpid())
    with db.atomic():
        db.execute("UPDATE ingest_jobs SET pid_start = '1' WHERE job_id = ?", [job_id])  # another process's start
    job_store.roll_back_interrupted(db)
    assert job_store.get_job(db, job_id).status == "failed"


# --- uploads in the background ---------------------------------------------------------------

def _wait(db, job_id: int, timeout_s: float = 90.0) -> job_store.IngestJob:
    deadline = time.monotonic() + timeout_s
    while (job := job_store.get_job(db, job_id)).active:
        assert time.monotonic() < deadline, f"job {job_id} still {job.status}"
        time.sleep(0.2)
    return job


def test_upload_runs_in_a_detached_process_and_reports_progress(db, tmp_path):
    pdf = make_text_pdf(tmp_path / "upload.pdf", pages=3)
    job_id = ingest_jobs.start_upload(db, "the_upload.pdf", pdf.read_bytes())
    job = _wait(db, job_id)
    assert job.status == "done" and job.pages_done == job.pages_total == 3
    assert [s.title for s in script_store.list_scripts(db)] == ["The Upload"]
    [view] = ingest_jobs.job_views(db)
    assert view.status == "done" and "The Upload" in view.text and "3 pages" in view.text
    assert not list((data_dir(db) / "uploads").rglob("*.pdf"))  # the staged bytes are gone


def test_upload_survives_the_page_that_started_it(db_path, tmp_path):
    """The worker is in its own session: killing the starter's process group does not stop it."""
    pdf = make_text_pdf(tmp_path / "long.pdf", pages=3)
    code = ("import sys; from store.db import open_db; from labeling.ingest.jobs import start_upload; "
            f"print(start_upload(open_db({str(db_path)!r}), 'long.pdf', open({str(pdf)!r}, 'rb').read()))")
    starter = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE, text=True,
                               start_new_session=True)
    job_id = int(starter.stdout.readline())
    os.killpg(starter.pid, signal.SIGKILL)  # the Streamlit session/server going away
    starter.wait()
    db = open_db(db_path)
    assert _wait(db, job_id).status == "done"
    assert [s.title for s in script_store.list_scripts(db)] == ["Long"]


def test_failed_upload_message_is_written_for_the_app(db, tmp_path):
    job_id = ingest_jobs.start_upload(db, "broken.pdf", b"%PDF-1.4 not really a pdf")
    job = _wait(db, job_id)
    assert job.status == "failed" and job.error.startswith("broken.pdf")
    assert "uploads" not in job.error and "--" not in job.error and "`" not in job.error
    [view] = ingest_jobs.job_views(db)
    assert view.status == "failed" and view.text == job.error


def test_killed_upload_worker_is_rolled_back_and_labels_elsewhere_stay(db_path, tmp_path, monkeypatch):
    base_id, n_labels = _labeled_base(db_path, tmp_path)
    monkeypatch.setenv(KILL_AT_ENV, "page:2")
    db = open_db(db_path)
    job_id = ingest_jobs.start_upload(db, "abandoned.pdf", make_text_pdf(tmp_path / "a.pdf", pages=3).read_bytes())
    deadline = time.monotonic() + 90
    while not job_store.roll_back_interrupted(db):  # polls as the Scripts page does, until the worker died
        assert time.monotonic() < deadline
        time.sleep(0.2)
    job = job_store.get_job(db, job_id)
    assert job.status == "failed" and "interrupted" in job.error
    assert [s.script_id for s in script_store.list_scripts(db)] == [base_id]
    assert len(label_store.current_labels(db, base_id)) == n_labels
    assert _fragment_ids(db_path) == []


def test_message_for_app_drops_paths_and_flags():
    staged = "/data/x.db-media/uploads/ab12/s.pdf"
    message = (f"{staged}: already ingested as script 3 ('S'); nothing changed — pass --duplicate to ingest a "
               "second copy")
    assert ingest_jobs.message_for_app(message, staged=staged, file_name="s.pdf") == \
        "s.pdf: already ingested as script 3 ('S'); nothing changed"


def test_kill_9_from_outside_after_some_pages_are_in_the_database(db_path, tmp_path):
    """No hook: kill the ingest once a few pages are visible to another connection, wherever it is then."""
    import sqlite3

    base_id, n_labels = _labeled_base(db_path, tmp_path)
    pdf = make_text_pdf(tmp_path / "long.pdf", pages=60)
    proc = subprocess.Popen([sys.executable, "-m", "labeling.cli", "--db", str(db_path), "ingest", str(pdf)],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    conn = sqlite3.connect(db_path, timeout=30)
    deadline = time.monotonic() + 120
    while conn.execute("SELECT COUNT(*) FROM pages WHERE script_id != ?", [base_id]).fetchone()[0] < 5:
        assert time.monotonic() < deadline and proc.poll() is None, "the ingest never got going"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    conn.close()
    db = open_db(db_path)
    assert _fragment_ids(db_path) == [] and [s.script_id for s in script_store.list_scripts(db)] == [base_id]
    assert len(label_store.current_labels(db, base_id)) == n_labels
    assert sorted(p.name for p in (data_dir(db) / "pages").iterdir()) == [str(base_id)]
    assert _cli(db_path, "ingest", str(pdf)).returncode == 0


@pytest.mark.slow
def test_kill_9_during_ocr_leaves_no_page_images_behind(db_path, tmp_path):
    from conftest import make_scanned_pdf

    scanned = make_scanned_pdf(tmp_path / "scan.pdf", make_text_pdf(tmp_path / "src.pdf", pages=4), dpi=100)
    killed = _cli(db_path, "ingest", str(scanned), "--workers", "2", "--dpi", "100", env={KILL_AT_ENV: "page:1"})
    assert killed.returncode == -signal.SIGKILL
    deadline = time.monotonic() + 60
    while True:  # the OCR workers notice their ingest died and stop without writing
        db = open_db(db_path)
        leftovers = [p for p in (data_dir(db) / "pages").rglob("*")]
        db.close()
        if not leftovers:
            break
        assert time.monotonic() < deadline, leftovers
        time.sleep(0.5)
    assert _fragment_ids(db_path) == []
