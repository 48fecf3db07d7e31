"""Similar sequences across every script of the database (`scriptlabel similar`, the Sequences page).

The embedding (models.complexity.embedding: per-component tf-idf, cosine) is fit on all sequences at
query time: thousands of sequences take about a second, and it always reflects the current lines
and labels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sqlite_utils import Database

from labeling.training.complexity import sequence_docs
from models.complexity.embedding import SequenceEmbedder, nearest
from store import scripts as script_store
from store import sequences as sequence_store


@dataclass(frozen=True)
class SimilarSequence:
    sequence_id: int
    score: float
    code: str
    title: str
    script_id: int

    def as_json(self) -> dict:
        return {"sequence_id": self.sequence_id, "score": round(self.score, 4), "code": self.code,
                "title": self.title, "script_id": self.script_id}


def embed_sequences(db: Database) -> tuple[list[int], object]:
    """(sequence ids, unit embeddings) of every sequence of every ready script."""
    docs = sequence_docs(db)
    if len(docs) < 2:
        return [int(d.sequence_id) for d in docs], np.zeros((len(docs), 1))
    return [int(d.sequence_id) for d in docs], SequenceEmbedder().fit_transform(docs)


def embedding_token(db: Database) -> tuple:
    """Changes when what the embeddings read changes (scripts, sequences, labels, text, line model), not on ratings."""
    from store import models as model_store

    current = model_store.current_version(db, "lines")
    from store.db import row_counts

    return row_counts(db, ("scripts", "sequences", "label_events", "text_edits")) + (current.version if current else 0,)


def similar_sequences(db: Database, sequence_id: int, *, n: int = 5,
                      embedded: tuple[list[int], object] | None = None) -> list[SimilarSequence]:
    """The `n` sequences most like `sequence_id` (cosine of embeddings), best first, never itself.

    `embedded` is a precomputed `embed_sequences(db)` (the app caches it until labels change).
    """
    sequence_store.get_sequence(db, sequence_id)
    ids, embeddings = embedded if embedded is not None else embed_sequences(db)
    if sequence_id not in ids or len(ids) < 2:
        return []
    info = {s.sequence_id: s for s in sequence_store.list_sequences(db)}
    hits = nearest(embeddings, ids.index(sequence_id), n)
    return [SimilarSequence(sequence_id=ids[i], score=score, code=info[ids[i]].code, title=info[ids[i]].title,
                            script_id=info[ids[i]].script_id) for i, score in hits]


def similar_table(db: Database, sequence_id: int, *, department: str = "overall", n: int = 5,
                  embedded: tuple[list[int], object] | None = None) -> pd.DataFrame:
    """The Sequences page's "sequences like this one": code, title, script, similarity, rating in `department`."""
    hits = similar_sequences(db, sequence_id, n=n, embedded=embedded)
    ratings = sequence_store.current_ratings(db, department=department).set_index("sequence_id")["value"]
    titles = {s.script_id: s.title for s in script_store.list_scripts(db)}
    return pd.DataFrame([{"sequence_id": h.sequence_id, "code": h.code, "title": h.title,
                          "script": titles.get(h.script_id, ""), "similarity": round(h.score, 3),
                          "rating": ratings.get(h.sequence_id)} for h in hits],
                        columns=["sequence_id", "code", "title", "script", "similarity", "rating"]
                        ).astype({"rating": "Int64"})
