"""The sequence labeler (models.lines.sequence): real Keras-on-JAX training on small scripts."""

import itertools
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from models.lines.classifier import LineClassifier, ModelLoadError, fit_adapter, fit_base
from models.lines.features import dense_features, script_order
from models.lines.sequence import (
    SequenceLabeler,
    SequenceModelError,
    SequenceParams,
    crf_log_partition,
    crf_loss,
    crf_marginals,
    forward,
    network_weights,
    text_grams,
    windows,
)
from store.types import LABELS
from test_line_classifier import FAST, make_scripts

ROOT = Path(__file__).resolve().parents[1]
TINY = SequenceParams(hidden=16, dense_dim=16, text_buckets=2**10, text_dim=8, max_grams=24, window=24, overlap=6,
                      epochs=25, batch_size=4, learning_rate=1e-2)


def test_windows_cover_every_line_with_overlap():
    assert windows(10, 24, 6) == [(0, 10)]
    spans = windows(100, 24, 6)
    assert spans[0] == (0, 24) and spans[-1][1] == 100
    assert all(end - start == 24 for start, end in spans)
    assert all(b[0] < a[1] for a, b in zip(spans, spans[1:]))  # consecutive windows overlap
    covered = np.zeros(100, bool)
    for start, end in spans:
        covered[start:end] = True
    assert covered.all()


def test_text_grams_are_stateless_and_case_sensitive():
    ids, w = text_grams(["CUT TO:", "cut to:", ""], TINY)
    again, _ = text_grams(["CUT TO:"], TINY)
    assert ids.shape == (3, TINY.max_grams) and (ids[0] == again[0]).all()
    assert set(ids[0][ids[0] > 0]) != set(ids[1][ids[1] > 0])
    assert (ids[2] == 0).all() and (w[2] == 0).all()
    np.testing.assert_allclose((w[0] ** 2).sum(), 1.0, rtol=1e-5)


def test_crf_marginals_equal_brute_force_enumeration():
    rng = np.random.default_rng(3)
    k, t = 3, 5
    emissions = rng.normal(size=(2, t, k)) * 2
    transitions, start, end = rng.normal(size=(k, k)), rng.normal(size=k), rng.normal(size=k)
    mask = np.array([[True] * t, [True] * 3 + [False] * 2])  # the second window is 3 lines long
    marginals, log_z = crf_marginals(emissions, mask, transitions, start, end)
    for b in range(2):
        m = int(mask[b].sum())
        paths = np.array(list(itertools.product(range(k), repeat=m)))
        scores = (start[paths[:, 0]] + end[paths[:, -1]] + emissions[b, np.arange(m), paths].sum(axis=1)
                  + transitions[paths[:, :-1], paths[:, 1:]].sum(axis=1))
        z = np.log(np.exp(scores).sum())
        np.testing.assert_allclose(log_z[b], z, rtol=1e-6)
        p = np.exp(scores - z)
        brute = np.stack([[p[paths[:, i] == c].sum() for c in range(k)] for i in range(m)])
        np.testing.assert_allclose(marginals[b, :m], brute, atol=1e-6)
        np.testing.assert_allclose(marginals[b, m:], 1.0 / k)


def test_output_is_checked_and_older_params_mean_softmax():
    assert SequenceParams.from_dict({"hidden": 8}).output == "softmax"  # saved before the CRF existed
    assert SequenceParams.from_dict(replace(TINY, output="crf").to_dict()).output == "crf"
    with pytest.raises(ValueError, match="output must be one of"):
        SequenceParams(output="hmm")


@pytest.fixture(scope="module")
def scripts():
    X, y = make_scripts(n_scripts=4, repeats=4)
    codes = np.array([LABELS.index(label) for label in y])
    return X, y, codes, dense_features(X)


@pytest.mark.slow
@pytest.mark.parametrize("aux, output, crf_scale", [(0.25, "softmax", 1.0), (0.0, "softmax", 1.0), (0.25, "crf", 1.0),
                                                    (0.0, "crf", 10.0)])
def test_labeler_learns_scripts_and_round_trips(scripts, tmp_path, aux, output, crf_scale):
    X, y, codes, dense = scripts
    groups = script_order(X)
    params = replace(TINY, aux_weight=aux, output=output, crf_scale=crf_scale)
    model = SequenceLabeler(params).fit(dense, X["text"].to_numpy(), codes, groups)
    assert set(model.model_.output_names) == ({"main", "next", "prev"} if aux else {"main"})
    proba = model.predict_proba(dense, X["text"].to_numpy(), groups)
    assert proba.shape == (len(X), len(LABELS))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-4)
    assert (proba.argmax(axis=1) == codes).mean() > 0.9
    model.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sequence.json", "sequence.keras", "sequence.weights.npz"]
    loaded = SequenceLabeler.load(tmp_path)
    np.testing.assert_allclose(loaded.predict_proba(dense, X["text"].to_numpy(), groups), proba, atol=1e-5)
    # Inference runs in numpy; it is the Keras network, padded windows included.
    scripts = model._scripts(dense, X["text"].to_numpy(), groups)
    spans = [(0, 0, TINY.window), (1, 5, 5 + TINY.window), (2, 3, 20)] + [(0, 0, TINY.window)] * (TINY.batch_size - 3)
    x, _, _ = model._batches(scripts, spans)
    keras_out = np.asarray(model.model_.predict_on_batch(x)["main"])
    weights = network_weights(model.model_)
    if output == "crf":
        # Keras gives the emission scores; the marginals are the gradient of log Z with respect to
        # them, which JAX differentiates through the training loss' forward algorithm.
        import jax

        crf = model.model_.get_layer("main")
        assert np.abs(weights["crf_transitions"]).max() > 0.05  # the transitions were trained (zeros at start)
        log_z = crf_log_partition(keras_out, weights["crf_transitions"], weights["crf_start"], weights["crf_end"],
                                  x["mask"])
        marginals, np_log_z = crf_marginals(keras_out, x["mask"], weights["crf_transitions"], weights["crf_start"],
                                            weights["crf_end"])
        np.testing.assert_allclose(np_log_z, np.asarray(log_z), rtol=1e-4)
        grad = jax.grad(lambda e: crf_log_partition(e, weights["crf_transitions"], weights["crf_start"],
                                                    weights["crf_end"], x["mask"]).sum())(keras_out)
        np.testing.assert_allclose(marginals[x["mask"]], np.asarray(grad)[x["mask"]], atol=1e-4)
        # The loss: a window whose lines are all labeled costs log Z minus its path's score (a random
        # path, so the difference is large beside float32 rounding of log Z).
        labels = np.where(x["mask"], np.random.default_rng(0).integers(0, len(LABELS), x["mask"].shape), -2)
        per_line = np.asarray(crf_loss(crf)(labels.astype(np.float32), keras_out))
        b = 0
        path = labels[b]
        score = (weights["crf_start"][path[0]] + weights["crf_end"][path[-1]] + keras_out[b, np.arange(len(path)), path].sum()
                 + weights["crf_transitions"][path[:-1], path[1:]].sum())
        np.testing.assert_allclose(per_line[b].sum(), np_log_z[b] - score, rtol=1e-4, atol=1e-3)
        keras_out = marginals
    np.testing.assert_allclose(forward(weights, x)[x["mask"]], keras_out[x["mask"]], atol=1e-5)


def _cycle_task(n_scripts: int, length: int, seen: float, seed: int):
    """Classes follow a fixed cycle 0 -> 1 -> 2 -> 3 -> 0 from a random start; a line's features show its
    class on a fraction `seen` of the lines and nothing on the rest, so most lines can only be labeled
    from their neighbours' labels."""
    rng = np.random.default_rng(seed)
    dense, codes, groups = [], [], []
    for s in range(n_scripts):
        c = (rng.integers(4) + np.arange(length)) % 4
        shown = rng.random(length) < seen
        f = np.zeros((length, 5), np.float32)
        f[shown, c[shown]] = 1.0
        f[:, 4] = rng.normal(size=length)
        dense.append(f)
        codes.append(c)
        groups.append(np.arange(s * length, (s + 1) * length))
    return np.vstack(dense), np.concatenate(codes), groups


@pytest.mark.slow
def test_crf_learns_a_label_to_label_rule_the_softmax_misses():
    dense, codes, groups = _cycle_task(12, 200, seen=0.2, seed=0)
    texts = np.array([""] * len(codes))
    train, test = groups[:8], groups[8:]
    train_codes = codes.copy()
    train_codes[np.concatenate(test)] = -1
    params = SequenceParams(hidden=4, dense_dim=8, text_buckets=2**8, text_dim=2, max_grams=4, window=32, overlap=8,
                            epochs=15, batch_size=8, learning_rate=1e-2, aux_weight=0.0)
    rows = np.concatenate(test)
    accuracy = {}
    for output in ("softmax", "crf"):
        model = SequenceLabeler(replace(params, output=output)).fit(dense, texts, train_codes, train)
        proba = model.predict_proba(dense, texts, test)
        np.testing.assert_allclose(proba[rows].sum(axis=1), 1.0, rtol=1e-4)
        accuracy[output] = (proba[rows].argmax(axis=1) == codes[rows]).mean()
    assert accuracy["crf"] > 0.9 and accuracy["crf"] > accuracy["softmax"] + 0.1, accuracy


@pytest.mark.slow
def test_unlabeled_lines_are_context_only(scripts):
    X, y, codes, dense = scripts
    partial = codes.copy()
    partial[X["script_id"].to_numpy() == "s0"] = -1  # a script nobody labeled: no training window
    model = SequenceLabeler(replace(TINY, epochs=2)).fit(dense, X["text"].to_numpy(), partial, script_order(X))
    assert model.predict_proba(dense[:5], X["text"].to_numpy()[:5], [np.arange(5)]).shape == (5, len(LABELS))
    with pytest.raises(ValueError, match="no labeled lines"):
        SequenceLabeler(TINY).fit(dense, X["text"].to_numpy(), np.full(len(X), -1), script_order(X))


@pytest.mark.slow
def test_a_saved_labeler_predicts_without_importing_keras(scripts, tmp_path):
    X, y, codes, dense = scripts
    SequenceLabeler(replace(TINY, epochs=1)).fit(dense, X["text"].to_numpy(), codes, script_order(X)).save(tmp_path)
    np.save(tmp_path / "dense.npy", dense)
    code = (
        "import sys, numpy as np\n"
        "from models.lines.sequence import SequenceLabeler\n"
        f"m = SequenceLabeler.load({str(tmp_path)!r})\n"
        f"d = np.load({str(tmp_path / 'dense.npy')!r})\n"
        "p = m.predict_proba(d, ['INT. HOUSE - DAY'] * len(d), [np.arange(len(d))])\n"
        "assert p.shape == (len(d), 7), p.shape\n"
        "print('keras' in sys.modules, 'jax' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False"]


@pytest.mark.slow
def test_a_crf_model_without_its_transitions_is_refused(scripts, tmp_path):
    X, y, codes, dense = scripts
    SequenceLabeler(replace(TINY, epochs=1, output="crf")).fit(dense, X["text"].to_numpy(), codes,
                                                              script_order(X)).save(tmp_path)
    with np.load(tmp_path / "sequence.weights.npz") as data:
        arrays = {k: data[k] for k in data.files if k != "crf_transitions"}
    np.savez(tmp_path / "sequence.weights.npz", **arrays)
    with pytest.raises(SequenceModelError, match="crf_transitions"):
        SequenceLabeler.load(tmp_path)


def test_missing_or_foreign_files_are_refused(tmp_path):
    with pytest.raises(SequenceModelError, match="missing"):
        SequenceLabeler.load(tmp_path)
    (tmp_path / "sequence.json").write_text(json.dumps({"kind": "something-else"}))
    (tmp_path / "sequence.keras").write_bytes(b"not a zip")
    with pytest.raises(SequenceModelError, match="not a line sequence model"):
        SequenceLabeler.load(tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["replace", "stage2"])
def test_base_with_sequence_labeler_saves_loads_and_adapts(tmp_path, mode):
    X, y = make_scripts(n_scripts=5, repeats=3)
    config = replace(FAST, sequence=replace(TINY, epochs=10), sequence_mode=mode)
    base = fit_base(X, y, config=config, n_jobs=1)
    outputs = base.base_outputs(X)
    assert outputs.sequence is not None
    if mode == "replace":
        np.testing.assert_allclose(outputs.proba, outputs.sequence)  # it stands in for stage 2
    else:
        assert [n for n in base.stage2_names_ if n.startswith("seq_")] == [f"seq_{label}" for label in LABELS]
    base.save(tmp_path / "m")
    assert {"sequence.keras", "sequence.json", "config.json"} <= {p.name for p in (tmp_path / "m").iterdir()}
    loaded = LineClassifier.load(tmp_path / "m", n_jobs=1)
    np.testing.assert_allclose(loaded.predict_proba(X), outputs.proba, atol=1e-5)
    # The adapter reads the base's final (sequence) probabilities and the reading-state features.
    adapter = fit_adapter(loaded, X, y, outputs=outputs, n_jobs=1)
    assert "paren_depth" in adapter.feature_names_ and "since_cue" in adapter.feature_names_
    assert (adapter.predict(X, outputs=outputs) == np.array(y, dtype=object)).mean() > 0.9
    (tmp_path / "m" / "sequence.keras").unlink()
    with pytest.raises(ModelLoadError, match="sequence.keras is missing"):
        LineClassifier.load(tmp_path / "m")
