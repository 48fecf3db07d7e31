"""OCR of scanned PDF pages: PyMuPDF renders each page in the worker that reads it, tesseract reads words
with boxes and confidences (`labeling.ingest.pdf.tesseract`), `scanned_page` copes with what scans do.

Tesseract is CPU-bound and multi-threads badly, so each run is single-threaded (OMP_THREAD_LIMIT=1)
and pages are spread over one process per core. Pages are rendered one at a time inside the worker
(within MAX_RENDER_PIXELS), so a 400 MB, 120-page scan is never held in memory at once. A page that
gives no lines comes back flagged (`OcrPage.flag`), never as an error that sinks the script.
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

from labeling.ingest.pdf.layout import PageLine, Word, assemble_lines, line_segments
from store.types import ScriptlabelError

# Scans are read at 200 dpi (tesseract's LSTM scales every text line to one height anyway): bench/ocr_accuracy
# scores the same at 200 as at 300, and a page costs a third less (bench/ocr_speed.py; README, Scans).
DEFAULT_DPI = 200
IMAGE_DPI = 100  # page images kept for line crops in the app
SPECK_CONF = 0.5  # a word without a letter or digit read with less confidence is dropped
MAX_RENDER_PIXELS = 40_000_000  # a page is rendered at a lower dpi than asked rather than over this (a poster)


# Screenplay extensions that OCR often misreads (a zero for the letter O): (0.S.) → (O.S.).
_EXTENSION_FIXES = [
    (re.compile(r"\(0\.?\s?S\.?\)"), "(O.S.)"),
    (re.compile(r"\(V\.?\s?0\.?\)"), "(V.O.)"),
    (re.compile(r"\(C0NT['’`]?D\)"), "(CONT'D)"),
    # Tesseract reads a bracket apart from its word ("(MORE )", "( beat)"); a printed script has no space there.
    (re.compile(r"\(\s+(?=[^\s)])"), "("),
    (re.compile(r"(?<=[^\s(])\s+\)"), ")"),
]


def fix_common_ocr_errors(text: str) -> str:
    """Repair the few OCR confusions that break screenplay cues; everything else is left as read."""
    for pattern, replacement in _EXTENSION_FIXES:
        text = pattern.sub(replacement, text)
    return text


class OcrError(ScriptlabelError):
    pass


@dataclass(frozen=True)
class OcrPage:
    page: int
    width: float  # points
    height: float
    lines: list[PageLine]
    image_path: str | None
    flag: str | None = None  # blank | no_text | unreadable | timed_out (scanned_page.FLAGS); None: it gave lines
    note: str = ""  # why it is flagged, or what was done to read it (turned, levelled, two pages)
    dpi: int = DEFAULT_DPI  # the resolution it was read at


_PARENT: int | None = None  # the ingest process that started this OCR worker


def _init_worker() -> None:
    global _PARENT
    from multiprocessing.util import Finalize

    from labeling.ingest.pdf.tesseract import close_engine
    from labeling.processes import die_with_parent

    os.environ["OMP_THREAD_LIMIT"] = "1"
    _PARENT = os.getppid()
    die_with_parent()  # the kernel kills this worker with its ingest, and tesseract with this worker
    # If the ingest is killed (kill -9), its pool cannot tell the workers: they would wait forever on a
    # queue that their siblings keep open. Each worker leaves on its own once its parent is gone.
    threading.Thread(target=_exit_when_orphaned, name="ocr-orphan-watch", daemon=True).start()
    # A worker leaves through multiprocessing's clean-up, not atexit: reap the loaded tesseract there, so its
    # processor time counts as the ingest's and it does not wait out its idle time.
    Finalize(None, close_engine, exitpriority=10)


def _exit_when_orphaned(poll_s: float = 0.5) -> None:
    while not _orphaned():
        time.sleep(poll_s)
    os._exit(1)


def _orphaned() -> bool:
    """True once the ingest that started this worker died: its pages are being rolled back, write nothing."""
    return _PARENT is not None and os.getppid() != _PARENT


def _tesseract_words(image, *, dpi: int, psm: int = 6, deadline=None,
                     offset: tuple[float, float] = (0.0, 0.0)) -> list[Word]:
    """Words tesseract reads in `image`, as boxes in PDF points (shifted by `offset`, in pixels)."""
    from labeling.ingest.pdf.tesseract import read_words

    scale = 72.0 / dpi
    dx, dy = offset
    # A lone mark tesseract is unsure of (";" at 0.2) is a speck of dust or noise, not text: on the bundled
    # scanned sample they were a quarter of all lines.
    return [Word((w.left + dx) * scale, (w.top + dy) * scale, (w.left + w.width + dx) * scale,
                 (w.top + w.height + dy) * scale, w.text, w.conf / 100.0)
            for w in read_words(image, psm=psm, timeout_s=deadline.left() if deadline else 0)
            if w.conf >= SPECK_CONF * 100 or _ALNUM_1.search(w.text)]


def ocr_image(image, *, dpi: int, timeout_s: float = 0, reread: bool = True, deadline=None) -> list[PageLine]:
    """OCR a PIL image of a page rendered at `dpi`; geometry comes back in PDF points. Tesseract is stopped
    after `timeout_s` seconds (0: no limit; or at `deadline`, a tesseract.Deadline) and
    TesseractTimeout raised.

    With `reread`, lines read poorly — isolated page numbers and running headers at the top and bottom of
    the page, which whole-page layout analysis misreads ("81." as "B1s"), and any line of low confidence —
    are read a second time from their own crops (`reread_lines`), and the better reading is kept.
    """
    from labeling.ingest.pdf.tesseract import Deadline

    deadline = deadline or Deadline(timeout_s)
    return lines_from_words(image, page_words(image, dpi=dpi, deadline=deadline), dpi=dpi, deadline=deadline,
                            reread=reread)


def page_words(image, *, dpi: int, deadline=None) -> list[Word]:
    """The whole-page read: tesseract's words in PDF points."""
    return _tesseract_words(image, dpi=dpi, deadline=deadline)


def lines_from_words(image, words: list[Word], *, dpi: int, deadline=None, reread: bool = True) -> list[PageLine]:
    """Poor lines read again from crops (`reread_poor_lines`), then words assembled into lines; lines that
    are only dust (`is_dust`) are dropped."""
    if reread:
        words = reread_poor_lines(image, words, dpi=dpi, deadline=deadline)
    text_h = _median_height(words)
    return [replace(line, text=fix_common_ocr_errors(line.text)) for line in assemble_lines(words)
            if not is_dust(line, text_h)]


DUST_MARKS = 2  # a line of at most this many letters or digits may be dust...
DUST_CONF = 0.3  # ...when read with less confidence than this (even after its crop was read again)
SPECK_HEIGHT = 0.35  # ...or when it is shorter than this share of the page's text height (and not sure)


def is_dust(line: PageLine, text_h: float) -> bool:
    """A line that is a speck of dust or toner, not text: one or two marks read with almost no confidence
    ("a" at 0.0, "oo" at 0.16), or a few marks far smaller than the page's letters ("." or "7" 1.4 points
    high among 8-point text). On the bundled scanned sample these made 38 of its 1,186 lines (the text
    layer: 1,147). Page numbers, cues and scene numbers are read at 0.8 or more and at full height; a
    three-letter cue under a speck ("TIM" at 0.2) is kept."""
    if len(_ALNUM_ALL.findall(line.text)) > DUST_MARKS or len(line.text.replace(" ", "")) > DUST_MARKS + 2:
        return False
    conf = line.ocr_confidence if line.ocr_confidence is not None else 1.0
    return conf < DUST_CONF or (line.y1 - line.y0 < SPECK_HEIGHT * text_h and conf < BAND_CONF)


_ALNUM_ALL = re.compile(r"[^\W_]")


MARGIN_BAND_PT = 90.0  # page numbers and running headers sit within ~1.25 inch of the top or bottom edge
BAND_CONF = 0.9  # a margin line read with less confidence is read again
POOR_CONF = 0.7  # so is any line elsewhere read with less than this
REREAD_GAIN = 0.05  # the second reading replaces the first only when it is this much surer
INK_CONF = 0.6  # a reading of ink the page read found no word in is kept from this confidence on
MAX_POOR_ROWS = 40  # the least sure rows read again (a page has ~55 rows; a page of noise, hundreds)
MAX_INK_BANDS = 12  # bands of unread ink read again per page (a noisy scan has many: the rest are noise)
BINARY_THRESHOLD = 160
SCALE_KEPT = (0.5, 2.0)  # a crop whose text is within this factor of the page's text height is left as it is
_CROP_GAP_PX = 40


@dataclass(frozen=True)
class _Candidate:
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in points: the row's words or the ink's extent
    conf: float  # the page read's mean confidence (0 for ink no word covered)
    row: tuple[Word, ...]  # the words it replaces (none for unread ink)


def reread_poor_lines(image, words: list[Word], *, dpi: int, timeout_s: float = 0, deadline=None) -> list[Word]:
    """Read poorly read lines, and ink no word was read in, again from crops: one extra tesseract call.

    Tesseract's page layout analysis treats a lone "81." in the corner as noise and guesses at it, and
    skips a line set in a larger or italic face (a shouted line on a studio scan) or a small word beside
    a large one; read from a crop of just that line, it is read as text. A crop is scaled towards the page's
    text height (one sheet must not mix sizes: beside a 24-point word tesseract does not see an 8-point
    one; `_crop_scales`), stacked on one sheet as it is and binarized, and per line the most confident
    reading wins if it beats the first by REREAD_GAIN (ink: from INK_CONF on, with two letters or digits).

    The sheet is bounded by the page itself: no larger than the page image (crops that do not fit wait
    for a person's re-read), no crop scaled past the page's width, at most MAX_POOR_ROWS rows. A page of
    noise is all poor rows: unbounded, its sheet grew to 2,630 × 78,044 px and tesseract refused it.
    """
    from PIL import Image

    from labeling.ingest.pdf.tesseract import Deadline

    deadline = deadline or Deadline(timeout_s)
    px = dpi / 72.0
    text_h = _median_height(words)
    poor = sorted(_poor_rows(words, height_pt=image.height / px), key=lambda c: c.conf)[:MAX_POOR_ROWS]
    candidates = sorted(poor, key=lambda c: c.box[1]) + _unread_ink(image, words, dpi=dpi, text_h=text_h)
    if not candidates:
        return words
    variants = []  # (candidate, its crop's box on the page in pixels, scale, image)
    sheet_h, max_w = _CROP_GAP_PX, image.width - 2 * _CROP_GAP_PX
    for k, cand in enumerate(candidates):
        x0, y0, x1, y1 = cand.box
        pad_x, pad_y = 0.25 * 72, 0.3 * (y1 - y0)
        box = (max(0, int((x0 - pad_x) * px)), max(0, int((y0 - pad_y) * px)),
               min(image.width, int((x1 + pad_x) * px)), min(image.height, int((y1 + pad_y) * px)))
        crop = image.crop(box).convert("L")
        for scale in _crop_scales(text_h / max(y1 - y0, 1e-6)):
            scale = min(scale, max_w / max(crop.width, 1))
            scaled = crop if scale == 1.0 else crop.resize(
                (max(1, round(crop.width * scale)), max(1, round(crop.height * scale))), Image.LANCZOS)
            sheet_h += 2 * (scaled.height + _CROP_GAP_PX)
            if sheet_h > image.height or scaled.width > max_w:
                break  # the sheet is full: the rest keep their first reading
            # As scanned and binarized: the grey fringes that upsampling a scan leaves around small
            # glyphs can confuse tesseract ("115." read as "'mks" from grey, right from black and
            # white) and sometimes the other way round.
            variants.append((k, box, scale, scaled))
            variants.append((k, box, scale, scaled.point(lambda v: 255 if v > BINARY_THRESHOLD else 0)))
    if not variants:
        return words
    width = max(v[3].width for v in variants) + 2 * _CROP_GAP_PX
    sheet = Image.new("L", (width, sum(v[3].height + _CROP_GAP_PX for v in variants) + _CROP_GAP_PX), 255)
    tops, y = [], _CROP_GAP_PX
    for *_rest, crop in variants:
        sheet.paste(crop, (_CROP_GAP_PX, y))
        tops.append(y)
        y += crop.height + _CROP_GAP_PX
    per_variant: list[list[Word]] = [[] for _ in variants]
    for w in _tesseract_words(sheet, dpi=dpi, psm=6, deadline=deadline):
        if _CROP_EDGE_NOISE.fullmatch(w.text):
            continue  # the edge of a neighbouring glyph in the crop's padding, read as "_" or "|"
        centre = (w.y0 + w.y1) / 2 * px
        for v, (top, (*_rest, crop)) in enumerate(zip(tops, variants)):
            if top - _CROP_GAP_PX / 2 <= centre < top + crop.height + _CROP_GAP_PX / 2:
                per_variant[v].append(w)
                break
    best: list[tuple[float, list[Word] | None]] = [(c.conf, None) for c in candidates]
    for v, found in enumerate(per_variant):
        k, box, scale, _image = variants[v]
        if not found:
            continue
        conf = sum(w.conf or 0.0 for w in found) / len(found)
        cand = candidates[k]
        if cand.row:
            better = conf > best[k][0] + (REREAD_GAIN if best[k][1] is None else 0.0)
        else:
            better = conf >= max(INK_CONF, best[k][0]) and _ALNUM_2.search("".join(w.text for w in found)) is not None
        if better:
            best[k] = (conf, _back_on_page(found, cand, box, scale, px))
    replaced = {id(w) for cand, (_conf, new) in zip(candidates, best) if new is not None for w in cand.row}
    out = [w for w in words if id(w) not in replaced]
    for _conf, new in best:
        if new is not None:
            out.extend(new)
    return out


def _crop_scales(fit: float) -> list[float]:
    """The scales a crop is read at: as it is, unless its text is far from the page's text height
    (SCALE_KEPT), and scaled to the page's text height (`fit`) unless it is close to it already.
    Neither reading always wins (on studio scans one short line came back only scaled, another only as
    it was), so a crop whose size is in between is read both ways and the surer reading kept."""
    scales = [1.0] if SCALE_KEPT[0] <= fit <= SCALE_KEPT[1] else []
    if not 0.8 <= fit <= 1.25:
        scales.append(min(max(fit, 0.3), 3.0))
    return scales


_CROP_EDGE_NOISE = re.compile(r"[_|~]+")
_ALNUM_1 = re.compile(r"[^\W_]")
_ALNUM_2 = re.compile(r"[^\W_].*[^\W_]")


def _back_on_page(found: list[Word], cand: _Candidate, box: tuple[int, int, int, int], scale: float, px: float) -> list[Word]:
    """A crop's words in page points: the crop's box on the page, undoing its scale.

    A re-read row keeps the height the page read gave it: a crop's reading can take in a descender of
    the line above, and one line set a few points high shrinks the page's line pitch (every gap on the
    page would double). Unread ink takes the height of the ink itself.
    """
    def x(sheet_pt: float) -> float:
        return (box[0] + (sheet_pt * px - _CROP_GAP_PX) / scale) / px

    y0, y1 = cand.box[1], cand.box[3]
    return [replace(w, x0=x(w.x0), x1=x(w.x1), y0=y0, y1=y1) for w in found]


def _median_height(words: list[Word]) -> float:
    heights = sorted(w.y1 - w.y0 for w in words if w.y1 > w.y0 and len(w.text) >= 3)
    return heights[len(heights) // 2] if heights else 8.0


def _poor_rows(words: list[Word], *, height_pt: float) -> list[_Candidate]:
    """Rows read with low confidence, or with less than BAND_CONF in the top and bottom margins."""
    out = []
    for row in line_segments(words):
        conf = sum(w.conf or 0.0 for w in row) / len(row)
        y0, y1 = min(w.y0 for w in row), max(w.y1 for w in row)
        in_band = y1 < MARGIN_BAND_PT or y0 > height_pt - MARGIN_BAND_PT
        if (in_band and conf < BAND_CONF) or conf < POOR_CONF:
            out.append(_Candidate((min(w.x0 for w in row), y0, max(w.x1 for w in row), y1), conf, tuple(row)))
    return out


def _unread_ink(image, words: list[Word], *, dpi: int, text_h: float) -> list[_Candidate]:
    """Bands of ink, at least half a text line high, in which the page read found no word.

    Specks, rules and scanner borders are bands too; what tesseract cannot read in them with
    confidence (INK_CONF) is dropped, and at most MAX_INK_BANDS of the largest are read per page.
    """
    import numpy as np

    px = dpi / 72.0
    ink = np.asarray(image.convert("L")) < 128
    if not ink.any():
        return []
    pad = max(2, int(0.15 * text_h * px))
    for w in words:
        ink[max(0, int(w.y0 * px) - pad):int(w.y1 * px) + pad, max(0, int(w.x0 * px) - pad):int(w.x1 * px) + pad] = False
    edge = int(0.25 * 72 * px)  # a scan's dark border is not text
    ink[:edge], ink[-edge:], ink[:, :edge], ink[:, -edge:] = False, False, False, False
    rows = ink.any(axis=1)
    bands, y = [], 0
    while y < len(rows):
        if not rows[y]:
            y += 1
            continue
        end = y
        while end < len(rows) and rows[end:end + max(1, int(0.1 * text_h * px))].any():
            end += 1  # bridge the gap between an i and its dot
        cols = np.flatnonzero(ink[y:end].any(axis=0))
        height = (end - y) / px
        if 0.5 * text_h <= height <= 4 * text_h and ink[y:end].sum() >= 0.1 * (text_h * px) ** 2:
            bands.append(_Candidate((cols[0] / px, y / px, (cols[-1] + 1) / px, end / px), 0.0, ()))
        y = end
    bands.sort(key=lambda c: (c.box[2] - c.box[0]) * (c.box[3] - c.box[1]), reverse=True)
    return bands[:MAX_INK_BANDS]


def bounded_dpi(width_pt: float, height_pt: float, dpi: int) -> int:
    """`dpi`, or less for a page so large that it would render past MAX_RENDER_PIXELS (or tesseract's side
    limit): memory per page stays bounded whatever the PDF says its page size is."""
    from labeling.ingest.pdf.tesseract import MAX_SIDE_PX

    w_in, h_in = max(width_pt, 1.0) / 72.0, max(height_pt, 1.0) / 72.0
    limit = min((MAX_RENDER_PIXELS / (w_in * h_in)) ** 0.5, MAX_SIDE_PX / max(w_in, h_in))
    return max(1, min(int(dpi), int(limit)))


def render_page(doc, page: int, dpi: int):
    """Page `page` (1-based) of an open PyMuPDF document as a grey PIL image, and the dpi it was rendered at.

    In-process (no poppler child to leave behind), and within MAX_RENDER_PIXELS."""
    from labeling.ingest.pdf.mupdf import pymupdf
    from PIL import Image

    pdf_page = doc[page - 1]
    dpi = bounded_dpi(pdf_page.rect.width, pdf_page.rect.height, dpi)
    pixmap = pdf_page.get_pixmap(dpi=dpi, colorspace=pymupdf.csGRAY, alpha=False)
    image = Image.frombytes("L", (pixmap.width, pixmap.height), pixmap.samples)
    # MuPDF keeps decoded page images in its store (up to 256 MB a process) for pages drawn again; each
    # page is drawn once here, and on a 120-page scan the store took each OCR worker from 128 to 360 MB.
    pymupdf.TOOLS.store_shrink(100)
    return image, dpi


def read_document_page(doc, page: int, *, dpi: int = DEFAULT_DPI, timeout_s: float = 0, name: str = "the PDF"):
    """Render and read one page of an open document: (OcrPage without its image path, the small page image
    to keep for crops, or None). A page that gives no lines comes back flagged; only a page number the
    document does not have raises OcrError."""
    from labeling.ingest.pdf.scanned_page import read_page
    from labeling.ingest.pdf.tesseract import Deadline, TesseractFailed, TesseractTimeout

    os.environ["OMP_THREAD_LIMIT"] = "1"
    if not 1 <= page <= doc.page_count:
        raise OcrError(f"{name}: page {page} cannot be read by OCR (the PDF has {doc.page_count} pages); give a page "
                       f"from 1 to {doc.page_count}")
    rect = doc[page - 1].rect
    width_pt, height_pt = rect.width, rect.height

    def flagged(flag: str, note: str, used_dpi: int = dpi, image=None) -> tuple[OcrPage, object]:
        return (OcrPage(page=page, width=width_pt, height=height_pt, lines=[], image_path=None, flag=flag,
                        note=note, dpi=used_dpi), _small(image, used_dpi) if image is not None else None)

    try:
        image, dpi = render_page(doc, page, dpi)
    except Exception as exc:  # MuPDF's own error family: a damaged page or image stream
        return flagged("unreadable", f"the page image cannot be decoded ({exc})")
    if min(image.size) < 2:
        return flagged("unreadable", "the page has no size", dpi)
    try:
        reading = read_page(image, dpi=dpi, deadline=Deadline(timeout_s), words=page_words, lines=lines_from_words)
    except TesseractTimeout:
        return flagged("timed_out", f"OCR took more than {timeout_s:g} s of processor time (noise, or a photo?)",
                       dpi, image)
    except TesseractFailed as exc:
        return flagged("unreadable", f"tesseract could not read the page image ({exc})", dpi, image)
    image = reading.image
    return OcrPage(page=page, width=image.width * 72.0 / dpi, height=image.height * 72.0 / dpi, lines=reading.lines,
                   image_path=None, flag=reading.flag, note=reading.note, dpi=dpi), _small(image, dpi)


def _small(image, dpi: int):
    """The page image kept for the app's crops, at IMAGE_DPI."""
    return image.resize((max(1, round(image.width * IMAGE_DPI / dpi)), max(1, round(image.height * IMAGE_DPI / dpi))))


_OPEN: dict[str, object] = {}  # this worker's open document (one path at a time)


def _document(pdf_path: str):
    from labeling.ingest.pdf.mupdf import pymupdf

    if pdf_path not in _OPEN:
        for doc in _OPEN.values():
            doc.close()
        _OPEN.clear()
        try:
            _OPEN[pdf_path] = pymupdf.open(pdf_path)
        except Exception as exc:  # MuPDF's own error family
            raise OcrError(f"{pdf_path}: the PDF cannot be read ({exc}); copy or download it again") from None
    return _OPEN[pdf_path]


def ocr_pdf_page(pdf_path: str, page: int, dpi: int = DEFAULT_DPI, image_dir: str | None = None,
                 timeout_s: float = 0) -> OcrPage:
    """Render one page (1-based) and OCR it; its small image is saved in `image_dir`. Runs inside a worker."""
    result, small = read_document_page(_document(str(pdf_path)), page, dpi=dpi, timeout_s=timeout_s,
                                       name=str(pdf_path))
    if image_dir is None or small is None:
        return result
    if _orphaned():
        raise SystemExit(1)
    Path(image_dir).mkdir(parents=True, exist_ok=True)
    image_path = str(Path(image_dir) / f"page-{page:04d}.png")
    small.save(image_path, optimize=False)
    return replace(result, image_path=image_path)


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
