"""Active-learning benchmark: a simulated annotator labels held-out scripts through the product's own
queue → label → retrain path; accuracy on the lines not yet labeled vs labels given, per strategy.

    uv run python -m labeling.corpus.build_pretrained --no-cv --out /tmp/base-heldout --hold-out \
        rick-and-morty-105-meeseeks-and-destroy suits-pilot mr-right   # a base that never saw them
    uv run python bench/active_learning.py --base /tmp/base-heldout [--scripts SLUG ...] [--budget 100]
        [--strategies margin diverse ...]
    uv run python bench/active_learning.py --build-base /tmp/base-small [--scripts SLUG ...]  # then --base it

`--build-base DIR` builds a quick held-out base (no CV, no layout variants, content 8 epochs, boosters of
100 and 60 trees, 3 inner folds, no sequence labeler: ~6 min on 2 cores) and exits; the README's queue
figures use such a base.

The scripts are studio PDFs (labels projected from their Fountain transcriptions) that the base model
was not trained on: the shipped model is trained on all of them, so the bench needs a base built with
them held out, and refuses one whose recorded training scripts include any of them.
Prints JSON; writes bench/active_learning.png. Besides accuracy after 50 labels and labels to reach
0.99 / 0.995 (thresholds met in batches of 10, so one batch landing a hair either side decides them),
`mean_error_10_50` is the mean error on the lines not yet labeled over the retrains at 10–50 labels.
Each run also counts the key presses spent on *patterns* (lines sharing
`labeling.session.queue.pattern_key`: page numbers, running headers, repeated cues, CONTINUED...;
patterns with at least 3 lines in the script): labels per pattern touched, and the labels given to a
pattern after it had already been labeled twice the same way (`repeat_pattern_labels`, what `diverse`
is meant to save).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from labeling.settings import process_defaults  # noqa: E402

process_defaults()  # an entry point: libgomp's spin count (and Keras' backend) before xgboost loads

import numpy as np  # noqa: E402

from labeling.corpus.sources import load_studio_pdfs  # noqa: E402
from labeling.ingest.pipeline import ingest_path  # noqa: E402
from labeling.training.lines import train_line_version  # noqa: E402
from labeling.session.queue import PATTERN_MIN_LABELS, build_queue, pattern_key  # noqa: E402
from labeling.session.record import record_group_label, record_label  # noqa: E402
from labeling.session.strategies import EmptyPoolError  # noqa: E402
from models.lines.classifier import TrainingDataError  # noqa: E402
from store import labels as label_store  # noqa: E402
from store import models as model_store  # noqa: E402
from store.db import open_db  # noqa: E402

DATA = Path(os.environ.get("SCRIPTLABEL_SHARED_DATA", REPO.parent / "shared" / "data"))
HELD_OUT = ["rick-and-morty-105-meeseeks-and-destroy", "mr-right", "me-him-her", "dirk-gently-102-lost-and-found"]
STRATEGIES = ["margin", "diverse", "entropy", "least_confidence", "random"]


def build_small_base(out: Path, slugs: list[str]) -> dict:
    """A quick base without `slugs` (see the docstring); cache it outside the repository."""
    import labeling.corpus.build_pretrained as recipe
    from models.lines.params import BoosterParams, ContentParams, LineModelConfig

    out = out.resolve()
    if REPO in out.parents:
        raise SystemExit(f"{out}: keep bench models outside the repository (e.g. under /tmp)")
    recipe.TRAINING_VARIANTS = ()  # a third of the rows: the loop's comparison, not the shipped model
    config = LineModelConfig(content=ContentParams(epochs=8), stage1=BoosterParams(n_estimators=100),
                             stage2=BoosterParams(n_estimators=60, max_depth=5), inner_folds=3)
    return recipe.build(out=out, cv_folds=0, hold_out=slugs, config=config,
                        log=lambda message: print(message, file=sys.stderr, flush=True))


def check_base(base: Path, slugs: list[str]) -> None:
    try:
        trained = json.loads((base / "config.json").read_text())["metrics"]["scripts"]
    except (OSError, ValueError, KeyError, TypeError):
        raise SystemExit(f"{base}: no record of the scripts this base model was trained on; build one with "
                         "`uv run python -m labeling.corpus.build_pretrained --no-cv --out DIR --hold-out SLUG ...`")
    seen = sorted(slug for slug in slugs if f"studio_pdf/{slug}" in trained)
    if seen:
        raise SystemExit(f"{base}: this base model was trained on {seen}; the bench needs scripts it never saw — "
                         "build one with `--hold-out` for them (see this file's docstring)")


def remaining_accuracy(db, gold: dict[int, str]) -> float:
    preds = model_store.latest_predictions(db).set_index("line_id")["label"]
    labeled = set(label_store.current_labels(db)["line_id"])
    rest = [i for i in gold if i not in labeled]
    return float(np.mean([preds.get(i) == gold[i] for i in rest])) if rest else 1.0


def simulate(slug: str, strategy: str, *, budget: int, batch: int, gold_script) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        db = open_db(Path(tmp) / "al.db")
        result = ingest_path(db, DATA / "studio_pdfs" / "pdf" / f"{slug}.pdf")
        ids = [r[0] for r in db.execute("SELECT line_id FROM lines WHERE script_id = ? ORDER BY line_no",
                                        [result.script_id])]
        texts = [r[0] for r in db.execute("SELECT text FROM lines WHERE script_id = ? ORDER BY line_no",
                                          [result.script_id])]
        if texts != list(gold_script.lines["text"]):
            raise SystemExit(f"{slug}: ingested lines differ from the corpus reader's; cannot align gold labels")
        gold = {i: lab for i, lab in zip(ids, gold_script.labels) if lab is not None}
        keys = {line_id: pattern_key(text, indent) for line_id, text, indent in db.execute(
            "SELECT line_id, text, indent FROM lines WHERE script_id = ?", [result.script_id])}
        curve = [{"labels": 0, "accuracy": remaining_accuracy(db, gold)}]
        given, retrain_s, asked = 0, [], []
        while given < budget:
            try:
                items = build_queue(db, strategy=strategy, n=batch, random_share=0.1 if strategy != "random" else 0,
                                    seed=given)
            except EmptyPoolError:
                break
            for item in items:
                truth = gold.get(item.line_id, "other")
                group_truth = {gold.get(i, "other") for i in item.group_line_ids}
                if len(item.group_line_ids) > 1 and group_truth == {truth}:
                    record_group_label(db, item.group_line_ids, truth, annotator="sim")
                else:
                    record_label(db, item.line_id, truth, annotator="sim")
                asked.append((item.line_id, truth))
                given += 1
            start = time.perf_counter()
            try:
                train_line_version(db)
                retrain_s.append(time.perf_counter() - start)
            except TrainingDataError:
                pass  # e.g. every label so far is one kind: the product refuses too and keeps the model
            curve.append({"labels": given, "accuracy": remaining_accuracy(db, gold)})
    return {"curve": curve, "retrain_s_p50": round(float(np.median(retrain_s)), 3) if retrain_s else None,
            "patterns": pattern_costs(asked, keys)}


def pattern_costs(asked: list[tuple[int, str]], keys: dict[int, str | None], *, min_lines: int = 3) -> dict:
    """Key presses spent on repeated patterns: per pattern touched, and after it was already learned
    (PATTERN_MIN_LABELS presses agreeing)."""
    from collections import Counter

    size = Counter(k for k in keys.values() if k is not None)
    spent: Counter = Counter()
    seen: dict[str, list[str]] = {}
    repeats = 0
    for line_id, truth in asked:
        key = keys.get(line_id)
        if key is None or size[key] < min_lines:
            continue
        previous = seen.setdefault(key, [])
        if len(previous) >= PATTERN_MIN_LABELS and all(p == truth for p in previous):
            repeats += 1
        previous.append(truth)
        spent[key] += 1
    touched = len(spent)
    return {"pattern_labels": sum(spent.values()), "patterns_touched": touched,
            "labels_per_pattern": round(sum(spent.values()) / touched, 2) if touched else None,
            "max_per_pattern": max(spent.values()) if spent else 0, "repeat_pattern_labels": repeats,
            "top": {k.split("\x00", 1)[1]: v for k, v in spent.most_common(5)}}


def overall(scripts: dict, strategies: list[str]) -> dict:
    """Per strategy across the scripts: mean and worst accuracy after 50 labels, labels to 0.99 (sum over
    scripts; a script that never got there counts as the budget + 10), the mean error over 10–50 labels
    (`mean_error`, averaged over scripts), key presses on repeated patterns."""
    out = {}
    for s in strategies:
        rows = [entry["summary"][s] for entry in scripts.values()]
        budget = max(p["labels"] for entry in scripts.values() for p in entry["curves"][s])
        out[s] = {"after_50_mean": round(float(np.mean([r["after_50"] for r in rows])), 4),
                  "after_50_min": round(min(r["after_50"] for r in rows), 4),
                  "labels_to_0.99_sum": sum(r["labels_to_0.99"] if r["labels_to_0.99"] is not None else budget + 10
                                            for r in rows),
                  "reached_0.99": sum(r["labels_to_0.99"] is not None for r in rows),
                  "mean_error_10_50": round(float(np.mean([r["mean_error_10_50"] for r in rows])), 5),
                  "pattern_labels": sum(r["patterns"]["pattern_labels"] for r in rows),
                  "repeat_pattern_labels": sum(r["patterns"]["repeat_pattern_labels"] for r in rows),
                  "max_per_pattern": max(r["patterns"]["max_per_pattern"] for r in rows)}
    return out


def labels_to_reach(curve: list[dict], target: float) -> int | None:
    return next((p["labels"] for p in curve if p["accuracy"] >= target), None)


def mean_error(curve: list[dict], *, first: int = 10, last: int = 50) -> float:
    """Mean error on the lines not yet labeled over the retrains from `first` to `last` labels: the area
    over the curve, which unlike labels-to-a-threshold does not hinge on one batch landing a hair above
    or below it."""
    points = [1.0 - p["accuracy"] for p in curve if first <= p["labels"] <= last]
    return round(float(np.mean(points)), 5) if points else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base", type=Path, help="a base line model that never saw --scripts")
    parser.add_argument("--build-base", type=Path, default=None, metavar="DIR",
                        help="build a quick base without --scripts into DIR (outside the repo) and exit")
    parser.add_argument("--scripts", nargs="*", default=HELD_OUT)
    parser.add_argument("--budget", type=int, default=100)
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--strategies", nargs="+", default=["margin", "diverse"], choices=STRATEGIES)
    parser.add_argument("--plot", type=Path, default=REPO / "bench" / "active_learning.png")
    args = parser.parse_args()
    if args.build_base is not None:
        report = build_small_base(args.build_base, args.scripts)
        print(json.dumps({k: report.get(k) for k in ("model_dir", "held_out", "elapsed_s")}, indent=2))
        return
    if args.base is None:
        parser.error("--base DIR is required (build one with --build-base DIR)")
    check_base(args.base, args.scripts)
    os.environ["SCRIPTLABEL_LINE_BASE"] = str(args.base.resolve())
    gold_scripts = {s.script_id.split("/")[-1]: s for s in load_studio_pdfs(slugs=args.scripts)}
    report: dict = {"base": str(args.base), "scripts": {}, "budget": args.budget, "batch": args.batch}
    for slug in args.scripts:
        runs = {s: simulate(slug, s, budget=args.budget, batch=args.batch, gold_script=gold_scripts[slug])
                for s in args.strategies}
        summary = {}
        for s, run in runs.items():
            curve = run["curve"]
            at50 = max((p for p in curve if p["labels"] <= 50), key=lambda p: p["labels"])
            summary[s] = {"start": curve[0]["accuracy"], "after_50": at50["accuracy"], "final": curve[-1]["accuracy"],
                          "labels_to_0.99": labels_to_reach(curve, 0.99), "labels_to_0.995": labels_to_reach(curve, 0.995),
                          "mean_error_10_50": mean_error(curve),
                          "retrain_s_p50": run["retrain_s_p50"], "patterns": run["patterns"]}
        report["scripts"][slug] = {"summary": summary, "curves": {s: r["curve"] for s, r in runs.items()}}
        print(json.dumps({slug: summary}), file=sys.stderr)
    report["overall"] = overall(report["scripts"], args.strategies)
    _plot(report, args.plot)
    report["plot"] = str(args.plot)
    print(json.dumps(report, indent=2))


def _plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scripts = list(report["scripts"])
    fig, axes = plt.subplots(1, len(scripts), figsize=(5 * len(scripts), 4), squeeze=False)
    for ax, slug in zip(axes[0], scripts):
        for strategy, curve in report["scripts"][slug]["curves"].items():
            ax.plot([p["labels"] for p in curve], [p["accuracy"] for p in curve], marker="o", label=strategy)
        ax.axhline(0.99, color="grey", linestyle=":", linewidth=1)
        ax.set_title(slug)
        ax.set_xlabel("human labels")
        ax.set_ylabel("accuracy on lines not yet labeled")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


if __name__ == "__main__":
    main()
