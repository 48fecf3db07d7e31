"""A sequence labeler over a script's lines (Rei 2017, "Semi-supervised multitask learning for
sequence labeling"); the only module of the line model that imports Keras.

Each line of a script is one step: its dense features (`models.lines.features`, standardized) plus
a learned encoding of its text (an embedding bag over hashed character 2–4-grams) plus optional
extra columns (the stacked model passes stage-1 probabilities). A bidirectional LSTM reads the
script in windows; a hidden layer over the two states scores each class per line, and either a
softmax labels each line on its own or a linear-chain CRF (`output="crf"`: learned class-to-class
transition scores, start and end scores) labels the window jointly. The auxiliary
objective: the forward state alone predicts the *next* line's class, the backward state alone the
*previous* line's — so each direction must carry what comes before/after a line, which is the
structure a line-by-line model misses (the continuation of an open parenthetical, a cue two lines up).

The CRF is written here with `keras.ops` (no maintained CRF layer runs on Keras 3's JAX backend:
TensorFlow Addons' and keras-contrib's are TensorFlow-only and retired). Training minimises the
negative log-likelihood by the forward algorithm in log space; lines nobody labeled inside a window
are summed over (the numerator is the same forward pass restricted to the labeled lines' classes).
Inference runs forward-backward in numpy and gives each line its marginal probabilities, so a CRF
model's outputs are per-line probabilities like the softmax's; the label is their argmax (the
minimum-risk choice for per-line accuracy, and always the class the probabilities show).

Long scripts are cut into windows of `window` lines overlapping by `overlap`; a line takes the
prediction of the window in which it sits farthest from an edge. Inputs are padded to fixed shapes
(window length, batches of `batch_size` windows), so JAX compiles the network once per shape.

Saved as `sequence.keras` (Keras' own format; only layers defined here and in Keras, loaded in
safe mode) beside `sequence.json` (hyper-parameters, feature scaling).
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import HashingVectorizer
from threadpoolctl import threadpool_limits

from models.lines.labels import N_CLASSES
from store.types import LABELS, ScriptlabelError

FORMAT_VERSION = 1
OUTPUTS = ("softmax", "crf")


class SequenceModelError(ScriptlabelError):
    """A saved sequence model is missing, incomplete or was written by something else."""


@dataclass(frozen=True)
class SequenceParams:
    """Hyper-parameters of the sequence labeler (saved with it)."""

    hidden: int = 64  # LSTM units per direction
    dense_dim: int = 96  # projection of the dense features
    text_buckets: int = 2**15  # hashed character n-gram ids
    text_dim: int = 32  # embedding width of the text bag
    max_grams: int = 64  # n-gram ids kept per line (a hash-ordered, i.e. pseudo-random, subset)
    window: int = 128
    overlap: int = 32
    epochs: int = 10
    batch_size: int = 16
    learning_rate: float = 3e-3
    dropout: float = 0.2
    aux_weight: float = 0.25  # weight of each auxiliary loss; 0 = no auxiliary objective
    output: str = "softmax"  # "softmax" (each line on its own) or "crf" (linear-chain CRF over the window)
    # The CRF's scores are stored divided by this, so Adam moves them this many times faster than the
    # network's weights (their gradients are small beside the emissions', and they start at 0).
    crf_scale: float = 1.0
    seed: int = 0

    def __post_init__(self):
        if self.output not in OUTPUTS:
            raise ValueError(f"SequenceParams.output must be one of {OUTPUTS}, not {self.output!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "SequenceParams":
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def _keras():
    # Keras reads its backend once, at first import; this project runs it on JAX.
    os.environ.setdefault("KERAS_BACKEND", "jax")
    import keras

    _register(keras)
    return keras


_LAYERS: dict = {}


def _register(keras) -> None:
    if _LAYERS:
        return

    @keras.saving.register_keras_serializable(package="scriptlabel_lines")
    class EmbeddingBag(keras.layers.Layer):
        """Weighted sum of embeddings of each line's n-gram ids: (B, T, G) ids, weights -> (B, T, dim)."""

        def __init__(self, buckets: int, dim: int, **kwargs):
            super().__init__(**kwargs)
            self.buckets, self.dim = buckets, dim

        def build(self, input_shape):
            self.table = self.add_weight(shape=(self.buckets, self.dim), initializer="glorot_uniform", name="table")

        def call(self, inputs):
            ids, weights = inputs
            vectors = keras.ops.take(self.table, ids, axis=0)
            return keras.ops.sum(vectors * keras.ops.expand_dims(weights, -1), axis=2)

        def compute_output_shape(self, input_shape):
            return tuple(input_shape[0][:2]) + (self.dim,)

        def get_config(self):
            return {**super().get_config(), "buckets": self.buckets, "dim": self.dim}

    @keras.saving.register_keras_serializable(package="scriptlabel_lines")
    class LinearChainCRF(keras.layers.Layer):
        """Holds the CRF's transition, start and end scores; passes the emission scores through.

        The scores enter the training loss (`crf_loss`), which reads them while Keras computes losses
        (inside its stateless scope, as for regularization losses, so they receive gradients)."""

        def __init__(self, n_classes: int, scale: float = 1.0, **kwargs):
            super().__init__(**kwargs)
            self.n_classes, self.scale = n_classes, scale
            self.supports_masking = True  # the mask passes on to the loss, which ignores padded lines

        def build(self, input_shape):
            k = self.n_classes
            self.transitions = self.add_weight(shape=(k, k), initializer="zeros", name="transitions")
            self.start = self.add_weight(shape=(k,), initializer="zeros", name="start")
            self.end = self.add_weight(shape=(k,), initializer="zeros", name="end")

        def scores(self):
            """(transitions, start, end) as the CRF uses them."""
            return self.scale * self.transitions, self.scale * self.start, self.scale * self.end

        def call(self, emissions):
            return emissions

        def compute_output_shape(self, input_shape):
            return input_shape

        def get_config(self):
            return {**super().get_config(), "n_classes": self.n_classes, "scale": self.scale}

    _LAYERS["EmbeddingBag"] = EmbeddingBag
    _LAYERS["LinearChainCRF"] = LinearChainCRF


PADDING = -2  # CRF targets: a class code, -1 for a line nobody labeled, PADDING past the window's end


def crf_log_partition(emissions, transitions, start, end, mask):
    """log Z per window by the forward algorithm in `keras.ops`: emissions (B, T, K), mask (B, T)
    true on a prefix of each window. Steps past the mask keep the forward scores."""
    ops = _keras().ops
    steps = ops.transpose(emissions, (1, 0, 2))  # time-major for the scan
    step_mask = ops.expand_dims(ops.transpose(ops.cast(mask, "bool"), (1, 0)), -1)
    alpha0 = start[None, :] + steps[0]

    def step(alpha, inputs):
        e, m = inputs
        nxt = ops.logsumexp(ops.expand_dims(alpha, 2) + transitions[None], axis=1) + e
        alpha = ops.where(m, nxt, alpha)
        return alpha, alpha

    alpha, _ = ops.scan(step, alpha0, (steps[1:], step_mask[1:]))
    return ops.logsumexp(alpha + end[None, :], axis=1)


def crf_loss(layer):
    """Keras loss for the CRF output: y_true (B, T) class codes, -1 unlabeled, `PADDING` past the end;
    y_pred the emission scores. A window's loss is log Z minus log Z over the paths that agree with its
    labeled lines (the unlabeled ones are summed over), spread evenly over its lines: Keras then
    averages per line (padding masked) as it does the softmax's cross-entropy, so the scales match."""

    def loss(y_true, y_pred):
        ops = _keras().ops
        codes = ops.cast(y_true, "int32")
        mask = codes != PADDING
        agree = ops.where(ops.expand_dims(codes >= 0, -1), ops.one_hot(ops.maximum(codes, 0), layer.n_classes),
                          ops.ones_like(y_pred))
        restricted = y_pred + (1.0 - agree) * -1e4
        both = ops.concatenate([y_pred, restricted], axis=0)
        z = crf_log_partition(both, *layer.scores(), ops.concatenate([mask, mask], axis=0))
        b = ops.shape(y_pred)[0]
        lines = ops.maximum(ops.sum(ops.cast(mask, y_pred.dtype), axis=1), 1.0)
        per_line = (z[:b] - z[b:]) / lines
        return ops.where(mask, ops.expand_dims(per_line, 1), 0.0)

    return loss


def text_grams(texts: Sequence[str], params: SequenceParams) -> tuple[np.ndarray, np.ndarray]:
    """(ids, weights) per line, shape (n, max_grams): hashed character 2–4-grams (case kept), id 0 = none."""
    texts = ["" if t is None else str(t).strip() for t in texts]
    vec = HashingVectorizer(analyzer="char_wb", ngram_range=(2, 4), lowercase=False,
                            n_features=params.text_buckets - 1, alternate_sign=False, norm="l2", dtype=np.float32)
    A = vec.transform(texts).tocsr()
    n, g = len(texts), params.max_grams
    ids = np.zeros((n, g), dtype=np.int32)
    weights = np.zeros((n, g), dtype=np.float32)
    row = np.repeat(np.arange(n), np.diff(A.indptr))
    pos = np.arange(len(A.indices)) - A.indptr[row]
    keep = pos < g
    ids[row[keep], pos[keep]] = A.indices[keep] + 1
    weights[row[keep], pos[keep]] = A.data[keep]
    # Rescale the kept subset to unit length, as the whole line's vector was.
    norm = np.sqrt((weights ** 2).sum(axis=1, keepdims=True))
    weights /= np.maximum(norm, 1e-6)
    return ids, weights


PREDICT_WINDOWS = 64  # windows per numpy forward pass (memory: the text bag gathers windows x lines x grams x dim)
WEIGHT_NAMES = ("dense_kernel", "dense_bias", "text_table", "fwd_kernel", "fwd_recurrent", "fwd_bias", "bwd_kernel",
                "bwd_recurrent", "bwd_bias", "hidden_kernel", "hidden_bias", "main_kernel", "main_bias")


CRF_WEIGHT_NAMES = ("crf_transitions", "crf_start", "crf_end")


def network_weights(model) -> dict[str, np.ndarray]:
    """The trained network's weights by role (what `forward` reads)."""
    fwd_k, fwd_r, fwd_b, bwd_k, bwd_r, bwd_b = model.get_layer("bilstm").get_weights()
    crf = any(layer.name == "emissions" for layer in model.layers)  # then "main" is the CRF on top of it
    parts = [*model.get_layer("dense_proj").get_weights(), *model.get_layer("text_bag").get_weights(),
             fwd_k, fwd_r, fwd_b, bwd_k, bwd_r, bwd_b, *model.get_layer("hidden").get_weights(),
             *model.get_layer("emissions" if crf else "main").get_weights()]
    names = WEIGHT_NAMES
    if crf:
        parts += [np.asarray(a) for a in model.get_layer("main").scores()]
        names += CRF_WEIGHT_NAMES
    return {name: np.asarray(a, dtype=np.float32) for name, a in zip(names, parts)}


def _logsumexp(a: np.ndarray, axis: int) -> np.ndarray:
    top = a.max(axis=axis, keepdims=True)
    return np.squeeze(top, axis) + np.log(np.exp(a - top).sum(axis=axis))


def crf_marginals(emissions: np.ndarray, mask: np.ndarray, transitions: np.ndarray, start: np.ndarray,
                  end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-line marginal probabilities (B, T, K) and log Z (B,) of a linear-chain CRF by forward-backward
    in log space; `mask` (B, T) is true on a prefix of each window (rows past it come out uniform)."""
    b, t, k = emissions.shape
    e = emissions.astype(np.float64)
    trans = transitions.astype(np.float64)[None]
    alpha = np.empty((b, t, k))
    beta = np.empty((b, t, k))
    alpha[:, 0] = start + e[:, 0]
    for s in range(1, t):
        nxt = _logsumexp(alpha[:, s - 1, :, None] + trans, axis=1) + e[:, s]
        alpha[:, s] = np.where(mask[:, s, None], nxt, alpha[:, s - 1])
    beta[:, t - 1] = end
    for s in range(t - 2, -1, -1):
        nxt = _logsumexp(trans + (e[:, s + 1] + beta[:, s + 1])[:, None, :], axis=2)
        beta[:, s] = np.where(mask[:, s + 1, None], nxt, end)
    log_z = _logsumexp(alpha[:, -1] + end, axis=1)
    marginals = np.exp(alpha + beta - log_z[:, None, None])
    marginals[~mask] = 1.0 / k
    return marginals.astype(np.float32), log_z


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (np.tanh(0.5 * z) + 1.0)


def _bilstm(inputs: np.ndarray, mask: np.ndarray, w: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Keras' LSTM (gates i, f, c, o; sigmoid/tanh) both ways over (B, T, D) in one loop: step t of
    the forward pass and step T-1-t of the backward pass share one matrix product (block-diagonal
    recurrent weights). Masked steps keep the state, as in Keras."""
    b, t = mask.shape
    u = w["fwd_recurrent"].shape[0]
    z_fwd = inputs @ w["fwd_kernel"] + w["fwd_bias"]
    z_bwd = (inputs @ w["bwd_kernel"] + w["bwd_bias"])[:, ::-1]
    recurrent = np.zeros((2 * u, 8 * u), dtype=np.float32)
    recurrent[:u, :4 * u], recurrent[u:, 4 * u:] = w["fwd_recurrent"], w["bwd_recurrent"]
    mask2 = np.concatenate([mask[:, :, None].repeat(u, 2), mask[:, ::-1, None].repeat(u, 2)], axis=2)
    h = np.zeros((b, 2 * u), dtype=np.float32)
    c = np.zeros((b, 2 * u), dtype=np.float32)
    out = np.zeros((b, t, 2 * u), dtype=np.float32)
    for step in range(t):
        z = np.concatenate([z_fwd[:, step], z_bwd[:, step]], axis=1) + h @ recurrent
        z = z.reshape(b, 2, 4, u)
        gates = 0.5 * (np.tanh(0.5 * z[:, :, (0, 1, 3)]) + 1.0)  # i, f, o
        c_new = gates[:, :, 1] * c.reshape(b, 2, u) + gates[:, :, 0] * np.tanh(z[:, :, 2])
        h_new = gates[:, :, 2] * np.tanh(c_new)
        m = mask2[:, step]
        c = np.where(m, c_new.reshape(b, 2 * u), c)
        h = np.where(m, h_new.reshape(b, 2 * u), h)
        out[:, step] = h
    return out[:, :, :u], out[:, ::-1, u:]


def line_vectors(w: dict[str, np.ndarray], dense: np.ndarray, ids: np.ndarray, gram_w: np.ndarray) -> np.ndarray:
    """Each line's input to the LSTMs: the projected dense features and the text bag, (n, dense_dim + text_dim)."""
    d = np.maximum(dense @ w["dense_kernel"] + w["dense_bias"], 0.0)
    n, g = ids.shape
    bag = sp.csr_matrix((gram_w.ravel(), (np.repeat(np.arange(n), g), ids.ravel())), shape=(n, len(w["text_table"])))
    return np.concatenate([d, np.asarray(bag @ w["text_table"], dtype=np.float32)], axis=1)


def forward(w: dict[str, np.ndarray], x: dict[str, np.ndarray]) -> np.ndarray:
    """The network's main output for `_batches`-style inputs, (B, T, classes), in numpy (dropout off)."""
    b, t, d = x["dense"].shape
    line = line_vectors(w, x["dense"].reshape(b * t, d), x["ids"].reshape(b * t, -1),
                        x["gram_w"].reshape(b * t, -1)).reshape(b, t, -1)
    return sequence_forward(w, line, x["mask"])


def sequence_forward(w: dict[str, np.ndarray], line: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """LSTMs, hidden layer and softmax (or the CRF's marginals) over windows of line vectors, (B, T, classes)."""
    fwd, bwd = _bilstm(line, mask, w)
    h = np.tanh(np.concatenate([fwd, bwd], axis=-1) @ w["hidden_kernel"] + w["hidden_bias"])
    logits = h @ w["main_kernel"] + w["main_bias"]
    if "crf_transitions" in w:
        return crf_marginals(logits, mask, w["crf_transitions"], w["crf_start"], w["crf_end"])[0]
    logits -= logits.max(axis=-1, keepdims=True)
    e = np.exp(logits)
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


def windows(n: int, window: int, overlap: int) -> list[tuple[int, int]]:
    """[start, end) spans covering 0..n, each `window` long (the last may end at n), overlapping."""
    if n <= window:
        return [(0, n)]
    step = max(1, window - overlap)
    starts = list(range(0, n - window + 1, step))
    if starts[-1] + window < n:
        starts.append(n - window)
    return [(s, s + window) for s in starts]


@dataclass
class _Script:
    dense: np.ndarray  # (m, D) standardized
    ids: np.ndarray
    weights: np.ndarray
    codes: np.ndarray  # (m,), -1 unlabeled
    sample_weight: np.ndarray  # (m,)


class SequenceLabeler:
    """BiLSTM over the lines of each script with Rei's auxiliary neighbour objective.

    scikit-learn-like: `fit(scripts_dense, texts, codes, ...)` over per-script arrays; learned state
    ends in `_`. Rows are grouped by script in reading order by the caller (`LineClassifier`).
    """

    def __init__(self, params: SequenceParams | None = None):
        self.params = params or SequenceParams()

    # -- inputs --

    def _scale(self, dense: np.ndarray) -> np.ndarray:
        z = (np.asarray(dense, dtype=np.float32) - self.mean_) / self.scale_
        return np.clip(np.nan_to_num(z, nan=0.0, posinf=5.0, neginf=-5.0), -5.0, 5.0).astype(np.float32)

    def _scripts(self, dense, texts, groups: list[np.ndarray], codes=None, weights=None) -> list[_Script]:
        ids, gw = text_grams(texts, self.params)
        z = self._scale(dense)
        out = []
        for rows in groups:
            c = codes[rows] if codes is not None else np.full(len(rows), -1, dtype=np.int64)
            w = weights[rows] if weights is not None else np.ones(len(rows), dtype=np.float32)
            out.append(_Script(z[rows], ids[rows], gw[rows], c, w))
        return out

    def _batches(self, scripts: list[_Script], spans: list[tuple[int, int, int]]):
        """Fixed-shape arrays for a list of (script, start, end) windows."""
        p = self.params
        b, t = len(spans), p.window
        d = scripts[0].dense.shape[1]
        x_dense = np.zeros((b, t, d), dtype=np.float32)
        x_ids = np.zeros((b, t, p.max_grams), dtype=np.int32)
        x_w = np.zeros((b, t, p.max_grams), dtype=np.float32)
        mask = np.zeros((b, t), dtype=bool)
        y = np.zeros((b, t), dtype=np.int32)
        sw = np.zeros((b, t), dtype=np.float32)
        for i, (s, start, end) in enumerate(spans):
            sc, m = scripts[s], end - start
            x_dense[i, :m] = sc.dense[start:end]
            x_ids[i, :m] = sc.ids[start:end]
            x_w[i, :m] = sc.weights[start:end]
            mask[i, :m] = True
            codes = sc.codes[start:end]
            y[i, :m] = np.maximum(codes, 0)
            sw[i, :m] = np.where(codes >= 0, sc.sample_weight[start:end], 0.0)
        return {"dense": x_dense, "ids": x_ids, "gram_w": x_w, "mask": mask}, y, sw

    # -- the network --

    def _build(self, n_dense: int, *, compile: bool = True):
        keras = _keras()
        p = self.params
        dense_in = keras.Input((p.window, n_dense), name="dense")
        ids_in = keras.Input((p.window, p.max_grams), dtype="int32", name="ids")
        w_in = keras.Input((p.window, p.max_grams), name="gram_w")
        mask_in = keras.Input((p.window,), dtype="bool", name="mask")
        d = keras.layers.Dense(p.dense_dim, activation="relu", name="dense_proj")(dense_in)
        text = _LAYERS["EmbeddingBag"](p.text_buckets, p.text_dim, name="text_bag")([ids_in, w_in])
        x = keras.layers.Concatenate(name="line")([d, text])
        x = keras.layers.Dropout(p.dropout)(x)
        fwd, bwd = keras.layers.Bidirectional(
            keras.layers.LSTM(p.hidden, return_sequences=True), merge_mode=None, name="bilstm")(x, mask=mask_in)
        h = keras.layers.Concatenate(name="states")([fwd, bwd])
        h = keras.layers.Dropout(p.dropout)(h)
        h = keras.layers.Dense(p.hidden, activation="tanh", name="hidden")(h)
        if p.output == "crf":
            crf = _LAYERS["LinearChainCRF"](N_CLASSES, p.crf_scale, name="main")
            outputs = {"main": crf(keras.layers.Dense(N_CLASSES, name="emissions")(h))}
        else:
            outputs = {"main": keras.layers.Dense(N_CLASSES, activation="softmax", name="main")(h)}
        if p.aux_weight > 0:
            outputs["next"] = keras.layers.Dense(N_CLASSES, activation="softmax", name="next")(fwd)
            outputs["prev"] = keras.layers.Dense(N_CLASSES, activation="softmax", name="prev")(bwd)
        model = keras.Model([dense_in, ids_in, w_in, mask_in], outputs, name="line_sequence_labeler")
        if not compile:
            return model
        losses = {k: "sparse_categorical_crossentropy" for k in outputs}
        if p.output == "crf":
            losses["main"] = crf_loss(crf)
        loss_weights = {k: (1.0 if k == "main" else p.aux_weight) for k in outputs}
        model.compile(optimizer=keras.optimizers.Adam(p.learning_rate, clipnorm=1.0), loss=losses,
                      loss_weights=loss_weights)
        return model

    # -- fit / predict --

    def fit(self, dense: np.ndarray, texts, codes: np.ndarray, groups: list[np.ndarray],
            sample_weight: np.ndarray | None = None, *, verbose: int = 0) -> "SequenceLabeler":
        """`dense` (n, D), `texts` (n,), `codes` (n,) with -1 for unlabeled lines, `groups`: row
        positions of each script in reading order."""
        keras = _keras()
        p = self.params
        dense = np.asarray(dense, dtype=np.float32)
        labeled = codes >= 0
        with warnings.catch_warnings():  # a feature missing on every labeled line scales to 0
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(np.where(labeled[:, None], dense, np.nan), axis=0)
            std = np.nanstd(np.where(labeled[:, None], dense, np.nan), axis=0)
        self.mean_ = np.nan_to_num(mean, nan=0.0).astype(np.float32)
        self.scale_ = np.where(np.isfinite(std) & (std > 1e-6), std, 1.0).astype(np.float32)
        weights = np.ones(len(codes), np.float32) if sample_weight is None else np.asarray(sample_weight, np.float32)
        scripts = self._scripts(dense, texts, groups, codes, weights)
        # Training windows: only those with a labeled line (MovieParse labels a window of each script).
        spans = []
        for s, sc in enumerate(scripts):
            for start, end in windows(len(sc.codes), p.window, p.overlap):
                if (sc.codes[start:end] >= 0).any():
                    spans.append((s, start, end))
        if not spans:
            raise ValueError("no labeled lines to train the sequence labeler on")
        keras.utils.set_random_seed(p.seed)
        self.model_ = self._build(dense.shape[1])
        x, y, sw = self._batches(scripts, spans)
        targets, weights_out = {"main": y}, {"main": sw}
        if p.output == "crf":
            # One loss per window: targets keep the unlabeled (-1) and padded lines apart; every line
            # of a window weighs what its labeled lines weigh on average (none labeled: 0).
            targets["main"] = np.where(x["mask"], np.where(sw > 0, y, -1), PADDING).astype(np.int32)
            mean_w = sw.sum(axis=1) / np.maximum((sw > 0).sum(axis=1), 1)
            weights_out["main"] = np.repeat(mean_w[:, None], sw.shape[1], axis=1).astype(np.float32)
        if p.aux_weight > 0:
            # Forward state at t predicts the class at t+1; backward state at t the class at t-1.
            targets["next"] = np.concatenate([y[:, 1:], np.zeros_like(y[:, :1])], axis=1)
            weights_out["next"] = np.concatenate([sw[:, 1:], np.zeros_like(sw[:, :1])], axis=1)
            targets["prev"] = np.concatenate([np.zeros_like(y[:, :1]), y[:, :-1]], axis=1)
            weights_out["prev"] = np.concatenate([np.zeros_like(sw[:, :1]), sw[:, :-1]], axis=1)
        # Whole batches only: one compiled shape.
        n = len(spans)
        reps = -(-n // p.batch_size) * p.batch_size
        order = np.random.default_rng(p.seed).permutation(reps) % n
        x = {k: v[order] for k, v in x.items()}
        targets = {k: v[order] for k, v in targets.items()}
        weights_out = {k: v[order] for k, v in weights_out.items()}
        self.model_.fit(x, targets, sample_weight=weights_out, batch_size=p.batch_size, epochs=p.epochs,
                        shuffle=True, verbose=verbose)
        self.n_features_in_ = dense.shape[1]
        return self

    def predict_proba(self, dense: np.ndarray, texts, groups: list[np.ndarray]) -> np.ndarray:
        # Small matrix products: one BLAS thread is 10-50x faster than a team spinning on busy cores.
        with threadpool_limits(1, user_api="blas"):
            return self._predict_proba(dense, texts, groups)

    def _predict_proba(self, dense: np.ndarray, texts, groups: list[np.ndarray]) -> np.ndarray:
        p = self.params
        n = len(texts)
        out = np.full((n, N_CLASSES), 1.0 / N_CLASSES, dtype=np.float32)
        if n == 0:
            return out
        weights = self._inference_weights()
        ids, gw = text_grams(texts, p)
        lines = line_vectors(weights, self._scale(dense), ids, gw)  # once per line, not per window
        spans = [(s, start, end) for s, rows in enumerate(groups) for start, end in windows(len(rows), p.window, p.overlap)]
        best = [np.full(len(rows), -1.0) for rows in groups]
        for b in range(0, len(spans), PREDICT_WINDOWS):
            chunk = spans[b:b + PREDICT_WINDOWS]
            x = np.zeros((len(chunk), p.window, lines.shape[1]), dtype=np.float32)
            mask = np.zeros((len(chunk), p.window), dtype=bool)
            for i, (s, start, end) in enumerate(chunk):
                x[i, :end - start] = lines[groups[s][start:end]]
                mask[i, :end - start] = True
            proba = sequence_forward(weights, x, mask)
            for i, (s, start, end) in enumerate(chunk):
                m = end - start
                pos = np.arange(m)
                centrality = np.minimum(pos, m - 1 - pos)
                rows = groups[s]
                better = centrality > best[s][start:end]
                target = rows[start:end][better]
                out[target] = proba[i, :m][better]
                best[s][start:end] = np.where(better, centrality, best[s][start:end])
        return out

    def _keras_model(self):
        if getattr(self, "model_", None) is None:
            keras = _keras()
            self.model_ = keras.saving.load_model(self.keras_path_, compile=False, safe_mode=True)
        return self.model_

    def _inference_weights(self) -> dict[str, np.ndarray]:
        if getattr(self, "weights_", None) is None:
            self.weights_ = network_weights(self.model_)
        return self.weights_

    # -- persistence --

    def save(self, directory: str | Path, name: str = "sequence") -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        model = self._keras_model()
        if getattr(model, "optimizer", None) is not None:
            # Without the optimizer's state: a third of the size, and nothing resumes training from it.
            # (Built afresh rather than cloned: a clone is compiled again, and the CRF's loss is a closure.)
            model = self._build(len(self.mean_), compile=False)
            model.set_weights(self._keras_model().get_weights())
        model.save(directory / f"{name}.keras")
        # The same weights as plain arrays: predictions run in numpy, without importing Keras.
        with open(directory / f"{name}.weights.npz", "wb") as fh:
            np.savez(fh, **self._inference_weights())
        meta = {"kind": "scriptlabel-line-sequence", "format_version": FORMAT_VERSION, "labels": list(LABELS),
                "params": self.params.to_dict(), "mean": self.mean_.tolist(), "scale": self.scale_.tolist()}
        (directory / f"{name}.json").write_text(json.dumps(meta))
        return directory

    @classmethod
    def load(cls, directory: str | Path, name: str = "sequence") -> "SequenceLabeler":
        directory = Path(directory)
        path, weights = directory / f"{name}.json", directory / f"{name}.keras"
        if not path.exists() or not weights.exists():
            raise SequenceModelError(f"{directory}: {name}.json or {name}.keras is missing; retrain the line model "
                                     "or restore the model folder")
        try:
            meta = json.loads(path.read_text())
            if meta.get("kind") != "scriptlabel-line-sequence" or meta.get("labels") != list(LABELS):
                raise SequenceModelError(f"{path}: not a line sequence model for labels {list(LABELS)}; retrain it")
            model = cls(SequenceParams.from_dict(meta["params"]))
            model.mean_ = np.asarray(meta["mean"], dtype=np.float32)
            model.scale_ = np.asarray(meta["scale"], dtype=np.float32)
            model.keras_path_ = weights
            arrays = directory / f"{name}.weights.npz"
            if arrays.exists():  # predictions need no Keras
                with np.load(arrays, allow_pickle=False) as data:
                    model.weights_ = {k: data[k] for k in data.files}
                missing = set(WEIGHT_NAMES + (CRF_WEIGHT_NAMES if model.params.output == "crf" else ())) - set(model.weights_)
                if missing:
                    raise SequenceModelError(f"{arrays}: lacks {sorted(missing)}; retrain the line model")
            else:
                model.model_ = model._keras_model()
        except SequenceModelError:
            raise
        except (ValueError, KeyError, TypeError, OSError) as exc:
            raise SequenceModelError(f"{directory}: the sequence model is unreadable ({exc}); retrain or restore it") from exc
        model.n_features_in_ = len(model.mean_)
        return model
