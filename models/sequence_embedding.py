"""A dense embedding per sequence for "sequences like this one": tf-idf per component, then SVD.

Descriptions, dialogue and character cues get their own tf-idf (so a line of action never matches a
line of dialogue), weighted, stacked and reduced by truncated SVD (latent semantic analysis); rows
are L2-normalized so a dot product is the cosine similarity. Character names are off by default:
they tie a sequence to its own script and drown what the sequence is about (see bench/similar.py).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer

from models.complexity_data import SequenceDoc, count_matrix


class SequenceEmbedder(BaseEstimator):
    """fit(docs) learns the vocabularies and the SVD; transform(docs) → (n, k) unit rows."""

    def __init__(self, n_components: int = 64, description_weight: float = 1.0, dialogue_weight: float = 0.7,
                 character_weight: float = 0.0, counts_weight: float = 0.3, max_features: int = 20000,
                 seed: int = 0):
        self.n_components = n_components
        self.description_weight = description_weight
        self.dialogue_weight = dialogue_weight
        self.character_weight = character_weight
        self.counts_weight = counts_weight
        self.max_features = max_features
        self.seed = seed

    def _parts(self):
        return [("descriptions", self.description_weight), ("dialogue", self.dialogue_weight),
                ("characters", self.character_weight)]

    @staticmethod
    def _texts(docs: Sequence[SequenceDoc], component: str) -> list[str]:
        if component == "characters":
            return [" ".join("CUE_" + "_".join(c.split()) for c in doc.characters) for doc in docs]
        return [" ".join(doc.component(component)) for doc in docs]

    def _stack(self, docs: Sequence[SequenceDoc]) -> sp.csr_matrix:
        blocks = [weight * self.vectorizers_[name].transform(self._texts(docs, name))
                  for name, weight in self._parts() if name in self.vectorizers_]
        if self.counts_weight > 0:
            counts = np.log1p(count_matrix(docs))
            counts = (counts - self.count_mean_) / self.count_scale_
            blocks.append(sp.csr_matrix(self.counts_weight * counts / np.sqrt(counts.shape[1])))
        return sp.hstack(blocks, format="csr")

    def fit(self, docs: Sequence[SequenceDoc], y=None) -> "SequenceEmbedder":
        self.vectorizers_ = {}
        for name, weight in self._parts():
            texts = self._texts(docs, name)
            if weight > 0 and any(t.strip() for t in texts):
                self.vectorizers_[name] = TfidfVectorizer(
                    max_features=self.max_features, sublinear_tf=True, min_df=1,
                    token_pattern=r"(?u)\b\w[\w']+\b").fit(texts)
        counts = np.log1p(count_matrix(docs))
        self.count_mean_ = counts.mean(axis=0)
        self.count_scale_ = counts.std(axis=0) + 1e-9
        stacked = self._stack(docs)
        k = min(self.n_components, stacked.shape[1] - 1, len(docs) - 1)
        self.svd_ = TruncatedSVD(n_components=k, random_state=self.seed).fit(stacked) if k >= 2 else None
        return self

    def transform(self, docs: Sequence[SequenceDoc]) -> np.ndarray:
        stacked = self._stack(docs)
        dense = self.svd_.transform(stacked) if self.svd_ is not None else stacked.toarray()
        norms = np.linalg.norm(dense, axis=1, keepdims=True)
        return dense / np.where(norms > 0, norms, 1.0)

    def fit_transform(self, docs: Sequence[SequenceDoc], y=None) -> np.ndarray:
        return self.fit(docs).transform(docs)


def nearest(embeddings: np.ndarray, query: int, n: int, *, exclude: np.ndarray | None = None
            ) -> list[tuple[int, float]]:
    """(row, cosine) of the `n` rows nearest to row `query`, never the query itself."""
    scores = embeddings @ embeddings[query]
    scores[query] = -np.inf
    if exclude is not None:
        scores[exclude] = -np.inf
    order = np.argsort(-scores, kind="stable")[:n]
    return [(int(i), float(scores[i])) for i in order if np.isfinite(scores[i])]


def knn_prior(embeddings: np.ndarray, ratings: np.ndarray, rated: np.ndarray, *, k: int = 5) -> np.ndarray:
    """Per row: the similarity-weighted mean rating of its k nearest rated rows (itself excluded); NaN if none."""
    out = np.full(len(embeddings), np.nan)
    rated_idx = np.flatnonzero(rated)
    if len(rated_idx) == 0:
        return out
    sims = embeddings @ embeddings[rated_idx].T
    for row in range(len(embeddings)):
        s = sims[row].copy()
        s[rated_idx == row] = -np.inf
        top = np.argsort(-s)[:k]
        top = top[np.isfinite(s[top])]
        if len(top):
            w = np.clip(s[top], 1e-6, None)
            out[row] = float(np.dot(w, ratings[rated_idx[top]]) / w.sum())
    return out
