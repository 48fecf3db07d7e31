"""labeling/ingest/pdf/ocr.py: pages rendered and read by Tesseract, in page order, geometry in points."""

from __future__ import annotations

import pytest

from conftest import SCREENPLAY_LINES, make_scanned_pdf, make_text_pdf
from labeling.ingest.pdf.ocr import OcrError, fix_common_ocr_errors, iter_ocr_pages, ocr_pdf_page


@pytest.mark.parametrize("read, fixed", [("TIM (0.S.)", "TIM (O.S.)"), ("ANA (V.0.)", "ANA (V.O.)"),
                                         ("KIT (C0NT'D)", "KIT (CONT'D)"), ("Room 101 (0ne)", "Room 101 (0ne)"),
                                         ("(MORE )", "(MORE)"), ("( beat )", "(beat)"), ("Wait ( )", "Wait ( )")])
def test_ocr_confusions_in_cue_extensions_are_repaired(read, fixed):
    assert fix_common_ocr_errors(read) == fixed


@pytest.fixture
def scan(tmp_path):
    return make_scanned_pdf(tmp_path / "scan.pdf", make_text_pdf(tmp_path / "page.pdf", pages=2), dpi=200)


def test_a_scanned_page_is_read_with_its_layout(scan, tmp_path):
    page = ocr_pdf_page(str(scan), 1, dpi=200, image_dir=str(tmp_path / "images"))
    assert page.page == 1 and page.width == pytest.approx(612, abs=2) and page.height == pytest.approx(792, abs=2)
    texts = [line.text for line in page.lines]
    assert texts[0] == SCREENPLAY_LINES[0][0] and "TIM (O.S.)" in texts
    heading, cue = page.lines[0], page.lines[texts.index("MARGO")]
    assert heading.x0 == pytest.approx(1.5 * 72, abs=4) and cue.x0 == pytest.approx(3.7 * 72, abs=4)
    assert all(0 < line.ocr_confidence <= 1 for line in page.lines)
    assert page.image_path and (tmp_path / "images" / "page-0001.png").exists()


def test_pages_come_back_in_order_with_progress(scan):
    calls = []
    pages = list(iter_ocr_pages(scan, [2, 1], dpi=200, workers=1, progress=lambda d, t: calls.append((d, t))))
    assert [p.page for p in pages] == [2, 1] and calls == [(1, 2), (2, 2)]
    assert [line.text for line in pages[0].lines] == [line.text for line in pages[1].lines]


def test_a_page_that_is_not_there_is_a_message_naming_the_file(scan):
    with pytest.raises(OcrError, match=r"scan\.pdf: page 9 cannot be read by OCR"):
        ocr_pdf_page(str(scan), 9, dpi=100)
