"""Scans in the app (AppTest, real tesseract): an upload with a blank noisy back is stored with that page
flagged in the upload's report and on the Script page, where a person reads a page again."""

from __future__ import annotations

import io

import numpy as np
import pytest

from conftest import make_text_pdf
from store import scripts as script_store
from test_app import _wait_for_jobs, app_db, open_page  # noqa: F401 (app_db is a fixture)


def _scan_with_a_blank_back(tmp_path) -> bytes:
    from labeling.ingest.pdf.mupdf import pymupdf
    from PIL import Image

    with pymupdf.open(make_text_pdf(tmp_path / "src.pdf")) as doc:
        pix = doc[0].get_pixmap(dpi=150, colorspace=pymupdf.csGRAY)
    page = Image.frombytes("L", (pix.width, pix.height), pix.samples)
    rng = np.random.default_rng(0)
    blank = Image.fromarray(np.clip(240 + rng.normal(0, 25, (page.height, page.width)), 0, 255).astype(np.uint8))
    buffer = io.BytesIO()
    page.save(buffer, format="PDF", save_all=True, append_images=[blank], resolution=150)
    return buffer.getvalue()


@pytest.mark.slow
def test_an_uploaded_scan_with_a_blank_back_lists_the_page_and_reads_it_again(app_db, tmp_path):
    db, _ = app_db
    from labeling.ingest import jobs as ingest_jobs

    at = open_page("scripts")
    # what the upload route does once the chosen file is streamed (tests/test_upload_api.py sends real ones)
    ingest_jobs.start_upload(db, "clock_scan.pdf", _scan_with_a_blank_back(tmp_path), client_id="scan-1")
    _wait_for_jobs(db, timeout_s=600)
    at.run()
    assert not at.exception and not at.error
    shown = [w.value.replace("\\", "") for w in at.warning]  # escaped for Markdown: shown as typed
    [report] = [text for text in shown if "clock_scan.pdf" in text]
    assert "stored without lines: page 2 (blank)" in report and "Script page" in report
    script_id = next(s.script_id for s in script_store.list_scripts(db) if s.title == "Clock Scan")
    assert [(f.page, f.flag) for f in script_store.flagged_pages(db, script_id)] == [(2, "blank")]

    at.session_state["script"] = script_id  # the sidebar's script choice
    at.switch_page("app_pages/script_view.py")
    at.run()
    assert not at.exception
    assert any("page 2 — blank" in w.value for w in at.warning)
    lines_before = script_store.count_lines(db, script_id)
    assert at.selectbox(key="ocr_again_page").value == 2  # flagged pages first
    at.button(key="ocr_again").click()
    at.run()
    assert not at.exception and not at.error
    assert script_store.count_lines(db, script_id) == lines_before
    assert [f.page for f in script_store.flagged_pages(db, script_id)] == [2]
