"""Versions people can trust: the promotion rule on real retrains, pins, version 0, per-version accuracy."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from app_builders import sample_gold_lines
from conftest import SAMPLE_DIR
from labeling.training import promotion, versions
from labeling.training.lines import train_line_version
from store import labels as label_store
from store import models as model_store
from store.db import open_db


@pytest.fixture
def sample(cli):
    [pdf] = cli.json_lines("ingest", str(SAMPLE_DIR / "tim_time.pdf"))
    db = open_db(cli.db_file)
    yield db, pdf["script_id"], sample_gold_lines(db, pdf["script_id"])
    db.close()


def _label(db, rows, annotator="ana"):
    for row in rows.itertuples():
        label_store.add_label(db, int(row.line_id), row.gold, annotator=annotator)


def test_wilson_interval_matches_scipy_and_the_paired_test_is_one_sided():
    from scipy.stats import binomtest

    for correct, n in [(20, 20), (11, 20), (0, 7), (183, 200)]:
        low, high = promotion.wilson_interval(correct, n)
        expected = binomtest(correct, n).proportion_ci(method="wilson")
        assert (low, high) == pytest.approx((expected.low, expected.high), abs=1e-6)
    assert promotion.wilson_interval(0, 0) is None
    current = np.array([True] * 30 + [False] * 2)
    worse = promotion.paired_comparison(current, np.array([False] * 12 + [True] * 20), current_version=3)
    assert (worse.only_current, worse.only_candidate, worse.n) == (12, 2, 32) and worse.p_value < 0.05
    assert promotion.decide(worse, current_version=3)["decision"] == "candidate"
    better = promotion.paired_comparison(current, np.ones(32, bool), current_version=3)
    assert better.p_value == 1.0 and promotion.decide(better, current_version=3)["decision"] == "promoted"
    noise = promotion.paired_comparison(current, np.array([False] * 2 + [True] * 28 + [False] * 2), current_version=3)
    assert noise.only_current == 2 and promotion.decide(noise, current_version=3)["decision"] == "promoted"


def test_a_retrain_that_is_worse_on_the_newest_labels_stays_a_candidate_and_one_that_is_not_is_promoted(sample):
    db, script_id, gold = sample
    first = gold.iloc[::25]
    _label(db, first)
    v1, _, metrics = train_line_version(db)
    assert metrics["promotion"]["decision"] == "promoted" and model_store.current_version(db).version == v1
    assert metrics["promotion"]["comparison"]["current_version"] == 0  # compared with the shipped model
    # A bad import mislabels the lines v1 is least sure of (dialogue as action, the rest as dialogue: where
    # the base is all but certain, a few labels do not move the adapter at all); then a person labels 30 of
    # those lines right.
    confidence = model_store.latest_predictions(db, script_id).set_index("line_id")["confidence"]
    unsure = gold[~gold["line_id"].isin(first["line_id"])].assign(
        confidence=lambda g: g["line_id"].map(confidence)).sort_values("confidence").head(150)
    checked = unsure.iloc[::5].head(30)
    poisoned = unsure[~unsure["line_id"].isin(checked["line_id"])]
    for wrong, rows in poisoned.groupby(np.where(poisoned["gold"] == "dialogue", "action", "dialogue")):
        label_store.add_labels(db, [int(i) for i in rows["line_id"]], str(wrong), annotator="import",
                               source="imported")
    suggestions_before = model_store.latest_predictions(db, script_id)
    _label(db, checked)
    v2, _, metrics = train_line_version(db)
    promotion = model_store.get_version(db, v2).promotion
    assert promotion["decision"] == "candidate" and "worse beyond noise" in promotion["reason"], promotion["reason"]
    comparison = promotion["comparison"]
    assert comparison["current_version"] == v1 and comparison["n"] == len(checked)
    assert comparison["only_current"] > comparison["only_candidate"] and comparison["p_value"] < 0.05
    assert model_store.current_version(db).version == v1  # the suggestions stay v1's
    after = model_store.latest_predictions(db, script_id)
    assert set(after["version"]) == {v1} and after["label"].tolist() == suggestions_before["label"].tolist()
    # The import is taken back (its lines re-labeled right by a person): the next retrain is not worse.
    _label(db, poisoned)
    v3, _, metrics = train_line_version(db)
    assert metrics["promotion"]["decision"] == "promoted", metrics["promotion"]
    assert "not worse beyond noise" in metrics["promotion"]["reason"]
    assert model_store.current_version(db).version == v3
    rows = {r["version"]: r for r in versions.line_versions(db)}
    assert [rows[v]["status"] for v in (v3, v2, v1, 0)] == ["current", "candidate", "previous", "previous"]
    assert "worse beyond noise" in rows[v2]["reason"]
    # if the current version's files are lost, the fallback is the version before it that was current, never
    # a candidate
    import shutil

    from labeling.training.lines import load_current

    shutil.rmtree(model_store.get_version(db, v3).path)
    with pytest.warns(UserWarning, match=f"version {v3} could not be loaded"):
        assert load_current(db).version == v1


def test_rolling_back_pins_the_version_and_retrains_only_add_candidates_until_unpinned(cli, sample):
    db, script_id, gold = sample
    _label(db, gold.iloc[0:400:20])
    v1, _, _ = train_line_version(db)
    _label(db, gold.iloc[1:400:20])
    v2, _, _ = train_line_version(db)
    assert model_store.current_version(db).version == v2
    [rolled] = cli.json_lines("rollback", str(v1))
    assert rolled == {"version": v1, "pinned": True, "kind": "lines"}
    assert set(model_store.latest_predictions(db, script_id)["version"]) == {v1}  # re-predicted with v1
    _label(db, gold.iloc[2:400:20])
    [run] = cli.json_lines("train", "--wait", "--timeout", "600")  # through the worker, as a retrain runs
    v3, metrics = run["version"], run
    assert metrics["promotion"]["decision"] == "candidate" and f"v{v1} is pinned" in metrics["promotion"]["reason"]
    assert model_store.current_version(db).version == v1
    from labeling.session.record import labels_since_last_model

    assert labels_since_last_model(db) == 0  # a candidate does not start another run on the next key press
    listed = {r["version"]: r for r in cli.json_lines("versions")}
    assert listed[v1]["status"] == "current" and listed[v1]["pinned"]
    assert listed[v3]["status"] == "candidate" and listed[v2]["status"] == "previous"
    assert versions.pin_note(db).startswith(f"v{v1} is pinned")
    from labeling.session.sync import model_status

    status = model_status(db)  # what the Label page says
    assert status["pinned"] and status["version"] == v1 and status["run"]["candidate"]
    assert cli.json_lines("unpin") == [{"unpinned": v1}]
    _label(db, gold.iloc[3:400:20])
    v4, _, metrics = train_line_version(db)
    assert metrics["promotion"]["decision"] == "promoted" and model_store.current_version(db).version == v4
    # Back to the shipped model (version 0), pinned too; a manual roll forward lifts the pin.
    assert cli.json_lines("rollback", "0")[0] == {"version": 0, "pinned": True, "kind": "lines"}
    assert model_store.current_version(db) is None and model_store.get_pin(db)["version"] == 0
    assert set(model_store.latest_predictions(db, script_id)["version"]) == {0}
    assert cli.json_lines("rollback", str(v4))[0]["pinned"] is False and model_store.get_pin(db) is None


def test_version_0_and_each_version_show_progressive_accuracy_with_n_and_an_interval(cli, sample):
    db, script_id, gold = sample
    listed = cli.json_lines("versions")
    assert [(r["version"], r["status"], r["n"]) for r in listed] == [(0, "current", 0)]
    card = versions.base_model_card()
    manifest = json.loads(Path(card["path"]).read_text())["metrics"]
    assert card["labeled_lines"] == sum(v["labeled_lines"] for v in manifest["trained_on"].values())
    assert "shipped base model" in listed[0]["reason"] and "held-out" in listed[0]["reason"]
    # a build without held-out scripts or CV: the figures the benches measured for it, from manifest.json
    measured = json.loads((Path(card["path"]).parent / "manifest.json").read_text())["evaluation"]
    assert f"held-out studio PDFs: accuracy {measured['held_out_studio']['accuracy']:.3f}" in listed[0]["reason"]
    assert f"grouped CV by movie: accuracy {measured['grouped_cv']['accuracy']:.3f}" in listed[0]["reason"]
    rows = gold.iloc[::40]
    _label(db, rows)
    suggested = model_store.latest_predictions(db, script_id).set_index("line_id")["label"]
    right = int((rows.set_index("line_id")["gold"] == suggested.loc[rows["line_id"]]).sum())
    [v0] = cli.json_lines("versions")
    assert (v0["n"], v0["accuracy"]) == (len(rows), right / len(rows))
    low, high = promotion.wilson_interval(right, len(rows))
    assert v0["ci95"] == [round(low, 4), round(high, 4)] and low < v0["accuracy"] <= high
    # an undone label no longer counts
    label_store.undo_last(db, annotator="ana")
    assert cli.json_lines("versions")[0]["n"] == len(rows) - 1


def test_a_line_run_row_carries_its_parameters_and_the_promotion(cli, sample):
    db, script_id, gold = sample
    _label(db, gold.iloc[::30])
    [run] = cli.json_lines("train", "--wait", "--timeout", "600")
    assert run["status"] == "done" and run["promotion"]["decision"] == "promoted"
    row = model_store.get_run(db, run["run_id"])
    params = row["params"]
    assert params["trigger"] == "cli" and params["adapter"]["booster"]["n_estimators"] > 0
    assert params["promotion"] == {"recent_labels": promotion.RECENT_LABELS, "folds": promotion.FOLDS,
                                   "alpha": promotion.ALPHA, "test": params["promotion"]["test"]}
    assert params["last_event_id"] == label_store.max_event_id(db) and params["n_human_labels"] == len(gold.iloc[::30])
