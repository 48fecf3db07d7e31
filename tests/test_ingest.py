"""Ingest: every input kind, the geometry of lines, and every kind of bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SCREENPLAY_LINES, db_dump, make_scanned_pdf, make_text_pdf, require_shared_data


def test_text_layer_pdf_lines_keep_geometry(cli, tmp_path):
    pdf = make_text_pdf(tmp_path / "lighthouse.pdf")
    [result] = cli.json_lines("ingest", str(pdf))
    assert result["pages"] == 1 and result["lines"] == len(SCREENPLAY_LINES)
    rows = cli.json_lines("scripts")
    assert rows[0]["title"] == "Lighthouse" and rows[0]["lines"] == len(SCREENPLAY_LINES)
    out = tmp_path / "out.jsonl"
    cli("export", "--format", "jsonl", "--out", str(out))
    exported = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["text"] for r in exported] == [t for t, _, _ in SCREENPLAY_LINES]
    for row, (_, x_in, _) in zip(exported, SCREENPLAY_LINES):
        # indent is measured from the page edge in 10-cpi columns: 1.5" → 15, 3.7" → 37
        assert row["indent"] == pytest.approx(x_in * 10, abs=0.3)
        assert row["page"] == 1 and row["y1"] > row["y0"]
    # the rule-based sequences start at each scene heading
    seqs = cli.json_lines("sequences")
    assert [s["code"] for s in seqs] == ["sq0010", "sq0020"]
    assert seqs[0]["title"] == "INT. LIGHTHOUSE KITCHEN - NIGHT"


@pytest.mark.slow
def test_image_only_pdf_is_ocred_with_confidence(cli, tmp_path):
    scanned = make_scanned_pdf(tmp_path / "scan.pdf", make_text_pdf(tmp_path / "src.pdf"))
    [result] = cli.json_lines("ingest", str(scanned), "--workers", "1")
    assert result["ocr_pages"] == 1
    out = tmp_path / "out.csv"
    cli("export", "--format", "csv", "--out", str(out))
    import pandas as pd

    frame = pd.read_csv(out)
    from difflib import SequenceMatcher

    texts = list(frame["text"])
    for expected, _, _ in SCREENPLAY_LINES:
        best = max(SequenceMatcher(None, expected, t).ratio() for t in texts)
        assert best > 0.9, (expected, texts)
    from store.db import open_db

    db = open_db(cli.db_file)
    conf = [r[0] for r in db.execute("SELECT ocr_confidence FROM lines")]
    assert all(c is not None and 0 < c <= 1 for c in conf)
    page = db.execute("SELECT text_source, image_path FROM pages").fetchone()
    assert page[0] == "ocr" and page[1].endswith(".png")


def test_plain_text_keeps_source_lines_and_pages(cli, tmp_path):
    path = tmp_path / "script.txt"
    path.write_text(
        "<html><pre>\n          INT. ROOM - DAY\n\n          Tim waits.\n\f"
        "                         TIM\n               Hello &amp; goodbye.\n</pre>\n", encoding="utf-8")
    cli.json_lines("ingest", str(path))
    out = tmp_path / "o.jsonl"
    cli("export", "--format", "jsonl", "--out", str(out))
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["text"], r["source_line_no"], r["page"], r["indent"]) for r in rows] == [
        ("INT. ROOM - DAY", 2, 1, 10), ("Tim waits.", 4, 1, 10), ("TIM", 5, 2, 25), ("Hello & goodbye.", 6, 2, 15)]


@pytest.mark.parametrize("encoding", ["latin-1", "utf-16"])
def test_latin1_and_utf16_text(cli, tmp_path, encoding):
    path = tmp_path / "s.txt"
    path.write_bytes("          INT. CAFÉ - DAY\n\n                    RENÉE\n          Voilà.\n".encode(encoding))
    [result] = cli.json_lines("ingest", str(path))
    assert result["lines"] == 3
    out = tmp_path / "o.csv"
    cli("export", "--format", "csv", "--out", str(out))
    assert "INT. CAFÉ - DAY" in out.read_text(encoding="utf-8")


def test_title_with_quotes_and_sql_is_stored_verbatim(cli, tmp_path):
    pdf = make_text_pdf(tmp_path / "a.pdf")
    title = "Tim's \"Time\"'); DROP TABLE lines; --"
    cli.json_lines("ingest", str(pdf), "--title", title)
    assert cli.json_lines("scripts")[0]["title"] == title
    assert cli.json_lines("scripts")[0]["lines"] == len(SCREENPLAY_LINES)


def _encrypted_pdf(path):
    import pymupdf

    src = pymupdf.open(str(make_text_pdf(path.with_name("plain.pdf"))))
    src.save(str(path), encryption=pymupdf.PDF_ENCRYPT_AES_256, owner_pw="owner", user_pw="secret")
    return path


BAD_INPUTS = {
    "missing path": (lambda p: p / "nope.pdf", "no such file"),
    "a directory": (lambda p: p, "is a directory"),
    "non-PDF renamed .pdf": (lambda p: _write(p / "x.pdf", b"PK\x03\x04 this is a zip file"), "not a PDF"),
    "truncated PDF": (lambda p: _write(p / "t.pdf", make_text_pdf(p / "full.pdf").read_bytes()[:900]), "truncated"),
    "encrypted PDF": (lambda p: _encrypted_pdf(p / "e.pdf"), "password-protected"),
    "zero-page PDF": (lambda p: _write(p / "z.pdf", b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
                                       b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n"
                                       b"trailer<</Root 1 0 R>>\n%%EOF\n"), "no pages"),
    "binary garbage as .txt": (lambda p: _write(p / "g.txt", bytes(range(256)) * 20), "binary"),
    "empty file": (lambda p: _write(p / "empty.txt", b""), "empty"),
}


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_refused_and_database_unchanged(cli, tmp_path, case):
    cli.json_lines("ingest", str(make_text_pdf(tmp_path / "good.pdf")))  # a database with content
    before = db_dump(cli.db_file)
    bad_dir = tmp_path / "bad"
    bad_dir.mkdir()
    make, expected = BAD_INPUTS[case]
    result = cli("ingest", str(make(bad_dir)))
    assert result.exit_code != 0
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1 and message.startswith("error: ")
    assert expected in message
    assert db_dump(cli.db_file) == before


def test_same_script_twice_is_refused_unless_asked(cli, tmp_path):
    pdf = make_text_pdf(tmp_path / "a.pdf")
    [first] = cli.json_lines("ingest", str(pdf))
    before = db_dump(cli.db_file)
    result = cli("ingest", str(pdf))
    assert result.exit_code == 1
    assert f"already ingested as script {first['script_id']}" in result.stderr and "--duplicate" in result.stderr
    assert db_dump(cli.db_file) == before
    [second] = cli.json_lines("ingest", str(pdf), "--duplicate")
    assert second["script_id"] != first["script_id"]


def test_export_into_missing_directory(cli, tmp_path):
    cli.json_lines("ingest", str(make_text_pdf(tmp_path / "a.pdf")))
    before = db_dump(cli.db_file)
    result = cli("export", "--format", "csv", "--out", str(tmp_path / "missing" / "out.csv"))
    assert result.exit_code == 1 and "no such directory" in result.stderr
    assert db_dump(cli.db_file) == before


def test_failure_mid_ingest_removes_the_partial_script(db, tmp_path, monkeypatch):
    from labeling.ingest import pipeline as ingest_module
    from store import scripts as script_store

    pdf = make_text_pdf(tmp_path / "three.pdf", pages=3)
    calls = {"n": 0}
    real_add_page = script_store.add_page

    def failing_add_page(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("disk full")
        return real_add_page(*args, **kwargs)

    monkeypatch.setattr(ingest_module.script_store, "add_page", failing_add_page)
    with pytest.raises(RuntimeError):
        ingest_module.ingest_path(db, pdf)
    assert db.execute("SELECT COUNT(*) FROM scripts").fetchone()[0] == 0
    assert db.execute("SELECT COUNT(*) FROM lines").fetchone()[0] == 0


def test_progress_reports_every_page(db, tmp_path):
    from labeling.ingest.pipeline import ingest_path

    seen = []
    ingest_path(db, make_text_pdf(tmp_path / "p.pdf", pages=3), progress=lambda d, t: seen.append((d, t)))
    assert seen == [(1, 3), (2, 3), (3, 3)]


def test_console_script_entry_point(tmp_path):
    pdf = make_text_pdf(tmp_path / "a.pdf")
    proc = subprocess.run([sys.executable, "-m", "labeling", "--db", str(tmp_path / "x.db"), "ingest", str(pdf)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["lines"] == len(SCREENPLAY_LINES)


@pytest.mark.parametrize("name", ["chronicle.pdf", "rick-and-morty-106-rick-potion.pdf"])
def test_studio_pdfs_text_layer(db, name):
    from labeling.ingest.pipeline import ingest_path

    path = require_shared_data("studio_pdfs", "pdf", name)
    result = ingest_path(db, path)
    assert result.pages > 20 and result.ocr_pages == 0
    assert result.lines > 30 * result.pages
    assert result.sequences > 20


def test_deleting_a_script_removes_its_page_images_and_source_copy(db, tmp_path):
    from labeling.ingest.pipeline import ingest_path
    from store import scripts as script_store
    from store.db import data_dir

    keep = ingest_path(db, make_text_pdf(tmp_path / "keep.pdf", pages=2)).script_id
    doomed = ingest_path(db, make_text_pdf(tmp_path / "doomed.pdf", pages=3)).script_id
    images = [r[0] for r in db.execute("SELECT image_path FROM pages WHERE script_id = ?", [doomed])]
    source = script_store.get_script(db, doomed)["source_path"]
    assert images and all(Path(p).exists() for p in images) and Path(source).exists()
    script_store.delete_script(db, doomed)
    assert not any(Path(p).exists() for p in images) and not Path(source).exists()
    assert not (data_dir(db) / "pages" / str(doomed)).exists()
    kept = [r[0] for r in db.execute("SELECT image_path FROM pages WHERE script_id = ?", [keep])]
    assert kept and all(Path(p).exists() for p in kept)
    assert Path(script_store.get_script(db, keep)["source_path"]).exists()
