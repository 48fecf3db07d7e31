"""Issue 11's smaller guards: formula-safe CSV exports, Markdown-safe text, ingest limits, trusted skops types."""

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


def test_neutralize_prefixes_every_formula_start():
    for cell in FORMULAS:
        assert export_mod.neutralize_cell(cell) == "'" + cell
    assert export_mod.neutralize_cell("INT. HOUSE") == "INT. HOUSE" and export_mod.neutralize_cell(3.5) == 3.5


def _text_script(db, tmp_path):
    path = tmp_path / "formulas.txt"
    path.write_text("INT. KITCHEN - NIGHT\n\n" + "\n\n".join(FORMULAS[:4]) + "\n")
    return ingest_path(db, path).script_id


def test_csv_export_neutralizes_formulas_unless_raw_cells(cli, db, tmp_path):
    script_id = _text_script(db, tmp_path)
    out = tmp_path / "out.csv"
    assert cli("export", "--format", "csv", "--out", str(out), "--script", str(script_id)).exit_code == 0
    texts = [row["text"] for row in csv.DictReader(io.StringIO(out.read_text()))]
    assert "'=HYPERLINK(\"http://evil.example\",\"x\")" in texts and "'@SUM(A1)" in texts and "'+1+1" in texts
    assert not any(t[:1] in "=+-@" for t in texts)
    raw = tmp_path / "raw.csv"
    assert cli("export", "--format", "csv", "--out", str(raw), "--script", str(script_id), "--raw-cells").exit_code == 0
    assert "@SUM(A1)" in [row["text"] for row in csv.DictReader(io.StringIO(raw.read_text()))]
    jsonl = tmp_path / "out.jsonl"  # not spreadsheet-bound: the text stays as it is
    assert cli("export", "--format", "jsonl", "--out", str(jsonl), "--script", str(script_id)).exit_code == 0
    assert '"text":"@SUM(A1)"' in jsonl.read_text()
    exports = [r for r in accounts.audit_log(db) if r["action"] == "export"]
    assert len(exports) == 3 and exports[0]["actor"].startswith("cli:")


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



