"""How far the line model's confidence can be trusted, on scripts it never saw; prints JSON.

1. Base model, zero-shot: out-of-fold probabilities of every labeled line of the shared corpus (folds
   grouped by script: MovieParse gold, the studio PDFs' text layer with projected labels, the Fountain
   samples), before and after calibration. The calibrator scoring fold k is chosen and fit on the other
   folds' lines only (nested), as `python -m labeling.corpus.calibrate` does for the shipped model.
2. The labeling loop: a studio PDF is ingested into a real SQLite library whose base model is the fold
   model that never saw it (with the calibration fit without its fold); a simulated annotator labels the
   lines the product's margin queue asks for, the adapter retrains every 10 labels through
   `train_line_version`, and the stored predictions — what the app shows — are scored on the lines
   not labeled yet, after 10, 30 and 50 labels; beside them the adapter's raw output
   (`uncalibrated`) and the alternative of a temperature fit at each retrain on the adapter's own
   out-of-fold outputs over the labeled lines (`own_oof_temperature`, 3 chunks of the script).
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
    fit_calibration,
    load_out_of_fold,
    make_out_of_fold,
    save_out_of_fold,
)
from labeling.corpus.sources import LOW_MATCH_SCRIPTS, CorpusUnavailableError  # noqa: E402
from models.lines import calibration as calib  # noqa: E402
from store.types import LABELS  # noqa: E402


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- 1. the base model, zero-shot ------------------------------------------------------------------


def nested_calibrators(oof: dict, folds: np.ndarray) -> tuple[dict[int, object], dict[int, object]]:
    """Per fold k: the calibrator and the adapters' temperature as `labeling.corpus.calibrate` fits
    them, from the other folds' lines only."""
    out, adapters = {}, {}
    for k in np.unique(folds):
        rows = folds != k
        fitted = fit_calibration({key: value[rows] for key, value in oof.items()})
        out[int(k)], adapters[int(k)] = fitted.calibrator, fitted.adapter
        summary = ", ".join(f"{m} {v.get('worst_ece', v['ece']):.4f}" for m, v in fitted.cv.items())
        log(f"fold {k}: chose {fitted.calibrator.method} (held-out ECE of the worst kind of script: {summary})")
    return out, adapters


def base_zero_shot(oof: dict, folds: np.ndarray, calibrators: dict, temperatures: dict) -> dict:
    calibrated, tempered = np.zeros_like(oof["proba"]), np.zeros_like(oof["proba"])
    for k, calibrator in calibrators.items():
        calibrated[folds == k] = calibrator.transform(oof["proba"][folds == k])
        tempered[folds == k] = temperatures[k].transform(oof["proba"][folds == k])
    ids = oof["script_ids"]
    kind = np.array([s.split("/")[0] for s in ids])
    low = np.array([s.split("/")[-1] in LOW_MATCH_SCRIPTS for s in ids])
    # A build's OOF file (`build_pretrained --oof-out`) also holds the layout variants it trained on
    # (`movieparse/<id>#flush`, `#excerpt`, ...: copies of the gold re-laid out, in their movie's fold).
    variant = np.array(["#" in s for s in ids])
    parts = {"movieparse (gold, grouped folds by movie)": (kind == "movieparse") & ~variant,
             "studio PDFs (silver, held out; low-match transcriptions left out)": (kind == "studio_pdf") & ~low,
             "fountain samples (held out)": np.isin(kind, ["fountain", "fountain_pdf"]),
             "all trusted lines": ~low & ~variant}
    if variant.any():
        parts["movieparse layout variants (training copies, re-laid out)"] = variant
        parts["all trusted lines with the layout variants"] = ~low
    report = {}
    for name, rows in parts.items():
        if rows.any():
            report[name] = {"scripts": int(len(set(ids[rows]))),
                            "before": calib.scores(oof["proba"][rows], oof["codes"][rows]),
                            "after": calib.scores(calibrated[rows], oof["codes"][rows]),
                            "after_temperature_only": calib.scores(tempered[rows], oof["codes"][rows])}
    report["methods_chosen_per_fold"] = {str(k): c.method for k, c in calibrators.items()}
    report["temperature_per_fold"] = {str(k): round(t.temperature, 4) for k, t in temperatures.items()}
    return report


# --- 2. the labeling loop ------------------------------------------------------------------------


def _fold_base(fold_models: Path, k: int, calibrator, adapter, into: Path) -> Path:
    target = into / f"base-fold{k}"
    if not target.exists():
        shutil.copytree(fold_models / f"fold{k}", target)
        calib.save_calibration(target, calibrator, adapter=adapter,
                               report={"method": calibrator.method, "note": "bench, nested"})
    return target


def own_oof_temperature(db) -> object | None:
    """A temperature fit on the current adapter recipe's out-of-fold outputs over the labeled lines
    (folds: 3 chunks of the script in reading order; the alternative the product does not use)."""
    from labeling.training.lines import _latest_human_script, _outputs_for, labeled_snapshot, load_base
    from models.evaluation import grouped_folds
    from models.lines.classifier import fit_adapter
    from store.types import ScriptlabelError

    frame, y, _ = labeled_snapshot(db)
    outputs = _outputs_for(db, frame)
    labeled = np.flatnonzero(np.array([isinstance(v, str) for v in y]))
    order = np.argsort(frame["line_no"].to_numpy()[labeled], kind="stable")
    chunks = np.empty(len(labeled), dtype=np.int64)
    chunks[order] = (np.arange(len(labeled)) * 3) // max(1, len(labeled))
    rows, proba = [], []
    for train, test in grouped_folds(chunks, n_splits=3):
        try:
            adapter = fit_adapter(load_base(), frame.iloc[labeled[train]], y[labeled[train]],
                                  outputs=outputs.take(labeled[train]), current_script=_latest_human_script(db))
        except ScriptlabelError:
            continue
        rows.append(labeled[test])
        proba.append(adapter.predict_proba(frame.iloc[labeled[test]], outputs=outputs.take(labeled[test])))
    if not rows:
        return None
    rows = np.concatenate(rows)
    return calib.Temperature().fit(np.vstack(proba), np.array([LABELS.index(v) for v in y[rows]]))


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
    scores = {"shown": calib.scores(shown, codes), "uncalibrated": calib.scores(raw[rest], codes)}
    own = own_oof_temperature(db) if model.adapter is not None else None
    if own is not None:
        scores["own_oof_temperature"] = {**calib.scores(own.transform(raw[rest]), codes),
                                         "temperature": round(own.temperature, 4)}
    return scores, shown, raw[rest], codes, (own.transform(raw[rest]) if own is not None else None)


def loop(slug: str, base: Path, gold_script, *, budgets: list[int], batch: int) -> dict:
    from labeling.ingest.pipeline import ingest_path
    from labeling.training.lines import load_current, script_frame, train_line_version
    from labeling.session.queue import build_queue
    from labeling.session.record import record_label
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
            scores, shown, raw, codes, own = _scores_on_rest(db, frame, gold, model)
            current = model_store.current_version(db, "lines")
            scores["version"] = model.version
            if current is not None:
                scores["adapter_calibration"] = current.metrics.get("calibration")
            out[str(target)] = scores
            pooled[str(target)] = (shown, raw, codes, own)
        out["retrain_s_p50"] = round(float(np.median(retrain_s)), 3) if retrain_s else None
    return {"per_labels": out, "_pooled": pooled}


# --- 3. latency ------------------------------------------------------------------------------------


def latency(runs: int) -> dict:
    sys.path.insert(0, str(REPO / "bench"))
    from retrain_latency import base_model, corpus_lines, tile

    from labeling.training.lines import calibrated_adapter
    from models.lines.classifier import fit_adapter

    X, y, _ = corpus_lines()
    base, _ = base_model(X, y)
    Xn, yn, outputs = tile(X, y, base.base_outputs(X), 20000)
    fit, shown = [], []
    script = Xn[Xn["script_id"] == Xn["script_id"].iloc[0]].reset_index(drop=True)
    script_outputs = outputs.take(np.flatnonzero((Xn["script_id"] == Xn["script_id"].iloc[0]).to_numpy()))
    for _ in range(runs):
        t0 = time.perf_counter()
        adapter = fit_adapter(base, Xn, yn, outputs=outputs)
        t1 = time.perf_counter()
        calibrated_adapter(adapter.predict_proba(script, outputs=script_outputs))
        shown.append(time.perf_counter() - t1)
        fit.append(t1 - t0)
    return {"labeled_lines": int(sum(isinstance(v, str) for v in yn)),
            "adapter_retrain_p50_s": round(float(np.median(fit)), 3),
            "calibration_adds_to_a_retrain_s": 0.0,
            "predict_and_calibrate_one_script_p50_s": round(float(np.median(shown)), 4),
            "script_lines": int(len(script))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--oof", type=Path, default=None, help="OOF .npz from labeling.corpus.calibrate --oof-out")
    parser.add_argument("--fold-models", type=Path, default=None, help="fold models from labeling.corpus.calibrate")
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--scripts", nargs="*", default=None,
                        help="studio PDFs for the loop (default: every one in the OOF data but the two "
                             "low-match transcriptions)")
    parser.add_argument("--budgets", nargs="+", type=int, default=[10, 30, 50])
    parser.add_argument("--batch", type=int, default=10, help="labels between retrains (the product's default)")
    parser.add_argument("--latency", action="store_true",
                        help="also time the adapter retrain at 20k labels and one calibrated prediction")
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
    code_key = next((k for k in ("codes", "code") if k in raw), None)  # labeling.corpus.calibrate's / a build's
    folds = raw["fold"][raw[code_key] >= 0] if code_key and raw[code_key].dtype.kind in "iu" else raw["fold"]
    calibrators, adapter_temperatures = nested_calibrators(oof, folds)
    report = {"ece_bins": calib.N_BINS, "oof": str(args.oof), "folds": int(len(np.unique(folds))),
              "base_zero_shot": base_zero_shot(oof, folds, calibrators, adapter_temperatures)}
    log(json.dumps(report["base_zero_shot"]))

    if args.scripts is None:
        args.scripts = sorted({s.split("/")[-1] for s in oof["script_ids"] if s.startswith("studio_pdf/")}
                              - LOW_MATCH_SCRIPTS)
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
            base = _fold_base(args.fold_models, k, calibrators[k], adapter_temperatures[k], work)
            result = loop(slug, base, gold_scripts[slug], budgets=args.budgets, batch=args.batch)
            for labels, parts in result.pop("_pooled", {}).items():
                pooled.setdefault(labels, []).append(parts)
            per_script[slug] = {"fold": k, **result}
            log(f"{slug}: {json.dumps(result.get('per_labels', result))}")
        report["loop_per_script"] = per_script
        report["loop_per_script_ece"] = {
            labels: {kind: {"median": round(float(np.median(values)), 4), "max": max(values)}
                     for kind in ("shown", "uncalibrated")
                     for values in [[r["per_labels"][labels][kind]["ece"] for r in per_script.values()
                                     if "per_labels" in r]]}
            for labels in pooled}
        report["loop_pooled"] = {}
        for labels, parts in pooled.items():
            codes = np.concatenate([p[2] for p in parts])
            entry = {"scripts": len(parts), "shown": calib.scores(np.vstack([p[0] for p in parts]), codes),
                     "uncalibrated": calib.scores(np.vstack([p[1] for p in parts]), codes)}
            if all(p[3] is not None for p in parts):
                entry["own_oof_temperature"] = calib.scores(np.vstack([p[3] for p in parts]), codes)
            report["loop_pooled"][labels] = entry
    if args.latency:
        report["latency_20k"] = latency(args.runs)
    report["elapsed_s"] = round(time.perf_counter() - started, 1)
    shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
