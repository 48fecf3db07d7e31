"""`export --what sequences`: one row per sequence × department."""

from __future__ import annotations

import json

import pandas as pd

from labeling.sequences.export import SEQUENCE_COLUMNS, sequence_rows
from store import sequences as sequence_store


def test_one_row_per_sequence_and_department(cli, db, pdf_script, tmp_path):
    seqs = sequence_store.list_sequences(db, pdf_script)
    departments = sequence_store.departments(db)
    sequence_store.add_rating(db, seqs[0].sequence_id, 4, department="fx", annotator="ana")
    sequence_store.add_rating(db, seqs[1].sequence_id, 2, annotator="bob")
    sequence_store.set_tag(db, seqs[0].sequence_id, "water", annotator="ana")
    sequence_store.set_tag(db, seqs[0].sequence_id, "crowd", annotator="ana")
    sequence_store.save_sequence_predictions(db, 7, "fx", [
        {"sequence_id": s.sequence_id, "value": 3, "expected": 3.2, "uncertainty": 0.4, "probs": {"3": 0.6}}
        for s in seqs])
    out = tmp_path / "seq.csv"
    [result] = cli.json_lines("export", "--what", "sequences", "--format", "csv", "--out", str(out))
    assert result == {"what": "sequences", "format": "csv", "out": str(out), "rows": len(seqs) * len(departments)}
    frame = pd.read_csv(out)
    assert list(frame.columns) == SEQUENCE_COLUMNS
    fx = frame[(frame["sequence_id"] == seqs[0].sequence_id) & (frame["department"] == "fx")].iloc[0]
    assert (fx["rating"], fx["annotator"], fx["predicted"], fx["expected"], fx["tags"]) == (4, "ana", 3, 3.2,
                                                                                           "crowd;water")
    assert fx["model_version"] == 7 and fx["lines_scene_heading"] == 1 and fx["first_page"] == 1
    overall = frame[(frame["sequence_id"] == seqs[1].sequence_id) & (frame["department"] == "overall")].iloc[0]
    assert overall["rating"] == 2 and pd.isna(overall["predicted"])
    assert list(frame["department"].iloc[: len(departments)]) == departments

    rated = sequence_rows(db, only_rated=True)
    assert len(rated) == 2
    jsonl = tmp_path / "seq.jsonl"
    cli.json_lines("export", "--what", "sequences", "--format", "jsonl", "--out", str(jsonl), "--only-human")
    assert [json.loads(line)["rating"] for line in jsonl.read_text().splitlines()] == [4, 2]
    parquet = tmp_path / "seq.parquet"
    cli.json_lines("export", "--what", "sequences", "--format", "parquet", "--out", str(parquet))
    assert len(pd.read_parquet(parquet)) == len(frame)


def test_line_export_is_the_default_and_unchanged(cli, db, pdf_script, tmp_path):
    default, explicit = tmp_path / "a.csv", tmp_path / "b.csv"
    assert cli("export", "--format", "csv", "--out", str(default)).exit_code == 0
    assert cli("export", "--what", "lines", "--format", "csv", "--out", str(explicit)).exit_code == 0
    assert default.read_bytes() == explicit.read_bytes()
    assert default.read_text().splitlines()[0].startswith("script_id,script_title,line_id,line_no")


def test_sequence_export_refuses_line_formats(cli, db, pdf_script, tmp_path):
    result = cli("export", "--what", "sequences", "--format", "fountain", "--out", str(tmp_path / "x.fountain"))
    assert result.exit_code == 1 and "use --what lines" in result.stderr
    assert not (tmp_path / "x.fountain").exists()
