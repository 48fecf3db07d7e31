"""Baselines for sequence complexity (ordinal 1-5) and sequence tags (multi-label); no Keras.

Every estimator takes a list of `SequenceDoc`s as X and keeps the scikit-learn contract:
hyper-parameters in `__init__`, `fit` returns self, learned state ends in `_`. For ratings, y is a 1-D
array of rating values: only the values present are learned, `classes_` lists them and the columns
of `predict_proba` follow it, `predict` returns rating values. For tags, y is an (n, n_tags) 0/1
matrix and `predict_proba` gives one probability per tag (one-vs-rest).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from models.complexity.data import SequenceDoc, as_targets, count_matrix
from models.complexity.sentiment import sentiment_matrix


class CountsTfidfFeatures(BaseEstimator):
    """Counts (log1p, standardized) beside tf-idf of the sequence's text, components tagged.

    `use_sentiment` adds the sentiment and affect block (`models.complexity.sentiment`, standardized).
    """

    def __init__(self, max_features: int = 5000, ngram_range: tuple[int, int] = (1, 1),
                 min_df: int = 1, use_counts: bool = True, use_text: bool = True,
                 use_sentiment: bool = False):
        self.max_features = max_features
        self.ngram_range = ngram_range
        self.min_df = min_df
        self.use_counts = use_counts
        self.use_text = use_text
        self.use_sentiment = use_sentiment

    @staticmethod
    def _texts(docs: Sequence[SequenceDoc]) -> list[str]:
        # Character names become one token each so "OLD MAN" and "old man" in action stay apart.
        return [
            " ".join(doc.descriptions + doc.dialogue)
            + " " + " ".join("CUE_" + "_".join(c.split()) for c in doc.characters)
            for doc in docs
        ]

    def fit(self, docs: Sequence[SequenceDoc], y=None) -> "CountsTfidfFeatures":
        if self.use_text:
            self.vectorizer_ = TfidfVectorizer(
                max_features=self.max_features, ngram_range=self.ngram_range,
                min_df=self.min_df, sublinear_tf=True,
            ).fit(self._texts(docs))
        if self.use_counts:
            self.scaler_ = StandardScaler().fit(np.log1p(count_matrix(docs)))
        if self.use_sentiment:
            self.sentiment_scaler_ = StandardScaler().fit(sentiment_matrix(docs))
        return self

    def transform(self, docs: Sequence[SequenceDoc]) -> sp.csr_matrix:
        parts = []
        if self.use_counts:
            parts.append(sp.csr_matrix(self.scaler_.transform(np.log1p(count_matrix(docs)))))
        if self.use_sentiment:
            parts.append(sp.csr_matrix(self.sentiment_scaler_.transform(sentiment_matrix(docs))))
        if self.use_text:
            parts.append(self.vectorizer_.transform(self._texts(docs)))
        return sp.hstack(parts, format="csr")


class MajorityClassifier(ClassifierMixin, BaseEstimator):
    """Always the training distribution: most frequent rating, or each tag's prevalence."""

    def fit(self, docs: Sequence[SequenceDoc], y) -> "MajorityClassifier":
        y, self.multilabel_ = as_targets(y)
        if self.multilabel_:
            self.prior_ = y.mean(0)
        else:
            self.classes_, counts = np.unique(y, return_counts=True)
            self.prior_ = counts / counts.sum()
        return self

    def predict_proba(self, docs: Sequence[SequenceDoc]) -> np.ndarray:
        return np.tile(self.prior_, (len(docs), 1))

    def predict(self, docs: Sequence[SequenceDoc]) -> np.ndarray:
        proba = self.predict_proba(docs)
        if self.multilabel_:
            return (proba >= 0.5).astype(int)
        return self.classes_[proba.argmax(1)]


class _FeatureModel(ClassifierMixin, BaseEstimator):
    """Shared plumbing: featurize, fit one model (or one per tag), map columns back to ratings."""

    def _features(self) -> CountsTfidfFeatures:
        return CountsTfidfFeatures(max_features=self.max_features, use_counts=self.use_counts,
                                   use_text=self.use_text, use_sentiment=self.use_sentiment)

    def _make_binary(self):
        raise NotImplementedError

    def _fit_ratings(self, X, y):
        raise NotImplementedError

    def _proba_ratings(self, X) -> np.ndarray:
        raise NotImplementedError

    def fit(self, docs: Sequence[SequenceDoc], y):
        # Tiny problems: BLAS threads only contend (lbfgs ran ~20x slower beside a Keras fit).
        with threadpool_limits(1):
            return self._fit(docs, y)

    def _fit(self, docs: Sequence[SequenceDoc], y):
        y, self.multilabel_ = as_targets(y)
        self.features_ = self._features().fit(docs)
        X = self.features_.transform(docs)
        if self.multilabel_:
            # A tag constant in training gets a constant probability rather than a failed fit.
            self.tag_models_ = [
                self._make_binary().fit(X, col) if 0 < col.sum() < len(col) else float(col.mean())
                for col in y.T
            ]
        else:
            self.classes_ = np.unique(y)
            self._fit_ratings(X, np.searchsorted(self.classes_, y))
        return self

    def predict_proba(self, docs: Sequence[SequenceDoc]) -> np.ndarray:
        X = self.features_.transform(docs)
        if self.multilabel_:
            return np.column_stack([
                np.full(X.shape[0], m) if isinstance(m, float) else m.predict_proba(X)[:, 1]
                for m in self.tag_models_
            ])
        return self._proba_ratings(X)

    def predict(self, docs: Sequence[SequenceDoc]) -> np.ndarray:
        proba = self.predict_proba(docs)
        if self.multilabel_:
            return (proba >= 0.5).astype(int)
        return self.classes_[proba.argmax(1)]


class TfidfLogisticClassifier(_FeatureModel):
    """Logistic regression on counts + tf-idf; `ordinal=True` uses cumulative binary models.

    The ordinal variant (Frank & Hall 2001) fits P(rating > c) for each threshold c between the
    rating values seen, so neighbouring ratings share strength: fitting when classes are few.
    """

    def __init__(self, C: float = 10.0, ordinal: bool = False, max_features: int = 5000,
                 use_counts: bool = True, use_text: bool = True, class_weight: str | None = None,
                 max_iter: int = 2000, use_sentiment: bool = False):
        self.C = C
        self.ordinal = ordinal
        self.max_features = max_features
        self.use_counts = use_counts
        self.use_text = use_text
        self.class_weight = class_weight
        self.max_iter = max_iter
        self.use_sentiment = use_sentiment

    def _make_binary(self):
        return LogisticRegression(C=self.C, class_weight=self.class_weight, max_iter=self.max_iter)

    def _fit_ratings(self, X, codes):
        if self.ordinal:
            self.threshold_models_ = [
                self._make_binary().fit(X, (codes > k).astype(int))
                for k in range(len(self.classes_) - 1)
            ]
        else:
            self.model_ = self._make_binary().fit(X, codes)

    def _proba_ratings(self, X) -> np.ndarray:
        if not self.ordinal:
            return self.model_.predict_proba(X)
        above = np.column_stack([m.predict_proba(X)[:, 1] for m in self.threshold_models_])
        # Cumulative probabilities must not rise with the threshold; enforce it before differencing.
        above = np.minimum.accumulate(above, axis=1)
        edges = np.column_stack([np.ones(len(above)), above, np.zeros(len(above))])
        proba = np.clip(edges[:, :-1] - edges[:, 1:], 0.0, None)
        return proba / proba.sum(1, keepdims=True)


class TfidfXGBClassifier(_FeatureModel):
    """XGBoost on counts + tf-idf (histogram trees, a few threads)."""

    def __init__(self, n_estimators: int = 200, max_depth: int = 3, learning_rate: float = 0.1,
                 subsample: float = 0.9, colsample_bytree: float = 0.5, max_features: int = 5000,
                 use_counts: bool = True, use_text: bool = True, n_jobs: int = 2,
                 random_state: int = 0, use_sentiment: bool = False):
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.max_features = max_features
        self.use_counts = use_counts
        self.use_text = use_text
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.use_sentiment = use_sentiment

    def _make_binary(self):
        from xgboost import XGBClassifier  # import here: the app starts without xgboost's threads

        return XGBClassifier(
            n_estimators=self.n_estimators, max_depth=self.max_depth,
            learning_rate=self.learning_rate, subsample=self.subsample,
            colsample_bytree=self.colsample_bytree, n_jobs=self.n_jobs,
            random_state=self.random_state, tree_method="hist", verbosity=0,
        )

    def _fit_ratings(self, X, codes):
        self.model_ = self._make_binary()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.model_.fit(X, codes)

    def _proba_ratings(self, X) -> np.ndarray:
        proba = self.model_.predict_proba(X)
        if proba.ndim == 1 or proba.shape[1] == 1:  # two classes may come back as one column
            p1 = proba.reshape(-1)
            proba = np.column_stack([1 - p1, p1])
        return proba
