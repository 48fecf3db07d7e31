"""Calibrated confidence: ECE, calibrators chosen by grouped CV, `python -m labeling.corpus.calibrate`."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO, require_shared_data
from models.lines import calibration as calib
from store.types import LABEL_INDEX, LABELS


def test_ece_and_reliability_bins_by_hand():
    # 10 lines shown at 0.95, 8 right; 10 at 0.55, 5 right: |0.8-0.95| and |0.5-0.55| weighted equally.
    confidence = np.array([0.95] * 10 + [0.55] * 10)
    correct = np.array([1] * 8 + [0] * 2 + [1] * 5 + [0] * 5, dtype=bool)
    assert calib.ece_from_confidence(confidence, correct) == pytest.approx((0.15 + 0.05) / 2)
    table = calib.reliability_table(confidence, correct)
    assert len(table) == 15 and table["n"].sum() == 20
    assert sorted(table.loc[table["n"] > 0, "accuracy"]) == [0.5, 0.8]
    proba = np.full((4, len(LABELS)), 0.01)
    proba[:, 0] = 1 - 0.01 * (len(LABELS) - 1)
    assert calib.accuracy_at_coverage(proba, [0, 0, 0, 1], coverage=0.5) == 1.0


def test_every_calibrator_round_trips_through_json(tmp_path):
    rng = np.random.default_rng(0)
    codes = rng.integers(0, len(LABELS), 500)
    logits = rng.normal(0, 1, (500, len(LABELS)))
    logits[np.arange(500), codes] += 2
    proba = np.exp(3 * logits) / np.exp(3 * logits).sum(1, keepdims=True)
    for method in calib.METHODS:
        fitted = calib.make_calibrator(method).fit(proba, codes)
        again = calib.from_document(json.loads(json.dumps(calib.to_document(fitted))))
        assert type(again) is type(fitted)
        np.testing.assert_allclose(again.transform(proba), fitted.transform(proba), atol=1e-4)
        assert np.allclose(fitted.transform(proba).sum(1), 1)


@pytest.fixture(scope="module")
def small_model_outputs(tmp_path_factory):
    """A small base model trained on some MovieParse movies; its probabilities on two other groups of
    movies it never saw: one to fit a calibrator on, one to judge it on."""
    require_shared_data("movieparse")
    from labeling.corpus.sources import load_movieparse, with_layout_variants
    from models.lines.classifier import BoosterParams, ContentParams, LineModelConfig, fit_base

    scripts = load_movieparse()
    train, fit_on, judge = scripts[:8], scripts[8:17], scripts[17:]
    X, y = with_layout_variants(train, ())
    config = LineModelConfig(content=ContentParams(char_features=2**16, word_features=2**15, epochs=5),
                             stage1=BoosterParams(n_estimators=40, learning_rate=0.3),
                             stage2=BoosterParams(n_estimators=30, max_depth=4, learning_rate=0.3),
                             inner_folds=3)
    model = fit_base(X, y, config=config, n_jobs=2)
    folder = model.save(tmp_path_factory.mktemp("model") / "lines")

    def outputs(group):
        proba, codes, ids = [], [], []
        for script in group:
            mask = np.array([v is not None for v in script.labels])
            proba.append(model.predict_proba(script.lines)[mask])
            codes += [LABEL_INDEX[v] for v in script.labels[mask]]
            ids += [script.script_id] * int(mask.sum())
        return np.vstack(proba), np.array(codes), np.array(ids)

    return folder, outputs(fit_on), outputs(judge)


def test_calibrator_fit_on_real_model_outputs_lowers_ece_on_held_out_scripts(small_model_outputs, tmp_path):
    folder, (p_fit, c_fit, ids_fit), (p_judge, c_judge, _) = small_model_outputs
    oof = tmp_path / "oof.npz"
    np.savez(oof, proba=p_fit, codes=c_fit, script_ids=ids_fit)
    done = subprocess.run([sys.executable, "-m", "labeling.corpus.calibrate", "--model", str(folder), "--oof", str(oof)],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["method"] in calib.METHODS and report["lines"] == len(c_fit)
    assert report["cv"]["identity"]["ece"] >= report["cv"][report["method"]]["ece"]
    saved = calib.load_calibration(folder)
    assert saved.calibrator.method == report["method"]
    # adapters over this base get a temperature fit on the same lines: it never changes a suggestion
    assert saved.adapter.method == "temperature" and saved.adapter.temperature == report["adapter"]["temperature"]
    assert (saved.adapter.transform(p_judge).argmax(1) == p_judge.argmax(1)).all()
    before = calib.ece(p_judge, c_judge)
    after = calib.ece(saved.calibrator.transform(p_judge), c_judge)
    assert after < before, (before, after)
    # the movies it never saw: their most confident lines are not shown more sure than they are right
    assert after < 0.03


def test_calibration_of_another_model_is_refused(small_model_outputs, tmp_path):
    import shutil

    folder = tmp_path / "lines"
    shutil.copytree(small_model_outputs[0], folder)
    calib.save_calibration(folder, calib.Temperature(1.5))
    assert calib.load_calibration(folder).calibrator.temperature == 1.5
    (folder / "stage2.ubj").write_bytes((folder / "stage2.ubj").read_bytes() + b"\0")  # "rebuilt"
    with pytest.raises(calib.CalibrationError, match="refit it: uv run python -m labeling.corpus.calibrate"):
        calib.load_calibration(folder)


def test_calibrate_command_reports_bad_input_in_one_line(small_model_outputs, tmp_path):
    folder = small_model_outputs[0]
    bad = tmp_path / "bad.npz"
    np.savez(bad, proba=np.ones((5, 3)), codes=np.zeros(5), script_ids=np.array(["a"] * 5))
    for args, expected in ((["--oof", str(bad)], "probabilities must be (lines, 7)"),
                           (["--oof", str(tmp_path / "missing.npz")], "no such file"),
                           (["--oof", str(REPO / "README.md")], "not a readable .npz")):
        done = subprocess.run([sys.executable, "-m", "labeling.corpus.calibrate", "--model", str(folder), *args],
                              cwd=REPO, capture_output=True, text=True, timeout=300)
        assert done.returncode == 1
        assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: ") and expected in done.stderr
    done = subprocess.run([sys.executable, "-m", "labeling.corpus.calibrate", "--model", str(tmp_path), "--oof", str(bad)],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1 and "no config.json" in done.stderr and "Traceback" not in done.stderr


def test_out_of_fold_file_from_build_pretrained_is_read_in_this_versions_label_order(small_model_outputs, tmp_path):
    from labeling.corpus.calibrate import load_out_of_fold

    _, (proba, codes, ids), _ = small_model_outputs
    reverse = list(LABELS)[::-1]
    path = tmp_path / "build.npz"  # the keys `build_pretrained --oof-out` writes, columns in another order
    np.savez(path, proba=proba[:, ::-1], code=codes.astype(np.int8), script_id=ids, group=ids,
             fold=np.zeros(len(codes), np.int16), weight=np.ones(len(codes), np.float32), labels=np.array(reverse))
    read = load_out_of_fold(path)
    np.testing.assert_allclose(read["proba"], proba, atol=1e-6)
    assert list(read["codes"]) == list(codes) and list(read["script_ids"]) == list(ids)
