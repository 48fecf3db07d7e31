"""A line model on studio PDFs it never trained on, against two sets of silver labels; prints JSON.

The labels come from each PDF's Fountain transcription: `bare` is the projection alone (word
alignment, no layout rule), `corrected` is what training uses (`sources.silver_labels`: corrected by
the PDF's columns, repeated cues, running headers). A base built with `build_pretrained --hold-out
SLUG ...` never saw those scripts; the figures include the error kinds of issue 26 and the accuracy
on the most confident 90% of lines and the top-label ECE (the model's calibration applied when it
has one).

A held-out build has no calibration of its own. `--oof FILE.npz` (the shipped build's
`build_pretrained --oof-out`) fits one the way `python -m labeling.corpus.calibrate` does, on that
file's out-of-fold lines of every script but the held-out ones, and reports the scores before
(`raw`) and after it (the calibrator never sees a held-out script's lines; the out-of-fold models
behind the file did train on them, so it is a close stand-in, not the held-out build's own OOF).

    uv run python bench/heldout_studio.py --model /tmp/heldout --slugs mr-right suits-pilot ...
    uv run python bench/heldout_studio.py --model /tmp/heldout          # the slugs its manifest held out
    uv run python bench/heldout_studio.py --model /tmp/heldout --oof /tmp/oof.npz   # calibrated as shipped
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from labeling.settings import process_defaults  # noqa: E402

process_defaults()

from labeling.corpus.calibrate import fit_calibration, load_out_of_fold  # noqa: E402
from labeling.corpus.sources import _fountain_source, _resolve, load_studio_pdfs, project_fountain_labels  # noqa: E402
from models.evaluation import evaluate_lines  # noqa: E402
from models.lines import calibration as calib  # noqa: E402
from models.lines.classifier import LineClassifier  # noqa: E402
from models.lines.error_kinds import count_error_kinds, kinds_report  # noqa: E402
from store.types import LABEL_INDEX, LABELS  # noqa: E402


def held_out_slugs(model_dir: Path) -> list[str]:
    manifest = json.loads((model_dir / "manifest.json").read_text())
    return sorted(s.split("/")[-1] for s in (manifest.get("held_out") or {}).get("scripts", {}))


def score(truth: list, pred: list, proba: np.ndarray) -> dict:
    ev = evaluate_lines(truth, pred)
    right = np.array(truth) == np.array(pred)
    conf = proba.max(axis=1)
    top = np.argsort(-conf, kind="stable")[: int(round(0.9 * len(conf)))]
    known = np.array([t is not None for t in truth])
    codes = np.array([LABEL_INDEX[t] for t in np.asarray(truth, dtype=object)[known]])
    return {"n": ev.full.n, "accuracy": round(ev.full.accuracy, 4), "macro_f1": round(ev.full.macro_f1, 4),
            "accuracy_top90": round(float(right[top].mean()), 4),
            "errors_top90": int((~right[top]).sum()),
            "ece": round(calib.ece(proba[known], codes), 4),
            "per_class_f1": {c.label: round(c.f1, 4) for c in ev.full.per_class}}


def calibration_without(oof_path: Path, slugs: list[str]):
    """A calibrator fit as `labeling.corpus.calibrate` fits the shipped one, on the OOF lines of every
    script but the studio PDFs `slugs` (see the module docstring); with the number of lines left out."""
    oof = load_out_of_fold(oof_path)
    held = np.array([s.split("/")[-1].split("#")[0] in set(slugs) and s.startswith("studio_pdf/")
                     for s in oof["script_ids"]])
    fitted = fit_calibration({key: value[~held] for key, value in oof.items()})
    return fitted.calibrator, int(held.sum())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a line model folder built with --hold-out")
    parser.add_argument("--slugs", nargs="*", default=None, help="studio PDFs to score (default: the held-out ones)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--oof", type=Path, default=None,
                        help="calibrate on this OOF file (build_pretrained --oof-out) without the held-out scripts")
    parser.add_argument("--show-errors", type=int, default=0, metavar="N",
                        help="print the N most confident errors against the corrected labels on stderr (with text)")
    args = parser.parse_args(argv)
    model_dir = Path(args.model)
    slugs = args.slugs or held_out_slugs(model_dir)
    if not slugs:
        print(f"error: {model_dir}: no held-out scripts in its manifest; pass --slugs", file=sys.stderr)
        return 2
    model = LineClassifier.load(model_dir)
    saved = calib.load_calibration(model_dir)  # None when it has none (a held-out build)
    calibrator, calibration = (saved.calibrator if saved is not None else None), (
        "its own calibration.json" if saved is not None else None)
    if args.oof is not None:
        calibrator, left_out = calibration_without(args.oof, slugs)
        calibration = (f"{calibrator.method} fit on {args.oof} without the held-out scripts' "
                       f"{left_out:,} out-of-fold lines")
    root = _resolve(args.data_dir, "studio_pdfs")
    sets = {"bare": ([], [], [], [], Counter()), "corrected": ([], [], [], [], Counter())}
    per_script, confident = {}, []
    for script in load_studio_pdfs(args.data_dir, slugs=slugs):
        slug = script.script_id.split("/")[-1]
        texts = script.lines["text"].astype(str).tolist()
        bare = project_fountain_labels(texts, _fountain_source(root / "fountain" / f"{slug}.fountain")).labels
        raw = model.predict_proba(script.lines)
        proba = calibrator.transform(raw) if calibrator is not None else raw
        pred = np.array(LABELS, dtype=object)[proba.argmax(axis=1)]
        per_script[slug] = {"lines": len(texts)}
        for name, labels in (("bare", bare), ("corrected", script.labels)):
            truth, preds, probas, raws, kinds = sets[name]
            truth += list(labels)
            preds += list(pred)
            probas.append(proba)
            raws.append(raw)
            kinds.update(count_error_kinds(texts, labels, pred, script.lines["gap_before"].to_numpy(dtype=float)))
            per_script[slug][name] = round(float((pred == labels).mean()), 4)
        wrong = np.flatnonzero(pred != script.labels)
        confident += [(float(proba[i].max()), slug, i, script.labels[i], pred[i], texts[i]) for i in wrong]
    report = {"model": str(model_dir), "calibrated": calibration, "scripts": sorted(per_script)}
    for name, (truth, preds, probas, raws, kinds) in sets.items():
        report[name] = {**score(truth, preds, np.vstack(probas)), "error_kinds": kinds_report(kinds)}
        if calibrator is not None:
            raw = np.vstack(raws)
            report[name]["raw"] = {k: v for k, v in score(
                truth, list(np.array(LABELS, dtype=object)[raw.argmax(axis=1)]), raw).items() if k != "per_class_f1"}
    report["per_script"] = per_script
    for conf, slug, i, truth, pred, text in sorted(confident, key=lambda e: -e[0])[: args.show_errors]:
        print(f"{conf:.4f} {slug}:{i + 1} {truth} -> {pred}: {text[:90]!r}", file=sys.stderr)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
