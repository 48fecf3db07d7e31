"""Bulk-accept and the promotion rule through the product's own path; prints JSON on stdout.

1. Bulk-accept on the bundled sample screenplay (never trained on; true labels from its own Fountain
   source): for each threshold, the lines accepted, the errors the stored probabilities expect (sum of
   1 - p) and the errors actually made among the accepted lines that have a true label.
2. The promotion rule's cost: a retrain (adapter fit + the cross-fitted comparison on the newest labels)
   with N human labels on the sample, and the share of that time the comparison takes.

    uv run python bench/bulk_accept.py [--thresholds 0.9 0.95 0.99 0.999] [--labels 50 200]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from labeling.settings import process_defaults  # noqa: E402

process_defaults()  # an entry point: libgomp's spin count (and Keras' backend) before xgboost loads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--thresholds", type=float, nargs="+", default=[0.9, 0.95, 0.99, 0.995, 0.999])
    parser.add_argument("--labels", type=int, nargs="+", default=[50, 200])
    args = parser.parse_args()

    from labeling.ingest.formats.fountain import parse_fountain
    from labeling.ingest.pipeline import ingest_path
    from labeling.training import promotion
    from labeling.training.lines import _outputs_for, labeled_snapshot, load_base, load_current, train_line_version
    from store import labels as label_store
    from store import scripts as script_store
    from store.db import open_db

    sample = REPO / "sample_scripts"
    gold = {line.text: line.imported_label for line in parse_fountain((sample / "tim_time.fountain").read_text())}
    out: dict = {"script": "sample_scripts/tim_time.pdf (never trained on)", "bulk_accept": [], "promotion": []}
    with tempfile.TemporaryDirectory() as tmp:
        db = open_db(Path(tmp) / "bench.db")
        script_id = ingest_path(db, sample / "tim_time.pdf").script_id
        lines = script_store.lines_frame(db, script_id).set_index("line_id")
        truth = lines["text"].map(gold)
        out["lines"] = int(len(lines))
        out["lines_with_a_true_label"] = int(truth.notna().sum())
        for above in args.thresholds:
            preview = label_store.preview_accept(db, script_id, above=above)
            batch = label_store.accept_suggestions(db, script_id, above=above, batch_id=label_store.new_batch_id(),
                                                   model_version_seen=preview.model_version, annotator="bench")
            accepted = label_store.effective_labels(db, script_id).set_index("line_id")
            accepted = accepted[accepted["label_source"] == "accepted"]
            known = accepted[truth.loc[accepted.index].notna()]
            wrong = int((known["label"] != truth.loc[known.index]).sum())
            expected_known = float(preview.expected_errors * len(known) / max(1, preview.lines))
            out["bulk_accept"].append({
                "above": above, "model_version": preview.model_version, "lines": preview.lines,
                "share_of_script": round(preview.lines / len(lines), 4),
                "expected_errors": round(preview.expected_errors, 2),
                "with_true_label": int(len(known)), "expected_errors_there": round(expected_known, 2),
                "actual_errors_there": wrong,
                "accuracy_there": round(1 - wrong / max(1, len(known)), 4)})
            label_store.undo_accept(db, batch.batch_id, annotator="bench")
        known = lines[truth.notna()].sample(frac=1.0, random_state=0)
        given = 0
        for n in sorted({min(n, len(known)) for n in args.labels}):
            for line_id in known.index[given:n]:
                label_store.add_label(db, int(line_id), truth.loc[line_id], annotator="bench")
            given = n
            frame, y, _ = labeled_snapshot(db)
            outputs = _outputs_for(db, frame)  # cached by now: what the retrain reads too
            compare_started = time.perf_counter()
            promotion.compare_with_current(db, frame, y, outputs, base=load_base(), model=load_current(db),
                                           until_event=label_store.max_event_id(db))
            compare = time.perf_counter() - compare_started
            started = time.perf_counter()
            version, _, metrics = train_line_version(db, predict_all=False)
            total = time.perf_counter() - started
            out["promotion"].append({"human_labels": n, "version": version,
                                     "decision": metrics["promotion"]["decision"],
                                     "compared_on": (metrics["promotion"].get("comparison") or {}).get("n"),
                                     "retrain_s": round(total, 2), "comparison_alone_s": round(compare, 2)})
        db.close()
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
