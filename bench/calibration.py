"""How far the line model's confidence can be trusted, on scripts it never saw; prints JSON.

1. Base model, zero-shot: out-of-fold probabilities of every labeled line of the shared corpus (folds
   grouped by script: MovieParse gold, the studio PDFs' text layer with projected labels, the Fountain
   samples), before and after calibration. The calibrator scoring fold k is chosen and fit on the other
   folds' lines only (nested), as `python -m labeling.corpus.calibrate` does for the shipped model.
2. The labeling loop: a studio PDF is ingested into a real SQLite library whose base model is the fold
   model that never saw it (with the calibration fit without its fold); a simulated annotator labels the
   lines the product's margin queue asks for, the adapter retrains every 10 labels through
   `train_line_version` (calibration included), and the stored predictions — what the app shows —
   are scored on the lines not labeled yet, after 10, 30 and 50 labels.
3. `--latency`: adapter retrain at 20k labeled lines with and without its calibration.

Scores: top-label ECE over 15 equal-width bins; accuracy on the most confident 90% of lines; NLL;
errors made above 0.9 confidence.

    uv run python bench/calibration.py --oof /tmp/oof.npz --fold-models /tmp/folds   # reuse labeling.corpus.calibrate's
    uv run python bench/calibration.py            # makes both first (3 folds, small boosters: ~40 min)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from labeling.corpus.calibrate import (  # noqa: E402
    load_out_of_fold,
    make_out_of_fold,
    save_out_of_fold,
    script_group,
)
from labeling.corpus.sources import LOW_MATCH_SCRIPTS, CorpusUnavailableError  # noqa: E402
from models.lines import calibration as calib  # noqa: E402
from store.types import LABELS  # noqa: E402

LOOP_SCRIPTS = ["rick-and-morty-105-meeseeks-and-destroy", "mr-right", "dirk-gently-102-lost-and-found",
                "suits-pilot"]


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- 1. the base model, zero-shot ------------------------------------------------------------------


def nested_calibrators(oof: dict, folds: np.ndarray) -> dict[int, object]:
    """Per fold k: the calibrator chosen and fit on the other folds' trusted lines."""
    trusted = np.array([s.split("/")[-1] not in LOW_MATCH_SCRIPTS for s in oof["script_ids"]])
    out = {}
    for k in np.unique(folds):
        rows = trusted & (folds != k)
        groups = np.array([script_group(s) for s in oof["script_ids"][rows]])
        out[int(k)], cv = calib.choose_calibrator(oof["proba"][rows], oof["codes"][rows], groups)
        summary = ", ".join(f"{m} {v['ece']:.4f}" for m, v in cv.items())
        log(f"fold {k}: chose {out[int(k)].method} (held-out ECE: {summary})")
    return out


def base_zero_shot(oof: dict, folds: np.ndarray, calibrators: dict) -> dict:
    calibrated = np.zeros_like(oof["proba"])
    for k, calibrator in calibrators.items():
        calibrated[folds == k] = calibrator.transform(oof["proba"][folds == k])
    ids = oof["script_ids"]
    kind = np.array([s.split("/")[0] for s in ids])
    low = np.array([s.split("/")[-1] in LOW_MATCH_SCRIPTS for s in ids])
    parts = {"movieparse (gold, grouped folds by movie)": kind == "movieparse",
             "studio PDFs (silver, held out; low-match transcriptions left out)": (kind == "studio_pdf") & ~low,
             "fountain samples (held out)": np.isin(kind, ["fountain", "fountain_pdf"]),
             "all trusted lines": ~low}
    report = {}
    for name, rows in parts.items():
        if rows.any():
            report[name] = {"scripts": int(len(set(ids[rows]))),
                            "before": calib.scores(oof["proba"][rows], oof["codes"][rows]),
                            "after": calib.scores(calibrated[rows], oof["codes"][rows])}
    report["methods_chosen_per_fold"] = {str(k): c.method for k, c in calibrators.items()}
    return report


# --- 2. the labeling loop ------------------------------------------------------------------------


def _fold_base(fold_models: Path, k: int, calibrator, into: Path) -> Path:
    target = into / f"base-fold{k}"
    if not target.exists():
        shutil.copytree(fold_models / f"fold{k}", target)
        calib.save_calibration(target, calibrator, report={"method": calibrator.method, "note": "bench, nested"})
    return target


def _scores_on_rest(db, frame, gold: dict, model) -> tuple[dict, np.ndarray, np.ndarray, np.ndarray]:
    """Scores of the stored (shown) probabilities and of the raw adapter on lines not labeled yet."""
    from labeling.training.lines import base_outputs
    from store import labels as label_store
    from store import models as model_store

    stored = model_store.latest_predictions(db)
    stored = stored.set_index("line_id")["probs"]
    labeled = set(label_store.current_labels(db)["line_id"])
    ids = frame["line_id"].to_numpy()
    rest = np.array([i not in labeled and gold.get(i) is not None for i in ids])
    codes = np.array([LABELS.index(gold[i]) for i in ids[rest]])
    shown = np.array([json.loads(stored[i]) for i in ids[rest]])
    outputs = base_outputs(db, frame)
    raw = outputs.proba if model.adapter is None else model.adapter.predict_proba(frame.reset_index(drop=True),
                                                                                    outputs=outputs)
    return {"shown": calib.scores(shown, codes), "uncalibrated": calib.scores(raw[rest], codes)}, shown, raw[rest], codes


def loop(slug: str, base: Path, gold_script, *, budgets: list[int], batch: int) -> dict:
    from labeling.ingest.pipeline import ingest_path
    from labeling.training.lines import load_current, script_frame, train_line_version
    from labeling.session.queue import build_queue
    from labeling.session.cursor import record_label
    from models.lines.classifier import TrainingDataError
    from store import models as model_store
    from store.db import open_db

    os.environ["SCRIPTLABEL_LINE_BASE"] = str(base)
    data = Path(os.environ.get("SCRIPTLABEL_SHARED_DATA", REPO.parent / "shared" / "data"))
    out, pooled = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        db = open_db(Path(tmp) / "loop.db")
        result = ingest_path(db, data / "studio_pdfs" / "pdf" / f"{slug}.pdf", ocr="never")
        frame = script_frame(db, result.script_id)
        if list(frame["text"]) != list(gold_script.lines["text"]):
            return {"skipped": "ingested lines differ from the corpus reader's; cannot align labels"}
        gold = dict(zip(frame["line_id"], gold_script.labels))
        given, checkpoints = 0, [0] + list(budgets)
        retrain_s = []
        for target in checkpoints:
            while given < target:
                items = build_queue(db, strategy="margin", n=min(batch, target - given), random_share=0.1, seed=given)
                for item in items:
                    record_label(db, item.line_id, gold[item.line_id], annotator="sim")
                    given += 1
                if given % batch == 0 or given == target:
                    started = time.perf_counter()
                    try:
                        train_line_version(db)
                    except TrainingDataError:
                        pass
                    retrain_s.append(time.perf_counter() - started)
            model = load_current(db)
            scores, shown, raw, codes = _scores_on_rest(db, frame, gold, model)
            current = model_store.current_version(db, "lines")
            scores["version"] = model.version
            if current is not None:
                scores["adapter_calibration"] = current.metrics.get("calibration")
            out[str(target)] = scores
            pooled[str(target)] = (shown, raw, codes)
        out["retrain_s_p50"] = round(float(np.median(retrain_s)), 3) if retrain_s else None
    return {"per_labels": out, "_pooled": pooled}


# --- 3. latency ------------------------------------------------------------------------------------


def latency(runs: int) -> dict:
    sys.path.insert(0, str(REPO / "bench"))
    from retrain_latency import base_model, corpus_lines, tile

    from labeling.training.lines import fit_adapter_calibration
    from models.lines.classifier import fit_adapter

    X, y, _ = corpus_lines()
    base, _ = base_model(X, y)
    Xn, yn, outputs = tile(X, y, base.base_outputs(X), 20000)
    fit, both = [], []
    for _ in range(runs):
        t0 = time.perf_counter()
        fit_adapter(base, Xn, yn, outputs=outputs)
        t1 = time.perf_counter()
        fit_adapter_calibration(base, Xn, yn, outputs)
        t2 = time.perf_counter()
        fit.append(t1 - t0)
        both.append(t2 - t0)
    return {"labeled_lines": int(sum(isinstance(v, str) for v in yn)),
            "adapter_fit_p50_s": round(float(np.median(fit)), 3),
            "adapter_fit_plus_calibration_p50_s": round(float(np.median(both)), 3)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--oof", type=Path, default=None, help="OOF .npz from labeling.corpus.calibrate --oof-out")
    parser.add_argument("--fold-models", type=Path, default=None, help="fold models from labeling.corpus.calibrate")
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--scripts", nargs="*", default=LOOP_SCRIPTS, help="studio PDFs for the loop")
    parser.add_argument("--budgets", nargs="+", type=int, default=[10, 30, 50])
    parser.add_argument("--batch", type=int, default=10, help="labels between retrains (the product's default)")
    parser.add_argument("--latency", action="store_true", help="also time the adapter retrain at 20k labels")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="bench-calibration-"))
    try:
        if args.oof is None or args.fold_models is None:
            args.fold_models = args.fold_models or work / "folds"
            oof = make_out_of_fold(folds=args.folds, fold_models=args.fold_models, log=log)
            args.oof = work / "oof.npz"
            save_out_of_fold(args.oof, oof)
        raw = dict(np.load(args.oof, allow_pickle=False))
        oof = load_out_of_fold(args.oof)
    except CorpusUnavailableError as exc:
        print(json.dumps({"skipped": str(exc)}))
        return 0
    if "fold" not in raw:
        raise SystemExit(f"{args.oof}: no `fold` array; make it with `python -m labeling.corpus.calibrate --oof-out`")
    folds = raw["fold"][raw["codes"] >= 0] if "codes" in raw else raw["fold"]
    calibrators = nested_calibrators(oof, folds)
    report = {"ece_bins": calib.N_BINS, "oof": str(args.oof), "folds": int(len(np.unique(folds))),
              "base_zero_shot": base_zero_shot(oof, folds, calibrators)}
    log(json.dumps(report["base_zero_shot"]))

    if args.scripts:
        from labeling.corpus.sources import load_studio_pdfs

        gold_scripts = {s.script_id.split("/")[-1]: s for s in load_studio_pdfs(slugs=args.scripts)}
        fold_of = {s: int(f) for s, f in zip(oof["script_ids"], folds)}
        per_script, pooled = {}, {}
        for slug in args.scripts:
            k = fold_of.get(f"studio_pdf/{slug}")
            if k is None or slug not in gold_scripts:
                per_script[slug] = {"skipped": "not in the out-of-fold data"}
                continue
            base = _fold_base(args.fold_models, k, calibrators[k], work)
            result = loop(slug, base, gold_scripts[slug], budgets=args.budgets, batch=args.batch)
            for labels, parts in result.pop("_pooled", {}).items():
                pooled.setdefault(labels, []).append(parts)
            per_script[slug] = {"fold": k, **result}
            log(f"{slug}: {json.dumps(result.get('per_labels', result))}")
        report["loop_per_script"] = per_script
        report["loop_pooled"] = {
            labels: {"shown": calib.scores(np.vstack([p[0] for p in parts]), np.concatenate([p[2] for p in parts])),
                     "uncalibrated": calib.scores(np.vstack([p[1] for p in parts]),
                                                  np.concatenate([p[2] for p in parts]))}
            for labels, parts in pooled.items()}
    if args.latency:
        report["latency_20k"] = latency(args.runs)
    report["elapsed_s"] = round(time.perf_counter() - started, 1)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
