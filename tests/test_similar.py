"""Similar sequences: embeddings, nearest neighbours, `scriptlabel similar`."""

from __future__ import annotations

import numpy as np
import pytest

import app_builders
from models.complexity.data import docs_from_labeled_lines
from models.complexity.embedding import SequenceEmbedder, knn_prior, nearest
from store import sequences as sequence_store


def _docs():
    rows = []
    topics = {0: "water wave ocean boat swim", 1: "water wave ocean boat sail", 2: "fire smoke flame burn ash",
              3: "fire smoke flame burn ember"}
    for seq, words in topics.items():
        rows.append((seq, "scene_heading", f"EXT. PLACE {seq} - DAY", 1))
        rows.append((seq, "action", words, 1))
        rows.append((seq, "character", "ANNA", 1))
        rows.append((seq, "dialogue", "look at that", 1))
    return docs_from_labeled_lines(rows)


@pytest.mark.parametrize("n_components", [0, 3])
def test_embedding_puts_like_with_like(n_components):
    emb = SequenceEmbedder(n_components=n_components).fit_transform(_docs())
    norms = np.sqrt(np.asarray(emb.multiply(emb).sum(1)).ravel()) if n_components == 0 else np.linalg.norm(emb, axis=1)
    assert np.allclose(norms, 1.0)
    assert nearest(emb, 0, 1)[0][0] == 1 and nearest(emb, 2, 1)[0][0] == 3
    assert all(i != 0 for i, _ in nearest(emb, 0, 10))


def test_knn_prior_uses_only_other_rated_rows():
    emb = np.eye(3)[[0, 0, 1, 1]].astype(float)
    prior = knn_prior(emb, np.array([2, 4, 5, 1]), np.array([True, True, True, False]), k=1)
    assert prior[0] == 4 and prior[1] == 2 and prior[3] == 5


def test_similar_command(cli, db, pdf_script, tmp_path):
    app_builders.text_script(db, tmp_path)
    seqs = sequence_store.list_sequences(db)
    query = seqs[0].sequence_id
    hits = cli.json_lines("similar", str(query), "--n", "3")
    assert len(hits) == 3
    assert all(set(h) == {"sequence_id", "score", "code", "title", "script_id"} for h in hits)
    assert query not in {h["sequence_id"] for h in hits}
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
    missing = cli("similar", "99999")
    assert missing.exit_code == 1 and "no sequence with id 99999" in missing.stderr
