"""The Models page's helpers: versions, metrics plots, training runs (agreement: tests/test_team.py)."""

from __future__ import annotations

import pytest

import app_builders as builders
from app_pages import model_views as app_models
from store import labels as label_store
from store import models as model_store
from store import scripts as script_store


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


def _label_lines(db, script_id, label: str, annotators: list[str], n: int | None = None) -> None:
    lines = script_store.lines_frame(db, script_id)["line_id"].tolist()[:n]
    for name in annotators:
        for line_id in lines:
            label_store.add_label(db, int(line_id), label, annotator=name)


def test_learning_curve_shows_each_version_with_n_and_its_interval_and_no_line_through_thin_points(db, pdf_script):
    v1 = builders.predict(db, pdf_script, label="action")
    _label_lines(db, pdf_script, "action", ["a"], n=5)  # 5 labels beside v1's suggestions, all agree
    v2 = builders.predict(db, pdf_script, label="action", n_labels=5)
    _label_lines(db, pdf_script, "dialogue", ["b", "c", "d"], n=10)  # 30 beside v2's, none agree
    v3 = builders.predict(db, pdf_script, label="dialogue", n_labels=35)
    _label_lines(db, pdf_script, "dialogue", ["e", "f", "g"], n=10)  # 30 beside v3's, all agree
    frame = app_models.learning_curve_frame(db).set_index("version")
    assert list(frame.index) == [v1, v2, v3]
    assert list(frame["n"]) == [5, 30, 30] and list(frame["accuracy"]) == [1.0, 0.0, 1.0]
    assert list(frame["trend"]) == [False, True, True]
    assert frame.loc[v1, "low"] < 0.6 < frame.loc[v3, "low"]  # 5 labels: a wide interval; 30: a narrow one
    spec = app_models.learning_curve_chart(frame.reset_index()).to_dict()
    marks = [layer["mark"]["type"] if isinstance(layer["mark"], dict) else layer["mark"] for layer in spec["layer"]]
    assert marks == ["errorbar", "point", "text", "line"]
    datasets = spec["datasets"]
    line_data = datasets[spec["layer"][3]["data"]["name"]]
    assert [row["name"] for row in line_data] == [f"v{v2}", f"v{v3}"]  # the line skips v1 (n = 5)


def test_a_version_compared_on_few_labels_says_so_in_plain_words():
    few = {"decision": "promoted", "comparison": {"n": 11, "current_correct": 0, "candidate_correct": 0,
                                                  "current_version": 3}}
    text = app_models.plain_why(few, 4)
    assert "only 11 new labels" in text and "%" not in text
    enough = {"decision": "candidate", "comparison": {"n": 50, "current_correct": 45, "candidate_correct": 30,
                                                      "current_version": 3}}
    assert app_models.plain_why(enough, 4) == ("kept as a candidate: worse than v3 beyond chance (right on 60% vs "
                                               "90% of the 50 newest labels)")


def test_the_base_model_has_one_description_with_its_held_out_figures_in_plain_words():
    text = app_models.base_model_description()
    manifest = app_models.base_manifest()
    lines = sum(v["labeled_lines"] for v in manifest["trained_on"].values())
    assert f"{lines:,} labeled lines" in text
    held = manifest["evaluation"]["held_out_studio"]
    assert f"{held['accuracy']:.1%}" in text and f"{held['lines']:,}" in text
    cv = manifest["evaluation"]["grouped_cv"]  # measured for this build's own recipe, and said so
    assert cv["this_recipe"] and f"Built the same way without each of {cv['films']} hand-labeled films" in text
    assert f"labeled {cv['accuracy']:.1%} of their {cv['lines']:,} lines right" in text
    assert "earlier version" not in text
    sure = manifest["evaluation"]["confidence"]["accuracy_most_confident_90"]
    assert f"the 90% of lines it was surest of were {sure:.2%} right" in text
    assert "--" not in text and "_" not in text and "{" not in text  # no flags, no JSON keys or internal names


def test_a_grouped_cv_of_an_earlier_recipe_is_said_to_be_an_earlier_version():
    manifest = {"trained_on": {"movieparse": {"scripts": 26, "labeled_lines": 6517}},
                "evaluation": {"grouped_cv": {"films": 26, "lines": 6517, "accuracy": 0.9833, "study_accuracy": 0.904}}}
    text = app_models.base_model_description(manifest)
    assert "an earlier version labeled 98.3% of 6,517 lines right (the published study's method: 90.4%)" in text
    assert "surest" not in text  # no confidence figure recorded, none said


def test_the_shipped_calibration_still_fits_the_shipped_model_files():
    """The manifest is one of the files the calibration is bound to: editing it (its evaluation) must come
    with the calibration re-bound, or every page would fall back to raw probabilities."""
    from labeling.training.lines import base_calibration

    found = base_calibration()
    assert found.fitted and found.warning is None, found.warning
