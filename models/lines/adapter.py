"""The adapter (`LineAdapter`): the labeling loop's fast retrain, boosted on top of the base.

A small XGBoost boosted *on top of* the base model's log-probabilities (`base_margin`), over the
base probabilities, their context and the dense block (the reading-state features included: open
brackets, distance to the last cue...). With no trees it reproduces the base; each human label
pushes it where the base was wrong, and lines of the script being labeled weigh more, so 20–50
labels can fix a script with an unusual layout. So that a few labels cannot flip a whole class
(three labels on a front-page notice written like action once turned 300 action lines into `other`),
the unlabeled lines of that script the base is sure of join the fit as *anchors* with the base's
label at a small weight (`anchor_rows`): a split that moves labeled lines must leave them alone,
while labels on a pattern the base gets confidently wrong still outweigh them. It sees a compact
view of the stage-2 columns, 64 histogram bins and 20 rounds, and beyond `max_rows` labeled lines
keeps every line the base gets wrong or is unsure of plus a reweighted sample of the rest, so a
retrain takes well under a second at 20k or 50k labels on 2 cores. The base outputs for each script, with the context features the
adapter reads, are computed once and cached (`BaseOutputs`).
"""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin

from models.lines.base import BaseOutputs, LineClassifier
from models.lines.boosters import booster_proba, load_booster, train_booster
from models.lines.features import validate_lines
from models.lines.labels import N_CLASSES, ModelLoadError, as_weights, check_trainable, encode_labels
from models.lines.params import AdapterConfig, BoosterParams, default_n_jobs
from models.lines.persistence import FORMAT_VERSION, write_meta
from store.types import LABELS

DEFAULT_ADAPTER = AdapterConfig()


def adapter_matrix(X: pd.DataFrame, outputs: BaseOutputs, base: LineClassifier,
                   rows: np.ndarray | None = None, columns: np.ndarray | None = None) -> np.ndarray:
    """The adapter's input (stage-2 layout over the base's final probabilities), for some rows/columns.

    Uses the context features cached in `outputs` when there, so a retrain only gathers rows."""
    return base.adapter_matrix(X, outputs, rows, columns)


def log_margin(proba: np.ndarray) -> np.ndarray:
    return np.log(np.clip(proba, 1e-6, 1.0)).astype(np.float32)


_COMPACT_CONTEXT = ("@-1", "@+1", "@block", "@block_first", "@prev_block_last", "@level", "@same_text")


def compact_columns(names: Sequence[str]) -> np.ndarray:
    """The adapter's compact view of the stage-2 columns: the line's own features and the base
    probabilities of the line, its direct neighbours, its block, indent level and same-text lines
    (the neighbours' own dense features at ±1/±2 and probabilities at ±2/±3 are left out: a third of
    the boosting time for no measured gain on held-out scripts)."""
    return np.array([i for i, n in enumerate(names)
                     if "@" not in n or (n.startswith("p_") and n.endswith(_COMPACT_CONTEXT))], dtype=np.int64)


def sample_rows(codes: np.ndarray, proba: np.ndarray, weights: np.ndarray, keep: np.ndarray, *,
                max_rows: int, sure_p: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows to boost on and their weights, at most about `max_rows` (gradient-based one-side sampling).

    Every labeled row the base gets wrong or is unsure of (probability of the true label below
    `sure_p`) and every row in `keep` stays; the rest — lines the base already gets confidently right,
    whose gradients are near zero — are sampled uniformly and weighted up by the inverse rate, so the
    loss stays an unbiased estimate and a retrain costs about the same at 20k labels as at 8k.
    """
    labeled = np.flatnonzero(codes >= 0)
    if len(labeled) <= max_rows:
        return labeled, weights[labeled]
    p_true = proba[labeled, codes[labeled]]
    must = (p_true < sure_p) | keep[labeled]
    hard, easy = labeled[must], labeled[~must]
    room = max(max_rows - len(hard), min(len(easy), max_rows // 4))
    if room >= len(easy):
        return labeled, weights[labeled]
    rng = np.random.default_rng(seed)
    picked = np.sort(rng.choice(easy, size=room, replace=False))
    rows = np.concatenate([hard, picked])
    w = weights[rows].copy()
    w[len(hard):] *= len(easy) / room
    order = np.argsort(rows, kind="stable")
    return rows[order], w[order]


def anchor_rows(codes: np.ndarray, proba: np.ndarray, in_script: np.ndarray, *, min_p: float, max_rows: int,
                seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unlabeled lines of the script being labeled that the base is sure of, as (rows, the base's label,
    weight multiplier): at most `max_rows`, sampled uniformly and weighted up by the inverse rate."""
    rows = np.flatnonzero((codes < 0) & in_script & (proba.max(axis=1) >= min_p))
    scale = 1.0
    if len(rows) > max_rows > 0:
        rng = np.random.default_rng(seed + 1)
        scale = len(rows) / max_rows
        rows = np.sort(rng.choice(rows, size=max_rows, replace=False))
    elif max_rows <= 0:
        rows = rows[:0]
    return rows, proba[rows].argmax(axis=1), np.full(len(rows), scale, dtype=np.float32)


class LineAdapter(ClassifierMixin, BaseEstimator):
    """Per-loop correction boosted on the base model's log-probabilities (see module docstring).

    A scikit-learn estimator over a fitted `base`; its hyper-parameters are constructor arguments
    (`AdapterConfig` is their saved form). It reads the base only through its public surface:
    `base_outputs`, `adapter_matrix`, `adapter_feature_names` and `seed`."""

    def __init__(self, base: LineClassifier, *, booster: BoosterParams = DEFAULT_ADAPTER.booster,
                 current_script_weight: float = DEFAULT_ADAPTER.current_script_weight,
                 compact: bool = DEFAULT_ADAPTER.compact, max_rows: int = DEFAULT_ADAPTER.max_rows,
                 sure_p: float = DEFAULT_ADAPTER.sure_p, anchor_weight: float = DEFAULT_ADAPTER.anchor_weight,
                 anchor_p: float = DEFAULT_ADAPTER.anchor_p, max_anchors: int = DEFAULT_ADAPTER.max_anchors,
                 n_jobs: int | None = None):
        self.base = base
        self.booster = booster
        self.current_script_weight = current_script_weight
        self.compact = compact
        self.max_rows = max_rows
        self.sure_p = sure_p
        self.anchor_weight = anchor_weight
        self.anchor_p = anchor_p
        self.max_anchors = max_anchors
        self.n_jobs = n_jobs

    @classmethod
    def from_config(cls, base: LineClassifier, config: AdapterConfig | None = None, *,
                    n_jobs: int | None = None) -> "LineAdapter":
        config = config or AdapterConfig()
        return cls(base, **{f.name: getattr(config, f.name) for f in fields(config)}, n_jobs=n_jobs)

    @property
    def config(self) -> AdapterConfig:
        return AdapterConfig(**{f.name: getattr(self, f.name) for f in fields(AdapterConfig)})

    @property
    def _threads(self) -> int:
        return self.n_jobs or default_n_jobs()

    def _columns(self) -> np.ndarray:
        names = self.base.adapter_feature_names()
        return compact_columns(names) if self.compact else np.arange(len(names))

    def fit(self, X: pd.DataFrame, y, sample_weight=None, *, outputs: BaseOutputs | None = None,
            current_script=None) -> "LineAdapter":
        """Fit on labeled lines. `outputs` (the base's, for X) skips recomputing them;
        `current_script` (a script_id) multiplies its lines' weight by `current_script_weight`."""
        validate_lines(X)
        X = X.reset_index(drop=True)
        codes = encode_labels(y, len(X))
        check_trainable(codes, what="training the line adapter")
        outputs = outputs if outputs is not None else self.base.base_outputs(X)
        weights = as_weights(sample_weight, len(X))
        weights = np.ones(len(X), dtype=np.float32) if weights is None else weights.copy()
        in_script = X["script_id"].to_numpy() == current_script if current_script is not None else np.zeros(len(X), bool)
        weights[in_script] *= self.current_script_weight
        seed = self.base.seed
        rows, row_weights = sample_rows(codes, outputs.proba, weights, in_script, max_rows=self.max_rows,
                                        sure_p=self.sure_p, seed=seed)
        targets = codes[rows]
        if self.anchor_weight > 0:
            anchors, anchor_codes, scale = anchor_rows(codes, outputs.proba, in_script, min_p=self.anchor_p,
                                                       max_rows=self.max_anchors, seed=seed)
            rows = np.concatenate([rows, anchors])
            targets = np.concatenate([targets, anchor_codes])
            row_weights = np.concatenate([row_weights, (self.anchor_weight * scale).astype(np.float32)])
        self.columns_ = self._columns()
        self.feature_names_ = [self.base.adapter_feature_names()[i] for i in self.columns_]
        M = self.base.adapter_matrix(X, outputs, rows, self.columns_)
        self.booster_ = train_booster(
            M, targets, row_weights, self.booster, n_jobs=self._threads,
            seed=seed, base_margin=log_margin(outputs.proba[rows]), feature_names=self.feature_names_,
        )
        self.classes_ = np.array(LABELS, dtype=object)
        return self

    def predict_proba(self, X: pd.DataFrame, *, outputs: BaseOutputs | None = None) -> np.ndarray:
        if not hasattr(self, "booster_"):
            raise ModelLoadError("this adapter is not trained yet: call fit() or load() first")
        X = X.reset_index(drop=True)
        if len(X) == 0:
            return np.zeros((0, N_CLASSES), dtype=np.float32)
        outputs = outputs if outputs is not None else self.base.base_outputs(X)
        M = self.base.adapter_matrix(X, outputs, columns=self.columns_)
        return booster_proba(self.booster_, M, n_jobs=self._threads, base_margin=log_margin(outputs.proba),
                             feature_names=self.feature_names_)

    def predict(self, X: pd.DataFrame, *, outputs: BaseOutputs | None = None) -> np.ndarray:
        return self.classes_[self.predict_proba(X, outputs=outputs).argmax(axis=1)]

    def save(self, directory: str | Path) -> Path:
        """Write the adapter (adapter.ubj + adapter.json) to `directory`; the base is saved separately."""
        if not hasattr(self, "booster_"):
            raise ModelLoadError("this adapter is not trained yet: nothing to save")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.booster_.save_model(directory / "adapter.ubj")
        meta = {"kind": "scriptlabel-line-adapter", "format_version": FORMAT_VERSION, "labels": list(LABELS),
                "config": self.config.to_dict(), "features": self.feature_names_}
        write_meta(directory, "adapter.json", meta)
        return directory

    @classmethod
    def load(cls, directory: str | Path, base: LineClassifier, *, n_jobs: int | None = None) -> "LineAdapter":
        directory = Path(directory)
        path = directory / "adapter.json"
        if not path.exists():
            raise ModelLoadError(f"{directory}: no adapter.json, so no saved adapter here; retrain it")
        try:
            meta = json.loads(path.read_text())
            config = AdapterConfig.from_dict(meta["config"])
            names = list(meta["features"])
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
            raise ModelLoadError(f"{path}: corrupt adapter description ({exc}); retrain the adapter") from exc
        if meta.get("kind") != "scriptlabel-line-adapter" or meta.get("labels") != list(LABELS):
            raise ModelLoadError(f"{path}: not a line adapter for labels {list(LABELS)}; retrain it")
        adapter = cls.from_config(base, config, n_jobs=n_jobs)
        adapter.columns_ = adapter._columns()
        if names != [base.adapter_feature_names()[i] for i in adapter.columns_]:
            raise ModelLoadError(f"{path}: the adapter was trained on another base model's features; retrain it")
        adapter.booster_ = load_booster(directory / "adapter.ubj")
        adapter.feature_names_ = names
        adapter.classes_ = np.array(LABELS, dtype=object)
        return adapter
