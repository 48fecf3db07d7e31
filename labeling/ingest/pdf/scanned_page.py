"""One scanned page read whatever state it came in: lines, or a flag saying why it gave none.

A page is never a reason to refuse a script: a blank back, a page of noise, a page tesseract gives up
on or runs out of time on is kept as a flagged page (its reason in `PageReading.flag`) that a person
can see and read again (`scriptlabel ocr-page`). Before tesseract runs the page's paper and ink are
levelled, a blank page is recognised by its ink alone, a page fed sideways is turned upright and a
skewed one levelled (`labeling.ingest.pdf.scan`); two pages scanned side by side are read as two. A
half read with poor confidence is asked for its orientation (tesseract OSD, about a second, so only
then) and read again upside up.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace

from labeling.ingest.pdf import scan
from labeling.ingest.pdf.layout import POINTS_PER_COLUMN, PageLine, Word
from labeling.ingest.pdf.tesseract import Deadline

# How a page is read (labeling.ingest.pdf.ocr passes its own): the whole-page words, then lines from them.
WordsFn = Callable[..., list[Word]]  # (image, *, dpi, deadline) -> words
LinesFn = Callable[..., list[PageLine]]  # (image, words, *, dpi, deadline) -> lines

FLAGS = ("blank", "no_text", "unreadable", "timed_out")
UPRIGHT_CONF = 0.6  # a half read with a lower mean word confidence may be upside down: ask OSD
OSD_MIN_CONF = 1.0  # tesseract's orientation confidence below which its answer is a guess
TEXT_CONF = 0.5  # a page without one word read at this confidence has no text worth keeping
NOISE_CONF = 0.35  # nor a page whose words average less: tesseract "reading" noise (a clean page: 0.9, a poor scan 0.6)
_ALNUM = re.compile(r"[^\W_]")


@dataclass(frozen=True)
class PageReading:
    image: object  # the page as read: upright and level (line boxes refer to it)
    lines: list[PageLine]
    flag: str | None = None  # one of FLAGS, or None for a page that gave lines
    note: str = ""  # what was done to the page or why it is flagged, for a person
    rotated: int = 0  # degrees the page was turned clockwise to stand upright
    skew: float = 0.0


def read_page(image, *, dpi: int, deadline: Deadline, words: WordsFn, lines: LinesFn) -> PageReading:
    """Read one rendered page (grey PIL image at `dpi`) with `words` and `lines` (labeling.ingest.pdf.ocr's
    page_words and lines_from_words). Raises TesseractTimeout past the deadline and TesseractFailed when
    tesseract refuses the image; everything else about the page is in the result."""
    read_words, read_lines = words, lines
    from PIL import Image

    if scan.is_blank(image, dpi):  # before levelling: stretching a blank page's grey would make its noise ink
        return PageReading(image, [], "blank", "no ink on the page beyond a few specks (the back of a page?)")
    image = scan.normalize(image)
    notes, rotated = [], 0
    if scan.sideways(image, dpi):
        rotated = _sideways_turn(image, deadline)
        image = image.rotate(-rotated, expand=True)
        notes.append(f"turned {rotated}°")
    image, skew = scan.deskew(image, dpi)
    if skew:
        notes.append(f"levelled {skew:+.1f}°")
    halves = scan.split_spread(image, dpi)
    if len(halves) > 1:
        notes.append("two pages side by side")
    lines: list[PageLine] = []
    pieces = []
    for half in halves:
        half_lines, upright, turned = _read_half(half.image, dpi=dpi, deadline=deadline, words=read_words,
                                                 lines=read_lines, whole_page=len(halves) == 1)
        if turned:
            notes.append(f"{'right' if half.x_offset_px else 'page' if len(halves) == 1 else 'left'} turned {turned}°")
            rotated = (rotated + turned) % 360 if len(halves) == 1 else rotated
        pieces.append((upright, half.x_offset_px))
        lines.extend(_shifted(half_lines, half.x_offset_px * 72.0 / dpi, half.page_x_px * 72.0 / dpi))
    if len(halves) == 1:
        image = pieces[0][0]  # turned upright by OSD, perhaps a quarter: the page is what was read
    elif any(img is not half.image for (img, _x), half in zip(pieces, halves)):
        page = Image.new("L", image.size, 255)
        for img, x in pieces:
            page.paste(img, (x, 0))
        image = page
    note = "; ".join(notes)
    if not any(_ALNUM.search(line.text) and (line.ocr_confidence or 0) >= TEXT_CONF for line in lines):
        return PageReading(image, [], "no_text", "OCR found no text it could read" + (f" ({note})" if note else ""),
                           rotated, skew)
    mean = _mean_line_conf(lines)
    if mean < NOISE_CONF:
        return PageReading(image, [], "no_text", f"OCR read only noise (mean confidence {mean:.2f} over {len(lines)} "
                                                 "lines)" + (f"; {note}" if note else ""), rotated, skew)
    return PageReading(image, lines, None, note, rotated, skew)


def _sideways_turn(image, deadline: Deadline) -> int:
    """90 or 270: which way a sideways page turns upright (OSD; 90 when it cannot tell — the upside-down
    check of each half then catches a wrong guess)."""
    from labeling.ingest.pdf.tesseract import orientation

    found = orientation(image, timeout_s=deadline.left())
    if found and found[0] in (90, 270) and found[1] >= OSD_MIN_CONF:
        return found[0]
    return 90


def _read_half(image, *, dpi: int, deadline: Deadline, words: WordsFn, lines: LinesFn, whole_page: bool = True
               ) -> tuple[list[PageLine], object, int]:
    """(lines, the image they were read from, degrees it was turned): upside-down halves turned first.

    Poor lines are read again from crops only once the half stands upright: upside down, every row is
    poor and the re-read would cost more than the page."""
    from labeling.ingest.pdf.tesseract import orientation

    read_words, read_lines = words, lines
    found_words, turned_by = read_words(image, dpi=dpi, deadline=deadline), 0
    if _mean_word_conf(found_words) < UPRIGHT_CONF:
        found = orientation(image, timeout_s=deadline.left())
        if found and found[0] and found[1] >= OSD_MIN_CONF:
            turned = image.rotate(-found[0], expand=True)
            if whole_page or turned.size == image.size:  # a spread's half keeps its place: no quarter turns
                again = read_words(turned, dpi=dpi, deadline=deadline)
                if _mean_word_conf(again) > _mean_word_conf(found_words):
                    image, found_words, turned_by = turned, again, found[0]
    return read_lines(image, found_words, dpi=dpi, deadline=deadline), image, turned_by


def _mean_line_conf(lines: list[PageLine]) -> float:
    """Mean confidence of the page's lines, each weighted by its length."""
    weights = [(len(line.text), line.ocr_confidence or 0.0) for line in lines]
    total = sum(w for w, _c in weights)
    return sum(w * c for w, c in weights) / total if total else 0.0


def _mean_word_conf(words) -> float:
    confs = [w.conf for w in words if w.conf is not None and _ALNUM.search(w.text)]
    return sum(confs) / len(confs) if confs else 0.0


def _shifted(lines: list[PageLine], dx_pt: float, page_x_pt: float) -> list[PageLine]:
    """A right-hand page's lines placed on the spread; their indent counts from their own page's edge."""
    if not dx_pt:
        return lines
    return [replace(line, x0=round(line.x0 + dx_pt, 2), x1=round(line.x1 + dx_pt, 2),
                    indent=round((line.x0 + dx_pt - page_x_pt) / POINTS_PER_COLUMN, 2)) for line in lines]
