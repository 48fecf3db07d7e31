import json

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from models.lines.features import FeatureConfig
from models.lines.classifier import (
    AdapterConfig,
    BoosterParams,
    ContentParams,
    LineAdapter,
    LineClassifier,
    LineModelConfig,
    ModelLoadError,
    TrainingDataError,
    fit_adapter,
    fit_base,
    make_line_classifier,
    sample_rows,
)
from models.lines.adapter import anchor_rows
from store.types import LABELS, ScriptlabelError

# An original little scene, (text, label); layouts vary per script below.
SCENE = [
    ("INT. LIGHTHOUSE - NIGHT", "scene_heading"),
    ("Rain hammers the glass. Mara climbs the stairs,", "action"),
    ("a lantern swinging in her fist.", "action"),
    ("MARA", "character"),
    ("(breathless)", "parenthetical"),
    ("Anyone up here?", "dialogue"),
    ("OTTO (O.S.)", "character"),
    ("Only the gulls, and me.", "dialogue"),
    ("Otto steps out of the dark.", "action"),
    ("CUT TO:", "transition"),
    ("EXT. CLIFF - DAWN", "scene_heading"),
    ("MARA", "character"),
    ("Then who lit the lamp?", "dialogue"),
    ("2.", "other"),
]
OFFSET = {"scene_heading": 0, "action": 0, "dialogue": 1, "parenthetical": 1.5, "character": 2.2,
          "transition": 4.5, "other": 5}


def make_scripts(n_scripts: int = 6, repeats: int = 3, seed: int = 0) -> tuple[pd.DataFrame, list]:
    rng = np.random.default_rng(seed)
    rows, labels = [], []
    for s in range(n_scripts):
        margin, step = float(rng.integers(0, 15)), float(rng.choice([6.0, 7.2, 10.0]))
        line_no = 0
        for _ in range(repeats):
            for text, label in SCENE:
                line_no += 1
                indent = margin + OFFSET[label] * step
                gap = 0.0 if label in ("dialogue", "parenthetical") or (label == "action" and text[0].islower()) else 1.0
                rows.append(dict(script_id=f"s{s}", line_no=line_no, page=1 + line_no // 30, text=text,
                                 indent=indent, gap_before=gap, x0=indent * 7.2, y0=float(line_no),
                                 x1=(indent + len(text)) * 7.2, y1=line_no + 1.0))
                labels.append(label)
    return pd.DataFrame(rows), labels


FAST = LineModelConfig(
    features=FeatureConfig(),
    content=ContentParams(char_features=2**12, word_features=2**10, epochs=5),
    stage1=BoosterParams(n_estimators=15, max_depth=3, learning_rate=0.3),
    stage2=BoosterParams(n_estimators=10, max_depth=3, learning_rate=0.3),
    inner_folds=3,
)


@pytest.fixture(scope="module")
def trained():
    X, y = make_scripts()
    return X, y, fit_base(X, y, config=FAST, n_jobs=1)


def test_fit_predicts_all_seven_classes(trained):
    X, y, model = trained
    proba = model.predict_proba(X)
    assert proba.shape == (len(X), len(LABELS))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    assert list(model.classes_) == list(LABELS)
    assert (model.predict(X) == np.array(y, dtype=object)).mean() > 0.9
    assert model.config == FAST
    assert model.get_params()["stage1"] is FAST.stage1  # plain scikit-learn parameters
    assert clone(model).get_params() == model.get_params()


def test_missing_classes_still_give_seven_columns():
    X, y = make_scripts(n_scripts=3, repeats=2)
    keep = [label if label in ("action", "dialogue", "character") else None for label in y]
    model = fit_base(X, keep, config=FAST, n_jobs=1)
    proba = model.predict_proba(X)
    assert proba.shape == (len(X), 7)
    # classes never seen get (almost) no probability
    assert proba[:, LABELS.index("transition")].max() < 0.2
    assert set(model.predict(X)) <= {"action", "dialogue", "character"}


def test_labels_as_indices_and_context_lines():
    X, y = make_scripts(n_scripts=3, repeats=2)
    codes = [LABELS.index(label) for label in y]
    codes[:5] = [-1] * 5  # context only
    model = make_line_classifier(FAST, n_jobs=1).fit(X, codes)
    assert model.training_summary_["labeled_lines"] == len(y) - 5


def test_save_load_round_trip_is_identical(trained, tmp_path):
    X, _, model = trained
    model.save(tmp_path / "m")
    files = sorted(p.name for p in (tmp_path / "m").iterdir())
    assert files == ["config.json", "content.npz", "stage1.ubj", "stage2.ubj"]
    loaded = LineClassifier.load(tmp_path / "m", n_jobs=1)
    expected = model.predict_proba(X)
    np.testing.assert_allclose(loaded.predict_proba(X), expected, rtol=1e-3, atol=2e-3)
    assert (loaded.predict(X) == model.predict(X)).all()
    meta = json.loads((tmp_path / "m" / "config.json").read_text())
    assert meta["labels"] == list(LABELS)


def test_saved_content_weights_are_plain_arrays(trained, tmp_path):
    _, _, model = trained
    model.save(tmp_path / "m")
    with np.load(tmp_path / "m" / "content.npz", allow_pickle=False) as data:
        assert set(data.files) == {"row", "col", "value", "shape", "intercept"}


def test_corrupt_model_file_raises_model_load_error(trained, tmp_path):
    _, _, model = trained
    model.save(tmp_path / "m")
    (tmp_path / "m" / "stage1.ubj").write_bytes(b"not a booster at all")
    with pytest.raises(ModelLoadError, match="stage1.ubj") as info:
        LineClassifier.load(tmp_path / "m")
    assert isinstance(info.value, ScriptlabelError)


def test_missing_or_broken_config_raises(trained, tmp_path):
    with pytest.raises(ModelLoadError, match="no config.json"):
        LineClassifier.load(tmp_path / "empty")
    _, _, model = trained
    model.save(tmp_path / "m")
    (tmp_path / "m" / "config.json").write_text("{broken")
    with pytest.raises(ModelLoadError, match="not valid JSON"):
        LineClassifier.load(tmp_path / "m")
    model.save(tmp_path / "m2")
    (tmp_path / "m2" / "stage2.ubj").unlink()
    with pytest.raises(ModelLoadError, match="missing"):
        LineClassifier.load(tmp_path / "m2")


def test_no_labels_or_one_class_raise_actionable_errors():
    X, y = make_scripts(n_scripts=2, repeats=1)
    with pytest.raises(TrainingDataError, match="no labeled lines"):
        make_line_classifier(FAST).fit(X, [None] * len(X))
    with pytest.raises(TrainingDataError, match="another kind"):
        make_line_classifier(FAST).fit(X, ["action"] * len(X))
    with pytest.raises(TrainingDataError, match="unknown label"):
        make_line_classifier(FAST).fit(X, ["dialog"] * len(X))
    with pytest.raises(TrainingDataError, match="one label"):
        make_line_classifier(FAST).fit(X, y[:-1])


def test_unfitted_model_says_so():
    X, _ = make_scripts(n_scripts=1, repeats=1)
    with pytest.raises(ModelLoadError, match="not trained"):
        make_line_classifier(FAST).predict_proba(X)


def test_adapter_learns_a_scripts_convention(trained, tmp_path):
    X, y, base = trained
    # A new script whose character cues are all written in lower case at the action margin:
    # the base gets them wrong; a few labels on this script teach the adapter.
    new, new_y = make_scripts(n_scripts=1, repeats=4, seed=7)
    new["script_id"] = "odd"
    cue = np.array([label == "character" for label in new_y])
    new.loc[cue, "text"] = new.loc[cue, "text"].str.title()
    new.loc[cue, "indent"] = new["indent"].min()
    new.loc[cue, "x0"] = new["x0"].min()
    outputs = base.base_outputs(new)
    before = (base.predict(new)[cue] == "character").mean()
    labels = [label if i < 28 else None for i, label in enumerate(new_y)]  # the first two scenes
    train_X = pd.concat([X, new], ignore_index=True)
    train_y = list(y) + labels
    adapter = fit_adapter(base, train_X, train_y, current_script="odd", n_jobs=1,
                          config=AdapterConfig(booster=BoosterParams(n_estimators=20, max_depth=3, learning_rate=0.3,
                                                                     subsample=1.0, colsample_bytree=1.0)))
    after_pred = adapter.predict(new, outputs=outputs)
    held_out = cue & (np.arange(len(new)) >= 28)
    assert (after_pred[held_out] == "character").mean() >= max(before, 0.75)
    adapter.save(tmp_path / "a")
    again = LineAdapter.load(tmp_path / "a", base, n_jobs=1)
    np.testing.assert_allclose(again.predict_proba(new, outputs=outputs), adapter.predict_proba(new, outputs=outputs),
                               rtol=1e-3, atol=2e-3)


def test_adapter_with_no_trees_reproduces_the_base(trained):
    X, y, base = trained
    adapter = fit_adapter(base, X, y, n_jobs=1, config=AdapterConfig(booster=BoosterParams(n_estimators=0)))
    np.testing.assert_allclose(adapter.predict_proba(X), base.predict_proba(X), atol=1e-4)


def test_anchors_keep_a_few_labels_from_flipping_a_whole_class(trained):
    X, y, base = trained
    # A new script opening with a notice written like action at the action margin, which people label
    # `other`: three such labels (and one line of dialogue) are all the adapter learns from.
    new, new_y = make_scripts(n_scripts=1, repeats=6, seed=11)
    action_row = new[[label == "action" for label in new_y]].iloc[0]
    notice = ["This script is the property of a studio and may not be copied.",
              "No part of it may be quoted without written consent of the owner.",
              "Disposal of the script copy does not alter any of the restrictions.",
              "Any copy of it that is found should be returned to the owner."]
    front = pd.DataFrame([dict(action_row, text=text, page=1, gap_before=0.0) for text in notice])
    new = pd.concat([front, new], ignore_index=True)
    new["script_id"], new["line_no"] = "new", np.arange(1, len(new) + 1)
    new["page"] = np.where(np.arange(len(new)) < len(notice), 1, new["page"] + 1)
    new_y = ["other"] * len(notice) + list(new_y)
    labels = [label if i in (0, 1, 2, 30) else None for i, label in enumerate(new_y)]
    outputs = base.base_outputs(new)
    action = np.array([label == "action" for label in new_y]) & np.array([label is None for label in labels])
    assert (base.predict(new)[action] == "action").all()

    def kept(anchor_weight: float) -> float:
        # this toy base is less sure of itself than a real one, hence the lower anchor_p
        config = AdapterConfig(anchor_weight=anchor_weight, anchor_p=0.6)
        adapter = fit_adapter(base, new, labels, current_script="new", n_jobs=1, config=config)
        return float((adapter.predict(new, outputs=outputs)[action] == "action").mean())

    assert kept(0.0) < 0.5  # without anchors the notice's labels turn the script's action into `other`
    assert kept(0.1) == 1.0


def test_anchor_rows_are_the_sure_unlabeled_lines_of_the_script_sampled_and_reweighted():
    codes = np.array([0, -1, -1, -1, 2, -1])
    proba = np.full((6, len(LABELS)), 0.01, dtype=np.float32)
    proba[:, 3] = [0.5, 0.99, 0.5, 0.99, 0.99, 0.99]
    in_script = np.array([True, True, True, True, True, False])
    rows, targets, scale = anchor_rows(codes, proba, in_script, min_p=0.97, max_rows=10, seed=0)
    assert list(rows) == [1, 3] and list(targets) == [3, 3] and list(scale) == [1.0, 1.0]
    many = np.full(100, -1)
    sure = np.tile(proba[1], (100, 1))
    rows, _, scale = anchor_rows(many, sure, np.ones(100, bool), min_p=0.97, max_rows=20, seed=0)
    assert len(rows) == 20 and len(set(rows)) == 20 and np.allclose(scale, 5.0)


def test_row_sampling_keeps_every_hard_or_current_row_and_stays_unbiased():
    rng = np.random.default_rng(0)
    n = 30_000
    codes = rng.integers(0, len(LABELS), n)
    codes[::7] = -1  # context lines, never boosted on
    proba = np.full((n, len(LABELS)), 0.001, dtype=np.float32)
    proba[np.arange(n), np.maximum(codes, 0)] = 0.99
    hard = rng.random(n) < 0.05  # the base is wrong on these
    proba[hard] = 1.0 / len(LABELS)
    keep = np.zeros(n, bool)
    keep[-500:] = True  # the script being labeled
    weights = np.ones(n, dtype=np.float32)
    rows, w = sample_rows(codes, proba, weights, keep, max_rows=5000, sure_p=0.97, seed=0)
    labeled = codes >= 0
    assert len(rows) <= 5000 and np.all(np.diff(rows) > 0) and np.all(labeled[rows])
    assert set(np.flatnonzero(hard & labeled)) <= set(rows)
    assert set(np.flatnonzero(keep & labeled)) <= set(rows)
    # total weight is preserved: the sampled easy rows stand for all the easy ones
    assert w.sum() == pytest.approx(labeled.sum(), rel=1e-3)
    # below the cap nothing is dropped or reweighted
    small = np.where(np.arange(n) < 3000, codes, -1)
    rows, w = sample_rows(small, proba, weights, keep, max_rows=5000, sure_p=0.97, seed=0)
    assert np.array_equal(rows, np.flatnonzero(small >= 0)) and np.all(w == 1)


def test_adapter_saved_with_all_features_still_loads(trained, tmp_path):
    X, y, base = trained
    full = fit_adapter(base, X, y, n_jobs=1, config=AdapterConfig(compact=False))
    compact = fit_adapter(base, X, y, n_jobs=1)
    assert len(compact.feature_names_) < len(full.feature_names_)
    for name, adapter in (("full", full), ("compact", compact)):
        adapter.save(tmp_path / name)
        again = LineAdapter.load(tmp_path / name, base, n_jobs=1)
        np.testing.assert_allclose(again.predict_proba(X), adapter.predict_proba(X), atol=2e-3)


SEED_MAP = {"scene_heading": "S", "action": "S", "transition": "S", "character": "C", "dialogue": "D",
            "parenthetical": "D", "other": "O"}


def _with_shots(seed: int, script_id: str) -> tuple[pd.DataFrame, list]:
    """A script whose scenes open with a camera direction after the heading, labeled `shot`."""
    new, new_y = make_scripts(n_scripts=1, repeats=8, seed=seed)
    rows, labels = [], []
    shots = iter(["ANGLE ON THE LANTERN", "CLOSE ON MARA'S HAND", "INSERT - THE LOGBOOK", "POV - THROUGH THE GLASS"] * 8)
    for (_, row), label in zip(new.iterrows(), new_y):
        rows.append(dict(row))
        labels.append(label)
        if label == "scene_heading":
            text = next(shots)
            rows.append(dict(row, text=text, x1=row["x0"] + len(text) * 7.2))
            labels.append("shot")
    out = pd.DataFrame(rows)
    out["script_id"], out["line_no"] = script_id, np.arange(1, len(out) + 1)
    return out, labels


def test_adapter_predicts_a_projects_merged_and_new_classes(trained, tmp_path):
    from models.lines.classifier import ClassScheme

    X, y, base = trained
    scheme = ClassScheme(classes=("S", "C", "D", "O", "shot"), class_map=SEED_MAP)
    new, new_y = _with_shots(3, "shots")
    shot = np.array([label == "shot" for label in new_y])
    labels = [label if i < 60 else None for i, label in enumerate(new_y)]  # built-in labels map to S/C/D/O
    assert sum(label == "shot" for label in labels if label) >= 4
    adapter = fit_adapter(base, new, labels, current_script="shots", scheme=scheme, n_jobs=1)
    assert list(adapter.classes_) == ["S", "C", "D", "O", "shot"]
    outputs = base.base_outputs(new)
    proba = adapter.predict_proba(new, outputs=outputs)
    assert proba.shape == (len(new), 5)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-4)
    rest = np.arange(len(new)) >= 60
    pred = adapter.predict(new, outputs=outputs)
    assert (pred[rest & shot] == "shot").mean() >= 0.9
    expected = np.array([SEED_MAP.get(label, label) for label in new_y], dtype=object)
    assert (pred[rest & ~shot] == expected[rest & ~shot]).mean() >= 0.9  # merged classes: members summed
    adapter.save(tmp_path / "scheme")
    again = LineAdapter.load(tmp_path / "scheme", base, n_jobs=1)
    assert again.scheme == scheme
    np.testing.assert_allclose(again.predict_proba(new, outputs=outputs), proba, atol=2e-3)


def test_a_scheme_must_place_every_built_in_label():
    from models.lines.classifier import ClassScheme, SchemeError

    with pytest.raises(SchemeError, match="'transition' maps to no class"):
        ClassScheme(classes=("S", "C", "D", "O"), class_map={k: v for k, v in SEED_MAP.items() if k != "transition"})
    with pytest.raises(SchemeError, match="not one of"):
        ClassScheme(classes=LABELS, class_map={"action": "shot"})


def test_one_labeled_class_is_enough_for_the_adapter(trained):
    X, y, base = trained
    only_dialogue = [label if label == "dialogue" and script == "s0" else None
                     for label, script in zip(y, X["script_id"])]
    # the anchors (the script's unlabeled lines the base is sure of; this toy base is less sure than a real one)
    # hold the other classes where the base put them
    adapter = fit_adapter(base, X, only_dialogue, n_jobs=1, current_script="s0", config=AdapterConfig(anchor_p=0.6))
    pred = adapter.predict(X)
    assert (pred == base.predict(X)).mean() >= 0.95
    with pytest.raises(TrainingDataError, match="no labeled lines"):
        fit_adapter(base, X, [None] * len(X), n_jobs=1)


def test_adapter_saved_before_class_schemes_loads_as_the_built_in_labels(trained, tmp_path):
    X, y, base = trained
    old_style = AdapterConfig(follow_temperature=1.0, hessian_floor=0.0, agreement=False)
    adapter = fit_adapter(base, X, y, n_jobs=1, config=old_style)
    adapter.save(tmp_path / "old")
    meta = json.loads((tmp_path / "old" / "adapter.json").read_text())
    for key in ("follow_temperature", "margin_floor", "hessian_floor", "agreement", "agreement_prior", "min_follow", "min_share"):
        del meta["config"][key]
    del meta["scheme"]
    (tmp_path / "old" / "adapter.json").write_text(json.dumps(meta))
    again = LineAdapter.load(tmp_path / "old", base, n_jobs=1)
    assert list(again.classes_) == list(LABELS) and again.config == old_style
    np.testing.assert_allclose(again.predict_proba(X), adapter.predict_proba(X), atol=2e-3)
