"""Read one page of a stored script again by OCR: what a person does with a flagged page (blank, no text
found, unreadable, timed out) or a page read poorly, with more time or at another resolution.

The page's lines are replaced in one transaction (store.scripts.replace_page), its image swapped in
only after that, then suggestions and sequences follow as after an ingest. A page whose lines people
labeled, edited or flagged is refused: re-reading it would drop their work.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sqlite_utils import Database

from labeling.ingest.pdf.ocr import DEFAULT_DPI
from labeling.ingest.pipeline import DEFAULT_OCR_SECONDS_PER_PAGE, IngestError, describe_flagged
from store import scripts as script_store
from store.types import PageInfo, ScriptlabelError

RETRY_SECONDS = 4 * DEFAULT_OCR_SECONDS_PER_PAGE  # a person asked for this page: it gets more time


@dataclass(frozen=True)
class PageOcrResult:
    script_id: int
    page: int
    lines: int  # lines the page has now
    change: int  # lines gained (or lost) against the earlier reading
    flag: str | None
    note: str

    def as_json(self) -> dict:
        return {"script_id": self.script_id, "page": self.page, "lines": self.lines, "change": self.change,
                "flag": self.flag, "note": self.note}


def ocr_page_again(db: Database, script_id: int, page: int, *, dpi: int = DEFAULT_DPI,
                   timeout_s: float = RETRY_SECONDS) -> PageOcrResult:
    """OCR page `page` of script `script_id` again and store what it gives; raises IngestError with a
    message saying what to do when the script or page cannot be read again."""
    from labeling.ingest.pdf.ocr import ocr_pdf_page
    from labeling.ingest.pdf.textlayer import page_line_to_line
    from labeling.sequences.grouping import rederive_sequences
    from store.types import Line

    script = script_store.get_script(db, script_id)
    source = script.get("source_path")
    if script["format"] != "pdf" or not source:
        raise IngestError(f"script {script_id} ({script['title']!r}) is a {script['format']} file, not a PDF: its pages "
                          "have no image to read again; edit its lines on the Script page instead")
    if not Path(source).exists():
        raise IngestError(f"script {script_id}: its PDF copy {source} is gone; ingest the file again")
    if not 1 <= page <= script["pages"]:
        raise IngestError(f"script {script_id} has pages 1 to {script['pages']}, not {page}; give one of those")
    pages = {p.page: p for p in script_store.get_pages(db, script_id)}
    image_dir = Path(source).parent.parent / "pages" / str(script_id)
    staging = image_dir / f".again-{os.getpid()}"
    try:
        result = ocr_pdf_page(source, page, dpi, str(staging), timeout_s)
        final_image = None
        if result.image_path:
            final_image = str(image_dir / Path(result.image_path).name)
        info = PageInfo(page=page, width=result.width, height=result.height,
                        image_path=final_image or (pages[page].image_path if page in pages else None), dpi=100,
                        text_source="ocr", flag=result.flag, flag_note=result.note)
        lines: list[Line] = [page_line_to_line(pl, line_no=i, page=page) for i, pl in enumerate(result.lines, 1)]
        try:
            change = script_store.replace_page(db, script_id, info, lines)
        except script_store.PageHasHumanWork as exc:
            raise IngestError(f"{exc}; nothing changed — undo those labels and edits first, or fix the page's "
                              "lines by hand on the Script page") from None
        if result.image_path:  # after the commit: the page's image always matches its stored lines
            os.replace(result.image_path, final_image)
    finally:
        for leftover in staging.glob("*") if staging.exists() else []:
            leftover.unlink(missing_ok=True)
        if staging.exists():
            staging.rmdir()
    _suggest(db, script_id)
    rederive_sequences(db, script_id)
    return PageOcrResult(script_id=script_id, page=page, lines=len(lines), change=change, flag=result.flag,
                         note=result.note)


def _suggest(db: Database, script_id: int) -> None:
    from labeling.training.lines import predict_scripts

    try:
        predict_scripts(db, script_id=script_id)
    except ScriptlabelError:  # no line model yet: suggestions come with the next one
        pass


def flagged_summary(db: Database, script_id: int) -> str:
    """'page 2 (blank), page 7 (timed out)', or '' when no page is flagged."""
    return describe_flagged([{"page": f.page, "flag": f.flag} for f in script_store.flagged_pages(db, script_id)])
