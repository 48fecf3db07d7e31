"""Reading born-digital PDFs through their text layer (PyMuPDF), and checking a PDF before ingest."""

from __future__ import annotations

from pathlib import Path

from labeling.ingest.pdf.mupdf import pymupdf

from labeling.ingest.pdf.layout import PageLine, Word, assemble_lines
from store.types import Line, ScriptlabelError

# A page with fewer characters than this in its text layer is treated as scanned.
MIN_TEXT_LAYER_CHARS = 20

pymupdf.TOOLS.mupdf_display_errors(False)
pymupdf.TOOLS.mupdf_display_warnings(False)


class PdfError(ScriptlabelError):
    pass


def open_pdf(path: str | Path) -> pymupdf.Document:
    """Open a PDF for reading, or raise PdfError saying what is wrong with the file and what to do."""
    path = Path(path)
    with path.open("rb") as handle:
        head = handle.read(1024)
    if b"%PDF-" not in head:
        raise PdfError(f"{path}: not a PDF (no %PDF header); export it to PDF again or ingest it as text/Fountain/FDX")
    try:
        doc = pymupdf.open(path)
    except Exception as exc:  # MuPDF raises its own FileDataError/RuntimeError family
        raise PdfError(f"{path}: the PDF cannot be read ({exc}); the file may be truncated — copy or download it again") from exc
    if doc.needs_pass or doc.is_encrypted:
        doc.close()
        raise PdfError(f"{path}: the PDF is password-protected; save an unencrypted copy (e.g. qpdf --decrypt) and ingest that")
    if _looks_truncated(path):
        doc.close()
        raise PdfError(f"{path}: the PDF is truncated (it ends before its last page; no %%EOF marker); "
                       "copy or download it again")
    if doc.page_count == 0:
        doc.close()
        raise PdfError(f"{path}: the PDF has no pages that can be read (empty or damaged); "
                       "copy or download it again, or print it to a new PDF")
    return doc


def _looks_truncated(path: Path) -> bool:
    size = path.stat().st_size
    with path.open("rb") as handle:
        handle.seek(max(0, size - 2048))
        tail = handle.read()
    return b"%%EOF" not in tail


def page_words(page: pymupdf.Page) -> list[Word]:
    return [Word(x0, y0, x1, y1, text) for x0, y0, x1, y1, text, *_ in page.get_text("words", sort=False)]


def has_text_layer(page: pymupdf.Page) -> bool:
    return len(page.get_text("text").strip()) >= MIN_TEXT_LAYER_CHARS


def text_layer_page_lines(page: pymupdf.Page) -> list[PageLine]:
    return assemble_lines(page_words(page))


def read_text_layer(path: str | Path) -> list[Line]:
    """Every line of a born-digital PDF from its text layer, in reading order (pages without text are skipped)."""
    doc = open_pdf(path)
    lines: list[Line] = []
    try:
        for index, page in enumerate(doc):
            for pl in text_layer_page_lines(page):
                lines.append(page_line_to_line(pl, line_no=len(lines) + 1, page=index + 1))
    finally:
        doc.close()
    return lines


def page_line_to_line(pl: PageLine, *, line_no: int, page: int) -> Line:
    return Line(
        line_no=line_no,
        page=page,
        text=pl.text,
        x0=pl.x0,
        y0=pl.y0,
        x1=pl.x1,
        y1=pl.y1,
        indent=pl.indent,
        gap_before=pl.gap_before,
        ocr_confidence=pl.ocr_confidence,
    )
