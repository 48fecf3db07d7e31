"""labeling/sequences/grouping.py: each scene heading starts a sequence, unless people shaped them."""

from __future__ import annotations

import pandas as pd

import app_builders as builders
from labeling.sequences.grouping import derive_spans, rederive_sequences
from store import labels as label_store
from store import scripts as script_store
from store import sequences as sequence_store


def _frame(labels_and_texts):
    return pd.DataFrame([{"line_no": n, "label": label, "text": text}
                         for n, (label, text) in enumerate(labels_and_texts, 1)])


def test_every_heading_opens_a_sequence_titled_without_its_scene_numbers():
    frame = _frame([("other", "TITLE PAGE"), ("scene_heading", "12A INT. KITCHEN - NIGHT 12A"),
                    ("action", "Rain."), ("scene_heading", "EXT. SEA - DAY"), ("dialogue", "Hi.")])
    assert derive_spans(frame) == [(1, 1, "Opening"), (2, 3, "INT. KITCHEN - NIGHT"), (4, 5, "EXT. SEA - DAY")]


def test_a_script_without_headings_is_one_sequence():
    assert derive_spans(_frame([("action", "a"), ("dialogue", "b")])) == [(1, 2, "Whole script")]
    assert derive_spans(_frame([])) == []


def test_relabels_rederive_sequences_but_never_over_human_work(db, tmp_path):
    script = builders.pdf_script(db, tmp_path, pages=1)
    before = sequence_store.list_sequences(db, script)
    assert [s.title for s in before] == ["INT. LIGHTHOUSE KITCHEN - NIGHT", "EXT. LIGHTHOUSE - CONTINUOUS"]
    lines = script_store.lines_frame(db, script)
    beam = int(lines[lines["text"].str.startswith("The beam")]["line_id"].iloc[0])
    label_store.add_label(db, beam, "scene_heading", annotator="ana")  # a person calls it a heading
    assert rederive_sequences(db, script) == 3
    sequence_store.rename_sequence(db, sequence_store.list_sequences(db, script)[0].sequence_id, title="Kitchen")
    assert rederive_sequences(db, script) is None  # a renamed sequence is human work: left alone
    assert sequence_store.list_sequences(db, script)[0].title == "Kitchen"
    assert rederive_sequences(db, script, force=True) == 3
