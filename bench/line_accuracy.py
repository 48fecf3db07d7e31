"""Line-label accuracy on scripts never trained on; prints JSON.

1. Grouped k-fold by movie over MovieParse gold (non-blank lines of the gold windows; whole scripts
   are given as context): the study's method (XGBoost over character 1–4-grams counted with
   CountVectorizer, plus the token count, as published) and ours (`models.lines.classifier`, trained
   on the fold's scripts plus their layout variants) side by side, same folds, same run.
2. Train on all MovieParse → test on the studio PDFs' text layer (labels projected from their
   Fountain transcriptions; the two low-match transcriptions are reported apart).
3. The same model on OCR of rasterized studio PDF pages when `labeling.ingest.pdf.ocr` is importable
   (else reported as skipped).

    uv run python bench/line_accuracy.py            # full run (about an hour on 2 busy cores)
    uv run python bench/line_accuracy.py --quick    # small boosters, 3 folds, few PDFs/pages

Every variant's errors are also counted by the kinds of issue 26 (`error_kinds`, see
`models.lines.error_kinds`). `--cut-starts [N]` cuts each test script at N random lines of its gold
window (a file that starts mid-scene) and reports accuracy on the first 30 lines of each cut file
against the rest (`cut_starts`); `--feature-set 4` and `--train-variants ...` measure an older recipe
beside today's.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from labeling.settings import process_defaults  # noqa: E402

process_defaults()  # an entry point: libgomp's spin count (and Keras' backend) before xgboost loads

from labeling.corpus.sources import (  # noqa: E402
    LOW_MATCH_SCRIPTS,
    TRAINING_VARIANTS,
    CorpusUnavailableError,
    LabeledScript,
    concat_scripts,
    load_movieparse,
    load_studio_pdfs,
    with_layout_variants,
)
from models.evaluation import evaluate_lines, fold_assignment  # noqa: E402
from models.lines.error_kinds import START_LINES, count_error_kinds, kinds_report  # noqa: E402
from models.lines.features import FeatureConfig, dense_features, script_order  # noqa: E402
from models.lines.sequence import SequenceParams  # noqa: E402
from models.lines.classifier import (  # noqa: E402
    BoosterParams,
    LineClassifier,
    LineModelConfig,
    default_n_jobs,
    encode_labels,
    fit_base,
)
from store.types import LABEL_INDEX, LABELS  # noqa: E402


# --- the study's method ------------------------------------------------------------------------


class StudyBaseline:
    """XGBoost over character 1–4-grams (CountVectorizer, padded at word edges, case kept) + token count."""

    def __init__(self, n_estimators: int = 300, max_depth: int = 6, learning_rate: float = 0.1):
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.learning_rate = learning_rate

    def _matrix(self, texts, fit: bool):
        texts = [str(t) for t in texts]
        grams = self.vectorizer_.fit_transform(texts) if fit else self.vectorizer_.transform(texts)
        tokens = sp.csr_matrix(np.array([[len(t.split())] for t in texts], dtype=np.float32))
        return sp.hstack([grams, tokens], format="csr")

    def fit(self, texts, codes):
        import xgboost as xgb
        from sklearn.feature_extraction.text import CountVectorizer

        self.vectorizer_ = CountVectorizer(analyzer="char_wb", ngram_range=(1, 4), lowercase=False)
        dtrain = xgb.DMatrix(self._matrix(texts, True), label=codes, nthread=default_n_jobs())
        params = {"objective": "multi:softprob", "num_class": len(LABELS), "tree_method": "hist",
                  "max_depth": self.max_depth, "eta": self.learning_rate, "nthread": default_n_jobs()}
        self.booster_ = xgb.train(params, dtrain, num_boost_round=self.n_estimators)
        return self

    def predict_proba(self, texts):
        import xgboost as xgb

        dm = xgb.DMatrix(self._matrix(texts, False), nthread=default_n_jobs())
        return self.booster_.predict(dm).reshape(-1, len(LABELS))


# --- helpers ------------------------------------------------------------------------------------


def summary(y_true, y_pred) -> dict:
    ev = evaluate_lines(y_true, y_pred)
    return {
        "n": ev.full.n,
        "accuracy": round(ev.full.accuracy, 4),
        "macro_f1": round(ev.full.macro_f1, 4),
        "seed_accuracy": round(ev.seed.accuracy, 4),
        "seed_macro_f1": round(ev.seed.macro_f1, 4),
        "per_class_f1": {c.label: round(c.f1, 4) for c in ev.full.per_class},
        "confusion": {"labels": list(ev.full.labels), "matrix": [list(r) for r in ev.full.confusion]},
    }


def labeled_mask(labels: np.ndarray) -> np.ndarray:
    return np.array([label is not None for label in labels])


def feature_config(feature_set: int | None) -> FeatureConfig:
    """Today's features, or an older feature set's (its later columns left out, as a model saved then)."""
    if feature_set is None:
        return FeatureConfig()
    return FeatureConfig.from_dict({**FeatureConfig().to_dict(), "feature_set": feature_set, "exclude": []})


def ours_config(quick: bool, features: FeatureConfig = FeatureConfig()) -> LineModelConfig:
    if not quick:
        return LineModelConfig(features=features)
    return LineModelConfig(features=features, stage1=BoosterParams(n_estimators=120, learning_rate=0.2),
                           stage2=BoosterParams(n_estimators=80, max_depth=5, learning_rate=0.2), inner_folds=3)


def train_ours(scripts: list[LabeledScript], config: LineModelConfig, variants) -> LineClassifier:
    X, y = with_layout_variants(scripts, variants)
    return fit_base(X, y, config=config)


# --- 1. grouped k-fold over MovieParse -----------------------------------------------------------


SEQUENCE_VARIANTS = ("bilstm_alone", "bilstm_replaces_stage2", "bilstm_replaces_stage2_no_aux",
                     "bilstm_crf_replaces_stage2", "bilstm_crf_replaces_stage2_no_aux",
                     "bilstm_crf_fast_transitions_no_aux")
# Opt-in (a whole second stack with six BiLSTM fits per fold): the BiLSTM's out-of-fold probabilities
# stacked into stage 2 (`sequence_mode="stage2"`), softmax, no auxiliary objective.
STACKED_VARIANT = "bilstm_stacked_in_stage2"


def sequence_variants(model: LineClassifier, X: pd.DataFrame, y, params: SequenceParams, log,
                      names=SEQUENCE_VARIANTS) -> dict:
    """The sequence labeler's ablation over one fitted stack (same folds, same stage-1 out-of-fold
    probabilities): BiLSTM alone (dense + text), and BiLSTM over dense + stage-1 OOF replacing
    stage 2, with and without the auxiliary objective, with a softmax or a CRF output (and a CRF
    whose scores learn 10x faster). Returns
    name -> a model with `base_outputs`."""
    from models.lines.sequence import SequenceLabeler

    X = X.reset_index(drop=True)
    codes = encode_labels(y, len(X))
    dense = dense_features(X, model.features)
    groups, texts = script_order(X), X["text"].to_numpy()
    keep = model._dense_keep()
    stacked = np.hstack([dense[:, keep], model.stage1_oof_])
    specs = {"bilstm_alone": (dense[:, keep], params.aux_weight, "softmax", 1.0),
             "bilstm_replaces_stage2": (stacked, params.aux_weight, "softmax", 1.0),
             "bilstm_replaces_stage2_no_aux": (stacked, 0.0, "softmax", 1.0),
             "bilstm_crf_replaces_stage2": (stacked, params.aux_weight or 0.25, "crf", 1.0),
             "bilstm_crf_replaces_stage2_no_aux": (stacked, 0.0, "crf", 1.0),
             # the transitions learned at the network's rate stay within ±0.1 beside emissions of ±10
             "bilstm_crf_fast_transitions_no_aux": (stacked, 0.0, "crf", 10.0)}
    out = {}
    if STACKED_VARIANT in names:
        t0 = time.perf_counter()
        out[STACKED_VARIANT] = fit_base(X, y, config=replace(model.config, sequence=replace(params, aux_weight=0.0),
                                                               sequence_mode="stage2"))
        log(f"  {STACKED_VARIANT}: fit {time.perf_counter() - t0:.0f}s")
    for name in (n for n in names if n != STACKED_VARIANT):
        inputs, aux, output, crf_scale = specs[name]
        t0 = time.perf_counter()
        seq_params = replace(params, aux_weight=aux, output=output, crf_scale=crf_scale)
        seq = SequenceLabeler(seq_params).fit(inputs, texts, codes, groups)
        variant = copy.copy(model)
        variant.set_params(sequence=seq_params, sequence_mode="replace")
        variant.sequence_, variant.stage2_, variant.stage2_names_ = seq, None, None
        out[name] = variant
        log(f"  {name}: fit {time.perf_counter() - t0:.0f}s")
    return out


def _variant_proba(name: str, model: LineClassifier, lines: pd.DataFrame) -> np.ndarray:
    if name != "bilstm_alone":
        return model.base_outputs(lines).proba
    dense = dense_features(lines.reset_index(drop=True), model.features)
    return model.sequence_.predict_proba(dense[:, model._dense_keep()], lines["text"].to_numpy(), script_order(lines))


def cut_points(script: LabeledScript, n_cuts: int, seed: int = 0) -> list[int]:
    """Where to cut a test script so its file starts mid-scene with gold lines right after: random
    lines of its labeled window that leave at least 2 x START_LINES labeled lines after the cut."""
    labeled = np.flatnonzero(labeled_mask(script.labels))
    if len(labeled) < 3 * START_LINES:
        return []
    rng = np.random.default_rng([seed, sum(map(ord, script.script_id))])
    candidates = labeled[: len(labeled) - 2 * START_LINES]
    return sorted(int(c) for c in rng.choice(candidates, size=min(n_cuts, len(candidates)), replace=False))


def cut_start_scores(name_proba, script: LabeledScript, cuts: list[int], acc: dict, kinds: dict) -> None:
    """Predict each cut file (the script from line `c` on, as an excerpt would start) with every variant
    (`name_proba(name, lines)`); collect right/wrong on the first START_LINES lines of the file and on the
    rest, and the error kinds on the cut files."""
    for c in cuts:
        lines = script.lines.iloc[c:].reset_index(drop=True)
        labels = script.labels[c:]
        m = labeled_mask(labels)
        head = np.arange(len(lines)) < START_LINES
        for name, proba in name_proba(lines).items():
            pred = np.array(LABELS)[proba.argmax(axis=1)]
            right = pred == labels
            entry = acc.setdefault(name, {"first": [], "rest": []})
            entry["first"].extend(right[m & head])
            entry["rest"].extend(right[m & ~head])
            kinds.setdefault(name, Counter()).update(count_error_kinds(
                lines["text"].to_numpy(), labels, pred, lines["gap_before"].to_numpy(dtype=float)))


def cut_start_report(acc: dict, kinds: dict) -> dict:
    out = {}
    for name, entry in acc.items():
        first, rest = np.array(entry["first"], dtype=bool), np.array(entry["rest"], dtype=bool)
        out[name] = {"first_lines": START_LINES, "n_first": int(len(first)), "n_rest": int(len(rest)),
                     "accuracy_first": round(float(first.mean()), 4) if len(first) else None,
                     "accuracy_rest": round(float(rest.mean()), 4) if len(rest) else None,
                     "gap": round(float(rest.mean() - first.mean()), 4) if len(first) and len(rest) else None,
                     "error_kinds": kinds_report(kinds.get(name, Counter()))}
    return out


def movieparse_cv(scripts: list[LabeledScript], *, folds: int, quick: bool, variants, log,
                  sequence: SequenceParams | None = None, test_groups: list[list[str]] | None = None,
                  sequence_names=SEQUENCE_VARIANTS, cut_starts: int = 0,
                  features: FeatureConfig = FeatureConfig()) -> dict:
    ids = np.array([s.script_id for s in scripts])
    weights = np.array([s.n_labeled for s in scripts])
    fold_of = fold_assignment(np.repeat(ids, weights), folds)
    script_fold = dict(zip(np.repeat(ids, weights), fold_of))
    if test_groups:  # folds given by name (e.g. to finish a run stopped part-way); the rest always trains
        script_fold = {sid: next((k for k, group in enumerate(test_groups) if sid.split("/")[-1] in group), -1)
                       for sid in ids}
        folds = len(test_groups)
    truth, study_pred, script_of, agreement = [], [], [], []
    preds: dict[str, list] = {}
    kinds: dict[str, Counter] = {}
    cut_acc: dict[str, dict] = {}
    cut_kinds: dict[str, Counter] = {}
    timings = {"ours_fit_s": [], "study_fit_s": []}
    for k in range(folds):
        train = [s for s in scripts if script_fold[s.script_id] != k]
        test = [s for s in scripts if script_fold[s.script_id] == k]
        t0 = time.perf_counter()
        X_var, y_var = with_layout_variants(train, variants)
        model = fit_base(X_var, y_var, config=ours_config(quick, features))
        timings["ours_fit_s"].append(round(time.perf_counter() - t0, 1))
        models = {"ours": model}
        if sequence is not None:
            models.update(sequence_variants(model, X_var, y_var, sequence, log, sequence_names))
        X_tr, y_tr = concat_scripts(train)
        m_tr = labeled_mask(y_tr)
        t0 = time.perf_counter()
        study = StudyBaseline(n_estimators=100 if quick else 300).fit(
            X_tr["text"][m_tr], [LABEL_INDEX[v] for v in y_tr[m_tr]])
        timings["study_fit_s"].append(round(time.perf_counter() - t0, 1))
        for script in test:
            m = labeled_mask(script.labels)
            truth += list(script.labels[m])
            agreement += list(script.agreement[m] if script.agreement is not None else np.full(int(m.sum()), -1))
            out = model.base_outputs(script.lines)
            preds.setdefault("ours_stage1_only", []).extend(np.array(LABELS)[out.stage1.argmax(axis=1)][m])
            probas = {name: _variant_proba(name, v, script.lines) for name, v in models.items()}
            if "bilstm_replaces_stage2" in probas:
                probas["mean_of_stack_and_bilstm"] = (probas["ours"] + probas["bilstm_replaces_stage2"]) / 2
            for name, proba in probas.items():
                full = np.array(LABELS)[proba.argmax(axis=1)]
                preds.setdefault(name, []).extend(full[m])
                kinds.setdefault(name, Counter()).update(count_error_kinds(
                    script.lines["text"].to_numpy(), script.labels, full, script.lines["gap_before"].to_numpy(dtype=float)))
            if cut_starts:
                cut_start_scores(lambda lines: {name: _variant_proba(name, v, lines) for name, v in models.items()},
                                 script, cut_points(script, cut_starts), cut_acc, cut_kinds)
            study_pred += list(np.array(LABELS)[study.predict_proba(script.lines["text"][m]).argmax(axis=1)])
            script_of += [script.script_id] * int(m.sum())
        log(f"fold {k + 1}/{folds} done: " + ", ".join(
            f"{name} {np.mean(np.array(p) == np.array(truth)):.4f}" for name, p in preds.items()))
        log(f"  error kinds: {json.dumps({name: kinds_report(c) for name, c in kinds.items()})}")
        if cut_starts:
            log(f"  cut starts: {json.dumps(cut_start_report(cut_acc, cut_kinds))}")
    truth, study_pred = np.array(truth), np.array(study_pred)
    ours, study = summary(truth, np.array(preds["ours"])), summary(truth, study_pred)
    per_script = (pd.DataFrame({"script": script_of, "ours": np.array(preds["ours"]) == truth,
                                "study": study_pred == truth})
                  .groupby("script")[["ours", "study"]].mean().round(4))
    report = {
        "folds": folds,
        "grouping": "by movie (whole scripts per fold)",
        "train_variants": list(variants),
        "study": study,
        "ours": ours,
        "error_ratio_ours_over_study": round((1 - ours["accuracy"]) / max(1e-9, 1 - study["accuracy"]), 3),
        "per_script_accuracy": per_script.to_dict(orient="index"),
        "timings": timings,
    }
    for name, p in preds.items():
        if name != "ours":
            report[name] = summary(truth, np.array(p))
    report["error_kinds"] = {name: kinds_report(c) for name, c in kinds.items()}
    if cut_starts:
        report["cut_starts"] = cut_start_report(cut_acc, cut_kinds)
    report["annotator_agreement"] = agreement_report(truth, np.array(agreement), study_pred, preds)
    if sequence is not None:
        report["sequence_params"] = sequence.to_dict()
        report["ablation_accuracy"] = {name: report[name]["accuracy"] for name in ["study", "ours", *preds] if name in report}
        report["ablation_macro_f1"] = {name: report[name]["macro_f1"] for name in ["study", "ours", *preds] if name in report}
    return report


def agreement_report(truth: np.ndarray, agreement: np.ndarray, study_pred: np.ndarray, preds: dict) -> dict:
    """The gold is a 2-of-3 majority: how often a single annotator gives it (the human reference), and
    each variant's accuracy on the lines all three annotators labeled alike (no disagreement to inherit)."""
    known = agreement >= 0
    if not known.any():
        return {}
    unanimous = agreement == 3
    return {
        "annotator_vs_majority": round(float(agreement[known].mean() / 3), 4),
        "unanimous_lines": int(unanimous.sum()),
        "split_lines": int((known & ~unanimous).sum()),
        "accuracy_on_unanimous_lines": {
            name: round(float((np.asarray(p)[unanimous] == truth[unanimous]).mean()), 4)
            for name, p in {"study": study_pred, **preds}.items()},
    }


# --- 2./3. studio PDFs ---------------------------------------------------------------------------


def studio_eval(model: LineClassifier, study: StudyBaseline, studio: list[LabeledScript]) -> dict:
    per_script, truth, ours, base = {}, [], [], []
    for script in studio:
        pred = np.array(LABELS)[model.predict_proba(script.lines).argmax(axis=1)]
        spred = np.array(LABELS)[study.predict_proba(script.lines["text"]).argmax(axis=1)]
        acc = float((pred == script.labels).mean())
        per_script[script.script_id] = {
            "lines": int(len(script.labels)), "match_rate": round(script.match_rate or 0, 3),
            "ours": round(acc, 4), "study": round(float((spred == script.labels).mean()), 4),
            "low_match_transcription": script.script_id.split("/")[-1] in LOW_MATCH_SCRIPTS,
        }
        if script.script_id.split("/")[-1] not in LOW_MATCH_SCRIPTS:
            truth += list(script.labels)
            ours += list(pred)
            base += list(spred)
    return {
        "labels": "projected from Fountain (silver); unmatched lines are `other`",
        "excluding_low_match": {"ours": summary(truth, ours), "study": summary(truth, base)},
        "per_script": per_script,
    }


def ocr_eval(model: LineClassifier, data_dir, *, slugs: list[str], pages: int) -> dict:
    try:
        from labeling.ingest.pdf import ocr
    except ImportError:
        return {"skipped": "OCR reader missing"}
    from labeling.corpus.sources import _resolve, lines_frame, silver_labels
    from labeling.ingest.pdf.textlayer import page_line_to_line

    root = _resolve(data_dir, "studio_pdfs")
    truth, pred, per = [], [], {}
    for slug in slugs:
        pdf = root / "pdf" / f"{slug}.pdf"
        lines = []
        for page_no in range(2, 2 + pages):  # skip the title page
            try:
                page = ocr.ocr_pdf_page(str(pdf), page_no)
            except Exception as exc:  # tesseract/poppler missing or failing: report, don't crash the bench
                return {"skipped": f"OCR failed on {slug} page {page_no}: {type(exc).__name__}: {exc}"}
            for pl in page.lines:
                lines.append(page_line_to_line(pl, line_no=len(lines) + 1, page=page_no))
        if not lines:
            continue
        frame = lines_frame(lines, f"ocr/{slug}")
        labels, projection = silver_labels(frame, root / "fountain" / f"{slug}.fountain")
        p = np.array(LABELS)[model.predict_proba(frame).argmax(axis=1)]
        per[slug] = {"pages": pages, "lines": len(lines), "match_rate": round(projection.match_rate, 3),
                     "accuracy": round(float((p == labels).mean()), 4)}
        truth += list(labels)
        pred += list(p)
    if not truth:
        return {"skipped": "OCR produced no lines"}
    return {"summary": summary(truth, pred), "per_script": per}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 folds, small boosters, 4 PDFs, 1 OCR page each")
    parser.add_argument("--folds", type=int, default=None)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--skip-studio", action="store_true")
    parser.add_argument("--ocr-pages", type=int, default=None)
    parser.add_argument("--no-sequence", action="store_true", help="leave out the sequence labeler's ablation")
    parser.add_argument("--seq-epochs", type=int, default=None)
    parser.add_argument("--test-groups", default=None, metavar="A,B;C,D",
                        help="explicit test folds: movies separated by commas, folds by semicolons")
    parser.add_argument("--seq-variants", nargs="+", choices=(*SEQUENCE_VARIANTS, STACKED_VARIANT), default=list(SEQUENCE_VARIANTS),
                        help=f"which sequence-labeler variants to fit per fold (default: all but {STACKED_VARIANT})")
    parser.add_argument("--cut-starts", type=int, nargs="?", const=3, default=0, metavar="N",
                        help=f"also cut each test script at N random points (default 3) and report accuracy on "
                             f"the first {START_LINES} lines of each cut file against the rest")
    parser.add_argument("--feature-set", type=int, default=None,
                        help="train with an older feature set (e.g. 4: before the reading cues); default today's")
    parser.add_argument("--train-variants", nargs="*", default=None, metavar="KIND",
                        help=f"layout variants added to training (default: {' '.join(TRAINING_VARIANTS)})")
    args = parser.parse_args(argv)
    folds = args.folds or (3 if args.quick else 5)
    seq_params = SequenceParams()
    if args.seq_epochs or args.quick:
        seq_params = replace(seq_params, epochs=args.seq_epochs or 4)
    variants = TRAINING_VARIANTS if args.train_variants is None else tuple(args.train_variants)
    features = feature_config(args.feature_set)
    started = time.perf_counter()

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - started:7.0f}s] {message}", file=sys.stderr, flush=True)

    try:
        movieparse = load_movieparse(args.data_dir)
    except CorpusUnavailableError as exc:
        print(json.dumps({"skipped": str(exc)}))
        return 0
    report = {"data": {"movieparse_scripts": len(movieparse),
                       "movieparse_gold_lines": int(sum(s.n_labeled for s in movieparse))},
              "movieparse_grouped_cv": movieparse_cv(movieparse, folds=folds, quick=args.quick, variants=variants, log=log,
                                                       sequence=None if args.no_sequence else seq_params,
                                                       test_groups=[g.split(",") for g in args.test_groups.split(";")]
                                                       if args.test_groups else None,
                                                       sequence_names=args.seq_variants,
                                                       cut_starts=args.cut_starts, features=features),
              "features": features.to_dict()}

    if not args.skip_studio:
        try:
            studio = load_studio_pdfs(args.data_dir)
        except CorpusUnavailableError as exc:
            studio, report["movieparse_to_studio_pdfs"] = [], {"skipped": str(exc)}
        if studio:
            if args.quick:
                studio = studio[:4]
            model = train_ours(movieparse, ours_config(args.quick, features), variants)
            X_all, y_all = concat_scripts(movieparse)
            m = labeled_mask(y_all)
            study = StudyBaseline(n_estimators=100 if args.quick else 300).fit(
                X_all["text"][m], [LABEL_INDEX[v] for v in y_all[m]])
            report["movieparse_to_studio_pdfs"] = studio_eval(model, study, studio)
            log("studio PDFs done")
            pages = args.ocr_pages if args.ocr_pages is not None else (1 if args.quick else 3)
            slugs = [s.script_id.split("/")[-1] for s in studio
                     if s.script_id.split("/")[-1] not in LOW_MATCH_SCRIPTS][: 2 if args.quick else 6]
            report["movieparse_to_ocr_pages"] = ocr_eval(model, args.data_dir, slugs=slugs, pages=pages)
            log("OCR done")
    report["elapsed_s"] = round(time.perf_counter() - started, 1)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
