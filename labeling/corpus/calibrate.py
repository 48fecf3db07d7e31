"""Fit the shipped line model's confidence calibration (`calibration.json` in the model folder).

    uv run python -m labeling.corpus.calibrate --model models/pretrained/lines --oof oof.npz
    uv run python -m labeling.corpus.calibrate --model models/pretrained/lines        # makes its own OOF (slow)

The calibrator is fit on out-of-fold probabilities: every labeled line of the training corpus as
predicted by a model of the same recipe that never saw the line's script (folds grouped by script).
`--oof FILE.npz` takes them from `build_pretrained --oof-out FILE.npz` (arrays `proba`, `code`,
`script_id`, and `labels` naming the columns; `codes`/`script_ids` are read too). Without it this
command makes them itself by grouped k-fold over the shared data with a small-booster version of the
shipped recipe (`--folds`; 9 minutes a fold on 2 busy cores before the recipe had its sequence
labeler), and can keep them (`--oof-out`) and the fold models (`--fold-models DIR`, which
`bench/calibration.py` reuses). The calibrator (temperature, vector scaling, Dirichlet, isotonic,
top-label isotonic) is chosen by grouped cross-validation of the calibrator itself over those
scripts; adapters get a temperature fit on the same lines. The report (JSON on stdout) says what
each scored.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.lines import calibration as calib
from store.types import LABEL_INDEX, LABELS, ScriptlabelError

PROBA_KEYS = ("proba", "probabilities", "oof_proba", "oof")
CODE_KEYS = ("code", "codes", "label_codes", "y")  # `labels`, when there, names the probability columns
SCRIPT_KEYS = ("script_id", "script_ids", "scripts", "group", "groups")
MIN_LINES = 200
SILVER_WEIGHT = 0.5  # as in labeling/corpus/build_pretrained.py


def script_group(script_id: str) -> str:
    """A script's group for folds: a Fountain sample and the PDF rendered from it are one script."""
    parts = str(script_id).split("/")
    return "/".join(parts[1:]) if parts[0] in ("fountain", "fountain_pdf") else str(script_id)


def quick_config():
    """The shipped recipe (build_pretrained's) with small boosters and 3 inner folds: enough to see how
    far its confidence can be trusted, in a fraction of the build's time."""
    import dataclasses

    from labeling.corpus.build_pretrained import SHIPPED_CONFIG
    from models.lines.classifier import BoosterParams

    return dataclasses.replace(SHIPPED_CONFIG, stage1=BoosterParams(n_estimators=120, learning_rate=0.2),
                               stage2=BoosterParams(n_estimators=80, max_depth=5, learning_rate=0.2), inner_folds=3)


def make_out_of_fold(data_dir=None, *, folds: int = 3, fold_models: Path | None = None, log=print) -> dict:
    """Out-of-fold base probabilities of every labeled line of the corpus, folds grouped by script.

    Returns arrays `proba` (n, 7), `codes` (n,), `script_ids` (n,), `fold` (n,) and `source` (n,).
    """
    from labeling.corpus.build_pretrained import load_training_scripts, training_frame
    from models.evaluation import fold_assignment
    from models.lines.classifier import fit_base

    sources = load_training_scripts(data_dir, log=log)
    scripts = [s for group in sources.values() for s in group]
    groups = np.array([script_group(s.script_id) for s in scripts])
    fold_of_group = dict(zip(np.repeat(groups, [max(1, s.n_labeled) for s in scripts]),
                             fold_assignment(np.repeat(groups, [max(1, s.n_labeled) for s in scripts]), folds)))
    out = {"proba": [], "codes": [], "script_ids": [], "fold": [], "source": []}
    config = quick_config()
    for k in range(folds):
        started = time.perf_counter()
        train = {name: [s for s in group if fold_of_group[script_group(s.script_id)] != k]
                 for name, group in sources.items()}
        X, y, w = training_frame(train)
        model = fit_base(X, y, sample_weight=w, config=config)
        if fold_models is not None:
            model.save(Path(fold_models) / f"fold{k}")
        for script in (s for s in scripts if fold_of_group[script_group(s.script_id)] == k):
            mask = np.array([label is not None for label in script.labels])
            if not mask.any():
                continue
            proba = model.predict_proba(script.lines.reset_index(drop=True))[mask]
            out["proba"].append(proba.astype(np.float32))
            out["codes"].append(np.array([LABEL_INDEX[v] for v in script.labels[mask]], dtype=np.int64))
            out["script_ids"].append(np.full(int(mask.sum()), script.script_id, dtype=object))
            out["fold"].append(np.full(int(mask.sum()), k, dtype=np.int64))
            out["source"].append(np.full(int(mask.sum()), script.source, dtype=object))
        log(f"fold {k + 1}/{folds} done in {time.perf_counter() - started:.0f} s")
    return {key: np.concatenate(parts) for key, parts in out.items()}


def save_out_of_fold(path: Path, oof: dict) -> None:
    np.savez_compressed(path, **{k: (v.astype(str) if v.dtype == object else v) for k, v in oof.items()})


def load_out_of_fold(path: str | Path) -> dict:
    """Read an OOF file (`build_pretrained --oof-out` or `--oof-out` here); CalibrationError names what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise calib.CalibrationError(f"{path}: no such file; pass the file `build_pretrained --oof-out` wrote, "
                                     "or leave out --oof to make one")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError) as exc:
        raise calib.CalibrationError(f"{path}: not a readable .npz file ({exc}); write it again") from exc

    def pick(keys: tuple[str, ...], what: str) -> np.ndarray:
        for key in keys:
            if key in arrays:
                return arrays[key]
        raise calib.CalibrationError(f"{path}: no {what} array (looked for {', '.join(keys)}; found "
                                     f"{', '.join(sorted(arrays)) or 'nothing'})")

    proba = np.asarray(pick(PROBA_KEYS, "probabilities"), dtype=np.float64)
    if "labels" in arrays and arrays["labels"].dtype.kind in "US" and len(arrays["labels"]) == len(LABELS):
        names = [str(v) for v in arrays["labels"]]
        if sorted(names) != sorted(LABELS):
            raise calib.CalibrationError(f"{path}: its classes {names} are not {list(LABELS)}")
        if proba.ndim == 2 and proba.shape[1] == len(LABELS):
            proba = proba[:, [names.index(label) for label in LABELS]]  # columns in this version's order
    codes = pick(CODE_KEYS, "label")
    scripts = np.asarray(pick(SCRIPT_KEYS, "script id")).astype(str)
    if proba.ndim != 2 or proba.shape[1] != len(LABELS):
        raise calib.CalibrationError(f"{path}: probabilities must be (lines, {len(LABELS)}) in the order "
                                     f"{', '.join(LABELS)}; got shape {proba.shape}")
    if codes.dtype.kind in "US":
        unknown = sorted(set(codes.astype(str)) - set(LABEL_INDEX))
        if unknown:
            raise calib.CalibrationError(f"{path}: unknown labels {unknown[:5]}; use {', '.join(LABELS)}")
        codes = np.array([LABEL_INDEX[c] for c in codes.astype(str)], dtype=np.int64)
    codes = np.asarray(codes).astype(np.int64)
    if not (len(proba) == len(codes) == len(scripts)):
        raise calib.CalibrationError(f"{path}: {len(proba)} probability rows, {len(codes)} labels and "
                                     f"{len(scripts)} script ids; they must be one per line")
    keep = codes >= 0  # -1: an unlabeled line
    if (codes[keep] >= len(LABELS)).any():
        raise calib.CalibrationError(f"{path}: label codes must be 0..{len(LABELS) - 1} (or -1 for unlabeled)")
    if not np.isfinite(proba).all() or (proba < 0).any() or np.abs(proba.sum(axis=1) - 1).max() > 1e-2:
        raise calib.CalibrationError(f"{path}: probabilities must be finite and sum to 1 per line")
    return {"proba": proba[keep], "codes": codes[keep], "script_ids": scripts[keep]}


def source_kinds(script_ids) -> np.ndarray:
    """The kind of source of each line (the corpus's script-id prefix): movieparse, studio_pdf, fountain."""
    kinds = []
    for s in np.asarray(script_ids).astype(str):
        prefix = s.split("/")[0] if "/" in s else "other"
        kinds.append("fountain" if prefix.startswith("fountain") else prefix)
    return np.array(kinds)


def source_weights(kinds: np.ndarray) -> np.ndarray:
    """As in training: projected (silver) studio-PDF labels count half — some of their "errors" are the
    projection's, and a calibration fit on them would doubt the model on human-labeled scripts."""
    return np.where(kinds == "studio_pdf", SILVER_WEIGHT, 1.0)


@dataclass(frozen=True)
class FittedCalibration:
    calibrator: object  # for the base model's probabilities
    adapter: object  # a temperature, for the outputs of adapters boosted over the base
    cv: dict  # held-out scores of every method compared
    lines: int
    scripts: int
    left_out: int  # lines of low-match transcriptions, not used
    weights: dict
    strata: bool


def fit_calibration(oof: dict, *, methods: tuple[str, ...] | None = None, folds: int = 5) -> FittedCalibration:
    """Choose and fit the base calibrator and the adapters' temperature on out-of-fold predictions."""
    from labeling.corpus.sources import LOW_MATCH_SCRIPTS

    scripts = np.asarray(oof["script_ids"]).astype(str)
    # Transcriptions that match their PDF badly make wrong labels, not overconfident models: left out.
    trusted = np.array([s.split("/")[-1] not in LOW_MATCH_SCRIPTS for s in scripts])
    proba, codes, scripts = oof["proba"][trusted], oof["codes"][trusted], scripts[trusted]
    groups = np.array([script_group(s) for s in scripts])
    if len(codes) < MIN_LINES or len(np.unique(groups)) < 2:
        raise calib.CalibrationError(f"{len(codes)} out-of-fold lines from {len(np.unique(groups))} scripts: "
                                     f"fitting a calibration needs at least {MIN_LINES} lines of 2 or more scripts")
    kinds = source_kinds(scripts)
    weights = source_weights(kinds)
    strata = kinds if len(set(kinds)) > 1 else None
    calibrator, cv = calib.choose_calibrator(proba, codes, groups, methods=methods, folds=folds, weights=weights,
                                             strata=strata)
    # Adapters are boosted over this base from a database's labels: their outputs get a temperature
    # (it keeps every suggestion), fit on the same lines.
    adapter = calib.Temperature().fit(proba, codes, weights)
    return FittedCalibration(calibrator, adapter, cv, int(len(codes)), int(len(np.unique(groups))),
                             int((~trusted).sum()),
                             {kind: float(weights[kinds == kind][0]) for kind in sorted(set(kinds))},
                             strata is not None)


def calibrate_model(model_dir: str | Path, oof: dict, *, methods: tuple[str, ...] | None = None,
                    folds: int = 5, source: str = "") -> dict:
    """Choose and fit the calibration on `oof`, save `calibration.json` into `model_dir`; returns the report."""
    model_dir = Path(model_dir)
    fitted = fit_calibration(oof, methods=methods, folds=folds)
    report = {"method": fitted.calibrator.method, "params": fitted.calibrator.params(),
              "adapter": {"method": fitted.adapter.method, **fitted.adapter.params()},
              "lines": fitted.lines, "scripts": fitted.scripts, "left_out_low_match": fitted.left_out,
              "out_of_fold_source": source,
              "chosen_by": f"grouped {folds}-fold CV of the calibrator by script: lowest held-out ECE"
                           + (" of the worst kind of script (gold MovieParse, silver studio PDFs, Fountain)"
                              if fitted.strata else ""),
              "weights": fitted.weights, "cv": fitted.cv}
    calib.save_calibration(model_dir, fitted.calibrator, adapter=fitted.adapter,
                           report={k: v for k, v in report.items() if k != "params"})
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m labeling.corpus.calibrate",
                                     description="Fit the line model's confidence calibration (calibration.json).")
    parser.add_argument("--model", required=True, help="the line model folder (e.g. models/pretrained/lines)")
    parser.add_argument("--oof", default=None, help="out-of-fold predictions (.npz from build_pretrained --oof-out)")
    parser.add_argument("--data-dir", default=None, help="shared data for making OOF (default ../shared/data)")
    parser.add_argument("--folds", type=int, default=3, help="grouped folds when making OOF here (default 3)")
    parser.add_argument("--oof-out", default=None, help="keep the OOF made here in this .npz")
    parser.add_argument("--fold-models", default=None, help="keep the fold models made here in this folder")
    parser.add_argument("--methods", nargs="+", default=None, choices=sorted(calib.METHODS),
                        help="calibrators to compare (default: all)")
    args = parser.parse_args(argv)
    started = time.perf_counter()

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - started:6.0f}s] {message}", file=sys.stderr, flush=True)

    try:
        model_dir = Path(args.model)
        from labeling.training.lines import LineClassifier

        LineClassifier.load(model_dir)  # refuse a folder that holds no line model
        if args.oof:
            oof, source = load_out_of_fold(args.oof), str(args.oof)
        else:
            log("no --oof: making out-of-fold predictions by grouped CV over the shared data (small boosters)")
            try:
                oof = make_out_of_fold(args.data_dir, folds=args.folds, log=log,
                                       fold_models=Path(args.fold_models) if args.fold_models else None)
            except (ImportError, TypeError, AttributeError) as exc:  # a line-model recipe this cannot rebuild
                raise calib.CalibrationError(
                    f"cannot make out-of-fold predictions with this version's line-model recipe ({exc}); "
                    "pass --oof FILE.npz written by `python -m labeling.corpus.build_pretrained --oof-out`") from exc
            source = f"grouped {args.folds}-fold CV of the recipe with small boosters over the shared data"
            if args.oof_out:
                save_out_of_fold(Path(args.oof_out), oof)
        report = calibrate_model(model_dir, oof, methods=tuple(args.methods) if args.methods else None,
                                 source=source)
    except ScriptlabelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    report["model_dir"] = str(model_dir)
    report["elapsed_s"] = round(time.perf_counter() - started, 1)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
