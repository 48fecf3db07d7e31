"""An embedding per sequence for "sequences like this one": tf-idf per component, optionally SVD.

By default one tf-idf over the sequence's descriptions and dialogue; `separate_components=True`
gives descriptions and dialogue their own weighted tf-idf; character cues and a block of line counts
can be added. Rows are L2-normalized so a dot product is the cosine similarity. `n_components > 0`
reduces them by truncated SVD (latent semantic analysis) to dense vectors. The defaults are what
retrieved best on TRIPOD (bench/similar.py): SVD to 64 or 256 dimensions found the neighbouring scene
and same-genre films clearly less often than the sparse tf-idf; separate components, character names
(which tie a sequence to its own script) and the counts were also slightly to clearly worse.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize

from models.complexity.data import SequenceDoc, count_matrix


class SequenceEmbedder(BaseEstimator):
    """fit(docs) learns the vocabularies (and the SVD); transform(docs) → unit rows (sparse without SVD)."""

    def __init__(self, n_components: int = 0, separate_components: bool = False, description_weight: float = 1.0,
                 dialogue_weight: float = 0.7, character_weight: float = 0.0, counts_weight: float = 0.0,
                 max_features: int = 50000, seed: int = 0):
        self.n_components = n_components
        self.separate_components = separate_components
        self.description_weight = description_weight
        self.dialogue_weight = dialogue_weight
        self.character_weight = character_weight
        self.counts_weight = counts_weight
        self.max_features = max_features
        self.seed = seed

    def _parts(self):
        text = [("descriptions", self.description_weight), ("dialogue", self.dialogue_weight)] \
            if self.separate_components else [("text", 1.0)]
        return text + [("characters", self.character_weight)]

    @staticmethod
    def _texts(docs: Sequence[SequenceDoc], component: str) -> list[str]:
        if component == "text":
            return [" ".join(doc.descriptions + doc.dialogue) for doc in docs]
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
                    max_features=self.max_features, sublinear_tf=True, min_df=2 if len(docs) >= 50 else 1,
                    token_pattern=r"(?u)\b\w[\w']+\b").fit(texts)
        counts = np.log1p(count_matrix(docs))
        self.count_mean_ = counts.mean(axis=0)
        self.count_scale_ = counts.std(axis=0) + 1e-9
        stacked = self._stack(docs)
        k = min(self.n_components, stacked.shape[1] - 1, len(docs) - 1)
        self.svd_ = TruncatedSVD(n_components=k, random_state=self.seed).fit(stacked) if k >= 2 else None
        return self

    def transform(self, docs: Sequence[SequenceDoc]) -> np.ndarray | sp.csr_matrix:
        stacked = self._stack(docs)
        if self.svd_ is None:
            return normalize(stacked).tocsr()
        dense = self.svd_.transform(stacked)
        norms = np.linalg.norm(dense, axis=1, keepdims=True)
        return dense / np.where(norms > 0, norms, 1.0)

    def fit_transform(self, docs: Sequence[SequenceDoc], y=None) -> np.ndarray | sp.csr_matrix:
        return self.fit(docs).transform(docs)


def _dense(values) -> np.ndarray:
    return np.asarray(values.toarray() if sp.issparse(values) else values, dtype=float)


def nearest(embeddings, query: int, n: int, *, exclude: np.ndarray | None = None) -> list[tuple[int, float]]:
    """(row, cosine) of the `n` rows nearest to row `query`, never the query itself."""
    scores = _dense(embeddings @ embeddings[query].T).ravel()
    scores[query] = -np.inf
    if exclude is not None:
        scores[exclude] = -np.inf
    order = np.argsort(-scores, kind="stable")[:n]
    return [(int(i), float(scores[i])) for i in order if np.isfinite(scores[i])]


def knn_prior(embeddings, ratings: np.ndarray, rated: np.ndarray, *, k: int = 5) -> np.ndarray:
    """Per row: the similarity-weighted mean rating of its k nearest rated rows (itself excluded); NaN if none."""
    out = np.full(embeddings.shape[0], np.nan)
    rated_idx = np.flatnonzero(rated)
    if len(rated_idx) == 0:
        return out
    sims = _dense(embeddings @ embeddings[rated_idx].T)
    for row in range(embeddings.shape[0]):
        s = sims[row].copy()
        s[rated_idx == row] = -np.inf
        top = np.argsort(-s)[:k]
        top = top[np.isfinite(s[top])]
        if len(top):
            w = np.clip(s[top], 1e-6, None)
            out[row] = float(np.dot(w, ratings[rated_idx[top]]) / w.sum())
    return out
