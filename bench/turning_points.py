"""A sequence-level benchmark on real annotations: TRIPOD's turning points through the product's rating loop.

    KERAS_BACKEND=jax nice -n 10 uv run python bench/turning_points.py [--movies N] [--folds K]
        [--epochs E] [--max-tokens T] [--bilstms all|combined|none] [--sentiment both|with|without]
        [--db PATH] [--top 1] [--n-boot 1000] [--seed 0]

1. TRIPOD's training movies (shared data: `tripod/screenplays/<movie>/<movie>_script.txt`) are
   ingested through the product's plain-text path (`labeling.ingest.pipeline.ingest_path`: line
   model suggestions, one sequence per scene heading). `--movies N` takes a seeded sample of N.
   `--db PATH` keeps the store between runs (movies already in it are not ingested again).
2. Each turning point of the synopsis (the first annotator's) is projected onto the scenes as the
   TRIPOD paper does for training: the most similar scene(s), here by tf-idf cosine
   (`labeling.corpus.turning_points`). The projection's own agreement is reported where it can be
   checked without scene-level gold: story order (every synopsis sentence's scene against its
   position), the turning point's position in the synopsis against its scene's in the script, and,
   for movies with several annotators, whether their turning points land on the same scene.
3. Every scene gets a rating through the product's rating path (`store.sequences.add_rating`,
   department `turning_points`): its distance to the nearest turning-point scene as an ordinal 1-5
   (5 on one, 4 one-two scenes away, 3 three-six, 2 seven-fifteen, 1 further). Ordinal rather than
   "turning point or not": the product's ratings are ordinal 1-5 and its models and QWK are built for
   that; five turning points among ~200 scenes would leave 97% of one class, on which every model's
   argmax is the majority; the binary question is still answered, by the AUC of P(rating = 5).
4. The product's own complexity training (`labeling.training.complexity.compare_department` then
   `train_complexity_version`): every model of the set, with and without the sentiment block,
   grouped CV by movie, the winner saved as a version and every scene predicted.

Per model: QWK and macro-F1 of the predicted rating, ROC-AUC of "turning point or not" (P(rating=5),
within each fold), and TP hit@5 (share of a movie's turning-point scenes among its five scenes the
model rates most likely 5; chance = 5/scenes), each with a 95% interval from resampling movies.
Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from labeling.corpus import turning_points as tp  # noqa: E402
from labeling.ingest.pipeline import ingest_path  # noqa: E402
from labeling.training.complexity import compare_department, sequence_docs, train_complexity_version  # noqa: E402
from models.complexity.evaluation import (  # noqa: E402
    bootstrap_intervals, choose_groups, cv_splits, fold_of, quadratic_weighted_kappa, tag_metrics,
)
from store import scripts as script_store  # noqa: E402
from store import sequences as sequence_store  # noqa: E402
from store.db import open_db  # noqa: E402

DEPARTMENT = "turning_points"
ANNOTATOR = "tripod"


def shared_data() -> Path:
    default = Path(__file__).resolve().parents[2] / "shared" / "data"
    return Path(os.environ.get("SCRIPTLABEL_SHARED_DATA", default))


def pick_movies(root: Path, synopses: dict, n: int | None, seed: int) -> list[str]:
    movies = sorted(m for m in synopses if (root / m / f"{m}_script.txt").exists())
    if n is not None and n < len(movies):
        rng = np.random.default_rng(seed)
        movies = sorted(rng.choice(movies, size=n, replace=False).tolist())
    return movies


def ingest_movies(db, root: Path, movies: list[str]) -> tuple[dict[str, int], float]:
    """movie -> script_id, ingesting those not in the store yet; seconds spent ingesting."""
    have = {s.title: s.script_id for s in script_store.list_scripts(db)}
    start = time.perf_counter()
    for movie in movies:
        if movie not in have:
            have[movie] = ingest_path(db, root / movie / f"{movie}_script.txt", title=movie, workers=1).script_id
    return {m: have[m] for m in movies}, time.perf_counter() - start


def rate_movies(db, synopses: dict, scripts: dict[str, int], *, top: int, window: float | None) -> dict:
    """Project every movie's turning points, enter the ratings; returns the projection's report."""
    if DEPARTMENT not in sequence_store.departments(db):
        sequence_store.add_department(db, DEPARTMENT)
    checks, agree, compared, scene_counts, short, ratings = [], 0, 0, [], 0, Counter()
    same_as_plain = n_points = 0
    gold: dict[int, set[int]] = {}  # script_id -> sequence ids on a turning point
    for movie, script_id in scripts.items():
        sequences = sequence_store.list_sequences(db, script_id)
        docs = {d.sequence_id: d for d in sequence_docs(db, script_id)}
        scenes = [tp.scene_text(docs[s.sequence_id]) if s.sequence_id in docs else "" for s in sequences]
        scene_counts.append(len(sequences))
        short += sum(s.lines <= 2 for s in sequences)
        annotations = synopses[movie]
        first = annotations[0]
        tp_scenes = tp.turning_point_scenes(first, scenes, top=top, window=window)
        plain = tp.turning_point_scenes(first, scenes, top=1, window=None)
        same_as_plain += sum(p[0] == q[0] for p, q in zip(plain, tp_scenes))
        n_points += len(plain)
        values = tp.distance_rating(len(sequences), tp_scenes)
        for seq, value in zip(sequences, values):
            sequence_store.add_rating(db, seq.sequence_id, int(value), department=DEPARTMENT, annotator=ANNOTATOR)
        ratings.update(int(v) for v in values)
        gold[script_id] = {sequences[i].sequence_id for p in tp_scenes for i in p}
        checks.append(tp.check_projection(first, scenes))
        if len(annotations) > 1:
            a, n = tp.annotator_agreement(annotations, scenes, within=1, window=window)
            agree, compared = agree + a, compared + n
    counts = np.array(scene_counts)
    return {
        "report": {
            "scenes_per_movie": {"mean": round(float(counts.mean()), 1), "min": int(counts.min()),
                                 "max": int(counts.max())},
            "scenes_of_at_most_2_lines": int(short),
            "ratings": {str(k): ratings[k] for k in sorted(ratings)},
            "projection_check": {
                "story_order_spearman_mean": round(float(np.nanmean([c.order_spearman for c in checks])), 3),
                "tp_position_gap_mean": round(float(np.mean([c.tp_position_gap for c in checks])), 3),
                "tp_within_10pct_of_position": round(float(np.mean([c.tp_within_10pct for c in checks])), 3),
                "windowed_tp_scene_is_the_most_similar_overall": round(same_as_plain / max(n_points, 1), 3),
                "annotators_same_scene_within_1": (round(agree / compared, 3) if compared else None),
                "annotator_tp_pairs": compared,
            },
        },
        "gold": gold,
    }


def tp_hit_at(proba5: np.ndarray, script_ids: np.ndarray, sequence_ids: np.ndarray, gold: dict,
              movies: np.ndarray, k: int = 5) -> float:
    """Share of the given movies' TP scenes (a movie drawn twice counts twice) among each one's k
    scenes most likely rated 5."""
    hits = total = 0
    for sid in movies:
        rows = np.flatnonzero(script_ids == sid)
        top = sequence_ids[rows[np.argsort(-proba5[rows], kind="stable")[:k]]]
        marked = gold.get(int(sid), set())
        hits += len(marked & set(top.tolist()))
        total += len(marked)
    return hits / total if total else float("nan")


def model_figures(compared, gold: dict, *, n_boot: int, seed: int) -> dict:
    """QWK, macro-F1, TP AUC and TP hit@5 per model, with intervals from resampling movies."""
    from sklearn.metrics import f1_score

    comparison = compared.comparison
    y = compared.ratings
    script_ids = np.asarray(compared.script_ids)
    sequence_ids = np.asarray([d.sequence_id for d in compared.rated_docs])
    classes = comparison.classes
    movies = np.unique(script_ids)
    # The folds the comparison used (same groups, splits and seed): a movie's rows share one fold.
    groups, _ = choose_groups(compared.rated_docs, list(script_ids))
    folds = fold_of(cv_splits(y, groups, n_splits=comparison.n_folds), len(y))
    is_tp = (y == 5).astype(int)[:, None]
    rows_of = {m: np.flatnonzero(script_ids == m) for m in movies}
    out = {}
    for name, proba in comparison.oof_proba.items():
        pred = classes[proba.argmax(1)]
        p5 = proba[:, list(classes).index(5)] if 5 in classes else np.zeros(len(y))

        def stats(movie_idx, pred=pred, p5=p5):
            idx = np.concatenate([rows_of[m] for m in movies[movie_idx]])
            return {
                "qwk": quadratic_weighted_kappa(y[idx], pred[idx]),
                "macro_f1": float(f1_score(y[idx], pred[idx], labels=classes, average="macro", zero_division=0)),
                "tp_auc": tag_metrics(is_tp[idx], p5[idx, None], folds[idx])["roc_auc"],
                "tp_hit_at_5": tp_hit_at(p5, script_ids, sequence_ids, gold, movies[movie_idx]),
            }

        point = stats(np.arange(len(movies)))
        ci = bootstrap_intervals(stats, len(movies), n_boot=n_boot, seed=seed)
        out[name] = {**{k: round(v, 4) for k, v in point.items()}, "ci95": {k: list(v) for k, v in ci.items()}}
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--movies", type=int, default=None, help="a seeded sample of N movies (all 84)")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=5, help="BiLSTM epochs (5)")
    parser.add_argument("--max-tokens", type=int, default=200, help="tokens per component a BiLSTM reads (200)")
    parser.add_argument("--bilstms", choices=["all", "combined", "none"], default="combined",
                        help="which BiLSTMs to compare: the three per-component ones too, the combined one, none")
    parser.add_argument("--sentiment", choices=["both", "with", "without"], default="both")
    parser.add_argument("--top", type=int, default=1, help="scenes per turning point (1)")
    parser.add_argument("--window", type=float, default=tp.WINDOW,
                        help="a TP sentence lands only on scenes within this share of the script of its "
                             "place in the synopsis (0.25); a negative value turns it off")
    parser.add_argument("--db", default=None, help="store to use and keep (default: a temporary one); every "
                        "rated scene in it is trained on, so keep one store per --movies/--seed")
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    data = shared_data() / "tripod"
    if not (data / "TRIPOD_synopses_train.csv").exists():
        print(json.dumps({"skipped": f"{data} has no TRIPOD_synopses_train.csv: set SCRIPTLABEL_SHARED_DATA"}))
        return {}
    import tempfile

    tmp = None if args.db else tempfile.TemporaryDirectory()
    db = open_db(args.db or Path(tmp.name) / "turning_points.db")
    started = time.perf_counter()
    synopses = tp.load_synopses(data / "TRIPOD_synopses_train.csv")
    movies = pick_movies(data / "screenplays", synopses, args.movies, args.seed)
    scripts, ingest_s = ingest_movies(db, data / "screenplays", movies)
    window = args.window if args.window >= 0 else None
    rated = rate_movies(db, synopses, scripts, top=args.top, window=window)

    net = {"epochs": args.epochs, "max_tokens": args.max_tokens}
    train_start = time.perf_counter()
    compared = compare_department(db, department=DEPARTMENT, models="baselines" if args.bilstms == "none" else "all",
                                  sentiment=args.sentiment, n_splits=args.folds, n_boot=args.n_boot,
                                  net_params=net, component_nets=args.bilstms == "all")
    compare_s = time.perf_counter() - train_start
    version, n_rated, metrics = train_complexity_version(db, department=DEPARTMENT, compared=compared)
    figures = model_figures(compared, rated["gold"], n_boot=args.n_boot, seed=args.seed)
    report = {
        "data": "TRIPOD training movies: synopsis turning points projected onto the product's scenes",
        "settings": {"movies": len(movies), "folds": compared.comparison.n_folds, "epochs": args.epochs,
                     "max_tokens": args.max_tokens, "bilstms": args.bilstms, "sentiment": args.sentiment,
                     "scenes_per_tp": args.top, "window": window, "n_boot": args.n_boot, "seed": args.seed,
                     "grouped_by": compared.comparison.grouped_by},
        "target": "distance to the nearest turning-point scene, ordinal 1-5 (5 = on a turning point)",
        **rated["report"],
        "n_sequences": n_rated,
        "models": figures,
        "product": {"version": version, "winner": metrics["winner"], "verdict": metrics["verdict"],
                    "cv": metrics["cv"]},
        "chance_tp_hit_at_5": round(float(np.mean([
            5 / max(1, len(sequence_store.list_sequences(db, s))) for s in scripts.values()])), 4),
        "seconds": {"ingest": round(ingest_s, 1), "compare": round(compare_s, 1),
                    "total": round(time.perf_counter() - started, 1)},
    }
    print(json.dumps(report, indent=2))
    if tmp is not None:
        tmp.cleanup()
    return report


if __name__ == "__main__":
    main()
