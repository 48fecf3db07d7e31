"""The OCR path on real renders: margin lines re-read from their own crops, dual dialogue in reading order."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import Cli, make_scanned_pdf, require_shared_data
from labeling.ingest.pdf.layout import Word, assemble_lines
from labeling.ingest.pdf.ocr import ocr_image, ocr_pdf_page, reread_poor_lines

DUAL_DIALOGUE_PAGE = [
    # (text, x in inches, row)
    ("Martha watches them talk back and forth.", 1.5, 0),
    ("VON", 2.8, 2),
    ("JOHNNY HOWL", 5.5, 2),
    ("Fuck, we are fucked.", 1.5, 3),
    ("We are not fucked.", 4.6, 3),
    ("Totally fucked, man.", 1.5, 4),
    ("Nothing even happened.", 4.6, 4),
    ("MARTHA", 3.7, 6),
    ("Mrmmafmrm.", 2.5, 7),
    ("CUT TO: THE GIRLS HEADING UP", 4.7, 9),  # a right-aligned transition over two lines
    ("THE STREET", 6.5, 10),
    ("EXT. CITY STREET - NIGHT", 1.5, 12),
]
READING_ORDER = ["Martha watches them talk back and forth.", "VON", "Fuck, we are fucked.", "Totally fucked, man.",
                 "JOHNNY HOWL", "We are not fucked.", "Nothing even happened.", "MARTHA", "Mrmmafmrm.",
                 "CUT TO: THE GIRLS HEADING UP", "THE STREET", "EXT. CITY STREET - NIGHT"]


def make_page(path: Path, rows, *, page_number: str | None = None) -> Path:
    """One Courier 12 page (fpdf2): `rows` of (text, x inches, row), a page number at the top right."""
    from fpdf import FPDF

    pdf = FPDF(unit="pt", format="letter")
    pdf.set_font("Courier", size=12)
    pdf.add_page()
    if page_number:
        pdf.text(7.0 * 72, 0.5 * 72 + 9, page_number)
    for text, x_in, row in rows:
        pdf.text(x_in * 72, 72 + row * 12 + 9, text)
    pdf.output(str(path))
    return path


def _render(pdf: Path, dpi: int = 300):
    from pdf2image import convert_from_path

    return convert_from_path(str(pdf), dpi=dpi, grayscale=True)[0]


def test_a_misread_page_number_is_read_again_from_its_crop(tmp_path):
    rows = [("INT. HOUSE - DAY", 1.5, 0), ("She waits by the door for a long time.", 1.5, 2)]
    scan = make_scanned_pdf(tmp_path / "scan.pdf", make_page(tmp_path / "p.pdf", rows, page_number="81."))
    image = _render(scan)
    first = ocr_image(image, dpi=300, reread=False)
    [number] = [line for line in first if line.indent > 60]
    # What whole-page layout analysis does to a lone number in the corner (seen on studio scans:
    # "81." read as "B1s" at 0.40): a poor reading of the right box.
    poor = [Word(number.x0, number.y0, number.x1, number.y1, "B1s", 0.40)]
    body = [Word(l.x0, l.y0, l.x1, l.y1, l.text, l.ocr_confidence) for l in first if l.indent < 60]
    words = reread_poor_lines(image, poor + body, dpi=300)
    reread = [w for w in words if w.x0 > 60 * 7.2]
    assert [w.text for w in reread] == ["81."]
    assert reread[0].conf > 0.8
    assert abs(reread[0].x0 - number.x0) < 3 and abs(reread[0].y0 - number.y0) < 3  # back on the page, in place
    assert [w for w in words if w.x0 < 60 * 7.2] == body  # lines read well are left as they were


@pytest.mark.parametrize("slug, page, number", [("airplane", 116, "115."), ("me-him-her", 76, "75.")])
def test_studio_page_numbers_survive_a_200_dpi_scan(tmp_path, slug, page, number):
    # Whole-page OCR read these as "Lis" and "1D" (the page number lost); re-read from a crop they come back.
    pdf = require_shared_data("studio_pdfs", "pdf", f"{slug}.pdf")
    from pdf2image import convert_from_path

    [image] = convert_from_path(str(pdf), dpi=200, first_page=page, last_page=page, grayscale=True)
    scan = tmp_path / "scan.pdf"
    image.save(scan, resolution=200)
    lines = ocr_pdf_page(str(scan), 1).lines
    top = [line.text for line in lines if line.y1 < 90 and line.indent > 60]
    assert top == [number], [(line.text, round(line.indent)) for line in lines[:4]]


def test_dual_dialogue_and_a_two_line_transition_come_out_in_reading_order_on_both_paths(tmp_path):
    pdf = make_page(tmp_path / "dual.pdf", DUAL_DIALOGUE_PAGE, page_number="12.")
    scan = make_scanned_pdf(tmp_path / "dual-scan.pdf", pdf)
    for path, ocr in ((pdf, "never"), (scan, "always")):
        [result] = Cli(tmp_path / f"{ocr}.db").json_lines("ingest", str(path), "--ocr", ocr, "--workers", "1")
        from store.db import open_db

        db = open_db(tmp_path / f"{ocr}.db")
        texts = [r[0] for r in db.execute("SELECT text FROM lines WHERE script_id = ? ORDER BY line_no",
                                          [result["script_id"]])]
        db.close()
        assert texts == ["12.", *READING_ORDER], (ocr, texts)


def make_styled_page(path: Path, rows) -> Path:
    """One page of (text, x inches, baseline in points from the top, fpdf2 style, size)."""
    from fpdf import FPDF

    pdf = FPDF(unit="pt", format="letter")
    pdf.add_page()
    for text, x_in, baseline, style, size in rows:
        pdf.set_font("Courier", style=style, size=size)
        pdf.text(x_in * 72, baseline, text)
    pdf.output(str(path))
    return path


POSTER_PAGE = [
    ("31.", 7.0, 45, "", 12),
    ("INT. LIGHTHOUSE - NIGHT", 1.5, 81, "", 12),
    ("The poster on the wall reads:", 1.5, 105, "", 12),
    ("STORMY", 1.5, 150, "B", 36),  # a poster's word set large, a small word beside it on its baseline
    ("Harbour.", 3.55, 150, "B", 9),
    ("MARA", 3.7, 177, "", 12),
    ("GET OUT OF MY LIGHTHOUSE", 2.5, 192, "BI", 18),  # a shouted line in a larger italic face
    ("She slams the door behind her and climbs the stairs.", 1.5, 225, "", 12),
]


def _words_of(lines) -> list[Word]:
    return [Word(l.x0, l.y0, l.x1, l.y1, l.text, l.ocr_confidence) for l in lines]


def test_a_small_line_is_read_again_beside_a_large_one(tmp_path):
    scan = make_scanned_pdf(tmp_path / "scan.pdf", make_styled_page(tmp_path / "p.pdf", POSTER_PAGE))
    image = _render(scan)
    first = ocr_image(image, dpi=300, reread=False)
    [number] = [line for line in first if line.y1 < 60]
    [poster] = [line for line in first if "STORMY" in line.text]
    # Both poorly read: the number as the page read left it on a studio scan ("31." read as "cm" at
    # 0.15), the poster word below the reread threshold. On one sheet, the 36-point word made tesseract
    # miss the 12-point number; each crop is scaled to the page's text height before they are stacked.
    poor = [Word(number.x0, number.y0, number.x1, number.y1, "cm", 0.15),
            Word(poster.x0, poster.y0, poster.x1, poster.y1, "STORMV", 0.5)]
    body = _words_of(l for l in first if l is not number and l is not poster)
    words = reread_poor_lines(image, poor + body, dpi=300)
    top = [w for w in words if w.y1 < 60]
    assert [w.text for w in top] == ["31."], [(w.text, w.conf) for w in words]
    assert abs(top[0].x0 - number.x0) < 3 and top[0].conf > 0.8


def test_ink_the_page_read_skipped_is_read_from_its_crop(tmp_path):
    scan = make_scanned_pdf(tmp_path / "scan.pdf", make_styled_page(tmp_path / "p.pdf", POSTER_PAGE))
    image = _render(scan)
    first = ocr_image(image, dpi=300, reread=False)
    # Whole-page OCR of a studio scan returned no word at all for a line set like this one: leave it out.
    kept = [line for line in first if "LIGHT" not in line.text or line.text.startswith("INT.")]
    words = reread_poor_lines(image, _words_of(kept), dpi=300)
    lines = assemble_lines(words)
    shout = [line for line in lines if "LIGHTHOUSE" in line.text and not line.text.startswith("INT.")]
    assert [line.text for line in shout] == ["GET OUT OF MY LIGHTHOUSE"], [line.text for line in lines]
    assert abs(shout[0].x0 - 2.5 * 72) < 4 and shout[0].ocr_confidence >= 0.6
    texts = [line.text for line in lines]
    assert texts.index("MARA") < texts.index("GET OUT OF MY LIGHTHOUSE") < len(texts) - 1  # in its place
    assert len(lines) == len(kept) + 1  # nothing else made up from the page's ink


@pytest.mark.parametrize("text, conf, height, dust", [
    ("a", 0.0, 4.0, True),        # a speck read as a letter, with no confidence
    ("oo,", 0.16, 5.4, True),
    (".", 0.81, 0.7, True),       # a dot far smaller than the page's letters
    ("7", 0.47, 1.4, True),
    ("TIM", 0.2, 11.2, False),    # a cue read poorly under a speck: three letters are kept
    ("2.", 0.87, 8.3, False),     # a page number
    ("12A", 0.95, 8.3, False),    # a scene number
    ("I", 0.9, 8.0, False),       # a one-word line of dialogue read surely
    ("Oh.", 0.35, 8.3, False),    # unsure, but a word at full height
    ("--", 0.95, 0.7, False),     # a sure dash
])
def test_dust_lines_are_told_from_short_text(text, conf, height, dust):
    from labeling.ingest.pdf.layout import PageLine
    from labeling.ingest.pdf.ocr import is_dust

    line = PageLine(text=text, x0=100.0, y0=300.0, x1=110.0, y1=300.0 + height, indent=10.0, gap_before=1.0,
                    ocr_confidence=conf)
    assert is_dust(line, text_h=8.3) is dust
