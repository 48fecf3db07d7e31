"""How long complexity models take: training on 60 sequences, predicting a whole script.

    KERAS_BACKEND=jax uv run python bench/complexity_speed.py [--sequences 60] [--no-one-hot]

Sequences come from a TRIPOD screenplay in the shared data (split at scene headings by the
layout heuristic of `models.complexity.data.heuristic_labeled_rows`, the first script with 60-100
scenes), else from `planted_docs`. Ratings are random: this measures time, not accuracy.
Targets: training one model on 60 sequences <= 30 s, predicting every sequence of a script <= 2 s,
on 2 CPU cores. Times include Keras/JAX compilation (a fresh model compiles once per fit).
Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from models.complexity.data import (  # noqa: E402
    docs_from_labeled_lines, heuristic_labeled_rows, planted_docs,
)

TRAIN_TARGET_S = 30.0
PREDICT_TARGET_S = 2.0


def shared_data() -> Path:
    default = Path(__file__).resolve().parents[2] / "shared" / "data"
    return Path(os.environ.get("SCRIPTLABEL_SHARED_DATA", default))


def script_sequences(low: int = 60, high: int = 100):
    """(name, docs) of the first TRIPOD script with low..high heuristic sequences, else None."""
    root = shared_data() / "tripod" / "screenplays"
    if not root.is_dir():
        return None
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        script = folder / f"{folder.name}_script.txt"
        if not script.exists():
            continue
        text = script.read_text(encoding="utf-8", errors="replace")
        docs = docs_from_labeled_lines(heuristic_labeled_rows(text))
        if low <= len(docs) <= high:
            return folder.name, docs
    return None


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, round(time.perf_counter() - start, 3)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequences", type=int, default=60, help="training sequences (60)")
    parser.add_argument("--no-one-hot", action="store_true", help="skip the slow one-hot variant")
    args = parser.parse_args(argv)

    found = script_sequences()
    if found:
        source, docs = found
    else:
        source, docs = "planted_docs (shared data absent)", planted_docs(80, seed=1)[0]
    rng = np.random.default_rng(0)
    ratings = rng.integers(1, 6, len(docs))
    train_docs, train_y = docs[: args.sequences], ratings[: args.sequences]

    _, import_s = timed(lambda: __import__("models.complexity.nets"))
    from models.complexity import nets

    variants = {
        "bilstm_descriptions": lambda: nets.component_bilstm("descriptions"),
        "bilstm_dialogue": lambda: nets.component_bilstm("dialogue"),
        "bilstm_combined": lambda: nets.combined_bilstm(),
    }
    if not args.no_one_hot:
        variants["bilstm_descriptions_one_hot"] = lambda: nets.component_bilstm(
            "descriptions", one_hot=True)
    results = {}
    for name, make in variants.items():
        model, fit_s = timed(lambda: make().fit(train_docs, train_y))
        _, first_s = timed(lambda: model.predict_proba(docs))
        _, warm_s = timed(lambda: model.predict_proba(docs))
        with tempfile.TemporaryDirectory() as tmp:
            path, save_s = timed(lambda: model.save(Path(tmp) / "m.keras"))
            loaded, load_s = timed(lambda: nets.load_model(path))
            _, loaded_predict_s = timed(lambda: loaded.predict_proba(docs))
        results[name] = {
            "train_seconds": fit_s,
            "predict_script_seconds": first_s,
            "predict_script_warm_seconds": warm_s,
            "save_seconds": save_s,
            "load_seconds": load_s,
            "predict_after_load_seconds": loaded_predict_s,
            "train_ok": fit_s <= TRAIN_TARGET_S,
            "predict_ok": first_s <= PREDICT_TARGET_S,
            "padded_tokens": model.lengths_,
            "epochs": model.epochs,
        }
    report = {
        "source": source,
        "train_sequences": len(train_docs),
        "script_sequences": len(docs),
        "cpus": os.cpu_count(),
        "keras_import_seconds": import_s,
        "targets": {"train_seconds": TRAIN_TARGET_S, "predict_script_seconds": PREDICT_TARGET_S},
        "models": results,
    }
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
