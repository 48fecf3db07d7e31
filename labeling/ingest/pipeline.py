"""Ingest a screenplay file into the store: PDF (text layer or OCR), plain text, Fountain, FDX.

Every ingest is a job (store.jobs). Everything about the file is checked before the first write;
pages are stored one transaction each as they are read, into a script in status 'ingesting' that
nothing lists. Only when lines, predictions and sequences are all stored does the script turn
'ready' (one transaction, with its job marked done). A failure part-way removes the partial script
and its files; a kill -9 leaves it to the roll-back on the next open (store.jobs.roll_back_interrupted).
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import signal
import sqlite3
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlite_utils import Database

from labeling.ingest.formats.plaintext import TextDecodeError, decode_text, parse_plaintext
from labeling.ingest.pdf.layout import PageLine
from labeling.ingest.pdf.textlayer import has_text_layer, open_pdf, page_line_to_line, text_layer_page_lines
from labeling.sequences.grouping import rederive_sequences
from store import jobs as job_store
from store import scripts as script_store
from store.db import data_dir, explain_storage_error
from store.types import Line, PageInfo, ScriptlabelError

ProgressFn = Callable[[int, int], None]
TEXT_LAYER_IMAGE_DPI = 100
FORMATS = {".pdf": "pdf", ".fountain": "fountain", ".spmd": "fountain", ".fdx": "fdx", ".txt": "txt", ".text": "txt"}
PROGRESS_EVERY_S = 0.5
KILL_AT_ENV = "SCRIPTLABEL_TEST_KILL_AT"  # tests only: SIGKILL this process at a named point of the ingest


class IngestError(ScriptlabelError):
    pass


class DuplicateScriptError(IngestError):
    pass


@dataclass(frozen=True)
class IngestResult:
    script_id: int
    title: str
    format: str
    pages: int
    lines: int
    sequences: int
    ocr_pages: int
    low_confidence_pages: list[int] = field(default_factory=list)
    file: str = ""
    flagged_pages: list[dict] = field(default_factory=list)  # {"page", "flag", "note"}: stored without lines

    def as_json(self) -> dict:
        return {"script_id": self.script_id, "title": self.title, "format": self.format, "pages": self.pages,
                "lines": self.lines, "sequences": self.sequences, "ocr_pages": self.ocr_pages,
                "low_confidence_pages": self.low_confidence_pages, "flagged_pages": self.flagged_pages,
                **({"file": self.file} if self.file else {})}


FLAG_WORDS = {"blank": "blank", "no_text": "no text found", "unreadable": "unreadable image",
              "timed_out": "timed out"}


def describe_flagged(flagged: list[dict]) -> str:
    """'page 2 (blank), page 7 (timed out)' for a report."""
    return ", ".join(f"page {f['page']} ({FLAG_WORDS.get(f['flag'], f['flag'])})" for f in flagged)


def default_workers() -> int:
    """OCR processes by default: one per core this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _kill_point(name: str) -> None:
    """A kill -9 at a named point, for the interruption tests (never set outside them)."""
    if os.environ.get(KILL_AT_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


def detect_format(path: Path) -> str:
    return FORMATS.get(path.suffix.lower(), "txt")


def check_path(path: str | Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise IngestError(f"{path}: no such file; check the path (ingest takes .pdf, .txt, .fountain or .fdx files)")
    if path.is_dir():
        raise IngestError(f"{path} is a directory; give the screenplay files in it, e.g. {path}/*.pdf")
    if path.stat().st_size == 0:
        raise IngestError(f"{path}: the file is empty; nothing to ingest")
    return path


def check_title(title: str | None, *, source: str) -> str | None:
    """None (take it from the file) or the stripped title; a blank one is refused."""
    if title is None:
        return None
    if not title.strip():
        raise IngestError(f"{source}: the title is blank; give a title with some letters in it, or none to take it "
                          "from the file")
    return title.strip()


DEFAULT_OCR_SECONDS_PER_PAGE = 60.0  # a clean page takes 1-3 s; a page of noise took 2 minutes
MAX_LINE_CHARS = 10_000  # a screenplay line is under 100 characters; a Fountain paragraph a few hundred
MAX_TEXT_BYTES = 20 * 1024 * 1024  # a feature script as text is ~200 KB


@dataclass(frozen=True)
class IngestLimits:
    """What one file may hold; over a limit the file is refused before anything is stored.

    Scans are limited by pages (and each page is rendered within a pixel bound, labeling.ingest.pdf.ocr
    .bounded_dpi), not by bytes: a 120-page 300-dpi scan is 400 MB. Text is limited by bytes, lines and
    line length, which keeps the memory a text file needs far under 1 GB."""

    max_bytes: int = 1024 * 1024 * 1024
    max_pages: int = 600           # pages of a PDF (each may need OCR)
    max_text_lines: int = 50_000   # lines of a text, Fountain or FDX file (a feature script has ~8,000)
    ocr_seconds_per_page: float = DEFAULT_OCR_SECONDS_PER_PAGE
    max_text_bytes: int = MAX_TEXT_BYTES
    max_line_chars: int = MAX_LINE_CHARS

    def check_size(self, path: Path, size: int) -> None:
        if size > self.max_bytes:
            raise IngestError(f"{path.name}: {size / 1e6:.1f} MB is over the limit of {self.max_bytes / 1e6:.0f} MB; "
                              "nothing was stored — split the PDF into parts (e.g. qpdf --split-pages=100) and "
                              "upload each, or raise SCRIPTLABEL_MAX_UPLOAD_MB")

    def check_text_size(self, path: Path, size: int) -> None:
        if size > self.max_text_bytes:
            raise IngestError(f"{path.name}: {size / 2**20:.1f} MB of text is over the limit of "
                              f"{self.max_text_bytes / 2**20:.0f} MB (a feature script is about 0.2 MB); nothing was "
                              "stored — is this the right file?")

    def check_line_length(self, path: Path, data: bytes) -> None:
        import re

        long = re.search(rb"[^\r\n]{%d}" % (self.max_line_chars + 1), data)  # bytes: at least as many as characters
        if long is None:
            return
        end = re.compile(rb"[\r\n]").search(data, long.start())
        length = (end.start() if end else len(data)) - long.start()
        line_no = len(re.findall(rb"\r\n|\r|\n", data[:long.start()])) + 1
        raise IngestError(f"{path.name}: line {line_no} is {length:,} bytes long, over the limit of "
                          f"{self.max_line_chars:,} (a screenplay line is under 100 characters); nothing was stored "
                          "— break the text into lines, or export the script again as text or Fountain")

    def check_pages(self, path: Path, pages: int) -> None:
        if pages > self.max_pages:
            raise IngestError(f"{path.name}: {pages} pages is over the limit of {self.max_pages}; nothing was stored "
                              f"— split the PDF into parts of up to {self.max_pages} pages (e.g. qpdf "
                              f"--split-pages={min(self.max_pages, 100)}) and upload each, or raise SCRIPTLABEL_MAX_PAGES")

    def check_lines(self, path: Path, lines: int) -> None:
        if lines > self.max_text_lines:
            raise IngestError(f"{path.name}: {lines} lines is over the limit of {self.max_text_lines}; nothing was "
                              "stored (SCRIPTLABEL_MAX_TEXT_LINES raises it)")


def ingest_path(
    db: Database,
    path: str | Path,
    *,
    title: str | None = None,
    ocr: str = "auto",
    workers: int | None = None,
    dpi: int | None = None,
    allow_duplicate: bool = False,
    progress: ProgressFn | None = None,
    job_id: int | None = None,
    cluster=None,
    limits: "IngestLimits | None" = None,
) -> IngestResult:
    """Ingest one file as one job and return what was stored.

    Raises IngestError (database and files as they were) on bad input or a storage failure. With
    `job_id` the given job (queued by the app) is run; otherwise a job owned by this process is made.
    With a Dask `cluster` client, scanned pages are read on its workers (the store stays here). A file
    over `limits` is refused before anything is stored (by default only the text limits apply: the
    command line ingests any PDF it is given; the app passes its limits). Scanned pages are read on
    `workers` processes (default: one per core); a page that gives no lines is stored flagged.
    """
    from labeling.ingest.pdf.ocr import DEFAULT_DPI

    workers = workers or default_workers()
    dpi = dpi or DEFAULT_DPI
    try:
        prepared = _prepare(db, path, title=title, ocr=ocr, allow_duplicate=allow_duplicate, limits=limits)
    except ScriptlabelError as exc:
        if job_id is not None:  # a queued upload: its row says why; otherwise nothing is written
            _fail(db, job_id, str(exc))
        raise
    own_job = job_id is None  # the CLI's: on failure the message is printed and no row stays behind
    if own_job:
        job_id = job_store.create_job(db, file_name=prepared.path.name, options={"ocr": ocr}, pid=os.getpid())
    path = prepared.path
    try:
        job_store.start_job(db, job_id)
        report = _reporter(db, job_id, progress)
        if prepared.doc is not None:
            return _ingest_pdf(db, prepared, ocr=ocr, workers=workers, dpi=dpi, progress=report, job_id=job_id,
                               cluster=cluster, ocr_timeout_s=(limits or IngestLimits()).ocr_seconds_per_page)
        return _ingest_lines(db, prepared, progress=report, job_id=job_id)
    except ScriptlabelError as exc:
        _fail(db, job_id, str(exc), forget=own_job)
        raise
    except (OSError, sqlite3.Error) as exc:  # a full or read-only disk, a damaged database
        message = f"{path.name}: not stored — {explain_storage_error(exc, _db_name(db))}"
        _fail(db, job_id, message, forget=own_job)
        raise IngestError(message) from exc
    except Exception as exc:  # a bug, not the file: say so rather than blame the file
        _fail(db, job_id, f"{path.name}: not stored — an unexpected error ({type(exc).__name__}: {exc}); "
                          "please report it with the file", forget=own_job)
        raise
    except BaseException:
        _fail(db, job_id, "the ingest was interrupted; nothing of it was kept — ingest the file again",
              forget=own_job)
        raise
    finally:
        if prepared.doc is not None and not prepared.doc.is_closed:
            prepared.doc.close()


@dataclass
class _Prepared:
    """A file read and checked, before anything is written."""

    path: Path
    fmt: str
    sha: str
    title: str
    lines: list[Line] | None = None  # text formats
    doc: object | None = None  # PDFs: the open pymupdf document


def _prepare(db: Database, path: str | Path, *, title: str | None, ocr: str, allow_duplicate: bool,
             limits: "IngestLimits | None" = None) -> _Prepared:
    if ocr not in ("auto", "always", "never"):
        raise IngestError(f"--ocr must be auto, always or never, not {ocr!r}")
    path = check_path(path)
    title = check_title(title, source=str(path))
    fmt = detect_format(path)
    size = path.stat().st_size
    if limits is not None:
        limits.check_size(path, size)
    if fmt != "pdf":
        (limits or IngestLimits()).check_text_size(path, size)
    try:
        sha = _sha256(path)  # in chunks: a 400 MB scan is never read into memory whole
        data = path.read_bytes() if fmt != "pdf" else b""
    except OSError as exc:
        raise IngestError(f"{path}: the file cannot be read ({exc.strerror or exc}); check its permissions") from exc
    existing = script_store.find_script_by_sha(db, sha)
    if existing and not allow_duplicate:
        raise DuplicateScriptError(
            f"{path}: already ingested as script {existing['script_id']} ({existing['title']!r}); nothing changed — "
            "pass --duplicate to ingest a second copy")
    running = None if allow_duplicate else script_store.find_ingesting_by_sha(db, sha)
    if running:
        raise DuplicateScriptError(f"{path}: the same file is being ingested right now (as {running['title']!r}); "
                                   "nothing changed — wait for it to finish")
    if fmt == "pdf":
        doc = open_pdf(path)  # validates before any write
        if limits is not None:
            limits.check_pages(path, doc.page_count)
        return _Prepared(path=path, fmt=fmt, sha=sha, title=title or _title_from_name(path), doc=doc)
    if limits is not None:  # counted on the bytes, before the (slow) parsing
        limits.check_lines(path, data.count(b"\n") + 1 if fmt != "fdx" else data.count(b"<Paragraph"))
    if fmt != "fdx":  # one 20 MB line took 74 s and 5.9 GB to parse
        (limits or IngestLimits()).check_line_length(path, data)
    try:
        text = decode_text(data, source=str(path))
    except TextDecodeError as exc:
        raise IngestError(str(exc)) from exc
    if fmt == "fountain":
        from labeling.ingest.formats.fountain import FountainError, fountain_lines, parse_fountain

        try:
            lines = parse_fountain(text, source=str(path))
            title = title or next((fl.text for fl in fountain_lines(text) if fl.title_key == "title"), None)
        except FountainError as exc:
            raise IngestError(str(exc)) from exc
    elif fmt == "fdx":
        from labeling.ingest.formats.fdx import FdxFormatError, parse_fdx

        try:
            lines = parse_fdx(data, source=str(path))
        except FdxFormatError as exc:
            raise IngestError(str(exc)) from exc
        except RecursionError:  # thousands of nested elements: no Final Draft file looks like that
            raise IngestError(f"{path.name}: the FDX elements are nested too deeply to be a Final Draft script; "
                              "re-save it from Final Draft") from None
    else:
        lines = parse_plaintext(text)
    if not lines:
        raise IngestError(f"{path}: no screenplay lines found; is this the right file?")
    return _Prepared(path=path, fmt=fmt, sha=sha, title=(title or "").strip() or _title_from_name(path), lines=lines)


def _sha256(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _reporter(db: Database, job_id: int, progress: ProgressFn | None, *, every_s: float = PROGRESS_EVERY_S
              ) -> ProgressFn:
    last = [float("-inf")]

    def report(done: int, total: int) -> None:
        # A row update costs an fsync: a few per second are plenty for a progress bar.
        if done == 1 or done == total or time.monotonic() - last[0] >= every_s:
            job_store.job_progress(db, job_id, done, total)
            last[0] = time.monotonic()
        _kill_point(f"page:{done}")
        if progress:
            progress(done, total)

    return report


def _db_name(db: Database) -> str:
    from store.db import db_file

    return str(db_file(db) or "the database")


def _fail(db: Database, job_id: int, message: str, *, forget: bool = False) -> None:
    try:
        if forget:
            job_store.delete_job(db, job_id)
        else:
            job_store.fail_job(db, job_id, error=message)
    except sqlite3.Error:
        pass  # the disk is full or gone: the next open fails the job (its process is gone by then)


def _ingest_lines(db: Database, prepared: _Prepared, *, progress: ProgressFn, job_id: int) -> IngestResult:
    script_id = script_store.create_script(db, title=prepared.title, format=prepared.fmt,
                                           source_name=prepared.path.name, sha256=prepared.sha, job_id=job_id)
    _kill_point("script_created")
    try:
        pages = _group_pages(prepared.lines or [])
        for done, (page_no, page_lines) in enumerate(pages, 1):
            info = PageInfo(page=page_no, width=85.0, height=66.0, image_path=None, dpi=None, text_source="text")
            script_store.add_page(db, script_id, info, page_lines)
            progress(done, len(pages))
        return _finish(db, script_id, prepared.title, prepared.fmt, job_id=job_id, file=prepared.path.name)
    except BaseException:
        _roll_back(db, script_id)
        raise


def _roll_back(db: Database, script_id: int) -> None:
    """Remove the unfinished script and its files; if even that fails (a full disk), the next open does it."""
    try:
        script_store.delete_script(db, script_id, only_unfinished=True)
    except (OSError, sqlite3.Error):
        pass


def _group_pages(lines: list[Line]) -> list[tuple[int, list[Line]]]:
    pages: dict[int, list[Line]] = {}
    for line in lines:
        pages.setdefault(line.page, []).append(line)
    return sorted(pages.items())


def _title_from_name(path: Path) -> str:
    return path.stem.replace("_", " ").replace("-", " ").strip().title() or path.name


def _ingest_pdf(db, prepared: _Prepared, *, ocr, workers, dpi, progress, job_id, cluster=None,
                ocr_timeout_s: float = 0) -> IngestResult:
    from labeling.ingest.pdf.ocr import iter_ocr_pages

    path, doc, title, sha = prepared.path, prepared.doc, prepared.title, prepared.sha
    n_pages = doc.page_count
    try:
        needs_ocr = [i + 1 for i, page in enumerate(doc)
                     if ocr == "always" or (ocr == "auto" and not has_text_layer(page))]
    except Exception as exc:  # MuPDF's own error family: a damaged page object
        raise IngestError(f"{path}: a page of the PDF is damaged ({exc}); print it to a new PDF and ingest that") \
            from exc
    if ocr == "never":
        needs_ocr = []
    script_id = script_store.create_script(db, title=title, format="pdf", source_name=path.name, sha256=sha,
                                           job_id=job_id)
    _kill_point("script_created")
    base = data_dir(db)
    image_dir = base / "pages" / str(script_id)
    try:
        source_dir = base / "sources"
        source_dir.mkdir(parents=True, exist_ok=True)
        source_copy = source_dir / f"{script_id}.pdf"
        shutil.copyfile(path, source_copy)
        script_store.set_source_path(db, script_id, str(source_copy))
        image_dir.mkdir(parents=True, exist_ok=True)
        if not needs_ocr:
            ocr_results = iter(())
        elif cluster is not None:
            from labeling.ingest.pdf.cluster import iter_cluster_ocr_pages

            ocr_results = iter(iter_cluster_ocr_pages(path, needs_ocr, scheduler="", dpi=dpi, image_dir=image_dir,
                                                      client=cluster, timeout_s=ocr_timeout_s))
        else:
            ocr_results = iter(iter_ocr_pages(path, needs_ocr, dpi=dpi, workers=workers, image_dir=image_dir,
                                              timeout_s=ocr_timeout_s))
        pending_ocr = set(needs_ocr)
        for index in range(n_pages):
            page_no = index + 1
            if page_no in pending_ocr:
                result = next(ocr_results)
                info = PageInfo(page=page_no, width=result.width, height=result.height,
                                image_path=result.image_path, dpi=100, text_source="ocr", flag=result.flag,
                                flag_note=result.note)
                page_lines = result.lines
            else:
                page = doc[index]
                page_lines, image_path = _text_layer_page(path, page, page_no, image_dir)
                info = PageInfo(page=page_no, width=page.rect.width, height=page.rect.height,
                                image_path=str(image_path), dpi=TEXT_LAYER_IMAGE_DPI, text_source="text_layer")
            script_store.add_page(db, script_id, info, _to_lines(page_lines, page_no))
            progress(page_no, n_pages)
        doc.close()
        if script_store.count_lines(db, script_id) == 0:
            flagged = _flagged(db, script_id)
            why = f" ({describe_flagged(flagged)})" if flagged else ""
            raise IngestError(f"{path}: no text on any of its {n_pages} pages{why}; nothing was stored — is this "
                              "the right file? A scan too faint or small may read at a higher --dpi")
        return _finish(db, script_id, title, "pdf", job_id=job_id, file=path.name)
    except BaseException:
        _roll_back(db, script_id)
        shutil.rmtree(image_dir, ignore_errors=True)
        raise


def _text_layer_page(path: Path, page, page_no: int, image_dir: Path) -> tuple[list[PageLine], Path]:
    image_path = image_dir / f"page-{page_no:04d}.png"
    try:
        page_lines = text_layer_page_lines(page)
        pixmap = page.get_pixmap(dpi=TEXT_LAYER_IMAGE_DPI, colorspace="gray")
    except Exception as exc:  # MuPDF's own error family: a damaged page object
        raise IngestError(f"{path}: page {page_no} is damaged ({exc}); print the PDF to a new PDF and ingest "
                          "that") from exc
    try:
        pixmap.save(image_path)
    except Exception as exc:  # MuPDF reports a full or read-only disk as its own error type
        text = str(exc).lower()
        if "no space left" in text or "read-only" in text or "permission denied" in text:
            code = errno.ENOSPC if "no space" in text else errno.EROFS
            raise OSError(code, f"cannot write the page image {image_path.name}: {exc}") from exc
        raise
    return page_lines, image_path


def _suggest(db: Database, script_id: int) -> None:
    """Suggestions from the current line model right away, so labeling starts with them."""
    from labeling.training.lines import predict_scripts

    try:
        predict_scripts(db, script_id=script_id)
    except ScriptlabelError as exc:  # the script is stored either way; suggestions come with the next model
        warnings.warn(f"no suggestions yet: {exc}", stacklevel=2)


def _to_lines(page_lines: list[PageLine], page_no: int) -> list[Line]:
    return [page_line_to_line(pl, line_no=i, page=page_no) for i, pl in enumerate(page_lines, 1)]


def _flagged(db: Database, script_id: int) -> list[dict]:
    return [{"page": f.page, "flag": f.flag, "note": f.note} for f in script_store.flagged_pages(db, script_id)]


def _finish(db: Database, script_id: int, title: str, fmt: str, *, job_id: int, file: str) -> IngestResult:
    """Predictions, then sequences, then visible: the script turns 'ready' last, with its job done."""
    _kill_point("pages_stored")
    _suggest(db, script_id)
    _kill_point("predicted")
    n_sequences = rederive_sequences(db, script_id) or 0
    _kill_point("sequenced")
    script = script_store.get_script(db, script_id, include_unfinished=True)
    low = [page for page, _mean in script_store.low_confidence_pages(db, script_id).get(script_id, [])]
    result = IngestResult(script_id=script_id, title=title, format=fmt, pages=script["pages"],
                          lines=script_store.count_lines(db, script_id), sequences=n_sequences,
                          ocr_pages=script["ocr_pages"], low_confidence_pages=low, file=file,
                          flagged_pages=_flagged(db, script_id))
    script_store.finish_script(db, script_id, job_id=job_id, result=result.as_json())
    _kill_point("ready")
    return result
