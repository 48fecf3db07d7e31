"""The store: append-only labels with undo, concurrent writers, versions becoming current atomically."""

from __future__ import annotations

import multiprocessing as mp

import numpy as np
import pytest

from conftest import make_text_pdf
from store import labels as label_store
from store import models as model_store
from store.db import open_db
from store.types import UnknownLabelError, NotFoundError


@pytest.fixture
def ingested(db, tmp_path):
    from labeling.ingest.pipeline import ingest_path

    ingest_path(db, make_text_pdf(tmp_path / "s.pdf"))
    return db


def _line_ids(db):
    return [r[0] for r in db.execute("SELECT line_id FROM lines ORDER BY line_no")]


def test_latest_label_wins_and_undo_appends(ingested):
    db = ingested
    line = _line_ids(db)[1]
    label_store.add_label(db, line, "action", annotator="ana")
    label_store.add_label(db, line, "dialogue", annotator="ana")
    assert label_store.current_labels(db).set_index("line_id").loc[line, "label"] == "dialogue"
    label_store.undo_last(db, annotator="ana")
    assert label_store.current_labels(db).set_index("line_id").loc[line, "label"] == "action"
    history = label_store.label_history(db, line)
    assert [h["action"] for h in history] == ["set", "set", "undo"]  # nothing deleted


def test_unknown_label_and_line_are_refused(ingested):
    with pytest.raises(UnknownLabelError, match="use one of scene_heading"):
        label_store.add_label(ingested, _line_ids(ingested)[0], "narration")
    with pytest.raises(NotFoundError, match="no line with id 999999"):
        label_store.add_label(ingested, 999999, "action")
    assert ingested.execute("SELECT COUNT(*) FROM label_events").fetchone()[0] == 0


def _label_many(db_file, line_ids, label, annotator):
    db = open_db(db_file)
    for line_id in line_ids:
        label_store.add_label(db, line_id, label, annotator=annotator)


def test_two_writers_at_once_lose_nothing(ingested, db_path):
    ids = _line_ids(ingested) * 10
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_label_many, args=(str(db_path), ids, label, who))
             for label, who in (("action", "ana"), ("dialogue", "bo"))]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    counts = dict(ingested.execute("SELECT annotator, COUNT(*) FROM label_events GROUP BY annotator").fetchall())
    assert counts == {"ana": len(ids), "bo": len(ids)}
    per_annotator = label_store.annotator_labels(ingested)
    assert len(per_annotator) == 2 * len(_line_ids(ingested))


def test_versions_become_current_one_at_a_time(ingested):
    db = ingested
    v1 = model_store.register_version(db, kind="lines", path="a", metrics={"accuracy": 0.9}, n_labels=10)
    v2 = model_store.register_version(db, kind="lines", path="b", metrics={"accuracy": 0.95}, n_labels=20)
    assert model_store.current_version(db, "lines").version == v2
    model_store.set_current(db, v1)
    assert model_store.current_version(db, "lines").version == v1
    assert db.execute("SELECT COUNT(*) FROM model_versions WHERE is_current = 1").fetchone()[0] == 1


def test_predictions_keep_the_latest_versions(ingested):
    db = ingested
    ids = _line_ids(db)
    for version in (1, 2, 3):
        proba = np.full((len(ids), 7), 0.01)
        proba[:, version] = 0.94
        model_store.save_predictions(db, version, ids, proba)
    latest = model_store.latest_predictions(db)
    assert set(latest["version"]) == {3} and set(latest["label"]) == {"dialogue"}
    assert {r[0] for r in db.execute("SELECT DISTINCT version FROM predictions")} == {2, 3}


def test_a_cloned_script_has_the_same_lines_and_predictions_under_new_ids(db, pdf_script):
    from store import models as model_store
    from store import scripts as script_store

    import app_builders as builders

    builders.predict(db, pdf_script, label="dialogue", confidence=0.7)
    copy = script_store.clone_script(db, pdf_script, title="Copy")
    a, b = script_store.lines_frame(db, pdf_script), script_store.lines_frame(db, copy)
    assert list(a["text"]) == list(b["text"]) and not set(a["line_id"]) & set(b["line_id"])
    preds = model_store.latest_predictions(db, copy)
    assert len(preds) == len(b) and set(preds["label"]) == {"dialogue"}
    assert script_store.get_script(db, copy)["status"] == "ready"


def test_the_stored_line_count_follows_ingest_clone_and_migration(db, pdf_script, db_path):
    from store import scripts as script_store

    copy = script_store.clone_script(db, pdf_script, title="Copy")
    listed = {s.script_id: s.lines for s in script_store.list_scripts(db)}
    assert listed[pdf_script] == listed[copy] == len(script_store.lines_frame(db, pdf_script)) > 0
    from store.schema import m0104_script_line_counts

    with db.atomic():  # a database from before the stored count: the migration fills it in
        db.execute("ALTER TABLE scripts DROP COLUMN line_count")
        m0104_script_line_counts(db)
    assert {s.script_id: s.lines for s in script_store.list_scripts(db)} == listed


def test_the_queue_reads_labels_in_force_by_the_same_rule_as_the_pages(ingested):
    """`labeled_lines` and `labels_of_lines` (plain Python, for the command line's queue) give every line
    the label `current_labels` gives it: adjudicated over people, the majority of people (a tie: the later
    label), people over an import, an undone label gone."""
    from store import team as team_store

    db = ingested
    ids = _line_ids(db)[:8]
    label_store.add_label(db, ids[0], "action", annotator="ana")
    label_store.add_label(db, ids[0], "dialogue", annotator="bob")  # a tie: the later label
    for name, label in (("ana", "character"), ("bob", "character"), ("cy", "other")):
        label_store.add_label(db, ids[1], label, annotator=name)  # two against one
    label_store.add_label(db, ids[2], "other", annotator="ana")
    label_store.add_label(db, ids[2], "action", annotator="bob")
    team_store.add_adjudicated_label(db, ids[2], "transition", by="lead", client_event_id="adj-1")
    label_store.add_label(db, ids[3], "action", annotator="import", source="imported")
    label_store.add_label(db, ids[3], "dialogue", annotator="ana")  # a person over the import
    label_store.add_label(db, ids[4], "action", annotator="import", source="imported")
    label_store.add_label(db, ids[5], "other", annotator="ana")
    label_store.add_label(db, ids[5], "character", annotator="ana")  # her label in force is the later one
    label_store.add_label(db, ids[6], "action", annotator="cy")
    label_store.undo_last(db, annotator="cy")  # ids[6] is unlabeled again
    frame = label_store.current_labels(db, sources=label_store.LABELED_SOURCES)
    expected = dict(zip(frame["line_id"].tolist(), frame["label"].tolist()))
    assert expected == {ids[0]: "dialogue", ids[1]: "character", ids[2]: "transition", ids[3]: "dialogue",
                        ids[4]: "action", ids[5]: "character"}
    assert label_store.labeled_lines(db) == expected
    assert {k: v["label"] for k, v in label_store.labels_of_lines(db, ids).items()} == expected
