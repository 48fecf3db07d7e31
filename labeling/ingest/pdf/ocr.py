"""OCR of scanned PDF pages: pdf2image renders, pytesseract reads words with boxes and confidences.

Tesseract is CPU-bound and multi-threads badly on 2 cores, so each worker process runs it with
OMP_THREAD_LIMIT=1 and pages are spread over processes. Pages are rendered one at a time inside
the worker, so a 300-page scan is never held in memory at once.
"""

from __future__ import annotations

import os
import re
import threading
import time
from dataclasses import replace
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from labeling.ingest.pdf.layout import PageLine, Word, assemble_lines
from store.types import ScriptlabelError

DEFAULT_DPI = 300
IMAGE_DPI = 100  # page images kept for line crops in the app
TESSERACT_CONFIG = "--psm 6"


# Screenplay extensions that OCR often misreads (a zero for the letter O): (0.S.) → (O.S.).
_EXTENSION_FIXES = [
    (re.compile(r"\(0\.?\s?S\.?\)"), "(O.S.)"),
    (re.compile(r"\(V\.?\s?0\.?\)"), "(V.O.)"),
    (re.compile(r"\(C0NT['’`]?D\)"), "(CONT'D)"),
]


def fix_common_ocr_errors(text: str) -> str:
    """Repair the few OCR confusions that break screenplay cues; everything else is left as read."""
    for pattern, replacement in _EXTENSION_FIXES:
        text = pattern.sub(replacement, text)
    return text


class OcrTimeoutError(ScriptlabelError):
    """Tesseract ran past the per-page limit (a page of noise can take minutes)."""


class OcrError(ScriptlabelError):
    pass


@dataclass(frozen=True)
class OcrPage:
    page: int
    width: float  # points
    height: float
    lines: list[PageLine]
    image_path: str | None


_PARENT: int | None = None  # the ingest process that started this OCR worker


def _init_worker() -> None:
    global _PARENT
    os.environ["OMP_THREAD_LIMIT"] = "1"
    _PARENT = os.getppid()
    # If the ingest is killed (kill -9), its pool cannot tell the workers: they would wait forever on a
    # queue that their siblings keep open. Each worker leaves on its own once its parent is gone.
    threading.Thread(target=_exit_when_orphaned, name="ocr-orphan-watch", daemon=True).start()


def _exit_when_orphaned(poll_s: float = 0.5) -> None:
    while not _orphaned():
        time.sleep(poll_s)
    os._exit(1)


def _orphaned() -> bool:
    """True once the ingest that started this worker died: its pages are being rolled back, write nothing."""
    return _PARENT is not None and os.getppid() != _PARENT


def ocr_image(image, *, dpi: int, timeout_s: float = 0) -> list[PageLine]:
    """OCR a PIL image of a page rendered at `dpi`; geometry comes back in PDF points. Tesseract is stopped
    after `timeout_s` seconds (0: no limit) and OcrTimeoutError raised."""
    import pytesseract

    try:
        data = pytesseract.image_to_data(image, config=TESSERACT_CONFIG, output_type=pytesseract.Output.DICT,
                                         timeout=timeout_s)
    except RuntimeError as exc:
        if "timeout" not in str(exc).lower():
            raise
        raise OcrTimeoutError(f"OCR of a page took longer than {timeout_s:g} s") from None
    scale = 72.0 / dpi
    words = []
    for text, left, top, width, height, conf in zip(
        data["text"], data["left"], data["top"], data["width"], data["height"], data["conf"]
    ):
        conf = float(conf)
        if not text or not text.strip() or conf < 0:
            continue
        words.append(
            Word(
                left * scale,
                top * scale,
                (left + width) * scale,
                (top + height) * scale,
                text.strip(),
                conf / 100.0,
            )
        )
    return [replace(line, text=fix_common_ocr_errors(line.text)) for line in assemble_lines(words)]


def ocr_pdf_page(pdf_path: str, page: int, dpi: int = DEFAULT_DPI, image_dir: str | None = None,
                 timeout_s: float = 0) -> OcrPage:
    """Render one page (1-based) and OCR it. Runs inside a worker process."""
    from pdf2image import convert_from_path

    os.environ["OMP_THREAD_LIMIT"] = "1"
    damaged = (f"{pdf_path}: page {page} cannot be read by OCR (the page is damaged or has no size); print the PDF "
               "to a new PDF, or remove that page, and ingest it again")
    try:
        images = convert_from_path(pdf_path, dpi=dpi, first_page=page, last_page=page, grayscale=True)
    except Exception as exc:  # poppler's and pdf2image's own error family
        raise OcrError(f"{damaged} ({exc})") from None
    if not images or min(images[0].size) < 2:
        raise OcrError(damaged)
    image = images[0]
    width_pt, height_pt = image.width * 72.0 / dpi, image.height * 72.0 / dpi
    small_size = (round(width_pt * IMAGE_DPI / 72), round(height_pt * IMAGE_DPI / 72))
    if min(small_size) < 1:
        raise OcrError(damaged)
    try:
        lines = ocr_image(image, dpi=dpi, timeout_s=timeout_s)
    except OcrTimeoutError:
        raise OcrTimeoutError(f"{Path(pdf_path).name}: OCR of page {page} took longer than {timeout_s:g} s; "
                              "nothing was stored (SCRIPTLABEL_OCR_SECONDS_PER_PAGE raises the limit)") from None
    except (ValueError, RuntimeError) as exc:  # tesseract on a degenerate image
        raise OcrError(f"{damaged} ({exc})") from None
    image_path = None
    if image_dir is not None:
        if _orphaned():
            raise SystemExit(1)
        Path(image_dir).mkdir(parents=True, exist_ok=True)
        image_path = str(Path(image_dir) / f"page-{page:04d}.png")
        image.resize(small_size).save(image_path, optimize=False)
    return OcrPage(page=page, width=width_pt, height=height_pt, lines=lines, image_path=image_path)


def iter_ocr_pages(
    pdf_path: str | Path,
    pages: list[int],
    *,
    dpi: int = DEFAULT_DPI,
    workers: int = 2,
    image_dir: str | Path | None = None,
    progress: Callable[[int, int], None] | None = None,
    timeout_s: float = 0,
) -> Iterator[OcrPage]:
    """OCR `pages` in `workers` processes, yielding them in page order as they finish (`timeout_s` per page)."""
    total = len(pages)
    image_dir_s = str(image_dir) if image_dir is not None else None
    if workers <= 1 or total <= 1:
        for done, page in enumerate(pages, 1):
            result = ocr_pdf_page(str(pdf_path), page, dpi, image_dir_s, timeout_s)
            if progress:
                progress(done, total)
            yield result
        return
    with ProcessPoolExecutor(max_workers=workers, initializer=_init_worker) as pool:
        futures = [pool.submit(ocr_pdf_page, str(pdf_path), page, dpi, image_dir_s, timeout_s) for page in pages]
        try:
            for done, future in enumerate(futures, 1):
                result = future.result()
                if progress:
                    progress(done, total)
                yield result
        finally:
            for future in futures:
                future.cancel()
