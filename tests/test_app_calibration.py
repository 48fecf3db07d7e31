"""The Models page's confidence section (reliability diagram, ECE) and its helpers, on a real library."""

from __future__ import annotations

import re
import shutil
import sys

import numpy as np
import pytest

from conftest import REPO, SAMPLE_DIR, make_text_pdf
from models.lines import calibration as calib
from store.types import LABEL_INDEX

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


@pytest.fixture
def calibrated_base(tmp_path, monkeypatch):
    """A copy of the shipped base model calibrated by `labeling.corpus.calibrate` on its own outputs for the
    bundled sample (two halves of it standing in for two scripts)."""
    from labeling.corpus.calibrate import calibrate_model
    from labeling.corpus.sources import lines_frame
    from labeling.ingest.formats.fountain import parse_fountain
    from labeling.training.lines import PRETRAINED_DIR, load_base
    from labeling.ingest.pdf.textlayer import read_text_layer

    folder = tmp_path / "base"
    shutil.copytree(PRETRAINED_DIR, folder, ignore=shutil.ignore_patterns(calib.FILE_NAME))
    gold = {line.text: line.imported_label for line in parse_fountain((SAMPLE_DIR / "tim_time.fountain").read_text())}
    frame = lines_frame(read_text_layer(SAMPLE_DIR / "tim_time.pdf"), "tim")
    known = np.array([t in gold for t in frame["text"]])
    proba = load_base().predict_proba(frame)[known]
    codes = np.array([LABEL_INDEX[gold[t]] for t in frame["text"][known]])
    halves = np.where(np.arange(len(codes)) < len(codes) // 2, "first", "second")
    calibrate_model(folder, {"proba": proba, "codes": codes, "script_ids": halves}, folds=2)
    monkeypatch.setenv("SCRIPTLABEL_LINE_BASE", str(folder))
    return folder


@pytest.fixture
def app_db(db_path, tmp_path, monkeypatch, calibrated_base):
    from labeling.ingest.pipeline import ingest_path
    from store.db import open_db

    monkeypatch.setenv("SCRIPTLABEL_DB", str(db_path))
    monkeypatch.setenv("SCRIPTLABEL_SAMPLE", "0")
    monkeypatch.setenv("SCRIPTLABEL_RETRAIN_EVERY", "0")
    db = open_db(db_path)
    result = ingest_path(db, make_text_pdf(tmp_path / "lighthouse.pdf", pages=2))
    yield db, result.script_id
    db.close()


def _label_against_suggestions(db, script_id, *, wrong: int):
    """Every line labeled: the suggestion kept, except on `wrong` lines."""
    from store import labels as label_store
    from store import models as model_store

    preds = model_store.latest_predictions(db, script_id)
    for k, row in enumerate(preds.itertuples()):
        label = row.label if k >= wrong else ("other" if row.label != "other" else "action")
        label_store.add_label(db, int(row.line_id), label, annotator="ana")
    return preds


def test_label_reliability_counts_the_confidence_people_saw(app_db):
    from app_pages import model_views as app_models

    db, script_id = app_db
    assert app_models.label_reliability(db)["n"] == 0
    preds = _label_against_suggestions(db, script_id, wrong=3)
    shown = app_models.label_reliability(db)
    assert shown["n"] == len(preds) == 20
    assert shown["accuracy"] == pytest.approx(17 / 20)
    assert shown["mean_confidence"] == pytest.approx(preds["confidence"].mean(), abs=1e-4)
    expected = calib.ece_from_confidence(preds["confidence"].to_numpy(), np.arange(20) >= 3)
    assert shown["ece"] == pytest.approx(expected, abs=1e-4)
    low, high = shown["ece_ci95"]
    assert low <= shown["ece"] + 1e-9 and high >= low
    assert shown["table"]["n"].sum() == 20
    base = app_models.base_model_reliability()
    assert base["fitted"] and base["after"]["ece"] is not None and not base["after"]["table"].empty
    assert app_models.reliability_png({"labels": shown["table"], "base": base["after"]["table"]}).startswith(b"\x89PNG")


def test_models_page_shows_ece_and_a_reliability_diagram(app_db):
    db, script_id = app_db
    _label_against_suggestions(db, script_id, wrong=2)
    at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=60)
    at.query_params["annotator"] = "ana"
    at.run()
    at.switch_page("app_pages/models.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("reliability and calibration error (ECE)" in s.value for s in at.subheader)
    captions = " ".join(c.value for c in at.caption)
    assert re.search(r"While labeling: ECE 0\.\d{4} \(95% interval", captions), captions
    assert "over 20 labels given beside a suggestion; suggestions kept 90.0%" in captions
    assert re.search(r"The shipped model \(v0\): its confidence was calibrated on lines held out", captions), captions
    assert any("Reliability" in (image.captions[0] if image.captions else "") for image in at.image)


def test_models_page_says_when_the_base_model_is_not_calibrated(app_db, calibrated_base):
    (calibrated_base / calib.FILE_NAME).unlink()
    at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=60)
    at.run()
    at.switch_page("app_pages/models.py")
    at.run()
    assert not at.exception
    warnings = " ".join(w.value for w in at.warning)
    assert "no calibration fitted" in warnings and "calibration says how" in warnings  # no internal names
