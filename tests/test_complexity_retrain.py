"""Ratings retrain the complexity models: every few ratings a background run, current only if not worse."""

from __future__ import annotations

import pytest

from conftest import SAMPLE_DIR
from labeling.training.complexity import sequence_docs, train_complexity_version
from labeling.training.runs import (
    complexity_run_status, maybe_retrain_complexity, ratings_since_last_version, wait_for_run,
)
from store import models as model_store
from store import sequences as sequence_store


@pytest.fixture
def rated(cli, db):
    [script] = cli.json_lines("ingest", str(SAMPLE_DIR / "tim_time.fountain"))
    docs = {d.sequence_id: d for d in sequence_docs(db)}
    seqs = sequence_store.list_sequences(db, script["script_id"])
    for seq in seqs[:-6]:  # six left to rate later
        chars = docs[seq.sequence_id].counts["distinct_characters"]
        sequence_store.add_rating(db, seq.sequence_id, 1 if chars == 0 else 2 if chars == 1 else 3,
                                  department="fx", annotator="lead")
    return seqs


def test_every_few_ratings_start_a_run_that_becomes_current(cli, db, rated):
    run_id = maybe_retrain_complexity(cli.db_file, "fx", every=5, db=db)
    assert run_id is not None
    assert maybe_retrain_complexity(cli.db_file, "fx", every=5, db=db) is None  # one run at a time
    run = wait_for_run(db, run_id, timeout_s=300)
    assert run["trigger"] == "auto-ratings" and run["status"] == "done"
    current = model_store.current_version(db, "complexity", "fx")
    assert current.version == run["version"] and current.metrics["became_current"] is True
    assert ratings_since_last_version(db, "fx") == 0
    assert complexity_run_status(db, "fx")["status"] == "done"
    assert maybe_retrain_complexity(cli.db_file, "fx", every=5, db=db) is None  # nothing new yet
    for seq in rated[-6:-2]:
        sequence_store.add_rating(db, seq.sequence_id, 2, department="fx", annotator="lead")
    assert maybe_retrain_complexity(cli.db_file, "fx", every=5, db=db) is None  # 4 of 5
    sequence_store.undo_rating(db, rated[-3].sequence_id, department="fx", annotator="lead")  # an undo counts too
    second = maybe_retrain_complexity(cli.db_file, "fx", every=5, db=db)
    assert second is not None
    wait_for_run(db, second, timeout_s=300)
    assert len(sequence_store.latest_sequence_predictions(db, department="fx")) == len(rated)


def test_line_relabels_in_rated_sequences_start_a_run(cli, db, rated):
    from labeling.training.runs import _after_line_run, relabels_since_last_version
    from store import labels as label_store
    from store import scripts as script_store

    train_complexity_version(db, department="fx", models="baselines")
    lines = script_store.lines_frame(db)
    rated_ids = set(sequence_store.current_ratings(db, department="fx")["sequence_id"])
    inside = lines[lines["sequence_id"].isin(rated_ids)]["line_id"].tolist()
    outside = lines[~lines["sequence_id"].isin(rated_ids)]["line_id"].tolist()
    suggested = model_store.latest_predictions(db).set_index("line_id")["label"]

    def relabel(line_id):  # a label the suggestion did not give: the line's type changes
        label = "parenthetical" if suggested.get(line_id) != "parenthetical" else "transition"
        label_store.add_label(db, int(line_id), label, annotator="ana")

    for line_id in outside[:12]:  # unrated sequences: no reason to retrain
        relabel(line_id)
    label_store.add_label(db, int(inside[20]), suggested[inside[20]], annotator="ana")  # agrees: no change
    assert relabels_since_last_version(db, "fx") == 0
    for line_id in inside[:9]:
        relabel(line_id)
    assert maybe_retrain_complexity(cli.db_file, "fx", every=0, db=db) is None  # 9 of 10
    relabel(inside[9])
    assert relabels_since_last_version(db, "fx") == 10
    _after_line_run(db)  # what a finished line run does
    status = complexity_run_status(db, "fx")
    assert status["trigger"] == "auto-relabels"
    wait_for_run(db, status["run_id"], timeout_s=300)
    assert relabels_since_last_version(db, "fx") == 0


def test_too_few_ratings_start_nothing(cli, db):
    cli.json_lines("ingest", str(SAMPLE_DIR / "tim_time.fountain"))
    for seq in sequence_store.list_sequences(db)[:5]:
        sequence_store.add_rating(db, seq.sequence_id, 3, department="fx", annotator="lead")
    assert maybe_retrain_complexity(cli.db_file, "fx", every=5, db=db) is None
    assert complexity_run_status(db, "fx") is None


def test_a_candidate_that_cannot_be_compared_with_the_current_one_stays_aside(cli, db, rated):
    first, _, _ = train_complexity_version(db, department="fx", models="baselines")
    before = sequence_store.latest_sequence_predictions(db, department="fx")
    # A current version whose model family this comparison cannot score again: keep it.
    kept = model_store.register_version(db, kind="complexity", department="fx", path="elsewhere",
                                        metrics={"winner": "retired_model"}, n_labels=1)
    version, _, metrics = train_complexity_version(db, department="fx", models="baselines")
    assert metrics["became_current"] is False and metrics["compared_with"]["version"] == kept
    assert model_store.current_version(db, "complexity", "fx").version == kept
    after = sequence_store.latest_sequence_predictions(db, department="fx")
    assert set(after["version"]) == set(before["version"]) == {first}
    # Against the family that won before, under the same folds: the winner is at least as good.
    model_store.set_current(db, first)
    version, _, metrics = train_complexity_version(db, department="fx", models="baselines")
    assert metrics["became_current"] is True and metrics["compared_with"]["qwk_same_cv"] is not None
    assert model_store.current_version(db, "complexity", "fx").version == version
