"""The line classifier: a heavy base model trained offline and a fast per-labeling-loop adapter.

Base model (`LineClassifier`, `fit_base`), three stacked parts, all fit on whole scripts:

1. content: a linear softmax over hashed character 1–4-grams and word 1–2-grams of the line's text
   (what the words say; trained on every labeled line, any source);
2. stage 1: XGBoost over the dense block (text look, script-relative layout, neighbours; see
   `models.lines.features`) plus the content probabilities — *out-of-fold*, grouped by script, so stage 1
   learns how far to trust the content model on scripts it has not seen;
3. stage 2: XGBoost over stage-1 out-of-fold probabilities of the neighbours, the block, the indent
   level and the other lines with the same text, plus the dense block.

Adapter (`LineAdapter`, `fit_adapter`): a small XGBoost boosted *on top of* the base model's
log-probabilities (`base_margin`), over the base probabilities, their context and the dense block.
With no trees it reproduces the base; each human label pushes it where the base was wrong, and lines
of the script being labeled weigh more, so 20–50 labels can fix a script with an unusual layout. It
is what retrains in the labeling loop: it sees a compact view of the stage-2 columns, 64 histogram bins
and 20 rounds, and beyond `max_rows` labeled lines keeps every line the base gets wrong or is unsure of
plus a reweighted sample of the rest, so a retrain takes well under a second at 20k or 50k labels on
2 cores. The base outputs for each script, with the context features the adapter reads, are computed
once and cached (`BaseOutputs`).

Persistence: `save(dir)` writes XGBoost's own UBJ files, the content weights as a sparse `.npz` of
plain arrays (loaded with `allow_pickle=False`) and a JSON config; nothing is pickled.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
import xgboost as xgb
from sklearn.feature_extraction.text import HashingVectorizer

from models.lines.features import (
    FeatureConfig,
    dense_feature_names,
    dense_features,
    proba_context_features,
    proba_feature_names,
    validate_lines,
)
from store.types import LABEL_INDEX, LABELS, ScriptlabelError

N_CLASSES = len(LABELS)
FORMAT_VERSION = 1


class ModelLoadError(ScriptlabelError):
    """A saved line model is missing, incomplete or corrupt."""


class TrainingDataError(ScriptlabelError, ValueError):
    """The labels given to fit cannot train a model (none, one class, misaligned...)."""


def default_n_jobs() -> int:
    return max(1, min(2, os.cpu_count() or 1))


# --- configuration ----------------------------------------------------------------------------


@dataclass(frozen=True)
class BoosterParams:
    n_estimators: int = 300
    max_depth: int = 6
    learning_rate: float = 0.1
    subsample: float = 0.8
    colsample_bytree: float = 0.5
    min_child_weight: float = 1.0
    reg_lambda: float = 1.0
    max_bin: int = 256

    def xgb_params(self, *, n_jobs: int, seed: int) -> dict:
        return {
            "max_bin": self.max_bin,
            "objective": "multi:softprob",
            "num_class": N_CLASSES,
            "tree_method": "hist",
            "max_depth": self.max_depth,
            "eta": self.learning_rate,
            "subsample": self.subsample,
            "colsample_bytree": self.colsample_bytree,
            "min_child_weight": self.min_child_weight,
            "lambda": self.reg_lambda,
            "nthread": n_jobs,
            "seed": seed,
            "eval_metric": "mlogloss",
        }


@dataclass(frozen=True)
class ContentParams:
    char_features: int = 2**19
    word_features: int = 2**18
    alpha: float = 3e-6
    epochs: int = 20


@dataclass(frozen=True)
class LineModelConfig:
    """Everything that shapes a base line model; saved with it as JSON."""

    features: FeatureConfig = field(default_factory=FeatureConfig)
    content: ContentParams | None = field(default_factory=ContentParams)
    stage1: BoosterParams = field(default_factory=BoosterParams)
    stage2: BoosterParams | None = field(default_factory=lambda: BoosterParams(n_estimators=200, max_depth=5))
    inner_folds: int = 5
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "LineModelConfig":
        return cls(
            features=FeatureConfig.from_dict(data.get("features", {})),
            content=ContentParams(**data["content"]) if data.get("content") else None,
            stage1=BoosterParams(**data.get("stage1", {})),
            stage2=BoosterParams(**data["stage2"]) if data.get("stage2") else None,
            inner_folds=int(data.get("inner_folds", 5)),
            seed=int(data.get("seed", 0)),
        )


@dataclass(frozen=True)
class AdapterConfig:
    """The labeling loop's retrain: small and fast by design (see `LineAdapter`)."""

    booster: BoosterParams = field(
        default_factory=lambda: BoosterParams(
            n_estimators=20, max_depth=4, learning_rate=0.3, subsample=1.0, colsample_bytree=0.8,
            min_child_weight=0.5, reg_lambda=2.0, max_bin=64,
        )
    )
    current_script_weight: float = 5.0  # a human label on the script being labeled counts this much more
    compact: bool = True  # own-line features + base probabilities of the line, its neighbours and groups
    max_rows: int = 8000  # rows boosted on; beyond that, lines the base already gets right are sampled
    sure_p: float = 0.97  # "gets right": base probability of the true label at least this

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "AdapterConfig":
        defaults = cls()
        return cls(booster=BoosterParams(**data.get("booster", {})),
                   current_script_weight=float(data.get("current_script_weight", 5.0)),
                   compact=bool(data.get("compact", False)),  # adapters saved before this option used all features
                   max_rows=int(data.get("max_rows", defaults.max_rows)),
                   sure_p=float(data.get("sure_p", defaults.sure_p)))


# --- labels -----------------------------------------------------------------------------------


def encode_labels(y: Any, n: int) -> np.ndarray:
    """Label strings / class indices → int codes; -1 marks an unlabeled (context-only) line."""
    if y is None:
        raise TrainingDataError("fit needs labels: pass y with one label (or None) per line")
    values = list(y)
    if len(values) != n:
        raise TrainingDataError(f"{n} lines but {len(values)} labels: pass one label (or None) per line")
    codes = np.full(n, -1, dtype=np.int64)
    for i, value in enumerate(values):
        if value is None or (isinstance(value, float) and np.isnan(value)):
            continue
        if isinstance(value, (int, np.integer)):
            if value < 0:
                continue
            if value >= N_CLASSES:
                raise TrainingDataError(f"class index {value} is outside 0..{N_CLASSES - 1}")
            codes[i] = int(value)
        else:
            name = str(value).strip().lower()
            if name not in LABEL_INDEX:
                raise TrainingDataError(f"unknown label {value!r} on line {i}: use one of {', '.join(LABELS)}")
            codes[i] = LABEL_INDEX[name]
    return codes


def _check_trainable(codes: np.ndarray, *, what: str) -> None:
    labeled = codes[codes >= 0]
    if len(labeled) == 0:
        raise TrainingDataError(f"{what}: no labeled lines; label some lines (any two kinds) and train again")
    if len(np.unique(labeled)) < 2:
        only = LABELS[int(labeled[0])]
        raise TrainingDataError(
            f"{what}: every labeled line is {only!r}; label at least one line of another kind and train again"
        )


# --- content model: linear softmax over hashed n-grams -----------------------------------------


def content_matrix(texts: Sequence[str], params: ContentParams) -> sp.csr_matrix:
    texts = ["" if t is None else str(t).strip() for t in texts]
    chars = HashingVectorizer(
        analyzer="char_wb", ngram_range=(1, 4), lowercase=False, n_features=params.char_features,
        alternate_sign=False, norm="l2", dtype=np.float32,
    ).transform(texts)
    words = HashingVectorizer(
        analyzer="word", ngram_range=(1, 2), lowercase=True, n_features=params.word_features,
        alternate_sign=False, norm="l2", dtype=np.float32, token_pattern=r"(?u)\b\w+\b|[^\w\s]",
    ).transform(texts)
    return sp.hstack([chars, words], format="csr")


@dataclass
class ContentModel:
    """Softmax weights over hashed n-grams; sparse, saved as plain arrays."""

    params: ContentParams
    coef: sp.csr_matrix  # (n_features, N_CLASSES)
    intercept: np.ndarray  # (N_CLASSES,)

    @classmethod
    def fit(cls, texts, codes: np.ndarray, weights: np.ndarray | None, params: ContentParams, *, seed: int) -> "ContentModel":
        from sklearn.linear_model import SGDClassifier

        A = content_matrix(texts, params)
        present = np.unique(codes)
        clf = SGDClassifier(loss="log_loss", alpha=params.alpha, max_iter=params.epochs, tol=None, random_state=seed)
        clf.fit(A, codes, sample_weight=weights)
        coef = np.zeros((A.shape[1], N_CLASSES), dtype=np.float32)
        intercept = np.full(N_CLASSES, -30.0, dtype=np.float32)  # absent classes: never predicted
        if len(present) == 2:  # binary SGD has one weight vector for the second class
            coef[:, present[1]] = clf.coef_[0]
            coef[:, present[0]] = -clf.coef_[0]
            intercept[present[1]], intercept[present[0]] = clf.intercept_[0], -clf.intercept_[0]
        else:
            coef[:, present] = clf.coef_.T
            intercept[present] = clf.intercept_
        return cls(params, sp.csr_matrix(coef), intercept)

    def predict_proba(self, texts) -> np.ndarray:
        scores = np.asarray((content_matrix(texts, self.params) @ self.coef).todense()) + self.intercept
        # One-vs-rest logistic scores, normalized like SGDClassifier.predict_proba.
        prob = 1.0 / (1.0 + np.exp(-np.clip(scores, -30, 30)))
        prob /= np.maximum(prob.sum(axis=1, keepdims=True), 1e-12)
        return prob.astype(np.float32)

    def save(self, path: Path) -> None:
        coo = self.coef.tocoo()
        np.savez_compressed(
            path, row=coo.row.astype(np.int32), col=coo.col.astype(np.int8),
            value=coo.data.astype(np.float16), shape=np.array(coo.shape), intercept=self.intercept,
        )

    @classmethod
    def load(cls, path: Path, params: ContentParams) -> "ContentModel":
        with np.load(path, allow_pickle=False) as data:
            shape = tuple(int(v) for v in data["shape"])
            coef = sp.csr_matrix(
                (data["value"].astype(np.float32), (data["row"], data["col"].astype(np.int64))), shape=shape
            )
            return cls(params, coef, data["intercept"].astype(np.float32))


# --- helpers ----------------------------------------------------------------------------------


def _train_booster(M: np.ndarray, codes: np.ndarray, weights: np.ndarray | None, params: BoosterParams,
                   *, n_jobs: int, seed: int, base_margin: np.ndarray | None = None,
                   feature_names: list[str] | None = None, client=None) -> xgb.Booster:
    """One booster, here or (with a Dask `client`) data-parallel on the cluster's workers (xgboost.dask)."""
    if client is not None:
        return _train_booster_on_cluster(client, M, codes, weights, params, seed=seed, base_margin=base_margin,
                                         feature_names=feature_names)
    dtrain = xgb.DMatrix(M, label=codes, weight=weights, base_margin=base_margin, feature_names=feature_names, nthread=n_jobs)
    return xgb.train(params.xgb_params(n_jobs=n_jobs, seed=seed), dtrain, num_boost_round=params.n_estimators)


def _train_booster_on_cluster(client, M: np.ndarray, codes: np.ndarray, weights: np.ndarray | None,
                              params: BoosterParams, *, seed: int, base_margin: np.ndarray | None,
                              feature_names: list[str] | None) -> xgb.Booster:
    import dask.array as da
    from xgboost import dask as dxgb

    workers = max(1, len(client.scheduler_info().get("workers", {})))
    rows = max(1, -(-len(M) // workers))  # one block of rows per worker

    def blocks(a):
        return None if a is None else da.from_array(a, chunks=(rows,) + a.shape[1:])

    dtrain = dxgb.DaskDMatrix(client, blocks(M), label=blocks(codes.astype(np.float32)), weight=blocks(weights),
                              base_margin=blocks(base_margin), feature_names=feature_names)
    # Each worker uses its own threads: nthread is the worker's, not this process's.
    xgb_params = {k: v for k, v in params.xgb_params(n_jobs=1, seed=seed).items() if k != "nthread"}
    out = dxgb.train(client, xgb_params, dtrain, num_boost_round=params.n_estimators)
    return out["booster"]


def _booster_proba(booster: xgb.Booster, M: np.ndarray, *, n_jobs: int, base_margin: np.ndarray | None = None,
                   feature_names: list[str] | None = None) -> np.ndarray:
    dm = xgb.DMatrix(M, base_margin=base_margin, feature_names=feature_names, nthread=n_jobs)
    return booster.predict(dm).reshape(len(M), N_CLASSES).astype(np.float32)


def script_folds(script_ids: np.ndarray, codes: np.ndarray, n_folds: int, *, seed: int) -> np.ndarray:
    """Fold per line (-1: none), whole scripts per fold, balanced by labeled lines.

    With a single script, contiguous stretches of it stand in for scripts.
    """
    from models.evaluation import fold_assignment

    ids = np.asarray(script_ids)
    unique = pd.unique(ids)
    if len(unique) < 2:
        n = len(ids)
        return np.minimum((np.arange(n) * n_folds) // max(n, 1), n_folds - 1)
    labeled = codes >= 0
    per_script = fold_assignment(ids[labeled], n_folds, seed=seed) if labeled.any() else np.array([], int)
    fold_of = dict(zip(ids[labeled], per_script))
    # Scripts without labels (pure context) go to fold 0; they only feed neighbours.
    return np.array([fold_of.get(s, 0) for s in ids], dtype=np.int64)


def _weights(sample_weight, n: int) -> np.ndarray | None:
    if sample_weight is None:
        return None
    w = np.asarray(sample_weight, dtype=np.float32)
    if w.shape != (n,):
        raise TrainingDataError(f"sample_weight must have one value per line ({n}), got shape {w.shape}")
    return w


# --- the base model ---------------------------------------------------------------------------


@dataclass(frozen=True)
class BaseOutputs:
    """What the base model says about some lines; the adapter's input, cacheable per script."""

    dense: np.ndarray  # dense features
    stage1: np.ndarray  # stage-1 probabilities
    proba: np.ndarray  # final base probabilities (stage 2, or stage 1 without it)
    context: np.ndarray | None = None  # context features over `proba` (the adapter's); computed when missing

    def arrays(self) -> dict[str, np.ndarray]:
        return {k: v for k, v in (("dense", self.dense), ("stage1", self.stage1), ("proba", self.proba),
                                  ("context", self.context)) if v is not None}

    def take(self, idx) -> "BaseOutputs":
        return BaseOutputs(**{k: v[idx] for k, v in self.arrays().items()})

    @staticmethod
    def concat(parts: Sequence["BaseOutputs"]) -> "BaseOutputs":
        """Stack per-script outputs (context kept only if every part has it)."""
        kept = set.intersection(*(set(p.arrays()) for p in parts))
        return BaseOutputs(**{k: np.vstack([getattr(p, k) for p in parts]) for k in kept})


class LineClassifier:
    """Base line model (scikit-learn contract: hyper-parameters in __init__, state ends in `_`).

    `fit(X, y)` takes the line frame (see `models.lines.features.REQUIRED_COLUMNS`) and one label per
    line: a label name, a class index, or None/NaN/-1 for lines that are context only (features use
    them, the loss does not). `predict_proba(X)` is (n, 7) over all LABELS in canonical order.
    """

    def __init__(self, config: LineModelConfig | None = None, n_jobs: int | None = None):
        self.config = config
        self.n_jobs = n_jobs

    # scikit-learn's parameter protocol, without importing BaseEstimator's pickling conventions
    def get_params(self, deep: bool = True) -> dict:
        return {"config": self.config, "n_jobs": self.n_jobs}

    def set_params(self, **params) -> "LineClassifier":
        for key, value in params.items():
            setattr(self, key, value)
        return self

    @property
    def _cfg(self) -> LineModelConfig:
        return self.config or LineModelConfig()

    @property
    def _threads(self) -> int:
        return self.n_jobs or default_n_jobs()

    # -- fitting --

    def fit(self, X: pd.DataFrame, y, sample_weight=None, *, client=None) -> "LineClassifier":
        """Fit on lines X with labels y; with a Dask `client` the boosters train on the cluster."""
        validate_lines(X)
        X = X.reset_index(drop=True)
        codes = encode_labels(y, len(X))
        _check_trainable(codes, what="training the line model")
        weights = _weights(sample_weight, len(X))
        cfg, threads = self._cfg, self._threads
        labeled = np.flatnonzero(codes >= 0)
        w_lab = None if weights is None else weights[labeled]
        dense = dense_features(X, cfg.features)
        # Lines sharing a `group` (e.g. layout variants of one script) stay in one inner fold.
        group_ids = X["group"].to_numpy() if "group" in X.columns else X["script_id"].to_numpy()
        folds = script_folds(group_ids, codes, cfg.inner_folds, seed=cfg.seed)
        n_folds = int(folds.max()) + 1

        content_oof = None
        if cfg.content is not None:
            content_oof = np.zeros((len(X), N_CLASSES), dtype=np.float32)
            texts = X["text"].to_numpy()
            for k in range(n_folds):
                train = labeled[folds[labeled] != k]
                test = np.flatnonzero(folds == k)
                if len(np.unique(codes[train])) < 2 or len(test) == 0:
                    content_oof[test] = 1.0 / N_CLASSES
                    continue
                model = ContentModel.fit(texts[train], codes[train], None if weights is None else weights[train],
                                         cfg.content, seed=cfg.seed)
                content_oof[test] = model.predict_proba(texts[test])
            self.content_ = ContentModel.fit(texts[labeled], codes[labeled], w_lab, cfg.content, seed=cfg.seed)
        else:
            self.content_ = None

        M1 = self._stage1_matrix(dense, content_oof)
        self.stage1_names_ = self._stage1_names()
        self.stage1_ = _train_booster(M1[labeled], codes[labeled], w_lab, cfg.stage1, n_jobs=threads, seed=cfg.seed,
                                      feature_names=self.stage1_names_, client=client)
        if cfg.stage2 is not None:
            oof = np.zeros((len(X), N_CLASSES), dtype=np.float32)
            for k in range(n_folds):
                train = labeled[folds[labeled] != k]
                test = np.flatnonzero(folds == k)
                if len(np.unique(codes[train])) < 2 or len(test) == 0:
                    oof[test] = 1.0 / N_CLASSES
                    continue
                booster = _train_booster(M1[train], codes[train], None if weights is None else weights[train],
                                         cfg.stage1, n_jobs=threads, seed=cfg.seed, feature_names=self.stage1_names_,
                                         client=client)
                oof[test] = _booster_proba(booster, M1[test], n_jobs=threads, feature_names=self.stage1_names_)
            M2 = self._stage2_matrix(X, dense, oof)
            self.stage2_names_ = self._stage2_names()
            self.stage2_ = _train_booster(M2[labeled], codes[labeled], w_lab, cfg.stage2, n_jobs=threads,
                                          seed=cfg.seed, feature_names=self.stage2_names_, client=client)
        else:
            self.stage2_ = None
            self.stage2_names_ = None
        self.classes_ = np.array(LABELS, dtype=object)
        self.n_features_in_ = len(self.stage1_names_)
        self.training_summary_ = {
            "lines": int(len(X)),
            "labeled_lines": int(len(labeled)),
            "scripts": int(X["script_id"].nunique()),
            "label_counts": {LABELS[c]: int((codes == c).sum()) for c in range(N_CLASSES)},
        }
        return self

    def _dense_keep(self) -> np.ndarray:
        names = dense_feature_names(self._cfg.features)
        drop = set(self._cfg.features.exclude)
        return np.array([i for i, name in enumerate(names) if name not in drop], dtype=np.int64)

    def _dense_names(self) -> list[str]:
        names = dense_feature_names(self._cfg.features)
        return [names[i] for i in self._dense_keep()]

    def _stage1_names(self) -> list[str]:
        names = self._dense_names()
        if self._cfg.content is not None:
            names += [f"content_{label}" for label in LABELS]
        return names

    def _stage2_names(self) -> list[str]:
        cfg = self._cfg.features
        return self._dense_names() + [f"s1_{label}" for label in LABELS] + proba_feature_names(cfg)

    def _stage1_matrix(self, dense: np.ndarray, content: np.ndarray | None) -> np.ndarray:
        kept = dense[:, self._dense_keep()]
        return kept if content is None else np.hstack([kept, content])

    def _stage2_matrix(self, X: pd.DataFrame, dense: np.ndarray, stage1: np.ndarray) -> np.ndarray:
        context = proba_context_features(X, stage1, self._cfg.features, dense)
        return np.hstack([dense[:, self._dense_keep()], stage1, context])

    # -- prediction --

    def _check_fitted(self) -> None:
        if not hasattr(self, "stage1_"):
            raise ModelLoadError("this line model is not trained yet: call fit() or load() first")

    def base_outputs(self, X: pd.DataFrame) -> BaseOutputs:
        self._check_fitted()
        validate_lines(X)
        X = X.reset_index(drop=True)
        cfg, threads = self._cfg, self._threads
        dense = dense_features(X, cfg.features)
        content = self.content_.predict_proba(X["text"].to_numpy()) if self.content_ is not None else None
        s1 = _booster_proba(self.stage1_, self._stage1_matrix(dense, content), n_jobs=threads,
                            feature_names=self.stage1_names_)
        if self.stage2_ is None:
            return BaseOutputs(dense, s1, s1, self._context(X, dense, s1))
        s2 = _booster_proba(self.stage2_, self._stage2_matrix(X, dense, s1), n_jobs=threads,
                            feature_names=self.stage2_names_)
        return BaseOutputs(dense, s1, s2, self._context(X, dense, s2))

    def _context(self, X: pd.DataFrame, dense: np.ndarray, proba: np.ndarray) -> np.ndarray:
        return proba_context_features(X, proba, self._cfg.features, dense)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        if len(X) == 0:
            return np.zeros((0, N_CLASSES), dtype=np.float32)
        return self.base_outputs(X).proba

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

    # -- persistence --

    def save(self, directory: str | Path) -> Path:
        """Write the model to `directory` (created): config.json, UBJ boosters, content weights."""
        self._check_fitted()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.stage1_.save_model(directory / "stage1.ubj")
        if self.stage2_ is not None:
            self.stage2_.save_model(directory / "stage2.ubj")
        if self.content_ is not None:
            self.content_.save(directory / "content.npz")
        meta = {
            "kind": "scriptlabel-line-model",
            "format_version": FORMAT_VERSION,
            "labels": list(LABELS),
            "config": self._cfg.to_dict(),
            "stage1_features": self.stage1_names_,
            "stage2_features": self.stage2_names_,
            "training": getattr(self, "training_summary_", {}),
            "metrics": getattr(self, "metrics_", {}),
        }
        # config.json last: a directory without it is an incomplete save.
        (directory / "config.json").write_text(json.dumps(meta, indent=2))
        return directory

    @classmethod
    def load(cls, directory: str | Path, *, n_jobs: int | None = None) -> "LineClassifier":
        """Read a model written by `save`; raises ModelLoadError naming what is wrong."""
        directory = Path(directory)
        meta = _read_meta(directory, "scriptlabel-line-model")
        try:
            config = LineModelConfig.from_dict(meta["config"])
            model = cls(config=config, n_jobs=n_jobs)
            model.stage1_ = _load_booster(directory / "stage1.ubj")
            model.stage2_ = _load_booster(directory / "stage2.ubj") if meta.get("stage2_features") else None
            model.content_ = (ContentModel.load(directory / "content.npz", config.content)
                              if config.content is not None else None)
            model.stage1_names_ = list(meta["stage1_features"])
            model.stage2_names_ = list(meta["stage2_features"]) if meta.get("stage2_features") else None
        except ModelLoadError:
            raise
        except (KeyError, TypeError, ValueError, OSError) as exc:
            raise ModelLoadError(f"{directory}: the line model is incomplete or corrupt ({exc}); retrain it or "
                                 "restore the model folder") from exc
        if model.stage1_names_ != model._stage1_names():
            raise ModelLoadError(f"{directory}: the model was built with other features than this version computes; "
                                 "retrain it (uv run python -m labeling.corpus.build_pretrained)")
        model.classes_ = np.array(LABELS, dtype=object)
        model.n_features_in_ = len(model.stage1_names_)
        model.training_summary_ = meta.get("training", {})
        model.metrics_ = meta.get("metrics", {})
        return model


def _read_meta(directory: Path, kind: str) -> dict:
    path = directory / "config.json"
    if not path.exists():
        raise ModelLoadError(f"{directory}: no config.json, so no saved line model here; train one or pick another folder")
    try:
        meta = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelLoadError(f"{path}: not valid JSON ({exc}); the model folder is corrupt, retrain or restore it") from exc
    if not isinstance(meta, dict) or meta.get("kind") != kind:
        raise ModelLoadError(f"{path}: not a {kind} (kind={meta.get('kind') if isinstance(meta, dict) else None!r})")
    if meta.get("labels") != list(LABELS):
        raise ModelLoadError(f"{path}: the model's labels {meta.get('labels')} differ from {list(LABELS)}; retrain it")
    if int(meta.get("format_version", -1)) > FORMAT_VERSION:
        raise ModelLoadError(f"{path}: saved by a newer scriptlabel (format {meta.get('format_version')}); upgrade")
    return meta


def _load_booster(path: Path) -> xgb.Booster:
    if not path.exists():
        raise ModelLoadError(f"{path} is missing: the model folder is incomplete; retrain or restore it")
    booster = xgb.Booster()
    try:
        booster.load_model(path)
    except xgb.core.XGBoostError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "unreadable"
        raise ModelLoadError(f"{path}: XGBoost cannot read this model file ({first}); retrain or restore it") from exc
    return booster


# --- the adapter ------------------------------------------------------------------------------


def adapter_matrix(X: pd.DataFrame, outputs: BaseOutputs, base: "LineClassifier",
                   rows: np.ndarray | None = None, columns: np.ndarray | None = None) -> np.ndarray:
    """The adapter's input (stage-2 layout over the base's final probabilities), for some rows/columns.

    Uses the context features cached in `outputs` when there, so a retrain only gathers rows."""
    context = outputs.context if outputs.context is not None else base._context(X, outputs.dense, outputs.proba)
    rows = slice(None) if rows is None else rows
    M = np.hstack([outputs.dense[rows][:, base._dense_keep()], outputs.proba[rows], context[rows]])
    return M if columns is None else M[:, columns]


def _log_margin(proba: np.ndarray) -> np.ndarray:
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


class LineAdapter:
    """Per-loop correction boosted on the base model's log-probabilities (see module docstring)."""

    def __init__(self, base: LineClassifier, config: AdapterConfig | None = None, n_jobs: int | None = None):
        self.base = base
        self.config = config
        self.n_jobs = n_jobs

    def get_params(self, deep: bool = True) -> dict:
        return {"base": self.base, "config": self.config, "n_jobs": self.n_jobs}

    @property
    def _cfg(self) -> AdapterConfig:
        return self.config or AdapterConfig()

    @property
    def _threads(self) -> int:
        return self.n_jobs or default_n_jobs()

    def _columns(self) -> np.ndarray:
        names = self.base._stage2_names()
        return compact_columns(names) if self._cfg.compact else np.arange(len(names))

    def fit(self, X: pd.DataFrame, y, sample_weight=None, *, outputs: BaseOutputs | None = None,
            current_script=None) -> "LineAdapter":
        """Fit on labeled lines. `outputs` (the base's, for X) skips recomputing them;
        `current_script` (a script_id) multiplies its lines' weight by `current_script_weight`."""
        validate_lines(X)
        X = X.reset_index(drop=True)
        codes = encode_labels(y, len(X))
        _check_trainable(codes, what="training the line adapter")
        outputs = outputs if outputs is not None else self.base.base_outputs(X)
        weights = _weights(sample_weight, len(X))
        weights = np.ones(len(X), dtype=np.float32) if weights is None else weights.copy()
        cfg = self._cfg
        in_script = X["script_id"].to_numpy() == current_script if current_script is not None else np.zeros(len(X), bool)
        weights[in_script] *= cfg.current_script_weight
        rows, row_weights = sample_rows(codes, outputs.proba, weights, in_script, max_rows=cfg.max_rows,
                                        sure_p=cfg.sure_p, seed=self.base._cfg.seed)
        self.columns_ = self._columns()
        self.feature_names_ = [self.base._stage2_names()[i] for i in self.columns_]
        M = adapter_matrix(X, outputs, self.base, rows, self.columns_)
        self.booster_ = _train_booster(
            M, codes[rows], row_weights, cfg.booster, n_jobs=self._threads,
            seed=self.base._cfg.seed, base_margin=_log_margin(outputs.proba[rows]), feature_names=self.feature_names_,
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
        M = adapter_matrix(X, outputs, self.base, columns=self.columns_)
        return _booster_proba(self.booster_, M, n_jobs=self._threads, base_margin=_log_margin(outputs.proba),
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
                "config": self._cfg.to_dict(), "features": self.feature_names_}
        (directory / "adapter.json").write_text(json.dumps(meta, indent=2))
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
        adapter = cls(base, config, n_jobs=n_jobs)
        adapter.columns_ = adapter._columns()
        if names != [base._stage2_names()[i] for i in adapter.columns_]:
            raise ModelLoadError(f"{path}: the adapter was trained on another base model's features; retrain it")
        adapter.booster_ = _load_booster(directory / "adapter.ubj")
        adapter.feature_names_ = names
        adapter.classes_ = np.array(LABELS, dtype=object)
        return adapter


# --- factories --------------------------------------------------------------------------------


def make_line_classifier(config: LineModelConfig | dict | None = None, *, n_jobs: int | None = None) -> LineClassifier:
    """A fresh, unfitted base model (each retrain builds a new one; nothing module-global)."""
    if isinstance(config, dict):
        config = LineModelConfig.from_dict(config)
    return LineClassifier(config=config or LineModelConfig(), n_jobs=n_jobs)


def fit_base(X: pd.DataFrame, y, sample_weight=None, *, config: LineModelConfig | dict | None = None,
             n_jobs: int | None = None, client=None) -> LineClassifier:
    """Train the heavy base model (offline: minutes on a corpus; with a Dask `client`, on its workers)."""
    return make_line_classifier(config, n_jobs=n_jobs).fit(X, y, sample_weight=sample_weight, client=client)


def fit_adapter(base: LineClassifier, X: pd.DataFrame, y, sample_weight=None, *, outputs: BaseOutputs | None = None,
                current_script=None, config: AdapterConfig | None = None, n_jobs: int | None = None) -> LineAdapter:
    """Train a fresh adapter over `base` on the labeled lines of X (the labeling loop's retrain)."""
    return LineAdapter(base, config, n_jobs=n_jobs).fit(
        X, y, sample_weight=sample_weight, outputs=outputs, current_script=current_script)
