"""Build the default line model shipped in `models/pretrained/lines/` from all of the shared data.

    uv run python -m labeling.build_pretrained [--data-dir DIR] [--out DIR] [--no-cv] [--hold-out SLUG ...]

Trains on MovieParse gold (whole scripts as context, plus layout variants), the studio PDFs' text
layer with labels projected from their Fountain files (weighted lower: silver), and the Fountain
samples (parsed lines and their rendered PDFs). Prints what it trained on and, unless `--no-cv`,
grouped-by-movie CV figures on MovieParse for the same recipe (trained on the other movies plus all
the non-MovieParse data). The model is written to a temporary folder and moved into place only once
complete. Nothing of the screenplays themselves is written: hashed n-gram weights and trees only.

`--hold-out SLUG …` leaves those studio PDFs out of training and scores the model on them (scripts it
never saw); such a model is what `bench/active_learning.py` needs as its base. The model's config
records every script it was trained on, and `manifest.json` beside it the whole report (sources,
weights, layout variants, recipe, CV and held-out figures, the code's commit).

`--oof-out FILE.npz` also writes the final stage's out-of-fold probabilities over the base's inner
grouped folds (whole scripts per fold, every training source): `proba` (n, 7), `code` (label index),
`script_id`, `group`, `fold`, `weight` for each labeled training line — no text — so a calibrator can
be fit from a build without retraining. The file must lie outside the repository.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from labeling.corpus.sources import (
    LOW_MATCH_SCRIPTS,
    TRAINING_VARIANTS,
    CorpusUnavailableError,
    LabeledScript,
    label_counts,
    load_fountain_samples,
    load_movieparse,
    load_studio_pdfs,
    with_layout_variants,
)
from models.evaluation import evaluate_lines, fold_assignment
from models.lines.features import FeatureConfig
from models.lines.classifier import LineClassifier, LineModelConfig, encode_labels, fit_base, make_line_classifier
from models.lines.sequence import SequenceParams
from store.types import ScriptlabelError

REPO = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO / "models" / "pretrained" / "lines"
# The shipped recipe: the sequence labeler in place of stage 2, without the auxiliary objective (the
# ablation behind it is in the README's line model section).
SHIPPED_CONFIG = LineModelConfig(sequence=SequenceParams(aux_weight=0.0), sequence_mode="replace")
SILVER_WEIGHT = 0.5  # projected labels (studio PDFs) are right less often than human gold
LOW_MATCH_WEIGHT = 0.2


def load_training_scripts(data_dir=None, *, log=print) -> dict[str, list[LabeledScript]]:
    sources = {"movieparse": load_movieparse(data_dir)}
    for name, loader in (("studio_pdfs", load_studio_pdfs), ("fountain_samples", load_fountain_samples)):
        try:
            sources[name] = loader(data_dir)
        except CorpusUnavailableError as exc:
            log(f"skipping {name}: {exc}")
            sources[name] = []
    return sources


def training_frame(sources: dict[str, list[LabeledScript]], variants: tuple[str, ...] = TRAINING_VARIANTS
                   ) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Lines, labels and weights: MovieParse with layout variants, the rest as read."""
    X_gold, y_gold = with_layout_variants(sources["movieparse"], variants)
    frames, labels, weights = [X_gold], [y_gold], [np.ones(len(X_gold), dtype=np.float32)]
    for script in sources["studio_pdfs"] + sources["fountain_samples"]:
        frame = script.lines.copy()
        frame["group"] = frame["script_id"].astype(str)
        frames.append(frame)
        labels.append(np.asarray(script.labels, dtype=object))
        low = script.script_id.split("/")[-1] in LOW_MATCH_SCRIPTS
        weight = 1.0 if script.source == "fountain" else (LOW_MATCH_WEIGHT if low else SILVER_WEIGHT)
        weights.append(np.full(len(frame), weight, dtype=np.float32))
    return pd.concat(frames, ignore_index=True), np.concatenate(labels), np.concatenate(weights)


def describe(sources: dict[str, list[LabeledScript]]) -> dict:
    out = {}
    for name, scripts in sources.items():
        entry = {
            "scripts": len(scripts),
            "lines": int(sum(len(s.lines) for s in scripts)),
            "labeled_lines": int(sum(s.n_labeled for s in scripts)),
            "label_counts": label_counts(np.concatenate([s.labels for s in scripts])) if scripts else {},
        }
        rates = {s.script_id: round(s.match_rate, 3) for s in scripts if s.match_rate is not None and s.source != "fountain"}
        if rates:
            entry["match_rates"] = rates
            entry["low_match_flagged"] = sorted(s for s in rates if s.split("/")[-1] in LOW_MATCH_SCRIPTS)
        out[name] = entry
    return out


def cross_validate(sources: dict[str, list[LabeledScript]], config: LineModelConfig, *, folds: int, log=print,
                   variants: tuple[str, ...] = TRAINING_VARIANTS) -> dict:
    """Grouped-by-movie CV on MovieParse gold for this recipe (other data always in training)."""
    gold = sources["movieparse"]
    ids = np.repeat([s.script_id for s in gold], [s.n_labeled for s in gold])
    fold_of = dict(zip(ids, fold_assignment(ids, folds)))
    truth, pred = [], []
    for k in range(folds):
        train = {**sources, "movieparse": [s for s in gold if fold_of[s.script_id] != k]}
        X, y, w = training_frame(train, variants)
        model = fit_base(X, y, sample_weight=w, config=config)
        for script in (s for s in gold if fold_of[s.script_id] == k):
            t, p = _labeled_predictions(model, script)
            truth += t
            pred += p
        log(f"CV fold {k + 1}/{folds} done")
    return {"folds": folds, **_scores(evaluate_lines(truth, pred))}


def held_out_eval(model: LineClassifier, scripts: list[LabeledScript]) -> dict:
    """Scores on studio PDFs left out of training (silver labels projected from Fountain)."""
    truth, pred, per_script = [], [], {}
    for script in scripts:
        t, p = _labeled_predictions(model, script)
        per_script[script.script_id] = {"lines": len(t), "accuracy": round(float(np.mean(np.array(t) == np.array(p))), 4)}
        truth += t
        pred += p
    ev = evaluate_lines(truth, pred)
    return {"scripts": per_script, **_scores(ev), "per_class_f1": {c.label: round(c.f1, 4) for c in ev.full.per_class}}


def _labeled_predictions(model: LineClassifier, script: LabeledScript) -> tuple[list, list]:
    """True and predicted labels of a script's labeled lines (the whole script is the context)."""
    mask = np.array([label is not None for label in script.labels])
    return list(script.labels[mask]), list(model.predict(script.lines)[mask])


def _scores(ev) -> dict:
    return {"n": ev.full.n, "accuracy": round(ev.full.accuracy, 4), "macro_f1": round(ev.full.macro_f1, 4),
            "seed_accuracy": round(ev.seed.accuracy, 4)}


def build(data_dir=None, out: Path = DEFAULT_OUT, *, cv_folds: int = 5, hold_out: list[str] | None = None,
          log=print, client=None, config: LineModelConfig = SHIPPED_CONFIG, oof_out: Path | None = None,
          variants: tuple[str, ...] = TRAINING_VARIANTS) -> dict:
    """Build the shipped base model; with a Dask `client` its boosters train with xgboost.dask."""
    if oof_out is not None:
        check_outside_repo(Path(oof_out))
    started = time.perf_counter()
    sources = load_training_scripts(data_dir, log=log)
    held = []
    if hold_out:
        wanted = set(hold_out)
        held = [s for s in sources["studio_pdfs"] if s.script_id.split("/")[-1] in wanted]
        missing = wanted - {s.script_id.split("/")[-1] for s in held}
        if missing:
            raise CorpusUnavailableError(f"--hold-out: no studio PDF with a Fountain transcription named {sorted(missing)}")
        sources["studio_pdfs"] = [s for s in sources["studio_pdfs"] if s not in held]
    report = {"trained_on": describe(sources), "training_variants": list(variants),
              "config": config.to_dict(), "commit": _git_commit(),
              "weights": {"movieparse": 1.0, "fountain": 1.0, "studio_pdf": SILVER_WEIGHT,
                          "low_match_studio_pdf": LOW_MATCH_WEIGHT}}
    log(json.dumps(report["trained_on"], indent=2))
    if cv_folds:
        report["cv_movieparse"] = cross_validate(sources, config, folds=cv_folds, log=log, variants=variants)
        log(f"CV: {report['cv_movieparse']}")
    X, y, w = training_frame(sources, variants)
    model = make_line_classifier(config).fit(X, y, sample_weight=w, client=client, keep_oof=oof_out is not None)
    if oof_out is not None:
        report["oof"] = write_oof(Path(oof_out), model, X, y, w)
        log(f"out-of-fold probabilities: {report['oof']}")
    if held:
        report["held_out"] = held_out_eval(model, held)
        log(f"held-out: accuracy {report['held_out']['accuracy']}, macro-F1 {report['held_out']['macro_f1']}")
    model.metrics_ = {"cv_movieparse": report.get("cv_movieparse"), "trained_on": {
        k: {kk: v[kk] for kk in ("scripts", "lines", "labeled_lines")} for k, v in report["trained_on"].items()},
        "scripts": sorted(s.script_id for scripts in sources.values() for s in scripts),
        "held_out": report.get("held_out")}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        staged = model.save(Path(tmp) / "lines")
        LineClassifier.load(staged)  # refuse to install what cannot be read back
        report["model_files"] = sorted(p.name for p in staged.iterdir()) + ["manifest.json"]
        report["elapsed_s"] = round(time.perf_counter() - started, 1)
        (staged / "manifest.json").write_text(json.dumps(report, indent=2))
        if out.exists():
            shutil.rmtree(out)
        shutil.move(str(staged), str(out))
    size = sum(p.stat().st_size for p in out.iterdir())
    report["model_dir"] = str(out)
    report["model_bytes"] = size
    report["elapsed_s"] = round(time.perf_counter() - started, 1)
    return report


def check_outside_repo(path: Path) -> None:
    """Refuse to write derived training data into the repository (it must never be committed)."""
    resolved = path.expanduser().resolve()
    if resolved == REPO or REPO in resolved.parents:
        raise ScriptlabelError(f"--oof-out {path}: inside the repository ({REPO}); write it elsewhere, e.g. /tmp/oof.npz")


def write_oof(path: Path, model: LineClassifier, X: pd.DataFrame, y, w: np.ndarray) -> dict:
    """The labeled training lines' out-of-fold probabilities (see the module docstring); no text."""
    codes = encode_labels(y, len(X))
    rows = np.flatnonzero(codes >= 0)
    group = X["group"].fillna(X["script_id"]) if "group" in X.columns else X["script_id"]
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:  # np.savez would add ".npz" to a name without it
        np.savez_compressed(
            fh, proba=model.oof_proba_[rows].astype(np.float32), code=codes[rows].astype(np.int8),
            script_id=X["script_id"].astype(str).to_numpy()[rows].astype(str),
            group=group.astype(str).to_numpy()[rows].astype(str), fold=model.oof_fold_[rows].astype(np.int16),
            weight=np.asarray(w, dtype=np.float32)[rows], labels=np.array(model.classes_, dtype=str),
        )
    pred = model.oof_proba_[rows].argmax(axis=1)
    return {"path": str(path), "lines": int(len(rows)), "folds": int(model.oof_fold_.max()) + 1,
            "accuracy": round(float((pred == codes[rows]).mean()), 4)}


def _git_commit() -> str | None:
    import subprocess

    try:
        out = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the pretrained line model from the shared data.")
    parser.add_argument("--data-dir", default=None, help="shared data folder (default: ../shared/data or $SCRIPTLABEL_SHARED_DATA)")
    parser.add_argument("--out", default=str(DEFAULT_OUT))
    parser.add_argument("--cv-folds", type=int, default=5, help="grouped CV folds on MovieParse (0: skip)")
    parser.add_argument("--no-cv", action="store_true")
    parser.add_argument("--hold-out", nargs="+", default=None, metavar="SLUG",
                        help="studio PDFs (file stems) to leave out of training and score the model on")
    parser.add_argument("--scheduler", default=None, metavar="tcp://HOST:PORT",
                        help="train the boosters on this Dask cluster (xgboost.dask); default: here")
    parser.add_argument("--oof-out", default=None, metavar="FILE.npz",
                        help="also write the out-of-fold probabilities of the inner grouped folds (outside the repo)")
    parser.add_argument("--sequence", choices=("replace", "stage2", "none"), default=None,
                        help="the sequence labeler's place (default: the shipped recipe's)")
    parser.add_argument("--variants", nargs="*", default=None, metavar="KIND",
                        help=f"MovieParse layout variants to train on (default: {' '.join(TRAINING_VARIANTS)})")
    parser.add_argument("--feature-set", type=int, default=None,
                        help="an older feature set (its later columns left out); default today's")
    args = parser.parse_args(argv)
    if args.hold_out and Path(args.out).resolve() == DEFAULT_OUT:
        parser.error("with --hold-out, pass --out DIR: a model missing scripts must not replace the shipped one")

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    client = None
    try:
        if args.scheduler:
            from labeling.ingest.pdf.cluster import connect

            client = connect(args.scheduler)
        config = SHIPPED_CONFIG
        if args.feature_set is not None:
            config = replace(config, features=FeatureConfig.from_dict(
                {**FeatureConfig().to_dict(), "feature_set": args.feature_set, "exclude": []}))
        if args.sequence == "none":
            config = replace(config, sequence=None)
        elif args.sequence:
            config = replace(config, sequence=config.sequence or SequenceParams(), sequence_mode=args.sequence)
        report = build(args.data_dir, Path(args.out), cv_folds=0 if args.no_cv else args.cv_folds,
                       hold_out=args.hold_out, log=log, client=client, config=config,
                       oof_out=Path(args.oof_out) if args.oof_out else None,
                       variants=TRAINING_VARIANTS if args.variants is None else tuple(args.variants))
    except ScriptlabelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        if client is not None:
            client.close()
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
