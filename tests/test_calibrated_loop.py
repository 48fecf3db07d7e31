"""Calibrated suggestions in a real library: stored predictions, retrains, the confidence kept with labels."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from conftest import SAMPLE_DIR
from models.lines import calibration as calib
from store.types import LABELS


def _gold():
    from labeling.ingest.formats.fountain import parse_fountain

    return {line.text: line.imported_label for line in parse_fountain((SAMPLE_DIR / "tim_time.fountain").read_text())}


@pytest.fixture
def calibrated_base(tmp_path, monkeypatch):
    """The shipped base model in a folder of its own, with a deliberately strong calibration (T = 2)."""
    from labeling.training import lines as line_training

    folder = tmp_path / "base"
    shutil.copytree(line_training.PRETRAINED_DIR, folder, ignore=shutil.ignore_patterns(calib.FILE_NAME))
    calib.save_calibration(folder, calib.Temperature(2.0))
    monkeypatch.setenv("SCRIPTLABEL_LINE_BASE", str(folder))
    return folder


def _stored(db, script_id):
    from store import models as model_store

    frame = model_store.latest_predictions(db, script_id).set_index("line_id")
    return frame, np.array([json.loads(p) for p in frame["probs"]])


def test_ingest_stores_the_base_models_calibrated_probabilities(db, calibrated_base):
    from labeling.ingest.pipeline import ingest_path
    from labeling.training.lines import load_base, script_frame

    script_id = ingest_path(db, SAMPLE_DIR / "tim_time.pdf").script_id
    frame = script_frame(db, script_id)
    raw = load_base().predict_proba(frame)
    stored, proba = _stored(db, script_id)
    proba = proba[[list(stored.index).index(i) for i in frame["line_id"]]]
    expected = calib.Temperature(2.0).transform(raw)
    np.testing.assert_allclose(proba, expected, atol=2e-5)
    assert (proba.max(1) < raw.max(1) + 1e-6).all() and (proba.argmax(1) == raw.argmax(1)).all()


def test_predictions_after_a_retrain_are_calibrated_and_keep_confident_right_lines_confident(db):
    from labeling.ingest.pipeline import ingest_path
    from labeling.training.lines import base_calibration, base_outputs, load_current, script_frame, train_line_version
    from labeling.session.queue import build_queue
    from labeling.session.record import record_label
    from store.confidence import shown_confidence_outcomes

    gold = _gold()
    script_id = ingest_path(db, SAMPLE_DIR / "tim_time.pdf").script_id
    frame = script_frame(db, script_id)
    truth = np.array([gold.get(t) for t in frame["text"]], dtype=object)
    before, p0 = _stored(db, script_id)
    labeled, skip = [], set()
    while len(labeled) < 20:  # what a person meets first: the lines the margin queue asks about
        for item in build_queue(db, strategy="margin", n=10, random_share=0.0, exclude=skip):
            label = gold.get(item.text)
            if label is None:  # a wrapped line the Fountain source does not have as such: skip it
                skip.add(item.line_id)
            elif len(labeled) < 20:
                record_label(db, item.line_id, label, annotator="ana")
                labeled.append(item.line_id)
    version, _, metrics = train_line_version(db)
    model = load_current(db)
    assert model.version == version and model.adapter is not None
    adapter_calibration = base_calibration().adapter
    assert metrics["calibration"] == {"method": adapter_calibration.method, **adapter_calibration.params()}
    # what is stored is the adapter's output through the adapters' calibration saved with the base model
    outputs = base_outputs(db, frame)
    adapted = model.adapter.predict_proba(frame.reset_index(drop=True), outputs=outputs)
    expected = adapter_calibration.transform(adapted)
    after, p1 = _stored(db, script_id)
    order = [list(after.index).index(i) for i in frame["line_id"]]
    np.testing.assert_allclose(p1[order], expected, atol=2e-5)
    assert (p1[order].argmax(1) == adapted.argmax(1)).all()  # calibration never changes a suggestion
    # lines the base was sure of and right about stay shown as sure: no "50% sure" after a retrain
    base_conf = before.loc[frame["line_id"], "confidence"].to_numpy()
    base_label = before.loc[frame["line_id"], "label"].to_numpy()
    sure_right = (base_conf > 0.99) & (base_label == truth) & ~frame["line_id"].isin(labeled).to_numpy()
    shown = after.loc[frame["line_id"], "confidence"].to_numpy()
    assert sure_right.sum() > 100
    assert np.median(shown[sure_right]) > 0.98 and (shown[sure_right] > 0.6).mean() > 0.99
    known = np.array([t is not None for t in truth]) & ~frame["line_id"].isin(labeled).to_numpy()
    codes = np.array([LABELS.index(t) for t in truth[known]])
    assert calib.ece(p1[order][known], codes) < 0.05
    # each label keeps the confidence shown beside the suggestion when it was given
    outcomes = shown_confidence_outcomes(db)
    assert len(outcomes) == 20
    shown_then = before.loc[outcomes["line_id"], "confidence"].to_numpy()
    np.testing.assert_allclose(outcomes["confidence"].to_numpy(), shown_then, atol=1e-4)
    assert (outcomes["suggested_version"] == 0).all()


def test_confidence_shown_is_kept_for_labels_given_in_the_browser_and_backfilled(db, pdf_script):
    from store import labels as label_store
    from store import models as model_store
    from store import scripts as script_store
    from store.confidence import shown_confidence_outcomes

    ids = list(script_store.lines_frame(db, pdf_script)["line_id"])
    proba = np.full((len(ids), len(LABELS)), 0.05)
    proba[:, LABELS.index("dialogue")] = 0.7
    model_store.save_predictions(db, 7, ids, proba)
    status, _ = label_store.add_client_label(db, client_event_id="c1", line_ids=[ids[0]], label="action",
                                             annotator="ana", suggested="dialogue", suggested_version=7,
                                             shown_at=None, answered_at=None)
    assert status == "stored"
    # a suggestion shown from a version whose predictions are gone keeps no confidence (not a made-up one)
    label_store.add_client_label(db, client_event_id="c2", line_ids=[ids[1]], label="dialogue", annotator="ana",
                                 suggested="dialogue", suggested_version=99, shown_at=None, answered_at=None)
    outcomes = shown_confidence_outcomes(db)
    assert list(outcomes["line_id"]) == [ids[0]] and outcomes["confidence"].iloc[0] == pytest.approx(0.7)
    assert not outcomes["correct"].iloc[0]
