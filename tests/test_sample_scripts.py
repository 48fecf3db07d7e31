"""The project's own sample screenplay: its Fountain source and the PDFs made from it."""

from __future__ import annotations

import importlib.util
import re
import sys
from collections import Counter
from pathlib import Path

import pymupdf
import pytest

from labeling.ingest.formats.fountain import fountain_lines, parse_fountain
from store.types import LABELS

SAMPLES = Path(__file__).resolve().parents[1] / "sample_scripts"
FOUNTAIN, PDF, SCANNED = (
    SAMPLES / "tim_time.fountain",
    SAMPLES / "tim_time.pdf",
    SAMPLES / "tim_time-scanned.pdf",
)
# Lines the layout adds (page-break markers, page and scene numbers); not in the Fountain text.
PAGE_BREAK_LINE = re.compile(r"^(\(MORE\)|\(CONTINUED\)|\d+\.?|CONTINUED:|.* \(CONT'D\))$")


def load_make_pdfs():
    spec = importlib.util.spec_from_file_location("make_pdfs", SAMPLES / "make_pdfs.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_pdfs"] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def elements():
    return fountain_lines(FOUNTAIN.read_text(encoding="utf-8"))


def pdf_text_lines(path: Path) -> list[list[str]]:
    """Each page's text lines, rebuilt from PyMuPDF words in reading order."""
    pages = []
    with pymupdf.open(path) as document:
        for page in document:
            groups: dict[tuple[int, int], list[tuple[float, str]]] = {}
            for x0, _y0, _x1, _y1, word, block, line, _n in page.get_text("words"):
                groups.setdefault((block, line), []).append((x0, word))
            pages.append([" ".join(w for _, w in sorted(groups[key])) for key in sorted(groups)])
    return pages


def dual_speech_lines(elements) -> set[int]:
    """Indices of the lines of both speeches of each dual dialogue."""
    found: set[int] = set()
    for n, e in enumerate(elements):
        if e.kind == "character" and e.dual:
            left = max(i for i in range(n) if elements[i].kind == "character")
            end = next((i for i in range(n + 1, len(elements)) if not elements[i].dual), len(elements))
            found.update(range(left, end))
    return found


def test_the_fountain_sample_has_every_line_type(elements):
    lines = parse_fountain(FOUNTAIN.read_text(encoding="utf-8"))
    assert {line.imported_label for line in lines} == set(LABELS)
    kinds = Counter(e.kind for e in elements)
    assert kinds["heading"] >= 25 and kinds["parenthetical"] >= 20 and kinds["title"] >= 3
    headings = [e for e in elements if e.kind == "heading"]
    assert [e.scene_number for e in headings] == [str(n) for n in range(1, len(headings) + 1)]
    transitions = {e.text for e in elements if e.kind == "transition"}
    assert {"FADE IN:", "CUT TO:", "DISSOLVE TO:", "SMASH CUT TO:", "FADE OUT.", "INTERCUT:"} <= transitions
    cues = [e for e in elements if e.kind == "character"]
    assert any("(V.O.)" in e.text for e in cues) and any("(O.S.)" in e.text for e in cues)
    assert any("(CONT'D)" in e.text for e in cues) and any(e.dual for e in cues)
    assert len({e.text.split(" (")[0] for e in cues}) >= 8  # several speakers
    assert not any(e.text.startswith(("SQ0", "=")) for e in elements)  # sequence sections are outline


def test_layout_is_deterministic_and_long_enough():
    make_pdfs = load_make_pdfs()
    title, pages = make_pdfs.layout()
    assert make_pdfs.layout() == (title, pages)
    assert len(pages) >= 10
    printed = sum(1 for page in pages for row in page if 0 <= row < make_pdfs.BODY_ROWS)
    assert printed >= 650
    for page in pages:
        assert all(-3 <= row <= make_pdfs.BODY_ROWS + 1 for row in page)


def test_committed_pdf_is_current_with_the_fountain_file(tmp_path):
    make_pdfs = load_make_pdfs()
    title, pages = make_pdfs.layout()
    fresh = tmp_path / "fresh.pdf"
    make_pdfs.render_pdf(title, pages, fresh)
    assert pdf_text_lines(fresh) == pdf_text_lines(PDF), "rerun: uv run python sample_scripts/make_pdfs.py"


def test_born_digital_pdf_has_the_script_in_its_text_layer(elements):
    with pymupdf.open(PDF) as document:
        assert document.page_count >= 11
        assert all((page.rect.width, page.rect.height) == (612, 792) for page in document)
        assert {font[3] for font in document[1].get_fonts()} == {"Courier"}
    pages = pdf_text_lines(PDF)
    assert pages[2][0] == "2."  # script page 2 (after the title page) is numbered, page 1 is not
    assert not any(re.fullmatch(r"\d+\.", line) for line in pages[1])
    stream = " ".join(
        " ".join(line for page in pages for line in page if not PAGE_BREAK_LINE.match(line)).split()
    )
    side_by_side = dual_speech_lines(elements)  # two columns share rows, so only their words are checked
    words = set(stream.split())
    for n, e in enumerate(elements):
        if e.kind in ("dialogue", "parenthetical", "action", "heading"):
            if n in side_by_side:
                assert set(e.text.split()) <= words, e
            else:
                assert " ".join(e.text.split()) in stream, e
    every_line = [line for page in pages for line in page]
    assert "(MORE)" in every_line and "(CONTINUED)" in every_line
    assert any(line.endswith("(CONT'D)") for line in every_line)


def test_scanned_pdf_is_images_only_with_the_same_pages():
    assert SCANNED.stat().st_size < 3_000_000
    with pymupdf.open(PDF) as digital, pymupdf.open(SCANNED) as scanned:
        assert scanned.page_count == digital.page_count >= 10
        for page in scanned:
            assert page.get_text().strip() == ""
            images = page.get_images()
            assert len(images) == 1 and images[0][2:4] == (1700, 2200)  # US Letter at 200 dpi
            assert (page.rect.width, page.rect.height) == (612, 792)
