"""The content model: a linear softmax over hashed character 1–4-grams and word 1–2-grams of a
line's text (what the words say), saved as plain sparse arrays."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import HashingVectorizer

from models.lines.labels import N_CLASSES
from models.lines.params import ContentParams


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
