"""Grouped CV by movie of the shipped recipe itself, read from a build's out-of-fold file; prints JSON.

`build_pretrained --oof-out FILE.npz` keeps the final stage's out-of-fold probabilities over the
base's inner folds, grouped by script (a movie's layout variants stay in its fold), each fold's
model trained on every other script of every source. Its MovieParse rows as written are therefore a
grouped k-fold CV by movie of the full shipped recipe (full boosters, the sequence labeler, all the
other data in training): what `bench/line_accuracy.py` measures with smaller settings and MovieParse
only. One caveat of stacking: the sequence labeler of fold k learns from stage-1 out-of-fold inputs
that other folds' boosters computed, and those boosters saw fold k's labels (no line's own input
does). This prints accuracy, macro-F1, accuracy on the most confident 90% (raw probabilities and,
with `--calibrated MODEL_DIR`, through that folder's calibration), the error kinds of issue 26, the
accuracy on the lines all three annotators labeled alike, and with `--show-errors N` the N most
confident errors with their text on stderr.

    uv run python bench/oof_movieparse.py --oof /tmp/oof.npz --show-errors 30
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from labeling.corpus.calibrate import load_out_of_fold  # noqa: E402
from labeling.corpus.sources import CorpusUnavailableError, load_movieparse  # noqa: E402
from models.evaluation import evaluate_lines  # noqa: E402
from models.lines import calibration as calib  # noqa: E402
from models.lines.error_kinds import count_error_kinds, kinds_report  # noqa: E402
from store.types import LABELS  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--oof", type=Path, required=True, help="the build's --oof-out file")
    parser.add_argument("--calibrated", type=Path, default=None, help="a model folder whose calibration.json to apply")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--show-errors", type=int, default=0, metavar="N")
    args = parser.parse_args(argv)
    oof = load_out_of_fold(args.oof)
    try:
        scripts = load_movieparse(args.data_dir)
    except CorpusUnavailableError as exc:
        print(json.dumps({"skipped": str(exc)}))
        return 0
    calibrator = None
    if args.calibrated is not None:
        saved = calib.load_calibration(args.calibrated)
        calibrator = saved.calibrator if saved is not None else None
    names = np.array(LABELS, dtype=object)
    truth, preds, probas, agreement, kinds, confident = [], [], [], [], Counter(), []
    for script in scripts:
        rows = np.flatnonzero(oof["script_ids"] == script.script_id)
        labeled = np.flatnonzero([label is not None for label in script.labels])
        if len(rows) != len(labeled):
            print(f"error: {args.oof}: {len(rows)} rows of {script.script_id} against {len(labeled)} gold lines; "
                  "was it written from this data?", file=sys.stderr)
            return 2
        proba = oof["proba"][rows]
        if calibrator is not None:
            proba = calibrator.transform(proba)
        if not np.array_equal(oof["codes"][rows], [LABELS.index(v) for v in script.labels[labeled]]):
            print(f"error: {args.oof}: labels of {script.script_id} differ from the gold; was it written from this "
                  "data?", file=sys.stderr)
            return 2
        pred = np.full(len(script.labels), None, dtype=object)
        pred[labeled] = names[proba.argmax(axis=1)]
        texts = script.lines["text"].astype(str).to_numpy()
        kinds.update(count_error_kinds(texts, script.labels, pred, script.lines["gap_before"].to_numpy(dtype=float)))
        truth += list(script.labels[labeled])
        preds += list(pred[labeled])
        probas.append(proba)
        if script.agreement is not None:
            agreement += list(script.agreement[labeled])
        for j, i in enumerate(labeled):
            if pred[i] != script.labels[i]:
                confident.append((float(proba[j].max()), script.script_id, int(i), script.labels[i], pred[i], texts[i]))
    proba = np.vstack(probas)
    codes = np.array([LABELS.index(t) for t in truth])
    ev = evaluate_lines(truth, preds)
    right = np.array(truth) == np.array(preds)
    agreement = np.array(agreement)
    unanimous = agreement == 3 if len(agreement) == len(right) else np.zeros(0, dtype=bool)
    report = {"oof": str(args.oof), "calibrated": str(args.calibrated) if calibrator is not None else None,
              "movies": len(scripts), "n": ev.full.n, "accuracy": round(ev.full.accuracy, 4),
              "macro_f1": round(ev.full.macro_f1, 4), "seed_accuracy": round(ev.seed.accuracy, 4),
              "per_class_f1": {c.label: round(c.f1, 4) for c in ev.full.per_class},
              "confidence": calib.scores(proba, codes), "error_kinds": kinds_report(kinds),
              "unanimous_lines": {"n": int(unanimous.sum()),
                                  "accuracy": round(float(right[unanimous].mean()), 4) if unanimous.any() else None}}
    print(json.dumps(report, indent=2))
    for conf, sid, i, t, p, text in sorted(confident, key=lambda e: -e[0])[: args.show_errors]:
        print(f"{conf:.4f} {sid}:{i + 1} {t} -> {p}: {text[:90]!r}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
