"""Dataset exports stream script by script: one header, every line once, one schema across scripts."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from conftest import make_text_pdf
from labeling.export import export_dataset
from labeling.ingest.pipeline import ingest_path
from store import flags as flag_store
from store import labels as label_store
from store import scripts as script_store


@pytest.fixture
def library(db, tmp_path):
    """Three scripts; only the second has a person's label, a corrected text and a flag."""
    ids = [ingest_path(db, make_text_pdf(tmp_path / f"s{i}.pdf", pages=i + 1), allow_duplicate=True).script_id
           for i in range(3)]
    line = int(script_store.lines_frame(db, ids[1])["line_id"][2])
    label_store.add_label(db, line, "dialogue", annotator="ana")
    script_store.edit_line_text(db, line, "A fixed line", annotator="ana")
    flag_store.add_flag(db, line, "bad_ocr", annotator="ana", note="smudge")
    return ids, line


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_a_library_export_has_every_line_once_with_one_header_and_schema(db, library, tmp_path, fmt):
    ids, line = library
    out = tmp_path / f"all.{fmt}"
    report = export_dataset(db, fmt, out)
    total = sum(len(script_store.lines_frame(db, sid)) for sid in ids)
    if fmt == "csv":
        frame = pd.read_csv(out)
        assert out.read_text().count("script_id,script_title") == 1
    elif fmt == "jsonl":
        frame = pd.DataFrame([json.loads(row) for row in out.read_text().splitlines()])
    else:
        frame = pd.read_parquet(out)
    assert report["rows"] == total == len(frame) and frame["line_id"].is_unique
    assert list(frame["script_id"].unique()) == ids
    row = frame[frame["line_id"] == line].iloc[0]
    assert (row["label"], row["label_source"], row["text"], row["flag"]) == ("dialogue", "human", "A fixed line",
                                                                             "bad_ocr")
    assert bool(row["text_edited"]) and isinstance(row["original_text"], str)
    assert not list(out.parent.glob("*.partial"))  # the temporary file became the export


def test_an_empty_library_exports_a_header_only(db, tmp_path):
    out = tmp_path / "none.csv"
    assert export_dataset(db, "csv", out)["rows"] == 0
    assert list(pd.read_csv(out).columns)[:3] == ["script_id", "script_title", "line_id"]
