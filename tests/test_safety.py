"""Issue 11's smaller guards: exports that keep the text (XLSX for spreadsheets), Markdown-safe text, ingest
limits, trusted skops types."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest

from labeling import export as export_mod
from app_pages.support import markdown_text
from labeling.settings import Settings
from labeling.ingest.pipeline import IngestError, IngestLimits, ingest_path
from store import accounts
from store import scripts as script_store

FORMULAS = ["=HYPERLINK(\"http://evil.example\",\"x\")", "+1+1", "-2+3", "@SUM(A1)", "\tTAB", "\rCR"]
AS_WRITTEN = ["-- aren't I a lawyer?", "<script>alert(2)</script>", "_x0041_ and \u00e9t\u00e9 \u2014 \"quoted\", commas"]


def _text_script(db, tmp_path):
    path = tmp_path / "formulas.txt"
    path.write_text("INT. KITCHEN - NIGHT\n\n" + "\n\n".join(FORMULAS[:4] + AS_WRITTEN) + "\n")
    return ingest_path(db, path).script_id


def _stored_texts(db, script_id) -> list[str]:
    return list(script_store.lines_frame(db, script_id)["text"])


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_dataset_exports_keep_every_text_exactly_as_stored(cli, db, tmp_path, fmt):
    """Issue 25 item 8: no leading ' or anything else added (people train on these files)."""
    import pandas as pd

    script_id = _text_script(db, tmp_path)
    stored = _stored_texts(db, script_id)
    assert "-- aren't I a lawyer?" in stored and "=HYPERLINK(\"http://evil.example\",\"x\")" in stored
    out = tmp_path / f"out.{fmt}"
    assert cli("export", "--format", fmt, "--out", str(out), "--script", str(script_id)).exit_code == 0
    if fmt == "csv":
        texts = [row["text"] for row in csv.DictReader(io.StringIO(out.read_text(encoding="utf-8")))]
    elif fmt == "jsonl":
        texts = list(pd.read_json(out, lines=True)["text"])
    else:
        texts = list(pd.read_parquet(out)["text"])
    assert texts == stored


def test_xlsx_export_has_the_csv_columns_and_every_text_as_a_string_cell(cli, db, tmp_path):
    import openpyxl

    script_id = _text_script(db, tmp_path)
    assert cli("label", str(script_store.lines_frame(db, script_id)["line_id"].iloc[1]), "dialogue",
               "--annotator", "ana").exit_code == 0
    csv_out, xlsx_out = tmp_path / "out.csv", tmp_path / "out.xlsx"
    assert cli("export", "--format", "csv", "--out", str(csv_out)).exit_code == 0
    result = cli("export", "--format", "xlsx", "--out", str(xlsx_out))
    assert result.exit_code == 0, result.stderr
    rows = list(csv.reader(io.StringIO(csv_out.read_text(encoding="utf-8"))))
    sheet = openpyxl.load_workbook(xlsx_out).active
    cells = [list(r) for r in sheet.iter_rows()]
    assert [c.value for c in cells[0]] == rows[0]  # the same columns, in the same order
    assert len(cells) == len(rows)
    text_col = rows[0].index("text")
    for cell_row, csv_row in zip(cells[1:], rows[1:]):
        text = cell_row[text_col]
        assert text.data_type == "s" and _ooxml_text(text.value) == csv_row[text_col]  # a string, never a formula
    assert not any(c.data_type == "f" for r in cells for c in r)
    line_ids = [c.value for c in [r[rows[0].index("line_id")] for r in cells[1:]]]
    assert all(isinstance(v, (int, float)) for v in line_ids)  # numbers stay numbers
    assert '"rows"' in result.stdout


def _ooxml_text(value: str) -> str:
    """The text a spreadsheet shows for a stored string: OOXML writes `_xHHHH_` for characters XML cannot hold
    (and `_x005F_` for a literal "_" before such a pattern); Excel decodes them, openpyxl leaves them."""
    import re

    return re.sub(r"_x([0-9A-Fa-f]{4})_", lambda m: chr(int(m.group(1), 16)), value)


def test_raw_cells_is_accepted_as_a_deprecated_no_op(cli, db, tmp_path):
    script_id = _text_script(db, tmp_path)
    out = tmp_path / "raw.csv"
    result = cli("export", "--format", "csv", "--out", str(out), "--script", str(script_id), "--raw-cells")
    assert result.exit_code == 0 and "deprecated" in result.stderr
    assert [row["text"] for row in csv.DictReader(io.StringIO(out.read_text()))] == _stored_texts(db, script_id)


def test_exports_leave_out_hidden_scripts(db, tmp_path, pdf_script):
    other = _text_script(db, tmp_path)
    frame = export_mod.build_export(db, hidden_scripts={pdf_script})
    assert set(frame["script_id"]) == {other}
    with pytest.raises(export_mod.ExportError):
        export_mod.build_export(db, script_id=pdf_script, hidden_scripts={pdf_script})


def test_markdown_text_keeps_user_text_literal():
    assert markdown_text("![x](http://e/x.png)") == "\\!\\[x\\](http\\://e/x.png)"
    assert markdown_text("<img src=x>") == "\\<img src=x\\>"
    assert markdown_text(":red[alarm] $x$ `code` **b**") == "\\:red\\[alarm\\] \\$x\\$ \\`code\\` \\*\\*b\\*\\*"
    assert markdown_text("# title\nline") == "\\# title line"
    assert markdown_text("1. first") == "1\\. first" and markdown_text("broken.pdf: no") == "broken.pdf: no"


def test_limits_refuse_before_anything_is_stored(db, tmp_path):
    text = tmp_path / "long.txt"
    text.write_text("INT. ROOM - DAY\n\n" + "Tim waits.\n\n" * 60)
    with pytest.raises(IngestError, match="over the limit of 50"):
        ingest_path(db, text, limits=IngestLimits(max_text_lines=50))
    with pytest.raises(IngestError, match="MB is over the limit"):
        ingest_path(db, text, limits=IngestLimits(max_bytes=100))
    from conftest import make_text_pdf

    pdf = make_text_pdf(tmp_path / "three.pdf", pages=3)
    with pytest.raises(IngestError, match="3 pages is over the limit of 2"):
        ingest_path(db, pdf, limits=IngestLimits(max_pages=2))
    assert script_store.list_scripts(db) == []
    assert ingest_path(db, text, limits=IngestLimits()).lines > 0


def test_limits_come_from_the_environment(tmp_path):
    settings = Settings.from_env({"SCRIPTLABEL_MAX_UPLOAD_MB": "5", "SCRIPTLABEL_MAX_PAGES": "10",
                                  "SCRIPTLABEL_MAX_TEXT_LINES": "100", "SCRIPTLABEL_SESSION_HOURS": "2"})
    assert settings.ingest_limits == IngestLimits(max_bytes=5 * 1024 * 1024, max_pages=10, max_text_lines=100)
    assert settings.session_ttl_s == 7200
    assert Settings.from_env({"SCRIPTLABEL_MAX_PAGES": "zero"}).max_pages == 600


def test_skops_loads_only_the_listed_types(tmp_path):
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    from labeling.training.complexity import UntrustedModelError, load_complexity_model
    from models.complexity.baselines import MajorityClassifier

    good = tmp_path / "good.skops"
    sio.dump(MajorityClassifier().fit([1, 2, 3], np.array([2, 2, 3])), good)
    assert load_complexity_model(good).predict([1]).tolist() == [2]
    bad = tmp_path / "bad.skops"
    sio.dump({"model": LogisticRegression(), "hook": _Unlisted()}, bad)
    with pytest.raises(UntrustedModelError, match="does not trust"):
        load_complexity_model(bad)


class _Unlisted:
    """A type no model of ours is made of."""


def test_a_deeply_nested_fdx_is_refused_with_a_message(db, tmp_path):
    path = tmp_path / "nested.fdx"
    path.write_bytes(b'<?xml version="1.0"?><FinalDraft><Content>' + b'<Paragraph Type="Action">' * 20000
                     + b"<Text>x</Text>" + b"</Paragraph>" * 20000 + b"</Content></FinalDraft>")
    with pytest.raises(IngestError, match="nested"):
        ingest_path(db, path)
    assert script_store.list_scripts(db) == []


@pytest.mark.slow
def test_ocr_over_the_time_limit_on_every_page_stores_nothing(db, tmp_path):
    from conftest import make_scanned_pdf, make_text_pdf

    scanned = make_scanned_pdf(tmp_path / "scan.pdf", make_text_pdf(tmp_path / "src.pdf", pages=1), dpi=150)
    from store.types import ScriptlabelError

    with pytest.raises(ScriptlabelError, match=r"no text on any of its 1 pages \(page 1 \(timed out\)\); nothing was "
                                               "stored"):
        ingest_path(db, scanned, dpi=150, limits=IngestLimits(ocr_seconds_per_page=0.01))
    assert script_store.list_scripts(db) == []


def test_a_text_line_over_the_length_cap_is_refused_at_once(db, tmp_path):
    one_line = tmp_path / "one-line.txt"
    one_line.write_bytes(b"INT. HOUSE - DAY " * 700_000)  # 12 MB without a line break
    with pytest.raises(IngestError, match=r"one-line.txt: line 1 is 11,900,000 bytes long, over the limit of 10,000"):
        ingest_path(db, one_line)
    late = tmp_path / "late.fountain"
    late.write_bytes(b"INT. HOUSE - DAY\n\nTim waits.\r\n\r\n" + b"x" * 10_001 + b"\n")
    with pytest.raises(IngestError, match=r"late.fountain: line 5 is 10,001 bytes long"):
        ingest_path(db, late)
    with pytest.raises(IngestError, match="MB of text is over the limit of 20 MB"):
        ingest_path(db, _sparse(tmp_path / "huge.txt", 21 * 2**20))
    assert script_store.list_scripts(db) == []


def _sparse(path, size: int):
    with open(path, "wb") as handle:
        handle.truncate(size)
    return path





def test_text_ingest_stores_angle_brackets_and_ampersands_as_written(db, tmp_path):
    """Issue 23 item 7: a plain-text screenplay is stored as written (it once lost "<script>" and "</script>")."""
    path = tmp_path / "brackets.txt"
    written = ["INT. LAB - NIGHT", "<script>alert(2)</script>", "Tom &amp; Jerry & co <b>not bold</b>",
               "a < b > c"]
    path.write_text("\n\n".join(written) + "\n")
    script_id = ingest_path(db, path).script_id
    assert _stored_texts(db, script_id) == written


def test_an_html_page_of_a_screenplay_still_reads_as_its_text(db, tmp_path):
    """An IMSDb page saved as .txt (an HTML document with the script in <pre>) is read as a browser shows it."""
    path = tmp_path / "imsdb.txt"
    path.write_text("<html><head><title>Script</title></head><body><pre>\n<b>INT. LAB - NIGHT</b>\n\n"
                    "Tom &amp; Jerry wait.\n</pre></body></html>\n")
    script_id = ingest_path(db, path).script_id
    assert "INT. LAB - NIGHT" in _stored_texts(db, script_id)
    assert "Tom & Jerry wait." in _stored_texts(db, script_id)


def test_xlsx_refuses_a_text_it_would_have_to_cut_and_exports_sequences_too(cli, db, tmp_path):
    import openpyxl

    from labeling.sequences.export import SEQUENCE_COLUMNS

    path = tmp_path / "long.txt"
    path.write_text("INT. ROOM - DAY\n\n" + "word " * 7000 + "\n")  # 35,000 characters on one line
    from labeling.ingest.pipeline import IngestLimits

    ingest_path(db, path, limits=IngestLimits(max_line_chars=50_000))  # a project that allows such lines
    out = tmp_path / "long.xlsx"
    result = cli("export", "--format", "xlsx", "--out", str(out))
    assert result.exit_code == 1 and "32,767" in result.stderr and "csv or parquet" in result.stderr
    assert not out.exists() and not list(tmp_path.glob("*.partial"))
    sequences = tmp_path / "sequences.xlsx"
    assert cli("export", "--what", "sequences", "--format", "xlsx", "--out", str(sequences)).exit_code == 0
    sheet = openpyxl.load_workbook(sequences)["sequences"]
    assert [c.value for c in next(sheet.iter_rows())] == SEQUENCE_COLUMNS and sheet.max_row >= 2
