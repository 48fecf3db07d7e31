"""The app's helpers without Streamlit: first start, scripts, crops, the whole-script table, sequences, export."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest

import app_builders as builders
from conftest import SCREENPLAY_LINES, db_dump, make_text_pdf
from app_pages import support
from labeling.sequences.view import script_lines, sequence_table
from labeling.settings import Settings
from store import labels as label_store
from store import scripts as script_store
from store import sequences as sequence_store
from store.types import ScriptlabelError


# --- settings and first start ----------------------------------------------------------------

def test_sample_is_ingested_only_into_an_empty_database(db, tmp_path):
    sample = make_text_pdf(tmp_path / "sample.pdf")
    settings = Settings(db_path=tmp_path / "x.db", sample_path=sample)
    first = support.ensure_sample(db, settings)
    assert first is not None and first.title == "Tim Time" and first.lines == len(SCREENPLAY_LINES)
    assert support.ensure_sample(db, settings) is None
    assert len(script_store.list_scripts(db)) == 1


def test_sample_is_skipped_when_missing_or_switched_off(db, tmp_path):
    missing = Settings(db_path=tmp_path / "x.db", sample_path=tmp_path / "nope.pdf")
    off = Settings(db_path=tmp_path / "x.db", sample_path=make_text_pdf(tmp_path / "s.pdf"),
                              load_sample=False)
    assert support.ensure_sample(db, missing) is None and support.ensure_sample(db, off) is None
    assert script_store.list_scripts(db) == []


def test_change_token_moves_on_every_kind_of_write(db, pdf_script):
    line_id = int(script_store.lines_frame(db, pdf_script)["line_id"][0])
    seen = {support.change_token(db)}
    label_store.add_label(db, line_id, "action", annotator="ana")
    seen.add(support.change_token(db))
    label_store.undo_last(db, annotator="ana")
    seen.add(support.change_token(db))
    script_store.edit_line_text(db, line_id, "fixed", annotator="ana")
    seen.add(support.change_token(db))
    builders.predict(db, pdf_script)
    seen.add(support.change_token(db))
    assert len(seen) == 5


# --- scripts ---------------------------------------------------------------------------------

def test_scripts_overview_counts_labels_per_script(db, pdf_script):
    ids = list(script_store.lines_frame(db, pdf_script)["line_id"])
    label_store.add_label(db, ids[0], "scene_heading", annotator="ana")
    label_store.add_label(db, ids[1], "action", annotator="ana")
    [row] = support.scripts_overview(db).to_dict("records")
    assert row["lines"] == 2 * len(SCREENPLAY_LINES) and row["labeled"] == 2
    assert row["scene_heading"] == 1 and row["action"] == 1 and row["dialogue"] == 0
    assert row["progress"] == pytest.approx(2 / row["lines"])
    assert label_store.progress(db, pdf_script) == (2, row["lines"])


def test_upload_keeps_the_file_name_and_bad_bytes_leave_the_database_alone(db, db_path, tmp_path):
    pdf = make_text_pdf(tmp_path / "the_lighthouse.pdf")
    result = support.ingest_upload(db, "the_lighthouse.pdf", pdf.read_bytes())
    assert result.title == "The Lighthouse" and result.format == "pdf"
    before = db_dump(db_path)
    with pytest.raises(ScriptlabelError, match="PDF|pdf"):
        support.ingest_upload(db, "broken.pdf", b"%PDF-1.4 this is not really a pdf")
    with pytest.raises(ScriptlabelError, match="already ingested"):
        support.ingest_upload(db, "again.pdf", pdf.read_bytes())
    assert db_dump(db_path) == before


# --- the whole script ------------------------------------------------------------------------

def test_script_lines_filters_and_page_progress(db, pdf_script):
    builders.predict(db, pdf_script, label="action", confidence=0.4)
    ids = list(script_store.lines_frame(db, pdf_script)["line_id"])
    label_store.add_label(db, ids[0], "scene_heading", annotator="ana")
    label_store.add_label(db, ids[1], "action", annotator="ana")
    frame = script_lines(db, pdf_script)
    assert frame.loc[0, "shown"] == "scene_heading" and frame.loc[2, "shown"] == "action"
    assert list(frame["origin"][:3]) == ["human", "human", "model"]
    assert list(support.filter_lines(frame, disagreements=True)["line_id"]) == [ids[0]]
    assert len(support.filter_lines(frame, unlabeled=True)) == len(ids) - 2
    assert len(support.filter_lines(frame, max_confidence=0.3)) == 0
    assert len(support.filter_lines(frame, max_confidence=0.5)) == len(ids)
    # the one rule: a person's label, else an imported one, else INT./EXT. by rule, else the model
    headings = support.filter_lines(frame, labels=["scene_heading"])
    assert headings["origin"].tolist()[0] == "human" and set(headings["origin"][1:]) == {"rule"}
    assert all(t.lstrip().startswith(("INT", "EXT")) for t in headings["text"][1:])
    assert list(support.filter_lines(frame, search="late again")["line_no"]) == [5, 15]
    progress = support.page_progress(frame)
    assert list(progress["labeled"]) == [2, 0] and list(progress["lines"]) == [10, 10]
    png = support.label_strip_png(frame)
    assert png.startswith(b"\x89PNG")
    styled = support.style_lines(frame[["line_no", "shown"]]).to_html()
    assert support.LABEL_COLORS["scene_heading"] in styled


# --- sequences -------------------------------------------------------------------------------

def test_sequence_table_and_rating_order(db, pdf_script):
    for row in script_store.lines_frame(db, pdf_script).itertuples():
        if row.text in ("MARGO", "TIM (O.S.)"):
            label_store.add_label(db, row.line_id, "character", annotator="ana")
    lines = script_lines(db, pdf_script)
    table = sequence_table(db, pdf_script, lines)
    assert list(table["code"])[:2] == ["sq0010", "sq0020"]
    first = table.iloc[0]
    assert first["pages"] == "1" and first["scene_heading"] >= 1
    assert "MARGO" in first["characters"] and "TIM" in first["characters"]
    ids = list(table["sequence_id"])
    sequence_store.save_sequence_predictions(db, 99, "overall", [
        {"sequence_id": ids[0], "value": 3, "expected": 3.1, "uncertainty": 0.2, "probs": {"3": 0.8}},
        {"sequence_id": ids[2], "value": 4, "expected": 3.6, "uncertainty": 0.9, "probs": {"4": 0.5}},
    ])
    sequence_store.add_rating(db, ids[1], 5, annotator="ana")
    table = sequence_table(db, pdf_script, lines)
    assert table.loc[1, "rating"] == 5 and table.loc[2, "uncertainty"] == pytest.approx(0.9)
    order = support.rating_order(table)
    # unrated without a prediction first (most uncertain), then by uncertainty, the rated one last
    assert order[-1] == ids[1] and order.index(ids[2]) < order.index(ids[0])
    # after a rating, the next unrated sequence further on in the script: never back (sq0040 → sq0030)
    by_line = list(table.sort_values("first_line_no")["sequence_id"])
    assert support.next_unrated(table, after=by_line[0]) == by_line[2]  # by_line[1] is rated
    assert support.next_unrated(table, after=by_line[2]) == by_line[3]
    assert support.next_unrated(table, after=by_line[-1]) == by_line[0]  # none left after it: from the start


# --- export ----------------------------------------------------------------------------------

def test_export_problems_are_said_before_the_download():
    assert support.export_problem("fountain", script_id=None, scheme="full").startswith("A Fountain export")
    assert "full label set" in support.export_problem("fountain", script_id=1, scheme="seed")
    assert support.export_problem("csv", script_id=None, scheme="seed") is None
    assert support.export_file_name("csv", script_title="Tim Time!", scheme="seed") == "scriptlabel-tim-time-seed.csv"
    assert support.export_file_name("jsonl") == "scriptlabel-all-scripts.jsonl"


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet", "xlsx", "fountain", "conll"])
def test_export_payload_parses(db, db_path, pdf_script, fmt):
    ids = list(script_store.lines_frame(db, pdf_script)["line_id"])
    label_store.add_label(db, ids[0], "scene_heading", annotator="ana")
    data = support.export_payload(db_path, fmt, script_id=pdf_script)
    if fmt == "csv":
        frame = pd.read_csv(io.BytesIO(data))
        assert frame.loc[0, "label"] == "scene_heading" and frame.loc[0, "label_source"] == "human"
    elif fmt == "jsonl":
        rows = [json.loads(line) for line in data.decode().splitlines()]
        assert len(rows) == len(ids) and rows[0]["annotator"] == "ana"
    elif fmt == "parquet":
        assert len(pd.read_parquet(io.BytesIO(data))) == len(ids)
    elif fmt == "xlsx":
        frame = pd.read_excel(io.BytesIO(data), engine="openpyxl")
        assert len(frame) == len(ids) and frame.loc[0, "label"] == "scene_heading"
        assert frame.loc[0, "text"] == "INT. LIGHTHOUSE KITCHEN - NIGHT"
    elif fmt == "fountain":
        assert "INT. LIGHTHOUSE KITCHEN - NIGHT" in data.decode()
    else:
        assert data.decode().splitlines()[2].startswith("INT.\tB-scene_heading")
    human = support.export_payload(db_path, "csv", only_human=True, scheme="seed")
    assert pd.read_csv(io.BytesIO(human))["label"].tolist() == ["S"]


def test_sequence_tags_round_trip(db, pdf_script):
    from store.sequences import list_sequences

    seq = list_sequences(db, pdf_script)[0].sequence_id
    support.save_sequence_tags(db, seq, ["water", "Giant Squid"], annotator="ana")
    assert support.sequence_tags(db, seq) == ["giant squid", "water"]
    assert "giant squid" in support.tag_options(db) and "crowd" in support.tag_options(db)
    support.save_sequence_tags(db, seq, ["crowd"], annotator="ana")
    assert support.sequence_tags(db, seq) == ["crowd"]


def test_the_change_token_notices_renames_merges_splits_and_text_fixes(db, pdf_script):
    from store import sequences as sequence_store

    seen = {support.change_token(db)}

    def changed() -> bool:
        token = support.change_token(db)
        fresh = token not in seen
        seen.add(token)
        return fresh

    first = sequence_store.list_sequences(db, pdf_script)[0]
    sequence_store.rename_sequence(db, first.sequence_id, title="Tim Time")
    assert changed()
    sequence_store.rename_sequence(db, first.sequence_id, title="Tom Time")  # same length, same row count
    assert changed()
    merged = sequence_store.merge_with_next(db, first.sequence_id)
    assert changed()
    sequence_store.split_sequence(db, merged, first.last_line_no + 1)
    assert changed()
    line_id = int(script_store.lines_frame(db, pdf_script)["line_id"][0])
    script_store.edit_line_text(db, line_id, "INT. LIGHTHOUSE - NIGHT", annotator="ana")
    assert changed()
    assert not changed()  # nothing happened: the caches stay


@pytest.mark.parametrize("message, shown", [
    ("no script with id 5; list them with `scriptlabel scripts`", "No script with id 5"),
    ("a Fountain export holds one script: add --script ID (see `scriptlabel scripts`)",
     "A Fountain export holds one script"),
    ("/tmp/tmpa8f3k2/broken.pdf: not a PDF (it starts with 'hello'); check the file",
     "Broken.pdf: not a PDF (it starts with 'hello'); check the file"),
    ("the training worker stopped before finishing", "The training worker stopped before finishing"),
])
def test_app_messages_carry_no_command_line_advice_or_temporary_paths(message, shown):
    text = support.app_message(message)
    assert text.startswith(shown)
    assert "scriptlabel " not in text and "--" not in text and "/tmp/" not in text


def test_the_export_summary_of_a_large_library_adds_up_without_reading_it_whole(db, pdf_script, monkeypatch):
    ids = list(script_store.lines_frame(db, pdf_script)["line_id"])
    label_store.add_label(db, int(ids[0]), "action", annotator="ana")
    exact = support.export_summary(db)
    monkeypatch.setattr(support, "PREVIEW_FULL_LINES", 5)
    summed = support.export_summary(db)
    assert exact[0] == summed[0] == len(ids)
    assert exact[1]["human"] == summed[1]["human"] == 1
    assert summed[1]["model or rule"] == len(ids) - 1 == sum(v for k, v in exact[1].items() if k != "human")
    assert len(summed[2]) == min(50, len(ids)) and support.export_summary(db, only_human=True)[0] == 1


def _effective(db, script_id) -> list[tuple[str, str]]:
    lines = script_store.lines_frame(db, script_id)[["line_id", "text"]]
    labels = label_store.effective_labels(db, script_id)[["line_id", "label"]]
    merged = lines.merge(labels, on="line_id", how="left")
    return [(text, label if isinstance(label, str) else "action") for text, label in zip(merged["text"], merged["label"])]


def _label_every_kind(db, script_id) -> None:
    from conftest import SCREENPLAY_LINES

    truth = {text: label for text, _x, label in SCREENPLAY_LINES}
    for row in script_store.lines_frame(db, script_id).itertuples():
        label_store.add_label(db, int(row.line_id), truth[row.text], annotator="ana")


def test_a_fountain_export_ingested_again_gives_the_same_lines_and_labels(db, db_path, pdf_script, tmp_path):
    """Re-ingest the export (its element types become imported labels) and compare line by line."""
    from labeling.ingest.pipeline import ingest_path

    _label_every_kind(db, pdf_script)
    out = tmp_path / "lighthouse.fountain"
    out.write_bytes(support.export_payload(db_path, "fountain", script_id=pdf_script))
    again = ingest_path(db, out, allow_duplicate=True).script_id
    assert _effective(db, again) == _effective(db, pdf_script)
    sources = set(label_store.effective_labels(db, again)["label_source"])
    assert sources == {"imported"}


def test_a_conll_export_parses_back_to_every_line_and_label(db, db_path, pdf_script):
    _label_every_kind(db, pdf_script)
    data = support.export_payload(db_path, "conll", script_id=pdf_script).decode()
    parsed, tokens, tag = [], [], None
    for row in data.splitlines():
        if row.startswith("-DOCSTART-"):
            continue
        if not row.strip():
            if tokens:
                parsed.append((" ".join(tokens), tag))
            tokens, tag = [], None
            continue
        token, bio = row.split("\t")
        prefix, label = bio.split("-", 1)
        assert prefix == ("I" if tokens else "B") and (tag is None or tag == label)  # one label per line
        tokens.append(token)
        tag = label
    expected = [(" ".join(text.split()), label) for text, label in _effective(db, pdf_script)]
    assert parsed == expected
