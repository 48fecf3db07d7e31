"""Sequence complexity: typed inputs, baselines, BiLSTMs, grouped CV with bootstrap intervals."""

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from models.complexity.baselines import (  # noqa: E402
    MajorityClassifier, TfidfLogisticClassifier, TfidfXGBClassifier,
)
from models.complexity.data import (  # noqa: E402
    COUNT_KEYS, TooFewRatingsError, character_name, docs_from_labeled_lines,
    heuristic_labeled_rows, most_uncertain_first, planted_docs, predict_with_uncertainty,
)
from models.complexity.evaluation import (  # noqa: E402
    bootstrap_interval, compare_models, compare_tag_models, cv_splits, default_factories,
    quadratic_weighted_kappa, summarize_ratings, tag_metrics,
)
from store.types import ScriptlabelError  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SCRIPTLABEL_SHARED_DATA", REPO.parent / "shared" / "data"))
ROWS = [
    ("sq0400", "scene_heading", "INT. TIM'S ROOM - NIGHT", 1),
    ("sq0400", "action", "Tim stares at the clock. Water drips.", 1),
    ("sq0400", "character", "TIM (V.O.)", 1),
    ("sq0400", "dialogue", "Not again.", 1),
    ("sq0400", "character", "TIM (CONT'D)", 1),
    ("sq0400", "parenthetical", "(whispering)", 1),
    ("sq0400", "dialogue", "Please.", 1),
    ("sq0400", "character", "MOM (O.S.)", 1),
    ("sq0400", "dialogue", "Bed!", 1),
    ("sq0400", "other", "12.", 1),
    ("sq0500", "scene_heading", "EXT. STREET - DAY", 2),
    ("sq0500", "transition", "CUT TO:", 2),
]


# -- typed input ------------------------------------------------------------------------------
def test_docs_from_labeled_lines_splits_components_and_counts():
    docs = docs_from_labeled_lines(ROWS)
    assert [d.sequence_id for d in docs] == ["sq0400", "sq0500"]
    tim = docs[0]
    assert tim.descriptions == ["INT. TIM'S ROOM - NIGHT", "Tim stares at the clock. Water drips."]
    assert tim.dialogue == ["Not again.", "(whispering)", "Please.", "Bed!"]
    assert tim.characters == ["TIM (V.O.)", "TIM (CONT'D)", "MOM (O.S.)"]
    assert tim.counts["distinct_characters"] == 2  # TIM with extensions is still TIM
    assert tim.counts["dialogue_lines"] == 3 and tim.counts["parenthetical_lines"] == 1
    assert tim.counts["page_eighths"] == 2  # 9 non-`other` lines at ~7 lines per eighth
    assert tim.counts["words"] == 23  # whitespace-separated, "-" included
    assert set(tim.counts) == set(COUNT_KEYS)
    assert docs[1].descriptions == ["EXT. STREET - DAY"] and docs[1].counts["transition_lines"] == 1


def test_docs_from_mapping_rows():
    rows = [dict(sequence_id=s, label=l, text=t, page=p) for s, l, t, p in ROWS]
    assert docs_from_labeled_lines(rows) == docs_from_labeled_lines(ROWS)


def test_character_name_strips_extensions():
    assert character_name("MAX (V.O.) (CONT'D)") == "MAX"
    assert character_name("  dr. lee  (cont'd)") == "DR. LEE"
    assert character_name("ANNA CONT'D") == "ANNA"


def test_heuristic_split_of_a_plain_text_scene():
    text = (
        "INT. KITCHEN - DAY\n\nTim stirs the soup.\n\n"
        "                    TIM\n          (quietly)\n          It's burning.\n\n"
        "The pot catches FIRE.\n\n                                        CUT TO:\n\n"
        "EXT. GARDEN - NIGHT\n\nSilence.\n"
    )
    labels = [(seq, label) for seq, label, _, _ in heuristic_labeled_rows(text)]
    assert labels == [(0, "scene_heading"), (0, "action"), (0, "character"), (0, "parenthetical"),
                      (0, "dialogue"), (0, "action"), (0, "transition"), (1, "scene_heading"),
                      (1, "action")]


# -- metrics ----------------------------------------------------------------------------------
def test_metrics_and_bootstrap_intervals_on_a_known_case():
    y_true = np.array([1, 2, 3, 4, 5] * 8)
    perfect = summarize_ratings(y_true, y_true, n_boot=200)
    assert perfect.metrics == {"accuracy": 1.0, "mae": 0.0, "qwk": 1.0}
    assert perfect.ci95["qwk"] == (1.0, 1.0) and perfect.ci95["mae"] == (0.0, 0.0)

    off_by_one = np.where(np.arange(40) % 2 == 0, y_true, np.clip(y_true + 1, 1, 5))
    s = summarize_ratings(y_true, off_by_one, n_boot=500)
    assert s.metrics["accuracy"] == pytest.approx(np.mean(off_by_one == y_true))
    assert s.metrics["mae"] == pytest.approx(np.mean(np.abs(off_by_one - y_true)))
    for name, value in s.metrics.items():
        lo, hi = s.ci95[name]
        assert lo <= value <= hi and lo < hi

    constant = np.full(40, 3)
    assert summarize_ratings(y_true, constant, n_boot=50).metrics["qwk"] == 0.0
    assert quadratic_weighted_kappa([1, 5], [5, 1]) == pytest.approx(-1.0)
    assert bootstrap_interval(lambda idx: float(len(idx)), 10, n_boot=20) == (10.0, 10.0)
    d = s.to_dict()
    assert set(d) == {"accuracy", "mae", "qwk", "ci95"} and len(d["ci95"]["qwk"]) == 2


def test_tag_metrics_known_case():
    y = np.array([[1, 0], [1, 0], [0, 1], [0, 1]])
    assert tag_metrics(y, y.astype(float)) == {"micro_f1": 1.0, "macro_f1": 1.0, "roc_auc": 1.0}
    # A constant score per fold ranks nothing: 0.5, even though the folds' constants differ.
    y = np.array([[1], [0], [1], [0], [0], [0]])
    proba = np.array([[0.5], [0.5], [0.5], [0.1], [0.1], [0.1]])
    assert tag_metrics(y, proba, folds=np.array([0, 0, 0, 1, 1, 1]))["roc_auc"] == 0.5


def test_grouped_splits_keep_scripts_together():
    y = np.array([1, 2, 3] * 6)
    groups = np.repeat(["a", "b", "c", "d", "e", "f"], 3)
    for train, test in cv_splits(y, groups, n_splits=3):
        assert not set(groups[train]) & set(groups[test])


# -- errors -----------------------------------------------------------------------------------
def test_too_few_ratings_is_a_named_actionable_error():
    docs, y, _ = planted_docs(12)
    with pytest.raises(TooFewRatingsError, match="rate at least 8") as info:
        compare_models(docs[:5], y[:5], default_factories(nets=False))
    assert isinstance(info.value, ScriptlabelError)
    with pytest.raises(TooFewRatingsError, match="same rating"):
        compare_models(docs, [3] * 12, default_factories(nets=False))
    with pytest.raises(TooFewRatingsError):
        TfidfLogisticClassifier().fit(docs, [2] * 12)


# -- baselines and uncertainty --------------------------------------------------------------
def test_baselines_learn_only_present_ratings_and_map_back():
    docs, y, _ = planted_docs(40, seed=3)
    y = np.where(y >= 4, 4, 2)  # ratings 2 and 4 only
    for model in (MajorityClassifier(), TfidfLogisticClassifier(),
                  TfidfLogisticClassifier(ordinal=True), TfidfXGBClassifier(n_estimators=20)):
        model.fit(docs, y)
        assert list(model.classes_) == [2, 4]
        proba = model.predict_proba(docs)
        assert proba.shape == (40, 2) and np.allclose(proba.sum(1), 1)
        assert set(model.predict(docs)) <= {2, 4}


def test_predictions_carry_uncertainty_and_rank_most_uncertain_first():
    docs, y, _ = planted_docs(40)
    model = TfidfLogisticClassifier().fit(docs, y)
    preds = predict_with_uncertainty(model, docs)
    p = preds[0]
    assert set(p.probabilities) == set(np.unique(y).tolist())
    assert sum(p.probabilities.values()) == pytest.approx(1.0)
    assert p.predicted in p.probabilities and 1 <= p.expected <= 5 and p.std >= 0
    assert 0 <= p.uncertainty <= 1
    ranked = most_uncertain_first(preds)
    assert [r.uncertainty for r in ranked] == sorted((r.uncertainty for r in preds), reverse=True)
    majority = predict_with_uncertainty(MajorityClassifier().fit(docs, y), docs[:1])[0]
    assert majority.uncertainty > 0.8  # the prior over 5 ratings is far from certain


def test_tag_baselines_are_compared_with_f1_and_auc():
    docs, _, tags = planted_docs(40)
    factories = {"majority": MajorityClassifier, "logistic": TfidfLogisticClassifier}
    result = compare_tag_models(docs, tags, factories, n_boot=100)
    out = result.to_dict()
    assert set(out) == {"cv", "winner", "verdict", "beats_majority"}
    assert out["beats_majority"] is (out["winner"] != "majority" and "beats the majority" in out["verdict"])
    for summary in out["cv"].values():
        assert set(summary) == {"micro_f1", "macro_f1", "roc_auc", "ci95"}
    assert out["cv"]["majority"]["roc_auc"] == 0.5
    assert out["cv"][result.winner]["roc_auc"] > 0.6


def test_complexity_modules_do_not_import_keras():
    code = ("import sys, models.complexity.evaluation, models.complexity.baselines, "
            "models.complexity.data; print('keras' in sys.modules or 'jax' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


# -- BiLSTMs ----------------------------------------------------------------------------------
def test_keras_model_save_load_round_trip(tmp_path):
    from models.complexity import nets  # the project's own module: an import error must fail, not skip
    docs, y, _ = planted_docs(24)
    # One short component plus the counts branch: every saved piece, little compilation.
    model = nets.SequenceBiLSTM(components=("characters",), use_counts=True, epochs=2, units=8,
                                embedding_dim=16, max_tokens=32).fit(docs, y)
    before = model.predict_proba(docs)
    path = model.save(tmp_path / "overall.keras")
    assert path.exists() and (tmp_path / "overall.vocab.json").exists()
    vocab = json.loads((tmp_path / "overall.vocab.json").read_text())
    assert vocab["classes"] == sorted(set(y.tolist()))
    loaded = nets.load_model(path)
    assert np.allclose(loaded.predict_proba(docs), before, atol=1e-6)
    assert list(loaded.predict(docs)) == list(model.predict(docs))
    with pytest.raises(nets.ModelFileError, match="missing"):
        nets.load_model(tmp_path / "nothing.keras")


@pytest.mark.slow
def test_planted_signal_is_recovered_well_above_the_majority_baseline():
    import models.complexity.nets  # noqa: F401 (the project's own module: an import error must fail, not skip)
    docs, y, tags = planted_docs(60)
    net = {"epochs": 25, "max_tokens": 64}
    factories = default_factories(nets=False, sentiment="without")
    factories["bilstm_descriptions"] = default_factories(net_params=net)["bilstm_descriptions"]
    result = compare_models(docs, y, factories, n_splits=3, n_boot=300)
    out = result.to_dict()
    assert set(out["cv"]) == {"majority", "logistic", "ordinal_logistic", "xgboost",
                              "bilstm_descriptions"}
    best = max(s.metrics["qwk"] for s in result.cv.values())
    assert best >= result.cv["majority"].metrics["qwk"] + 0.3, out
    assert result.winner != "majority" and "beats the majority baseline" in result.verdict
    # The BiLSTM itself learns the planted FX words, not only the baselines.
    assert result.cv["bilstm_descriptions"].metrics["qwk"] > 0.1, out
    print(json.dumps(out["cv"]["bilstm_descriptions"]), result.verdict)

    # The same family with sigmoid outputs learns the planted tags (FX words) too.
    tag_net = {**net, "epochs": 40}
    tag_factories = {"bilstm_descriptions": default_factories(tags=True, net_params=tag_net)[
        "bilstm_descriptions"]}
    tag_result = compare_tag_models(docs, tags, tag_factories, n_splits=3, n_boot=100)
    assert tag_result.cv["bilstm_descriptions"].metrics["roc_auc"] > 0.6, tag_result.to_dict()


def test_verdict_says_plainly_when_nothing_beats_the_baseline():
    rng = np.random.default_rng(0)
    docs, _, _ = planted_docs(30)
    noise = rng.integers(1, 4, 30)  # ratings unrelated to the content
    factories = {"logistic": TfidfLogisticClassifier,
                 "ordinal_logistic": lambda: TfidfLogisticClassifier(ordinal=True)}
    result = compare_models(docs, noise, factories, n_boot=200)
    assert "No model" in result.verdict and "majority baseline" in result.verdict


@pytest.mark.skipif(not (SHARED / "tripod").is_dir(),
                    reason=f"shared data not found at {SHARED}/tripod (set SCRIPTLABEL_SHARED_DATA)")
def test_tripod_genres_parse():
    sys.path.insert(0, str(REPO / "bench"))
    from doc_labels import read_genres

    meta = next((SHARED / "tripod" / "screenplays").glob("*/*_imdb_meta.txt"))
    genres = read_genres(meta)
    assert genres and all(g[0].isupper() for g in genres)
