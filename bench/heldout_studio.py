"""A line model on studio PDFs it never trained on, against two sets of silver labels; prints JSON.

The labels come from each PDF's Fountain transcription: `bare` is the projection alone (word
alignment, no layout rule), `corrected` is what training uses (`sources.silver_labels`: corrected by
the PDF's columns, repeated cues, running headers). A base built with `build_pretrained --hold-out
SLUG ...` never saw those scripts; the figures include the error kinds of issue 26 and the accuracy
on the most confident 90% of lines (the model's calibration applied when it has one).

    uv run python bench/heldout_studio.py --model /tmp/heldout --slugs mr-right suits-pilot ...
    uv run python bench/heldout_studio.py --model /tmp/heldout          # the slugs its manifest held out
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

from labeling.corpus.sources import _fountain_source, _resolve, load_studio_pdfs, project_fountain_labels  # noqa: E402
from models.evaluation import evaluate_lines  # noqa: E402
from models.lines import calibration as calib  # noqa: E402
from models.lines.classifier import LineClassifier  # noqa: E402
from models.lines.error_kinds import count_error_kinds, kinds_report  # noqa: E402
from store.types import LABELS  # noqa: E402


def held_out_slugs(model_dir: Path) -> list[str]:
    manifest = json.loads((model_dir / "manifest.json").read_text())
    return sorted(s.split("/")[-1] for s in (manifest.get("held_out") or {}).get("scripts", {}))


def score(truth: list, pred: list, conf: list) -> dict:
    ev = evaluate_lines(truth, pred)
    right = np.array(truth) == np.array(pred)
    conf = np.array(conf)
    top = np.argsort(-conf, kind="stable")[: int(round(0.9 * len(conf)))]
    return {"n": ev.full.n, "accuracy": round(ev.full.accuracy, 4), "macro_f1": round(ev.full.macro_f1, 4),
            "accuracy_top90": round(float(right[top].mean()), 4),
            "per_class_f1": {c.label: round(c.f1, 4) for c in ev.full.per_class}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a line model folder built with --hold-out")
    parser.add_argument("--slugs", nargs="*", default=None, help="studio PDFs to score (default: the held-out ones)")
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args(argv)
    model_dir = Path(args.model)
    slugs = args.slugs or held_out_slugs(model_dir)
    if not slugs:
        print(f"error: {model_dir}: no held-out scripts in its manifest; pass --slugs", file=sys.stderr)
        return 2
    model = LineClassifier.load(model_dir)
    saved = calib.load_calibration(model_dir)  # None when it has none (a held-out build)
    root = _resolve(args.data_dir, "studio_pdfs")
    sets = {"bare": ([], [], [], Counter()), "corrected": ([], [], [], Counter())}
    per_script = {}
    for script in load_studio_pdfs(args.data_dir, slugs=slugs):
        slug = script.script_id.split("/")[-1]
        texts = script.lines["text"].astype(str).tolist()
        bare = project_fountain_labels(texts, _fountain_source(root / "fountain" / f"{slug}.fountain")).labels
        proba = model.predict_proba(script.lines)
        if saved is not None:
            proba = saved.calibrator.transform(proba)
        pred = np.array(LABELS, dtype=object)[proba.argmax(axis=1)]
        per_script[slug] = {"lines": len(texts)}
        for name, labels in (("bare", bare), ("corrected", script.labels)):
            truth, preds, conf, kinds = sets[name]
            truth += list(labels)
            preds += list(pred)
            conf += list(proba.max(axis=1))
            kinds.update(count_error_kinds(texts, labels, pred, script.lines["gap_before"].to_numpy(dtype=float)))
            per_script[slug][name] = round(float((pred == labels).mean()), 4)
    report = {"model": str(model_dir), "calibrated": saved is not None, "scripts": sorted(per_script),
              **{name: {**score(t, p, c), "error_kinds": kinds_report(k)} for name, (t, p, c, k) in sets.items()},
              "per_script": per_script}
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
