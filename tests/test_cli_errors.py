"""Every error a user can cause is one line on stderr (`error: ...`) naming the file, what is wrong and
what to do; the command exits non-zero, prints no traceback and leaves the database as it was."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, db_dump, make_text_pdf
from store import scripts as script_store
from store.db import open_db


def error_line(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and len(lines) == 1, result.stderr
    assert "Traceback" not in result.output and result.exit_code != 0
    return errors[0]


def rows(db_file: Path) -> list[str]:
    """The database's rows, without the id counters (a failed ingest used an id: ids are never reused)."""
    return [line for line in db_dump(db_file) if "sqlite_sequence" not in line]


@pytest.fixture
def tmpfs(tmp_path):
    """Mount a small tmpfs (we may be root in CI); skipped where mounting is not permitted."""
    mounted = []

    def mount(size: str, name: str = "mnt") -> Path:
        point = tmp_path / name
        point.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(point)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or 'not permitted'})")
        mounted.append(point)
        return point

    yield mount
    for point in mounted:
        subprocess.run(["umount", "-l", str(point)], capture_output=True)


def remount(point: Path, options: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{options}", str(point)], check=True)


def _cli_process(db_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "labeling.cli", "--db", str(db_path), *args], cwd=REPO,
                          capture_output=True, text=True, timeout=300, env=dict(os.environ))


def _pdf_with_damaged_page(path: Path) -> Path:
    """Two pages, the second with a 1 x 0.2 pt MediaBox (it renders to nothing): OCR used to crash on it."""
    objs = [b"<</Type/Catalog/Pages 2 0 R>>", b"<</Type/Pages/Kids[3 0 R 4 0 R]/Count 2>>",
            b"<</Type/Page/Parent 2 0 R/MediaBox[0 0 612 792]>>", b"<</Type/Page/Parent 2 0 R/MediaBox[0 0 1 0.2]>>"]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for i, obj in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + obj + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer<</Size %d/Root 1 0 R>>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    path.write_bytes(bytes(out))
    return path


def test_pdf_with_a_damaged_page_under_ocr(cli, tmp_path):
    cli.json_lines("ingest", str(make_text_pdf(tmp_path / "good.pdf")))
    rows_before = rows(cli.db_file)
    bad = _pdf_with_damaged_page(tmp_path / "damaged.pdf")
    message = error_line(cli("ingest", str(bad), "--workers", "1", "--dpi", "100"))
    assert "damaged.pdf" in message and "page 2" in message and "damaged" in message
    assert rows(cli.db_file) == rows_before and len(script_store.list_scripts(open_db(cli.db_file))) == 1


def test_fdx_nested_20k_deep(cli, tmp_path):
    cli.json_lines("ingest", str(make_text_pdf(tmp_path / "good.pdf")))
    before = db_dump(cli.db_file)
    deep = tmp_path / "deep.fdx"
    deep.write_text('<?xml version="1.0"?><FinalDraft><Content>' + "<Paragraph>" * 20000
                    + '<Paragraph Type="Action"><Text>Hi</Text></Paragraph>' + "</Paragraph>" * 20000
                    + "</Content></FinalDraft>")
    message = error_line(cli("ingest", str(deep)))
    assert "deep.fdx" in message and "nested" in message
    assert db_dump(cli.db_file) == before


@pytest.mark.parametrize("args", [["label", "99999999999999999999999", "action"], ["rate", "18446744073709551616", "3"],
                                  ["sequences", "--script", "9223372036854775808"],
                                  ["queue", "--script", "99999999999999999999"],
                                  ["tag", "36893488147419103232", "water"],
                                  # issue 23 item 5: these three were OverflowError tracebacks
                                  ["review", "18446744073709551616", "--confirm"],
                                  ["similar", "9223372036854775808"], ["restrict", "9223372036854775808", "ana"],
                                  ["review", "0", "--confirm"], ["similar", "0"],
                                  ["queue", "--seed", "18446744073709551616"]])
def test_ids_beyond_64_bits(cli, tmp_path, args):
    cli.json_lines("ingest", str(make_text_pdf(tmp_path / "good.pdf")))
    before = db_dump(cli.db_file)
    message = error_line(cli(*args))
    assert "not in the range" in message and "--help" in message
    assert db_dump(cli.db_file) == before


def test_truncated_pdf_says_truncated_not_no_pages(cli, tmp_path):
    full = make_text_pdf(tmp_path / "full.pdf", pages=6).read_bytes()
    cut = tmp_path / "cut.pdf"
    cut.write_bytes(full[: len(full) * 2 // 3])
    assert cli("ingest", str(make_text_pdf(tmp_path / "good.pdf"))).exit_code == 0  # a database with a script
    before = rows(cli.db_file)
    message = error_line(cli("ingest", str(cut)))
    assert "cut.pdf" in message and "truncated" in message and "no pages" not in message
    assert rows(cli.db_file) == before  # the database is as it was: no script, page, line or job left behind


def test_blank_tag_stores_nothing(cli, tmp_path):
    cli.json_lines("ingest", str(make_text_pdf(tmp_path / "good.pdf")))
    seq = cli.json_lines("sequences")[0]["sequence_id"]
    before = db_dump(cli.db_file)
    message = error_line(cli("tag", str(seq), "water", ""))
    assert "blank" in message and "nothing was stored" in message
    assert db_dump(cli.db_file) == before


def test_blank_title_is_refused(cli, tmp_path):
    cli.json_lines("ingest", str(make_text_pdf(tmp_path / "good.pdf")))
    before = db_dump(cli.db_file)
    message = error_line(cli("ingest", str(make_text_pdf(tmp_path / "other.pdf", pages=2)), "--title", "   "))
    assert "title is blank" in message
    assert db_dump(cli.db_file) == before


def test_several_files_report_what_was_stored_and_what_was_not(cli, tmp_path):
    good1 = make_text_pdf(tmp_path / "one.pdf")
    good2 = make_text_pdf(tmp_path / "two.pdf", pages=2)
    bad = tmp_path / "bad.pdf"
    bad.write_bytes(b"PK\x03\x04 a zip")
    result = cli("ingest", str(good1), str(bad), str(tmp_path / "missing.txt"), str(good2))
    assert result.exit_code == 1 and "Traceback" not in result.output
    stored = [line for line in result.stdout.splitlines() if line.strip()]
    assert len(stored) == 2 and '"file"' in stored[0] and "one.pdf" in stored[0] and "two.pdf" in stored[1]
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 3 and "bad.pdf" in errors[0] and "missing.txt" in errors[1]
    assert errors[2].startswith("error: 2 of 4 files not stored (bad.pdf, missing.txt); 2 stored")
    assert [s.title for s in script_store.list_scripts(open_db(cli.db_file))] == ["One", "Two"]


@pytest.mark.slow
def test_page_of_image_noise_is_flagged_in_the_report_and_the_scripts_view(cli, tmp_path):
    import json

    import numpy as np
    from pdf2image import convert_from_path
    from PIL import Image

    from app_pages.support import scripts_overview

    page = convert_from_path(str(make_text_pdf(tmp_path / "src.pdf")), dpi=100, grayscale=True)[0]
    noise = Image.fromarray((np.random.default_rng(0).random((1100, 850)) > 0.5).astype(np.uint8) * 255).convert("L")
    pdf = tmp_path / "noise.pdf"
    page.save(pdf, save_all=True, append_images=[noise], resolution=100)
    result = cli("ingest", str(pdf), "--workers", "1", "--dpi", "200")
    assert result.exit_code == 0, result.stderr
    [report] = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    # tesseract "reads" lines of junk in it (specks, or words at a mean confidence of 0.2): none is stored
    [flagged] = report["flagged_pages"]
    assert flagged["page"] == 2 and flagged["flag"] == "no_text"
    assert flagged["note"].startswith(("OCR read only noise", "OCR found no text it could read")), flagged
    assert "page 2 stored without lines" in result.stderr
    assert report["low_confidence_pages"] == [] and 10 <= report["lines"] <= 12
    [row] = scripts_overview(open_db(cli.db_file)).to_dict("records")
    assert row["flagged_pages"] == "2 (no text found)" and row["low_ocr_pages"] == ""


# --- full and read-only disks ----------------------------------------------------------------

def test_export_to_a_read_only_mount_and_to_a_full_disk(cli, tmp_path, tmpfs):
    cli.json_lines("ingest", str(make_text_pdf(tmp_path / "good.pdf", pages=3)))
    before = db_dump(cli.db_file)
    ro = tmpfs("1m", "ro")
    remount(ro, "ro")
    message = error_line(cli("export", "--format", "csv", "--out", str(ro / "out.csv")))
    assert "out.csv" in message and "read-only" in message
    full = tmpfs("64k", "full")
    with open(full / "filler", "wb", buffering=0) as handle:  # fill the disk up
        try:
            while True:
                handle.write(b"\0" * 4096)
        except OSError:
            pass
    for fmt in ("csv", "parquet"):
        message = error_line(cli("export", "--format", fmt, "--out", str(full / f"out.{fmt}")))
        assert f"out.{fmt}" in message and "disk is full" in message
        assert [p.name for p in full.iterdir()] == ["filler"]  # no partial file left behind
    assert db_dump(cli.db_file) == before


def test_read_only_database_says_read_only_not_not_a_database(cli, tmp_path, tmpfs):
    point = tmpfs("20m")
    db_file = point / "ro.db"
    setup = _cli_process(db_file, "ingest", str(make_text_pdf(tmp_path / "good.pdf")))
    assert setup.returncode == 0, setup.stderr
    remount(point, "ro")
    result = _cli_process(db_file, "label", "1", "action")
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1 and len(lines) == 1 and "Traceback" not in result.stderr
    assert "read-only" in lines[0] and "not a scriptlabel database" not in lines[0]


def test_full_disk_during_ingest_is_a_message_and_leaves_no_fragment(tmp_path, tmpfs):
    point = tmpfs("50m")
    db_file = point / "full.db"
    open_db(db_file).close()  # the database fits; the ingest then runs out of room part-way
    used_kb = sum(f.stat().st_size for f in point.rglob("*") if f.is_file()) // 1024
    remount(point, f"size={used_kb + 300}k")
    big = make_text_pdf(tmp_path / "big.pdf", pages=40)
    result = _cli_process(db_file, "ingest", str(big))
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert len(lines) == 1 and "big.pdf" in lines[0] and "disk is full" in lines[0]
    remount(point, "size=50m")
    db = open_db(db_file)  # whatever the failed clean-up could not do is rolled back now
    assert db.execute("SELECT COUNT(*) FROM scripts").fetchone()[0] == 0
    assert db.execute("SELECT COUNT(*) FROM lines").fetchone()[0] == 0
    assert not any((point / "full.db-media" / "pages").glob("*/*.png"))
    again = _cli_process(db_file, "ingest", str(big))
    assert again.returncode == 0, again.stderr
    assert [s.lines for s in script_store.list_scripts(db)] == [400]


# --- issue 23 items 5 and 6: tracebacks and what was accepted that should not be ---------------------

@pytest.fixture
def stocked(cli, tmp_path):
    cli.json_lines("ingest", str(make_text_pdf(tmp_path / "good.pdf")))
    with open_db(cli.db_file) as db:
        from store import accounts

        accounts.add_user(db, "ana", role="annotator", password="pw-ana-123")
    return db_dump(cli.db_file)


def _csv(path: Path, rows: list[str]) -> Path:
    path.write_text("line_id,label,annotator\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_import_of_a_line_id_beyond_64_bits_is_a_message(cli, stocked, tmp_path):
    message = error_line(cli("import", str(_csv(tmp_path / "big.csv", [f"{2**70},action,ana"]))))
    assert "big.csv row 1" in message and "line_id" in message
    assert db_dump(cli.db_file) == stocked


def test_import_of_a_5_mb_cell_is_read_and_a_cell_beyond_the_limit_is_a_message(cli, stocked, tmp_path,
                                                                                 monkeypatch):
    huge = _csv(tmp_path / "huge.csv", ["1,action,ana", "2,action," + "x" * 5_000_000])
    message = error_line(cli("import", str(huge)))  # read whole (the cell is under the 50 MB upload limit) ...
    assert "huge.csv row 2" in message and "annotator" in message  # ... and the 5 MB name is refused by rule
    monkeypatch.setenv("SCRIPTLABEL_MAX_UPLOAD_MB", "1")
    message = error_line(cli("import", str(huge)))
    assert "huge.csv" in message and "limit" in message and "SCRIPTLABEL_MAX_UPLOAD_MB" in message
    assert db_dump(cli.db_file) == stocked


def test_restrict_to_nobody_or_to_names_and_everyone_is_refused(cli, stocked):
    message = error_line(cli("restrict", "1", "nobody_here"))
    assert "nobody_here" in message and "users add" in message
    message = error_line(cli("restrict", "1", "ana", "--everyone"))
    assert "--everyone" in message and "ana" in message
    assert db_dump(cli.db_file) == stocked
    assert cli.json_lines("restrict", "1", "ana") == [{"script_id": 1, "names": ["ana"]}]


@pytest.mark.parametrize("name", ["", "   ", "x" * 10_000, "ana\x00", "line\nbreak"])
def test_label_with_an_empty_or_absurd_annotator_is_refused(cli, stocked, name):
    message = error_line(cli("label", "1", "action", "--annotator", name))
    assert "--annotator" in message and "80" in message
    assert db_dump(cli.db_file) == stocked


def test_scripts_on_a_zero_byte_or_foreign_database_writes_nothing(cli, tmp_path):
    empty = tmp_path / "empty.db"
    empty.touch()
    result = cli.runner.invoke(__import__("labeling.cli", fromlist=["cli"]).cli, ["--db", str(empty), "scripts"])
    assert result.exit_code != 0 and "not a scriptlabel database" in result.stderr
    assert empty.stat().st_size == 0
    import sqlite3

    foreign = tmp_path / "other_app.sqlite"
    conn = sqlite3.connect(foreign)
    conn.execute("CREATE TABLE notes(x)")
    conn.commit()
    conn.close()
    before = db_dump(foreign)
    for args in (["scripts"], ["label", "1", "action"]):
        result = cli.runner.invoke(__import__("labeling.cli", fromlist=["cli"]).cli, ["--db", str(foreign), *args])
        assert result.exit_code != 0 and "not a scriptlabel database" in result.stderr, result.stderr
    assert db_dump(foreign) == before


def test_an_import_with_two_labels_for_one_line_by_one_person_is_refused(cli, stocked, tmp_path):
    path = _csv(tmp_path / "twice.csv", ["1,action,ana", "2,dialogue,ana", "1,dialogue,ana", "1,dialogue,bob"])
    message = error_line(cli("import", str(path)))
    assert "twice.csv" in message and "line 1" in message and "rows 1 and 3" in message and "ana" in message
    assert db_dump(cli.db_file) == stocked


def test_queue_into_head_exits_quietly(cli, stocked):
    proc = subprocess.Popen([sys.executable, "-m", "labeling.cli", "--db", str(cli.db_file), "queue", "--n", "20000"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ))
    first = proc.stdout.readline()
    proc.stdout.close()  # what `| head -1` does after its line
    stderr = proc.stderr.read().decode()
    proc.wait(timeout=120)
    assert first.startswith(b"{") and stderr == ""
