"""`scriptlabel import`: validated first, all-or-nothing, round trip through the project's own export."""

from __future__ import annotations

import json
import shutil

import pytest

import app_builders
from conftest import db_dump
from labeling.ingest.imports import LabelImportError, import_labels
from store import labels as label_store
from store import scripts as script_store
from store.db import open_db


@pytest.fixture
def twin_dbs(tmp_path):
    """Database A (a predicted script) and B, a copy of A taken before anyone labeled in A."""
    a_path = tmp_path / "a" / "scriptlabel.db"
    a = open_db(a_path)
    script_id = app_builders.text_script(a, tmp_path)
    app_builders.predict(a, script_id, label="action", confidence=0.6)
    a.close()
    b_path = tmp_path / "b" / "scriptlabel.db"
    b_path.parent.mkdir()
    shutil.copy(a_path, b_path)
    a = open_db(a_path)
    ids = list(script_store.lines_frame(a, script_id)["line_id"])
    label_store.add_label(a, ids[0], "scene_heading", annotator="ana")
    label_store.add_label(a, ids[2], "character", annotator="ana")
    label_store.add_label(a, ids[2], "dialogue", annotator="bob")  # the later label wins
    label_store.add_label(a, ids[3], "dialogue", annotator="bob")
    label_store.undo_last(a, annotator="bob")  # ids[3] is back to the model's suggestion
    a.close()
    return a_path, b_path, ids


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_round_trip_export_import_export_is_identical(twin_dbs, tmp_path, fmt):
    from conftest import Cli

    a_path, b_path, ids = twin_dbs
    cli_a, cli_b = Cli(a_path), Cli(b_path)
    out_a, out_b = tmp_path / f"a.{fmt}", tmp_path / f"b.{fmt}"
    assert cli_a("export", "--format", fmt, "--out", str(out_a)).exit_code == 0
    assert cli_b("export", "--format", fmt, "--out", str(out_b)).exit_code == 0
    assert out_b.read_bytes() != out_a.read_bytes()  # B has none of A's labels yet
    [report] = cli_b.json_lines("import", str(out_a))
    assert report["imported"] == 2 and report["unchanged"] == 0
    assert report["rejected"] == report["rows"] - 2  # the model's suggestions are not labels
    assert list(report["reasons"]) == ["label_source model: a suggestion, not a person's label"]
    assert cli_b("export", "--format", fmt, "--out", str(out_b), "--force").exit_code == 0  # replaces its first
    assert out_b.read_bytes() == out_a.read_bytes()
    [again] = cli_b.json_lines("import", str(out_a))
    assert again["imported"] == 0 and again["unchanged"] == 2


def test_import_by_title_and_line_number_into_another_database(tmp_path, cli, db):
    source = open_db(tmp_path / "src" / "s.db")
    sid = app_builders.text_script(source, tmp_path)
    lines = script_store.lines_frame(source, sid)
    label_store.add_label(source, int(lines["line_id"].iloc[1]), "action", annotator="ana")
    source.close()
    out = tmp_path / "src.csv"
    assert cli.__class__(tmp_path / "src" / "s.db")("export", "--format", "csv", "--out", str(out),
                                                  "--only-human").exit_code == 0
    app_builders.pdf_script(db, tmp_path)  # shifts every line id of the script imported next
    target_sid = app_builders.text_script(db, tmp_path)
    [report] = cli.json_lines("import", str(out))
    assert report["imported"] == 1
    labels = label_store.current_labels(db, target_sid)
    target_line = script_store.lines_frame(db, target_sid).iloc[1]
    assert labels.set_index("line_id").loc[int(target_line["line_id"]), "label"] == "action"


def test_minimal_csv_and_prodigy_jsonl(tmp_path, db, text_script):
    ids = list(script_store.lines_frame(db, text_script)["line_id"])
    minimal = tmp_path / "minimal.csv"
    minimal.write_text(f"line_id,label,annotator\n{ids[0]},scene_heading,cleo\n{ids[1]},Action,\n")
    report = import_labels(db, minimal)
    assert report.as_json()["imported"] == 2
    labels = label_store.current_labels(db).set_index("line_id")
    assert labels.loc[ids[1], "annotator"] == "import" and labels.loc[ids[1], "source"] == "human"
    prodigy = tmp_path / "prodigy.jsonl"
    prodigy.write_text("\n".join(json.dumps(r) for r in [
        {"text": "TIM", "accept": ["character"], "answer": "accept", "meta": {"line_id": ids[2]},
         "_annotator_id": "ds-dave"},
        {"text": "x", "label": "dialogue", "answer": "reject", "meta": {"line_id": ids[3]}},
    ]))
    report = import_labels(db, prodigy).as_json()
    assert report["imported"] == 1 and report["rejected"] == 1
    assert label_store.current_labels(db).set_index("line_id").loc[ids[2], "annotator"] == "ds-dave"


@pytest.mark.parametrize("body, message", [
    ("line_id,label,annotator\n{0},action,ana\n{1},dialog,ana\n", "row 2: unknown label 'dialog'"),
    ("line_id,label,annotator\n{0},action,ana\n99999,action,ana\n", "row 2: no line 99999"),
    ("line_id,label,annotator\nabc,action,ana\n", "row 1: line_id must be a whole number"),
    ("line_id,text,label\n{0},not the text,action\n", "row 1: line {0} reads"),
    ("script_title,line_no,label\nNo Such Film,3,action\n", "row 1: no script titled 'No Such Film'"),
    ("line_id,annotator\n{0},ana\n", "no label column"),
    ("line_id,label\n{0},S\n", "export with --scheme full"),
])
def test_bad_rows_stop_the_whole_import(tmp_path, cli, db, db_path, text_script, body, message):
    ids = list(script_store.lines_frame(db, text_script)["line_id"])
    bad = tmp_path / "bad.csv"
    bad.write_text(body.format(*ids))
    before = db_dump(db_path)
    result = cli("import", str(bad))
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert message.format(*ids) in result.stderr and "bad.csv" in result.stderr
    assert db_dump(db_path) == before


def test_unreadable_files(tmp_path, db):
    with pytest.raises(LabelImportError, match="no such file"):
        import_labels(db, tmp_path / "missing.csv")
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"line_id": 1, "label": "action"}\n{not json\n')
    with pytest.raises(LabelImportError, match="line 2: not valid JSON"):
        import_labels(db, broken)
