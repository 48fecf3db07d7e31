"""The Models page's helpers: versions, metrics plots, training runs (agreement: tests/test_team.py)."""

from __future__ import annotations

import pytest

import app_builders as builders
from app_pages import model_views as app_models
from store import models as model_store


def _metrics(accuracy):
    from models.evaluation import evaluate_lines

    true = ["action", "dialogue", "character", "action", "dialogue", "scene_heading"]
    pred = ["action", "dialogue", "character", "dialogue", "dialogue", "scene_heading"]
    evaluation = evaluate_lines(true, pred).to_dict()
    evaluation["full"]["accuracy"] = accuracy
    return {"holdout": evaluation}


def test_versions_learning_curve_and_metric_plots(db, pdf_script):
    builders.predict(db, pdf_script, n_labels=20, metrics=_metrics(0.7))
    v2 = builders.predict(db, pdf_script, n_labels=60, metrics=_metrics(0.9))
    versions = app_models.versions_table(db)
    assert list(versions["version"]) == [1, v2] and list(versions["current"]) == [False, True]
    assert list(app_models.learning_curve(versions)["accuracy"]) == [0.7, 0.9]
    assert app_models.confusion_png(_metrics(0.9)).startswith(b"\x89PNG")
    assert app_models.confusion_png({"cv_accuracy": 0.8}) is None
    f1 = app_models.per_class_f1(_metrics(0.9)).set_index("label")["f1"]
    assert f1["character"] == 1.0 and 0 < f1["dialogue"] < 1
    assert app_models.headline({"accuracy": 0.8}) == {"accuracy": 0.8, "macro_f1": None, "n_evaluated": None}
    # the line trainer's shape: how right the suggestions were on the labels given since the last version
    trained = {"suggestion_accuracy": 0.75, "suggestion_n": 4, "suggestion_eval": _metrics(0.75)["holdout"],
               "train_accuracy": 0.99}
    assert app_models.headline(trained) == {"accuracy": 0.75, "macro_f1": pytest.approx(0.867, abs=0.001),
                                            "n_evaluated": 6}
    assert app_models.headline({"suggestion_accuracy": 0.5, "suggestion_n": 2}) == {
        "accuracy": 0.5, "macro_f1": None, "n_evaluated": 2}


def test_runs_table_shows_time_so_far_for_a_running_run(db):
    import datetime as dt

    run_id = model_store.create_run(db, kind="lines")
    model_store.start_run(db, run_id, pid=1)
    started = dt.datetime.fromisoformat(model_store.get_run(db, run_id)["started_at"]).timestamp()
    frame = app_models.runs_table(db, now=started + 12.5)
    assert frame.loc[0, "status"] == "running" and frame.loc[0, "seconds"] == pytest.approx(12.5)
    model_store.finish_run(db, run_id, version=1, n_labels=3, metrics={}, duration_s=4.0)
    assert app_models.runs_table(db).loc[0, "seconds"] == 4.0



def test_complexity_versions_show_every_model_compared():
    metrics = {"department": "fx", "n_sequences": 40, "winner": "combined_bilstm", "verdict": "beats the baseline",
               "cv": {"majority": {"accuracy": 0.4, "mae": 0.8, "qwk": 0.0, "ci95": {"accuracy": [0.3, 0.5]}},
                      "combined_bilstm": {"accuracy": 0.6, "mae": 0.5, "qwk": 0.45,
                                          "ci95": {"accuracy": [0.45, 0.75], "qwk": [0.2, 0.6]}}}}
    table = app_models.complexity_comparison(metrics)
    assert list(table["model"]) == ["combined_bilstm", "majority"] and table.loc[0, "winner"]
    assert table.loc[0, "accuracy 95% CI"] == "0.45–0.75"
    assert app_models.headline(metrics) == {"accuracy": 0.6, "macro_f1": None, "n_evaluated": 40}
    assert app_models.complexity_comparison({"accuracy": 1}).empty
