"""Tesseract kept loaded between pages (labeling/ingest/pdf/tesseract_server.py and the client in
tesseract.py): it reads what the tesseract program reads, stays loaded from read to read, is stopped by
the kernel at a read's processor-time limit and started again for the next, and the program still reads
when the engine is switched off."""

from __future__ import annotations

import os

import pytest

from conftest import SCREENPLAY_LINES, make_text_pdf
from labeling.ingest.pdf import tesseract
from labeling.ingest.pdf.tesseract import TesseractTimeout, orientation, read_words


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    from labeling.ingest.pdf.mupdf import pymupdf
    from PIL import Image

    pdf = make_text_pdf(tmp_path_factory.mktemp("engine") / "page.pdf", SCREENPLAY_LINES * 2)
    with pymupdf.open(pdf) as doc:
        pix = doc[0].get_pixmap(dpi=200, colorspace=pymupdf.csGRAY)
        return Image.frombytes("L", (pix.width, pix.height), pix.samples)


@pytest.fixture
def engine(monkeypatch):
    monkeypatch.delenv("SCRIPTLABEL_TESSERACT", raising=False)
    yield tesseract.loaded_engine()
    tesseract.close_engine()


def _texts(words) -> list[str]:
    return [w.text for w in words]


def test_the_loaded_engine_reads_the_words_the_program_reads(page, engine, monkeypatch):
    assert engine is not None, "tesserocr is a dependency: the engine must start"
    loaded = read_words(page, psm=6)
    monkeypatch.setenv("SCRIPTLABEL_TESSERACT", "program")
    program = read_words(page, psm=6)
    assert _texts(loaded) == _texts(program)
    assert " ".join(_texts(loaded)).startswith("INT. LIGHTHOUSE KITCHEN")
    for a, b in zip(loaded, program):  # the same boxes, to a pixel or two (tesseract 5.5 against 5.3)
        assert abs(a.left - b.left) <= 2 and abs(a.top - b.top) <= 2


def test_the_engine_stays_loaded_between_reads_and_reports_its_processor_time(page, engine):
    read_words(page.crop((0, 0, page.width, page.height // 3)))
    pid = engine._proc.pid
    before = tesseract.cpu_seconds()
    read_words(page)
    assert engine._proc.pid == pid  # no new process, no new load of the language data
    assert tesseract.cpu_seconds() - before > 0.05  # the engine's read counts as this process's time


def test_orientation_of_a_page_turned_a_quarter(page, engine, monkeypatch):
    turned = page.rotate(90, expand=True)
    loaded = orientation(turned)
    monkeypatch.setenv("SCRIPTLABEL_TESSERACT", "program")
    assert loaded is not None and loaded[0] == 90
    assert orientation(turned)[0] == loaded[0]


def test_a_read_past_its_processor_time_is_stopped_and_the_next_read_starts_a_new_engine(page, engine):
    import numpy as np
    from PIL import Image

    noise = Image.fromarray(np.random.default_rng(0).integers(0, 256, (3000, 2400), dtype=np.uint8))
    read_words(page.crop((0, 0, page.width, page.height // 4)))
    pid = engine._proc.pid
    with pytest.raises(TesseractTimeout):
        read_words(noise, timeout_s=0.2)
    assert engine._proc is None  # stopped by the kernel (SIGXCPU) and reaped
    assert not os.path.exists(f"/proc/{pid}/stat")
    assert "INT." in " ".join(_texts(read_words(page)))
    assert engine._proc.pid != pid


def test_the_program_reads_when_the_engine_is_switched_off(page, monkeypatch):
    monkeypatch.setenv("SCRIPTLABEL_TESSERACT", "program")
    assert tesseract.loaded_engine() is None
    assert "INT." in " ".join(_texts(read_words(page)))


def test_closing_the_engine_reaps_it(page, engine):
    read_words(page.crop((0, 0, page.width, page.height // 4)))
    pid = engine._proc.pid
    tesseract.close_engine()
    assert engine._proc is None and not os.path.exists(f"/proc/{pid}/stat")
