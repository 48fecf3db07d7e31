"""Similar-sequences benchmark: retrieval quality of sequence embeddings on two proxies, and whether a
k-nearest-neighbour prior helps the complexity suggestion.

    uv run python bench/similar.py [--scripts 40]

Data: TRIPOD screenplays (../shared/data/tripod), split into sequences at scene headings and labeled
by layout (`heuristic_labeled_rows`, no line model: fast and the same for every method).

Proxies (no public "these two scenes are alike" labels exist):
- neighbour: for each sequence, is a sequence adjacent to it in the same script (the scene before or
  after: same place, people, thread) among its 5 nearest neighbours in the whole pool? hit@5 and MRR.
- genre: for each sequence, its 5 nearest neighbours *from other scripts*; the mean Jaccard overlap of
  the two films' IMDb genre sets, against the mean over all cross-script pairs (chance). lift = ratio.

Methods: tf-idf (the baseline: one tf-idf over descriptions and dialogue, cosine; written out here),
the product's `SequenceEmbedder` defaults (the same recipe; the figures should match the baseline),
per-component tf-idf (descriptions and dialogue weighted apart), the same
reduced by SVD to 64 and 256 dimensions (latent semantic analysis), and with character names and the
line-count block on. The complexity models' BiLSTM encoder: no complexity ratings exist to train it
on, so it is trained to predict the film's genres from a sequence on half of the scripts and its
pooled BiLSTM states embed the other half's sequences; tf-idf is scored on the same held-out pool
(`--no-encoder` skips it).

kNN prior: with no real complexity ratings, measured on the planted-signal sequences of
`models.complexity.data.planted_docs` (rating = a known function of content) under grouped 5-fold CV:
tf-idf logistic alone vs blended with the similarity-weighted rating of the k nearest training
sequences. Planted data can only show whether the mechanism works, not that it helps real ratings,
so the product does not use the prior (see README).

Prints JSON on stdout; progress on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
from sklearn.feature_extraction.text import TfidfVectorizer  # noqa: E402
from sklearn.preprocessing import normalize  # noqa: E402

from models.complexity.data import docs_from_labeled_lines, heuristic_labeled_rows, planted_docs  # noqa: E402
from models.complexity.embedding import SequenceEmbedder, knn_prior  # noqa: E402

DATA = Path(os.environ.get("SCRIPTLABEL_SHARED_DATA", REPO.parent / "shared" / "data"))
MIN_LINES = 3  # sequences shorter than this (a heading alone) are not queried


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def load_tripod(n_scripts: int):
    root = DATA / "tripod" / "screenplays"
    if not root.is_dir():
        raise SystemExit(f"{root}: TRIPOD data not found (check ../shared/data)")
    folders = sorted(p for p in root.iterdir() if p.is_dir())
    step = max(1, len(folders) // n_scripts)
    docs, script_of, position, genres = [], [], [], {}
    for index, folder in enumerate(folders[::step][:n_scripts]):
        script = folder / f"{folder.name}_script.txt"
        meta = folder / f"{folder.name}_imdb_meta.txt"
        if not script.exists() or not meta.exists():
            continue
        genres[index] = {line.split("\t", 1)[1].strip() for line in meta.read_text(errors="replace").splitlines()
                         if line.startswith("genre\t")}
        rows = heuristic_labeled_rows(script.read_text(errors="replace"))
        seq_docs = docs_from_labeled_lines([(f"{index}:{seq}", label, text, page) for seq, label, text, page in rows])
        for order, doc in enumerate(seq_docs):
            docs.append(doc)
            script_of.append(index)
            position.append(order)
    return docs, np.array(script_of), np.array(position), genres


def tfidf_embed(docs) -> np.ndarray:
    texts = [" ".join(d.descriptions + d.dialogue) for d in docs]
    matrix = TfidfVectorizer(sublinear_tf=True, min_df=2, token_pattern=r"(?u)\b\w[\w']+\b").fit_transform(texts)
    return normalize(matrix)  # sparse, unit rows


def top_k(embeddings, queries: np.ndarray, k: int, *, mask_fn) -> np.ndarray:
    """Indices of the k nearest rows for each query (chunked: the pool is thousands of sequences)."""
    out = np.zeros((len(queries), k), dtype=int)
    for start in range(0, len(queries), 500):
        chunk = queries[start:start + 500]
        sims = embeddings[chunk] @ embeddings.T
        sims = sims.toarray() if hasattr(sims, "toarray") else np.asarray(sims)
        for row, q in enumerate(chunk):
            sims[row, mask_fn(q)] = -np.inf
        out[start:start + len(chunk)] = np.argsort(-sims, axis=1)[:, :k]
    return out


def retrieval_scores(embeddings, docs, script_of, position, genres, *, k: int = 5) -> dict:
    sizes = np.array([sum(d.counts.get(key, 0) for key in ("action_lines", "dialogue_lines", "character_lines"))
                      for d in docs])
    queries = np.flatnonzero(sizes >= MIN_LINES)
    # neighbour proxy: the whole pool, minus the query itself
    nearest = top_k(embeddings, queries, 50, mask_fn=lambda q: [q])
    hits, rr = [], []
    for q, row in zip(queries, nearest):
        adjacent = (script_of[row] == script_of[q]) & (np.abs(position[row] - position[q]) == 1)
        hits.append(bool(adjacent[:k].any()))
        first = np.flatnonzero(adjacent)
        rr.append(1.0 / (first[0] + 1) if len(first) else 0.0)
    # genre proxy: other scripts only
    cross = top_k(embeddings, queries, k, mask_fn=lambda q: np.flatnonzero(script_of == script_of[q]))

    def jaccard(a, b):
        ga, gb = genres[a], genres[b]
        return len(ga & gb) / len(ga | gb) if ga | gb else 0.0

    overlap = np.mean([jaccard(script_of[q], script_of[n]) for q, row in zip(queries, cross) for n in row])
    return {"neighbour_hit_at_5": round(float(np.mean(hits)), 4), "neighbour_mrr_at_50": round(float(np.mean(rr)), 4),
            "genre_jaccard_at_5": round(float(overlap), 4), "queries": int(len(queries))}


def chance_genre_overlap(script_of, genres, queries_weights=None) -> float:
    ids, counts = np.unique(script_of, return_counts=True)
    total, weight = 0.0, 0.0
    for a, ca in zip(ids, counts):
        for b, cb in zip(ids, counts):
            if a == b:
                continue
            ga, gb = genres[a], genres[b]
            total += ca * cb * (len(ga & gb) / len(ga | gb) if ga | gb else 0.0)
            weight += ca * cb
    return total / weight


def knn_prior_check(*, n: int = 240, k: int = 7, seed: int = 0) -> dict:
    from models.complexity.baselines import TfidfLogisticClassifier
    from models.complexity.evaluation import cv_splits, quadratic_weighted_kappa

    docs, y, _ = planted_docs(n, seed=seed)
    groups = np.arange(n) // 12  # 20 pseudo-scripts of 12 sequences: folds never split one
    splits = cv_splits(y, groups, n_splits=5, seed=seed)
    model_pred, prior_pred, blend_pred = np.zeros(n, int), np.zeros(n, int), np.zeros(n, int)
    for train, test in splits:
        model = TfidfLogisticClassifier().fit([docs[i] for i in train], y[train])
        proba = model.predict_proba([docs[i] for i in test])
        expected = proba @ np.asarray(model.classes_, dtype=float)
        model_pred[test] = np.asarray(model.classes_)[proba.argmax(1)]
        embedder = SequenceEmbedder().fit([docs[i] for i in train])
        emb = embedder.transform(docs)
        rated = np.zeros(n, dtype=bool)
        rated[train] = True
        prior = knn_prior(emb, np.where(rated, y, 0).astype(float), rated, k=k)[test]
        prior_pred[test] = np.clip(np.rint(prior), 1, 5)
        blend_pred[test] = np.clip(np.rint((expected + prior) / 2), 1, 5)
    return {"data": f"planted_docs n={n}, 20 pseudo-scripts, grouped 5-fold CV", "k": k,
            "qwk_logistic": round(quadratic_weighted_kappa(y, model_pred), 4),
            "qwk_knn_prior_alone": round(quadratic_weighted_kappa(y, prior_pred), 4),
            "qwk_logistic_plus_knn_prior": round(quadratic_weighted_kappa(y, blend_pred), 4)}


def encoder_check(docs, script_of, position, genres, *, epochs: int = 4, max_train: int = 1500) -> dict:
    """The complexity models' BiLSTM as an encoder: trained to predict the film's IMDb genres from a
    sequence (no complexity ratings exist to train it on) on half of the scripts, its pooled BiLSTM
    states used as the embedding of the other half's sequences; tf-idf scored on the same pool."""
    os.environ.setdefault("KERAS_BACKEND", "jax")
    from models.complexity.nets import SequenceBiLSTM, keras

    scripts = np.unique(script_of)
    train_scripts = set(scripts[::2])
    train = np.flatnonzero(np.isin(script_of, list(train_scripts)))
    test = np.flatnonzero(~np.isin(script_of, list(train_scripts)))
    rng = np.random.default_rng(0)
    train = np.sort(rng.choice(train, size=min(max_train, len(train)), replace=False))
    names = sorted(set().union(*genres.values()))
    y = np.array([[int(g in genres[script_of[i]]) for g in names] for i in train])
    y = y[:, (y.sum(0) > 0) & (y.sum(0) < len(y))]
    t0 = time.monotonic()
    net = SequenceBiLSTM(components=("descriptions", "dialogue"), epochs=epochs, max_tokens=150)
    net.fit([docs[i] for i in train], y)
    fit_s = time.monotonic() - t0
    pooled = [layer.output for layer in net.model_.layers if layer.name.endswith("_bilstm")]
    encoder = keras.Model(net.model_.inputs, keras.layers.Concatenate()(pooled))
    x = net._inputs([docs[i] for i in test])
    encoded = np.asarray(encoder.predict(x, batch_size=256, verbose=0), dtype=float)
    encoded /= np.maximum(np.linalg.norm(encoded, axis=1, keepdims=True), 1e-12)
    sub = [docs[i] for i in test]
    sub_script, sub_position = script_of[test], position[test]
    return {"pool": f"{len(test)} sequences of {len(np.unique(sub_script))} held-out scripts",
            "encoder_fit_seconds": round(fit_s, 1), "trained_on_sequences": int(len(train)), "epochs": epochs,
            "bilstm_encoder": retrieval_scores(encoded, sub, sub_script, sub_position, genres),
            "tfidf_same_pool": retrieval_scores(tfidf_embed(sub), sub, sub_script, sub_position, genres),
            "genre_jaccard_chance": round(chance_genre_overlap(sub_script, genres), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scripts", type=int, default=40, help="TRIPOD screenplays to use (every n-th).")
    parser.add_argument("--no-encoder", action="store_true", help="Skip the BiLSTM encoder comparison (minutes).")
    args = parser.parse_args()
    started = time.monotonic()
    docs, script_of, position, genres = load_tripod(args.scripts)
    log(f"{len(docs)} sequences from {len(genres)} TRIPOD screenplays")
    methods = {
        "tfidf": lambda: tfidf_embed(docs),
        "product (SequenceEmbedder defaults)": lambda: SequenceEmbedder().fit_transform(docs),
        "component_tfidf": lambda: SequenceEmbedder(separate_components=True).fit_transform(docs),
        "component_tfidf_svd64": lambda: SequenceEmbedder(separate_components=True, n_components=64
                                                          ).fit_transform(docs),
        "component_tfidf_svd256": lambda: SequenceEmbedder(separate_components=True, n_components=256
                                                           ).fit_transform(docs),
        "component_tfidf_with_characters_and_counts": lambda: SequenceEmbedder(
            separate_components=True, character_weight=1.0, counts_weight=0.3).fit_transform(docs),
    }
    results = {}
    for name, embed in methods.items():
        t0 = time.monotonic()
        embeddings = embed()
        embed_s = time.monotonic() - t0
        results[name] = {**retrieval_scores(embeddings, docs, script_of, position, genres),
                         "embed_seconds": round(embed_s, 2)}
        log(f"{name}: {results[name]}")
    chance = chance_genre_overlap(script_of, genres)
    for scores in results.values():
        scores["genre_lift_over_chance"] = round(scores["genre_jaccard_at_5"] / chance, 3)
    print(json.dumps({
        "sequences": len(docs), "scripts": len(genres), "genre_jaccard_chance": round(chance, 4),
        "retrieval": results, "knn_prior": knn_prior_check(),
        "encoder": None if args.no_encoder else encoder_check(docs, script_of, position, genres),
        "seconds": round(time.monotonic() - started, 1),
    }, indent=1))


if __name__ == "__main__":
    main()
