"""Label-error review benchmark: flip 2% and 5% of the human labels of held-out MovieParse movies and
measure how many flips the review queue's top-k finds (k = 1× and 2× the number of flips).

    uv run python bench/review.py [--held-out 6] [--seeds 3]

The shipped base model was trained on every MovieParse movie, so it would "know" the true labels of
any of them. The bench therefore trains a small base (same `fit_base`, fewer trees) on the other
MovieParse movies only, then runs the product's review path on the held-out movies: out-of-fold
adapters grouped by movie (`labeling.session.review.out_of_fold_proba`), confident learning, the ranking of
`review_queue` (flagged lines only, by self-confidence over the mean of base and out-of-fold adapter
probabilities). Flipped labels go to a uniformly drawn other label. Also reported: the same ranking
over the base probabilities alone and over the out-of-fold adapter alone, and the review probabilities
ranked by the normalized margin p(suggested) − p(given) instead of self-confidence.
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
from labeling.settings import process_defaults  # noqa: E402

process_defaults()  # an entry point: libgomp's spin count (and Keras' backend) before xgboost loads

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from labeling.corpus.sources import load_movieparse  # noqa: E402
from labeling.session.review import confident_errors, out_of_fold_proba, rank, review_proba  # noqa: E402
from models.lines.classifier import (  # noqa: E402
    BaseOutputs, BoosterParams, ContentParams, LineModelConfig, fit_base,
)
from store.types import LABEL_INDEX, LABELS  # noqa: E402

DATA = Path(os.environ.get("SCRIPTLABEL_SHARED_DATA", REPO.parent / "shared" / "data"))
SMALL_BASE = LineModelConfig(content=ContentParams(epochs=10), stage1=BoosterParams(n_estimators=120),
                             stage2=BoosterParams(n_estimators=80, max_depth=5), inner_folds=3)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def frame_of(scripts) -> tuple[pd.DataFrame, np.ndarray]:
    frame = pd.concat([s.lines for s in scripts], ignore_index=True)
    return frame, np.concatenate([np.asarray(s.labels, dtype=object) for s in scripts])


def flip(y: np.ndarray, rate: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    labeled = np.flatnonzero([isinstance(v, str) for v in y])
    chosen = rng.choice(labeled, size=max(1, int(round(rate * len(labeled)))), replace=False)
    noisy = y.copy()
    for i in chosen:
        noisy[i] = rng.choice([label for label in LABELS if label != y[i]])
    return noisy, chosen


def top_k_scores(proba: np.ndarray, noisy: np.ndarray, flipped: np.ndarray, *, margin: bool = False) -> dict:
    labeled = np.flatnonzero([isinstance(v, str) for v in noisy])
    given = np.array([LABEL_INDEX[v] for v in noisy[labeled]])
    flagged, suggested, score = confident_errors(proba[labeled], given)
    if margin:  # the normalized margin p(suggested) − p(given) instead of self-confidence
        rows = np.arange(len(given))
        score = proba[labeled][rows, suggested] - proba[labeled][rows, given]
    queue = labeled[rank(flagged, score)]
    out = {"flips": int(len(flipped)), "queue_length": int(len(queue))}
    truth = set(int(i) for i in flipped)
    for mult in (1, 2):
        k = mult * len(flipped)
        hits = len(truth & set(int(i) for i in queue[:k]))
        out[f"precision_at_{mult}x"] = round(hits / k, 4)
        out[f"recall_at_{mult}x"] = round(hits / len(truth), 4)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--held-out", type=int, default=6, help="MovieParse movies held out (every n-th).")
    parser.add_argument("--seeds", type=int, default=3, help="Random flips per rate.")
    args = parser.parse_args()
    started = time.monotonic()
    movies = load_movieparse(DATA)
    step = max(1, len(movies) // args.held_out)
    held = movies[::step][: args.held_out]
    train = [m for m in movies if m not in held]
    log(f"training a small base on {len(train)} movies; holding out {[m.script_id for m in held]}")
    X, y = frame_of(train)
    keep = np.array([isinstance(v, str) for v in y])
    # Only the labeled windows (with their neighbours inside the window) are needed to fit.
    base = fit_base(X, y, config=SMALL_BASE)
    fit_s = time.monotonic() - started
    log(f"base fit in {fit_s:.0f} s on {int(keep.sum())} labeled lines")
    frame, y_true = frame_of(held)
    outputs = BaseOutputs.concat([base.base_outputs(s.lines.reset_index(drop=True)) for s in held])
    groups = frame["script_id"].to_numpy()
    labeled = np.array([isinstance(v, str) for v in y_true])
    base_accuracy = float((np.array(LABELS)[outputs.proba[labeled].argmax(1)] == y_true[labeled]).mean())
    results = []
    for rate in (0.02, 0.05):
        for seed in range(args.seeds):
            rng = np.random.default_rng(seed)
            noisy, flipped = flip(y_true, rate, rng)
            proba = out_of_fold_proba(base, frame, noisy, groups, outputs=outputs)
            results.append({"rate": rate, "seed": seed, "model": "review",
                            **top_k_scores(review_proba(outputs.proba, proba), noisy, flipped)})
            results.append({"rate": rate, "seed": seed, "model": "review_ranked_by_margin",
                            **top_k_scores(review_proba(outputs.proba, proba), noisy, flipped, margin=True)})
            results.append({"rate": rate, "seed": seed, "model": "oof_adapter_only",
                            **top_k_scores(proba, noisy, flipped)})
            results.append({"rate": rate, "seed": seed, "model": "base_only",
                            **top_k_scores(outputs.proba, noisy, flipped)})
            log(f"rate {rate} seed {seed}: {results[-4]}")
    summary = {}
    for rate in (0.02, 0.05):
        for model in ("review", "review_ranked_by_margin", "base_only", "oof_adapter_only"):
            rows = [r for r in results if r["rate"] == rate and r["model"] == model]
            summary[f"{model}@{rate}"] = {key: round(float(np.mean([r[key] for r in rows])), 4) for key in
                                          ("flips", "queue_length", "precision_at_1x", "recall_at_1x",
                                           "precision_at_2x", "recall_at_2x")}
    print(json.dumps({
        "held_out_movies": [m.script_id for m in held], "labeled_lines": int(labeled.sum()),
        "base_trained_on_movies": len(train), "base_accuracy_held_out": round(base_accuracy, 4),
        "target": "recall_at_2x >= 0.8", "summary": summary, "runs": results,
        "seconds": round(time.monotonic() - started, 1), "base_fit_seconds": round(fit_s, 1),
    }, indent=1))


if __name__ == "__main__":
    main()
