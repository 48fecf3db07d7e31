"""A check on labels nobody here made: the complexity model family predicting IMDb genres.

    KERAS_BACKEND=jax uv run python bench/doc_labels.py [--folds 5] [--min-positives 10]
        [--max-tokens 500] [--epochs 30] [--quick]

Each TRIPOD screenplay (shared data, `tripod/screenplays/<movie>/<movie>_script.txt`) becomes one
document; its genres (`<movie>_imdb_meta.txt`, one `genre<TAB>Name` row each) are the multi-label
target. Genres with fewer than --min-positives scripts are dropped (and listed). Models, all refit
per fold of a 5-fold CV: the BiLSTMs (descriptions only, as in the study, and the combined
network; sigmoid outputs), a tf-idf + logistic regression on the full text, the same regression
on exactly the text the BiLSTMs see, and the prevalence baseline. Metrics: micro/macro-F1 at 0.5,
ROC-AUC (mean over fold x genre), bootstrap 95% intervals.

Components come from a layout heuristic, not the line model: uppercase short indented lines are
cues, the lines under them up to a blank line dialogue, INT./EXT. lines headings, the rest action
(`models.complexity.data.heuristic_labeled_rows`). A BiLSTM cannot read a 30,000-word script on 2
CPU cores in reasonable time, so each component is cut to --max-tokens by keeping whole lines spread
evenly through the script. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from sklearn.base import BaseEstimator, ClassifierMixin, clone  # noqa: E402

from models.complexity.baselines import MajorityClassifier, TfidfLogisticClassifier  # noqa: E402
from models.complexity.data import (  # noqa: E402
    COMPONENTS, SequenceDoc, docs_from_labeled_lines, heuristic_labeled_rows,
)
from models.complexity.evaluation import compare_tag_models  # noqa: E402


def shared_data() -> Path:
    default = Path(__file__).resolve().parents[2] / "shared" / "data"
    return Path(os.environ.get("SCRIPTLABEL_SHARED_DATA", default))


def read_genres(meta: Path) -> list[str]:
    genres = []
    for line in meta.read_text(encoding="utf-8", errors="replace").splitlines():
        key, _, value = line.partition("\t")
        if key.strip().lower() == "genre" and value.strip():
            genres.append(value.strip())
    return genres


def load_tripod(root: Path, splitter=heuristic_labeled_rows) -> tuple[list[SequenceDoc], list[list[str]]]:
    """One SequenceDoc per screenplay (id = movie folder name) and its genres.

    `splitter(text, sequence_id=...)` returns labeled rows; pass a line-model-backed one to replace
    the layout heuristic.
    """
    docs, genres = [], []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        script = folder / f"{folder.name}_script.txt"
        meta = folder / f"{folder.name}_imdb_meta.txt"
        if not (script.exists() and meta.exists()):
            continue
        text = script.read_text(encoding="utf-8", errors="replace")
        docs.extend(docs_from_labeled_lines(splitter(text, sequence_id=folder.name)))
        genres.append(read_genres(meta))
    return docs, genres


def spread_lines(lines: list[str], max_tokens: int) -> list[str]:
    """Whole lines evenly spaced through `lines`, about `max_tokens` words in all, in order."""
    total = sum(len(line.split()) for line in lines)
    if total <= max_tokens:
        return list(lines)
    keep = max(1, int(len(lines) * max_tokens / total))
    picks = np.unique(np.linspace(0, len(lines) - 1, keep).round().astype(int))
    return [lines[i] for i in picks]


class SpreadSample(ClassifierMixin, BaseEstimator):
    """Gives `estimator` each document cut to `max_tokens` per component, spread evenly."""

    def __init__(self, estimator=None, max_tokens: int = 500):
        self.estimator = estimator
        self.max_tokens = max_tokens

    def _cut(self, docs):
        return [replace(d, **{c: spread_lines(d.component(c), self.max_tokens) for c in COMPONENTS})
                for d in docs]

    def fit(self, docs, y):
        self.estimator_ = clone(self.estimator).fit(self._cut(docs), y)
        return self

    def predict_proba(self, docs):
        return self.estimator_.predict_proba(self._cut(docs))


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--min-positives", type=int, default=10,
                        help="drop genres with fewer positive scripts (10)")
    parser.add_argument("--max-tokens", type=int, default=500,
                        help="tokens per component the BiLSTMs read (500)")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--quick", action="store_true", help="3 folds, 10 epochs: a smoke run")
    args = parser.parse_args(argv)
    if args.quick:
        args.folds, args.epochs = 3, 10

    root = shared_data() / "tripod" / "screenplays"
    if not root.is_dir():
        print(json.dumps({"skipped": f"{root} not found: set SCRIPTLABEL_SHARED_DATA to the folder "
                                     "holding tripod/"}))
        return {}
    docs, genres = load_tripod(root)
    counts = Counter(g for gs in genres for g in gs)
    kept = sorted(g for g, n in counts.items() if n >= args.min_positives)
    dropped = {g: n for g, n in sorted(counts.items()) if n < args.min_positives}
    y = np.array([[int(g in gs) for g in kept] for gs in genres])

    from models.complexity import nets

    net = {"max_tokens": args.max_tokens, "epochs": args.epochs}
    factories = {
        "majority": MajorityClassifier,
        "tfidf_logistic_full_text": TfidfLogisticClassifier,
        "tfidf_logistic_same_text": lambda: SpreadSample(TfidfLogisticClassifier(), args.max_tokens),
        "bilstm_descriptions": lambda: SpreadSample(
            nets.component_bilstm("descriptions", **net), args.max_tokens),
        "bilstm_combined": lambda: SpreadSample(nets.combined_bilstm(**net), args.max_tokens),
    }
    start = time.perf_counter()
    result = compare_tag_models(docs, y, factories, n_splits=args.folds, n_boot=args.n_boot,
                                unit="scripts")
    report = {
        "data": "TRIPOD screenplays, IMDb genres (multi-label)",
        "scripts": len(docs),
        "genres": {g: counts[g] for g in kept},
        "dropped_genres": dropped,
        "components": "layout heuristic (uppercase/indentation/blank lines), not the line model",
        "bilstm_input": f"each component cut to ~{args.max_tokens} tokens, whole lines spread "
                        "evenly through the script",
        "folds": result.n_folds,
        "epochs": args.epochs,
        **result.to_dict(),
        "seconds": round(time.perf_counter() - start, 1),
    }
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
