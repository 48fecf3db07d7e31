"""Ingest a screenplay file into the store: PDF (text layer or OCR), plain text, Fountain, FDX.

Everything about the file is checked before the first write; pages are stored one transaction each
as they are read (so labeling can start on finished pages), and a failure part-way removes the
partial script, leaving the database as it was.
"""

from __future__ import annotations

import hashlib
import warnings
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlite_utils import Database

from labeling.formats.plaintext import TextDecodeError, decode_text, parse_plaintext
from labeling.pdf.layout import PageLine
from labeling.pdf.textlayer import has_text_layer, open_pdf, page_line_to_line, text_layer_page_lines
from labeling.sequences import rederive_sequences
from store import scripts as script_store
from store.db import data_dir
from store.types import Line, PageInfo, ScriptlabelError

ProgressFn = Callable[[int, int], None]
TEXT_LAYER_IMAGE_DPI = 100
FORMATS = {".pdf": "pdf", ".fountain": "fountain", ".spmd": "fountain", ".fdx": "fdx", ".txt": "txt", ".text": "txt"}


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
    low_confidence_pages: tuple[int, ...] = ()  # OCR pages read with little confidence: noise, or a bad scan

    def as_json(self) -> dict:
        return {"script_id": self.script_id, "title": self.title, "format": self.format, "pages": self.pages,
                "lines": self.lines, "sequences": self.sequences, "ocr_pages": self.ocr_pages,
                "low_confidence_pages": list(self.low_confidence_pages)}


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


@dataclass(frozen=True)
class IngestLimits:
    """What one file may hold; over a limit the file is refused before anything is stored."""

    max_bytes: int = 50 * 1024 * 1024
    max_pages: int = 600           # pages of a PDF (each may need OCR)
    max_text_lines: int = 50_000   # lines of a text, Fountain or FDX file (a feature script has ~8,000)
    ocr_seconds_per_page: float = 60.0  # a clean page takes 2-5 s; a page of noise took 2 minutes

    def check_size(self, path: Path, size: int) -> None:
        if size > self.max_bytes:
            raise IngestError(f"{path.name}: {size / 1e6:.1f} MB is over the limit of {self.max_bytes / 1e6:.0f} MB; "
                              "nothing was stored (SCRIPTLABEL_MAX_UPLOAD_MB raises it)")

    def check_pages(self, path: Path, pages: int) -> None:
        if pages > self.max_pages:
            raise IngestError(f"{path.name}: {pages} pages is over the limit of {self.max_pages}; nothing was stored "
                              "(SCRIPTLABEL_MAX_PAGES raises it)")

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
    workers: int = 2,
    dpi: int = 300,
    allow_duplicate: bool = False,
    progress: ProgressFn | None = None,
    limits: IngestLimits | None = None,
) -> IngestResult:
    """Ingest one file and return what was stored. Raises IngestError (database untouched) on bad input,
    including a file over `limits` (none by default: the command line ingests what it is given)."""
    if ocr not in ("auto", "always", "never"):
        raise IngestError(f"--ocr must be auto, always or never, not {ocr!r}")
    path = check_path(path)
    fmt = detect_format(path)
    if limits is not None:
        limits.check_size(path, path.stat().st_size)
    data = path.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    existing = script_store.find_script_by_sha(db, sha)
    if existing and not allow_duplicate:
        raise DuplicateScriptError(
            f"{path}: already ingested as script {existing['script_id']} ({existing['title']!r}); nothing changed — "
            "pass --duplicate to ingest a second copy")

    if fmt == "pdf":
        doc = open_pdf(path)  # validates before any write
        if limits is not None:
            limits.check_pages(path, doc.page_count)
        return _ingest_pdf(db, path, doc, sha=sha, title=title, ocr=ocr, workers=workers, dpi=dpi, progress=progress,
                           ocr_timeout_s=limits.ocr_seconds_per_page if limits is not None else 0)

    if limits is not None:  # counted on the bytes, before the (slow) parsing
        limits.check_lines(path, data.count(b"\n") + 1 if fmt != "fdx" else data.count(b"<Paragraph"))
    try:
        text = decode_text(data, source=str(path))
    except TextDecodeError as exc:
        raise IngestError(str(exc)) from exc
    if fmt == "fountain":
        from labeling.formats.fountain import FountainError, fountain_lines, parse_fountain

        try:
            lines = parse_fountain(text, source=str(path))
            title = title or next((fl.text for fl in fountain_lines(text) if fl.title_key == "title"), None)
        except FountainError as exc:
            raise IngestError(str(exc)) from exc
    elif fmt == "fdx":
        from labeling.formats.fdx import FdxFormatError, parse_fdx

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
    title = (title or _title_from_name(path)).strip()
    script_id = script_store.create_script(db, title=title, format=fmt, source_name=path.name, sha256=sha)
    try:
        pages = _group_pages(lines)
        for done, (page_no, page_lines) in enumerate(pages, 1):
            info = PageInfo(page=page_no, width=85.0, height=66.0, image_path=None, dpi=None, text_source="text")
            script_store.add_page(db, script_id, info, page_lines)
            if progress:
                progress(done, len(pages))
        return _finish(db, script_id, title, fmt)
    except BaseException:
        script_store.delete_script(db, script_id)
        raise


def _group_pages(lines: list[Line]) -> list[tuple[int, list[Line]]]:
    pages: dict[int, list[Line]] = {}
    for line in lines:
        pages.setdefault(line.page, []).append(line)
    return sorted(pages.items())


def _title_from_name(path: Path) -> str:
    return path.stem.replace("_", " ").replace("-", " ").strip().title() or path.name


def _ingest_pdf(db, path: Path, doc, *, sha, title, ocr, workers, dpi, progress, ocr_timeout_s: float = 0
                ) -> IngestResult:
    from labeling.pdf.ocr import iter_ocr_pages

    title = (title or _title_from_name(path)).strip() or _title_from_name(path)
    n_pages = doc.page_count
    needs_ocr = [i + 1 for i, page in enumerate(doc) if ocr == "always" or (ocr == "auto" and not has_text_layer(page))]
    if ocr == "never":
        needs_ocr = []
    script_id = script_store.create_script(db, title=title, format="pdf", source_name=path.name, sha256=sha)
    base = data_dir(db)
    image_dir = base / "pages" / str(script_id)
    try:
        source_dir = base / "sources"
        source_dir.mkdir(parents=True, exist_ok=True)
        source_copy = source_dir / f"{script_id}.pdf"
        shutil.copyfile(path, source_copy)
        script_store.set_source_path(db, script_id, str(source_copy))
        image_dir.mkdir(parents=True, exist_ok=True)
        ocr_results = iter(iter_ocr_pages(path, needs_ocr, dpi=dpi, workers=workers, image_dir=image_dir,
                                          timeout_s=ocr_timeout_s)) \
            if needs_ocr else iter(())
        pending_ocr = set(needs_ocr)
        doubtful = []
        for index in range(n_pages):
            page_no = index + 1
            if page_no in pending_ocr:
                result = next(ocr_results)
                info = PageInfo(page=page_no, width=result.width, height=result.height,
                                image_path=result.image_path, dpi=100, text_source="ocr")
                page_lines = result.lines
                if low_confidence(page_lines):
                    doubtful.append(page_no)
            else:
                page = doc[index]
                page_lines = text_layer_page_lines(page)
                image_path = image_dir / f"page-{page_no:04d}.png"
                page.get_pixmap(dpi=TEXT_LAYER_IMAGE_DPI, colorspace="gray").save(image_path)
                info = PageInfo(page=page_no, width=page.rect.width, height=page.rect.height,
                                image_path=str(image_path), dpi=TEXT_LAYER_IMAGE_DPI, text_source="text_layer")
            script_store.add_page(db, script_id, info, _to_lines(page_lines, page_no))
            if progress:
                progress(page_no, n_pages)
        doc.close()
        return _finish(db, script_id, title, "pdf", low_confidence_pages=tuple(doubtful))
    except BaseException:
        if not doc.is_closed:
            doc.close()
        script_store.delete_script(db, script_id)
        shutil.rmtree(image_dir, ignore_errors=True)
        (base / "sources" / f"{script_id}.pdf").unlink(missing_ok=True)
        raise


def _suggest(db: Database, script_id: int) -> None:
    """Suggestions from the current line model right away, so labeling starts with them."""
    from labeling.line_training import predict_scripts

    try:
        predict_scripts(db, script_id=script_id)
    except ScriptlabelError as exc:  # the script is stored either way; suggestions come with the next model
        warnings.warn(f"no suggestions yet: {exc}", stacklevel=2)


def _to_lines(page_lines: list[PageLine], page_no: int) -> list[Line]:
    return [page_line_to_line(pl, line_no=i, page=page_no) for i, pl in enumerate(page_lines, 1)]


LOW_CONFIDENCE = 0.5


def low_confidence(lines: list[PageLine], *, threshold: float = LOW_CONFIDENCE) -> bool:
    """An OCR page whose words Tesseract is, on average, unsure of (a page of noise reads as hundreds of
    such lines): worth a person's look before its lines are trusted."""
    scores = [line.ocr_confidence for line in lines if getattr(line, "ocr_confidence", None) is not None]
    return bool(scores) and sum(scores) / len(scores) < threshold


def _finish(db: Database, script_id: int, title: str, fmt: str, *,
            low_confidence_pages: tuple[int, ...] = ()) -> IngestResult:
    script_store.finish_script(db, script_id)
    _suggest(db, script_id)
    n_sequences = rederive_sequences(db, script_id) or 0
    script = script_store.get_script(db, script_id)
    n_lines = db.execute("SELECT COUNT(*) FROM lines WHERE script_id = ?", [script_id]).fetchone()[0]
    return IngestResult(script_id=script_id, title=title, format=fmt, pages=script["pages"], lines=n_lines,
                        sequences=n_sequences, ocr_pages=script["ocr_pages"], low_confidence_pages=low_confidence_pages)
