"""The stacked base line model (`LineClassifier`), trained offline on whole scripts.

1. content: a linear softmax over hashed n-grams of the line's text (`models.lines.content`);
2. stage 1: XGBoost over the dense block (text look, script-relative layout, neighbours, reading
   state; `models.lines.features`) plus the content probabilities — *out-of-fold*, grouped by script
   (`models.lines.folds`), so stage 1 learns how far to trust the content model on unseen scripts;
3. stage 2: XGBoost over stage-1 out-of-fold probabilities of the neighbours, the block, the indent
   level and the other lines with the same text, plus the dense block — or, with `sequence` set,
   the sequence labeler (`models.lines.sequence`, a BiLSTM over the script's lines) reading the
   dense block, the stage-1 out-of-fold probabilities and the text (`sequence_mode="replace"`), or
   stacked into stage 2 by its own out-of-fold probabilities (`sequence_mode="stage2"`).

`base_outputs(X)` returns everything the adapter reads (`BaseOutputs`), cacheable per script.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin

from models.lines.boosters import booster_proba, load_booster, train_booster
from models.lines.content import ContentModel
from models.lines.features import (
    FeatureConfig,
    dense_feature_names,
    dense_features,
    proba_context_features,
    proba_feature_names,
    script_order,
    validate_lines,
)
from models.lines.folds import script_folds
from models.lines.labels import N_CLASSES, ModelLoadError, as_weights, check_trainable, encode_labels
from models.lines.params import (
    BoosterParams,
    ContentParams,
    LineModelConfig,
    default_n_jobs,
)
from models.lines.persistence import FORMAT_VERSION, read_meta, write_meta
from models.lines.sequence import SequenceParams
from store.types import LABELS

DEFAULT_STAGE2 = LineModelConfig().stage2


@dataclass(frozen=True)
class BaseOutputs:
    """What the base model says about some lines; the adapter's input, cacheable per script."""

    dense: np.ndarray  # dense features
    stage1: np.ndarray  # stage-1 probabilities
    proba: np.ndarray  # final base probabilities (stage 2, or stage 1 without it)
    context: np.ndarray | None = None  # context features over `proba` (the adapter's); computed when missing
    sequence: np.ndarray | None = None  # the sequence labeler's probabilities, when the base has one

    def arrays(self) -> dict[str, np.ndarray]:
        return {k: v for k, v in (("dense", self.dense), ("stage1", self.stage1), ("proba", self.proba),
                                  ("context", self.context), ("sequence", self.sequence)) if v is not None}

    def take(self, idx) -> "BaseOutputs":
        return BaseOutputs(**{k: v[idx] for k, v in self.arrays().items()})

    @staticmethod
    def concat(parts: Sequence["BaseOutputs"]) -> "BaseOutputs":
        """Stack per-script outputs (context kept only if every part has it)."""
        kept = set.intersection(*(set(p.arrays()) for p in parts))
        return BaseOutputs(**{k: np.vstack([getattr(p, k) for p in parts]) for k in kept})



def out_of_fold(folds: np.ndarray, labeled: np.ndarray, codes: np.ndarray, n_folds: int, fit_predict) -> np.ndarray:
    """(n, k) out-of-fold probabilities: fold k's rows from `fit_predict(train_rows, test_rows)` fit on the
    labeled rows of the other folds; uniform where those hold fewer than two classes."""
    oof = np.full((len(folds), N_CLASSES), 1.0 / N_CLASSES, dtype=np.float32)
    for k in range(n_folds):
        train = labeled[folds[labeled] != k]
        test = np.flatnonzero(folds == k)
        if len(np.unique(codes[train])) >= 2 and len(test):
            oof[test] = fit_predict(train, test)
    return oof

class LineClassifier(ClassifierMixin, BaseEstimator):
    """Base line model, a scikit-learn estimator: hyper-parameters are constructor arguments (see
    `models.lines.params`), learned state ends in `_`.

    `fit(X, y)` takes the line frame (see `models.lines.features.REQUIRED_COLUMNS`) and one label per
    line: a label name, a class index, or None/NaN/-1 for lines that are context only (features use
    them, the loss does not). `predict_proba(X)` is (n, 7) over all LABELS in canonical order.
    """

    def __init__(self, *, features: FeatureConfig = FeatureConfig(), content: ContentParams | None = ContentParams(),
                 stage1: BoosterParams = BoosterParams(), stage2: BoosterParams | None = DEFAULT_STAGE2,
                 inner_folds: int = 5, seed: int = 0, sequence: SequenceParams | None = None,
                 sequence_mode: str = "replace", n_jobs: int | None = None):
        self.features = features
        self.content = content
        self.stage1 = stage1
        self.stage2 = stage2
        self.inner_folds = inner_folds
        self.seed = seed
        self.sequence = sequence
        self.sequence_mode = sequence_mode
        self.n_jobs = n_jobs

    @classmethod
    def from_config(cls, config: LineModelConfig | None = None, *, n_jobs: int | None = None) -> "LineClassifier":
        config = config or LineModelConfig()
        return cls(**{f.name: getattr(config, f.name) for f in fields(config)}, n_jobs=n_jobs)

    @property
    def config(self) -> LineModelConfig:
        """The hyper-parameters as the JSON-serializable config saved with the model."""
        return LineModelConfig(**{f.name: getattr(self, f.name) for f in fields(LineModelConfig)})

    @property
    def _threads(self) -> int:
        return self.n_jobs or default_n_jobs()

    # -- fitting --

    def fit(self, X: pd.DataFrame, y, sample_weight=None, *, client=None, keep_oof: bool = False) -> "LineClassifier":
        """Fit on lines X with labels y; with a Dask `client` the boosters train on the cluster.

        `keep_oof`: also compute the final stage's out-of-fold probabilities over the inner folds
        (`oof_proba_`, `oof_fold_`; one more fit of the last stage per fold) — what a calibrator
        needs, without a second training run. Not saved with the model."""
        validate_lines(X)
        X = X.reset_index(drop=True)
        codes = encode_labels(y, len(X))
        check_trainable(codes, what="training the line model")
        weights = as_weights(sample_weight, len(X))
        cfg, threads = self.config, self._threads
        labeled = np.flatnonzero(codes >= 0)
        w_lab = None if weights is None else weights[labeled]
        dense = dense_features(X, cfg.features)
        # Lines sharing a `group` (e.g. layout variants of one script) stay in one inner fold.
        group_ids = X["group"].to_numpy() if "group" in X.columns else X["script_id"].to_numpy()
        folds = script_folds(group_ids, codes, cfg.inner_folds, seed=cfg.seed)
        n_folds = int(folds.max()) + 1

        content_oof = None
        if cfg.content is not None:
            texts = X["text"].to_numpy()
            content_oof = out_of_fold(folds, labeled, codes, n_folds, lambda train, test: ContentModel.fit(
                texts[train], codes[train], None if weights is None else weights[train], cfg.content,
                seed=cfg.seed).predict_proba(texts[test]))
            self.content_ = ContentModel.fit(texts[labeled], codes[labeled], w_lab, cfg.content, seed=cfg.seed)
        else:
            self.content_ = None

        M1 = self._stage1_matrix(dense, content_oof)
        self.stage1_names_ = self._stage1_names()
        self.stage1_ = train_booster(M1[labeled], codes[labeled], w_lab, cfg.stage1, n_jobs=threads, seed=cfg.seed,
                                      feature_names=self.stage1_names_, client=client)
        seq_mode = cfg.sequence_mode if cfg.sequence is not None else None
        self.sequence_ = None
        if cfg.stage2 is not None or seq_mode is not None:
            oof = out_of_fold(folds, labeled, codes, n_folds, lambda train, test: booster_proba(
                train_booster(M1[train], codes[train], None if weights is None else weights[train], cfg.stage1,
                              n_jobs=threads, seed=cfg.seed, feature_names=self.stage1_names_, client=client),
                M1[test], n_jobs=threads, feature_names=self.stage1_names_))
            self.stage1_oof_ = oof
        final_oof = None
        if seq_mode == "replace":
            seq_in = self._sequence_input(dense, oof)
            self.sequence_ = self._fit_sequence(X, seq_in, codes, weights)
            self.stage2_ = None
            self.stage2_names_ = None
            if keep_oof:
                final_oof = self._sequence_oof(X, seq_in, codes, weights, folds)
        elif cfg.stage2 is not None:
            seq_oof = None
            if seq_mode == "stage2":
                seq_in = self._sequence_input(dense, None)
                seq_oof = self._sequence_oof(X, seq_in, codes, weights, folds)
                self.sequence_ = self._fit_sequence(X, seq_in, codes, weights)
            M2 = self._stage2_matrix(X, dense, oof, seq_oof)
            self.stage2_names_ = self._stage2_names()
            self.stage2_ = train_booster(M2[labeled], codes[labeled], w_lab, cfg.stage2, n_jobs=threads,
                                          seed=cfg.seed, feature_names=self.stage2_names_, client=client)
            if keep_oof:
                final_oof = out_of_fold(folds, labeled, codes, n_folds, lambda train, test: booster_proba(
                    train_booster(M2[train], codes[train], None if weights is None else weights[train], cfg.stage2,
                                  n_jobs=threads, seed=cfg.seed, feature_names=self.stage2_names_, client=client),
                    M2[test], n_jobs=threads, feature_names=self.stage2_names_))
        else:
            self.stage2_ = None
            self.stage2_names_ = None
        if keep_oof:
            self.oof_proba_ = final_oof if final_oof is not None else self._stage1_oof(M1, codes, weights, folds)
            self.oof_fold_ = folds
        self.classes_ = np.array(LABELS, dtype=object)
        self.n_features_in_ = len(self.stage1_names_)
        self.training_summary_ = {
            "lines": int(len(X)),
            "labeled_lines": int(len(labeled)),
            "scripts": int(X["script_id"].nunique()),
            "label_counts": {LABELS[c]: int((codes == c).sum()) for c in range(N_CLASSES)},
        }
        return self

    def _sequence_oof(self, X: pd.DataFrame, inputs: np.ndarray, codes: np.ndarray, weights: np.ndarray | None,
                      folds: np.ndarray) -> np.ndarray:
        """The sequence labeler's probabilities for each inner fold from a labeler fit on the others."""
        out = np.full((len(X), N_CLASSES), 1.0 / N_CLASSES, dtype=np.float32)
        for k in range(int(folds.max()) + 1):
            test = np.flatnonzero(folds == k)
            train_codes = np.where(folds == k, -1, codes)
            if len(np.unique(train_codes[train_codes >= 0])) < 2 or len(test) == 0:
                continue
            fold_model = self._fit_sequence(X, inputs, train_codes, weights)
            out[test] = self._sequence_proba(fold_model, X.iloc[test].reset_index(drop=True), inputs[test])
        return out

    def _stage1_oof(self, M1: np.ndarray, codes: np.ndarray, weights: np.ndarray | None, folds: np.ndarray) -> np.ndarray:
        out = np.full((len(M1), N_CLASSES), 1.0 / N_CLASSES, dtype=np.float32)
        labeled = np.flatnonzero(codes >= 0)
        for k in range(int(folds.max()) + 1):
            train = labeled[folds[labeled] != k]
            test = np.flatnonzero(folds == k)
            if len(np.unique(codes[train])) < 2 or len(test) == 0:
                continue
            booster = train_booster(M1[train], codes[train], None if weights is None else weights[train],
                                    self.stage1, n_jobs=self._threads, seed=self.seed, feature_names=self.stage1_names_)
            out[test] = booster_proba(booster, M1[test], n_jobs=self._threads, feature_names=self.stage1_names_)
        return out

    def _dense_keep(self) -> np.ndarray:
        names = dense_feature_names(self.config.features)
        drop = set(self.config.features.exclude)
        return np.array([i for i, name in enumerate(names) if name not in drop], dtype=np.int64)

    def _dense_names(self) -> list[str]:
        names = dense_feature_names(self.config.features)
        return [names[i] for i in self._dense_keep()]

    def _stage1_names(self) -> list[str]:
        names = self._dense_names()
        if self.config.content is not None:
            names += [f"content_{label}" for label in LABELS]
        return names

    def _stage2_names(self) -> list[str]:
        cfg = self.config.features
        names = self._dense_names() + [f"s1_{label}" for label in LABELS] + proba_feature_names(cfg)
        if self._sequence_stacked():
            names += [f"seq_{label}" for label in LABELS]
        return names

    def adapter_feature_names(self) -> list[str]:
        """Names of the columns `adapter_matrix` builds from this base's outputs."""
        return self._stage2_names()

    def adapter_matrix(self, X: pd.DataFrame, outputs: BaseOutputs, rows: np.ndarray | None = None,
                       columns: np.ndarray | None = None) -> np.ndarray:
        """The adapter's input (stage-2 layout over the base's final probabilities), for some rows/columns.

        Uses the context features cached in `outputs` when there, so a retrain only gathers rows."""
        context = outputs.context if outputs.context is not None else self._context(X, outputs.dense, outputs.proba)
        rows = slice(None) if rows is None else rows
        parts = [outputs.dense[rows][:, self._dense_keep()], outputs.proba[rows], context[rows]]
        if self._sequence_stacked():
            parts.append(outputs.sequence[rows])
        M = np.hstack(parts)
        return M if columns is None else M[:, columns]

    def _sequence_stacked(self) -> bool:
        return self.config.sequence is not None and self.config.sequence_mode == "stage2"

    def _sequence_input(self, dense: np.ndarray, stage1: np.ndarray | None) -> np.ndarray:
        kept = dense[:, self._dense_keep()]
        return kept if stage1 is None else np.hstack([kept, stage1])

    def _fit_sequence(self, X: pd.DataFrame, inputs: np.ndarray, codes: np.ndarray, weights: np.ndarray | None):
        from models.lines.sequence import SequenceLabeler  # Keras loads only for a model that has one

        return SequenceLabeler(self.config.sequence).fit(inputs, X["text"].to_numpy(), codes, script_order(X), weights)

    @staticmethod
    def _sequence_proba(model, X: pd.DataFrame, inputs: np.ndarray) -> np.ndarray:
        return model.predict_proba(inputs, X["text"].to_numpy(), script_order(X))

    def _stage1_matrix(self, dense: np.ndarray, content: np.ndarray | None) -> np.ndarray:
        kept = dense[:, self._dense_keep()]
        return kept if content is None else np.hstack([kept, content])

    def _stage2_matrix(self, X: pd.DataFrame, dense: np.ndarray, stage1: np.ndarray,
                       sequence: np.ndarray | None = None) -> np.ndarray:
        context = proba_context_features(X, stage1, self.config.features, dense)
        parts = [dense[:, self._dense_keep()], stage1, context]
        return np.hstack(parts if sequence is None else parts + [sequence])

    # -- prediction --

    def _check_fitted(self) -> None:
        if not hasattr(self, "stage1_"):
            raise ModelLoadError("this line model is not trained yet: call fit() or load() first")

    def base_outputs(self, X: pd.DataFrame) -> BaseOutputs:
        self._check_fitted()
        validate_lines(X)
        X = X.reset_index(drop=True)
        cfg, threads = self.config, self._threads
        dense = dense_features(X, cfg.features)
        content = self.content_.predict_proba(X["text"].to_numpy()) if self.content_ is not None else None
        s1 = booster_proba(self.stage1_, self._stage1_matrix(dense, content), n_jobs=threads,
                            feature_names=self.stage1_names_)
        if self.sequence_ is not None and not self._sequence_stacked():
            seq = self._sequence_proba(self.sequence_, X, self._sequence_input(dense, s1))
            return BaseOutputs(dense, s1, seq, self._context(X, dense, seq), sequence=seq)
        if self.stage2_ is None:
            return BaseOutputs(dense, s1, s1, self._context(X, dense, s1))
        seq = (self._sequence_proba(self.sequence_, X, self._sequence_input(dense, None))
               if self.sequence_ is not None else None)
        s2 = booster_proba(self.stage2_, self._stage2_matrix(X, dense, s1, seq), n_jobs=threads,
                            feature_names=self.stage2_names_)
        return BaseOutputs(dense, s1, s2, self._context(X, dense, s2), sequence=seq)

    def _context(self, X: pd.DataFrame, dense: np.ndarray, proba: np.ndarray) -> np.ndarray:
        return proba_context_features(X, proba, self.config.features, dense)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        if len(X) == 0:
            return np.zeros((0, N_CLASSES), dtype=np.float32)
        return self.base_outputs(X).proba

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

    # -- persistence --

    def save(self, directory: str | Path) -> Path:
        """Write the model to `directory` (created): config.json, UBJ boosters, content weights,
        the sequence labeler's `.keras` file."""
        self._check_fitted()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.stage1_.save_model(directory / "stage1.ubj")
        if self.stage2_ is not None:
            self.stage2_.save_model(directory / "stage2.ubj")
        if self.content_ is not None:
            self.content_.save(directory / "content.npz")
        if self.sequence_ is not None:
            self.sequence_.save(directory, "sequence")
        meta = {
            "kind": "scriptlabel-line-model",
            "format_version": FORMAT_VERSION,
            "labels": list(LABELS),
            "config": self.config.to_dict(),
            "stage1_features": self.stage1_names_,
            "stage2_features": self.stage2_names_,
            "training": getattr(self, "training_summary_", {}),
            "metrics": getattr(self, "metrics_", {}),
        }
        write_meta(directory, "config.json", meta)  # last: a directory without it is an incomplete save
        return directory

    @classmethod
    def load(cls, directory: str | Path, *, n_jobs: int | None = None) -> "LineClassifier":
        """Read a model written by `save` (by this version or an older one); raises ModelLoadError
        naming what is wrong."""
        directory = Path(directory)
        meta = read_meta(directory, "scriptlabel-line-model")
        try:
            config = LineModelConfig.from_dict(meta["config"])
            model = cls.from_config(config, n_jobs=n_jobs)
            model.stage1_ = load_booster(directory / "stage1.ubj")
            model.stage2_ = load_booster(directory / "stage2.ubj") if meta.get("stage2_features") else None
            model.content_ = (ContentModel.load(directory / "content.npz", config.content)
                              if config.content is not None else None)
            model.stage1_names_ = list(meta["stage1_features"])
            model.stage2_names_ = list(meta["stage2_features"]) if meta.get("stage2_features") else None
            model.sequence_ = None
            if config.sequence is not None:
                from models.lines.sequence import SequenceLabeler, SequenceModelError

                try:
                    model.sequence_ = SequenceLabeler.load(directory, "sequence")
                except SequenceModelError as exc:
                    raise ModelLoadError(str(exc)) from exc
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
