"""What the Models page shows: runs, versions and their metrics, plots.

Nothing here imports Streamlit (tests/test_app_models.py).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping

import numpy as np
import pandas as pd
from sqlite_utils import Database

from app_pages.support import figure_png
from store import labels as label_store
from store import models as model_store


def _find_scores(metrics: Mapping, scheme: str = "full") -> dict | None:
    """The block of a metrics dict that has a confusion matrix (the full scheme preferred)."""
    if not isinstance(metrics, Mapping):
        return None
    if "confusion" in metrics and "labels" in metrics:
        return dict(metrics)
    if isinstance(metrics.get(scheme), Mapping) and "confusion" in metrics[scheme]:
        return dict(metrics[scheme])
    for value in metrics.values():
        found = _find_scores(value, scheme) if isinstance(value, Mapping) else None
        if found:
            return found
    return None


def headline(metrics: Mapping) -> dict:
    """Accuracy and macro-F1 of a version, wherever the trainer put them.

    For line models that is the accuracy of the suggestions people saw before correcting them (lines
    the model had not been trained on), so the learning curve is not a training score.
    """
    metrics = metrics if isinstance(metrics, Mapping) else {}
    winner = metrics.get("cv", {}).get(metrics.get("winner")) if isinstance(metrics.get("cv"), Mapping) else None
    if isinstance(winner, Mapping):  # a complexity model: the cross-validated scores of the chosen model
        return {"accuracy": winner.get("accuracy"), "macro_f1": None, "n_evaluated": metrics.get("n_sequences")}
    block = _find_scores(metrics) or {}
    accuracy = block.get("accuracy", metrics.get("accuracy", metrics.get("suggestion_accuracy")))
    return {"accuracy": accuracy, "macro_f1": block.get("macro_f1", metrics.get("macro_f1")),
            "n_evaluated": block.get("n", metrics.get("suggestion_n"))}


def versions_table(db: Database, kind: str | None = None) -> pd.DataFrame:
    rows = []
    for v in model_store.list_versions(db, kind):
        head = headline(v["metrics"])
        rows.append({"version": v["version"], "kind": v["kind"], "department": v["department"],
                     "created_at": v["created_at"], "n_labels": v["n_labels"], **head,
                     "current": bool(v["is_current"])})
    return pd.DataFrame(rows, columns=["version", "kind", "department", "created_at", "n_labels", "accuracy",
                                       "macro_f1", "n_evaluated", "current"])


LINE_VERSION_COLUMNS = ["version", "status", "pinned", "accuracy", "n", "95% interval", "n_labels", "created_at",
                        "why"]


MIN_N = 20  # fewer labels than this: a figure is shown with its interval, never as a trend or a verdict


def plain_why(promotion: dict | None, version: int) -> str:
    """Why a retrained version is (or is not) current, in words a coordinator reads: no test names, and no
    percentages over a handful of labels (“0.0% vs 0.0% on the 11 newest labels”)."""
    promotion = promotion or {}
    if version == 0:
        return "the model scriptlabel ships with"
    if promotion.get("pinned") is not None:
        return f"v{promotion['pinned']} was pinned as current, so this one waits as a candidate"
    comparison = promotion.get("comparison") or {}
    n = int(comparison.get("n") or 0)
    became = promotion.get("decision") != "candidate"
    if not promotion:
        return "made before versions were compared"
    if n == 0:
        return "no new label both versions could be checked on yet" + (": it became current" if became else "")
    if n < MIN_N:
        return (f"only {n} new label{'s' if n != 1 else ''} to check both versions on — too few to tell them apart"
                + (": it became current" if became else ""))
    previous = comparison.get("current_version")
    new, old = comparison["candidate_correct"] / n, comparison["current_correct"] / n
    verdict = "kept as a candidate: worse than v{} beyond chance".format(previous) if not became else \
        f"became current: not worse than v{previous} beyond chance"
    return f"{verdict} (right on {new:.0%} vs {old:.0%} of the {n} newest labels)"


def line_versions_table(db: Database) -> pd.DataFrame:
    """Every line-model version, newest first, version 0 (the shipped model) last: status (current,
    candidate, previous), pinned, accuracy of its suggestions on the labels people then gave (n, Wilson
    95% interval), the labels it was trained on, and why it is or is not current (in plain words)."""
    from labeling.training.versions import line_versions

    promotions = {int(v["version"]): v.get("promotion") for v in model_store.list_versions(db, "lines")}
    rows = []
    for row in line_versions(db):
        row = {**row, "reason": plain_why(promotions.get(int(row["version"])), int(row["version"]))}
        ci = row["ci95"]
        rows.append({"version": row["version"], "status": row["status"], "pinned": row["pinned"],
                     "accuracy": row["accuracy"], "n": row["n"],
                     "95% interval": f"{ci[0]:.3f}–{ci[1]:.3f}" if ci else "",
                     "n_labels": row["n_labels"], "created_at": (row["created_at"] or "shipped")[:19].replace("T", " "),
                     "why": row["reason"]})
    return pd.DataFrame(rows, columns=LINE_VERSION_COLUMNS)


def suggestion_scores(db: Database, version: int) -> dict:
    """Scores (confusion matrix, per-class F1) of a line version's suggestions against the labels people
    then gave; {} when nobody labeled while it made the suggestions."""
    from models.evaluation import evaluate_lines

    pairs = label_store.suggestion_pairs(db, version)
    if pairs.empty:
        return {}
    from store.scheme import load_scheme

    return evaluate_lines(pairs["label"].tolist(), pairs["suggested"].tolist(), scheme=load_scheme(db)).to_dict()


SOURCE_NAMES = {"movieparse": "hand-labeled film scripts (MovieParse)", "studio_pdfs": "studio screenplay PDFs",
                "fountain_samples": "Fountain screenplays"}


def base_manifest() -> dict:
    """The shipped model's manifest (manifest.json beside it): what it was trained on and how it was
    evaluated; {} when it cannot be read."""
    from labeling.training.lines import base_dir

    try:
        return json.loads((base_dir() / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def base_model_description(manifest: Mapping | None = None) -> str:
    """The one description of the shipped model the app gives, in plain words: what it learned from and
    the held-out figures the benches measured (its manifest's `evaluation`)."""
    manifest = base_manifest() if manifest is None else manifest
    trained = {k: v for k, v in (manifest.get("trained_on") or {}).items() if isinstance(v, Mapping)}
    if not trained:
        return "The shipped model's description cannot be read; its accuracy here is measured on your labels below."
    scripts = sum(int(v.get("scripts", 0)) for v in trained.values())
    lines = sum(int(v.get("labeled_lines", 0)) for v in trained.values())
    parts = ", ".join(f"{int(v.get('scripts', 0))} {SOURCE_NAMES.get(k, k.replace('_', ' '))}"
                      for k, v in trained.items())
    text = f"The shipped model learned from {lines:,} labeled lines of {scripts} scripts ({parts})."
    evaluation = manifest.get("evaluation") or {}
    held = evaluation.get("held_out_studio") or {}
    if held.get("accuracy") is not None:
        text += (f" Built the same way without {held['scripts']} studio screenplays, it labeled "
                 f"{held['accuracy']:.1%} of their {held['lines']:,} lines right")
        if held.get("accuracy_corrected_labels") is not None:
            text += f" ({held['accuracy_corrected_labels']:.1%} against labels checked against the page layout)"
        text += "."
    cv = evaluation.get("grouped_cv") or {}
    if cv.get("accuracy") is not None:
        if cv.get("this_recipe"):
            text += (f" Built the same way without each of {cv['films']} hand-labeled films in turn, it labeled "
                     f"{cv['accuracy']:.1%} of their {cv['lines']:,} lines right")
        else:
            text += (f" Scored on each of {cv['films']} hand-labeled films by a model that never saw that film, an "
                     f"earlier version labeled {cv['accuracy']:.1%} of {cv['lines']:,} lines right")
        text += (f" (the published study's method: {cv['study_accuracy']:.1%})."
                 if cv.get("study_accuracy") is not None else ".")
    sure = evaluation.get("confidence") or {}
    if sure.get("accuracy_most_confident_90") is not None:
        text += (f" On scripts it never saw, the 90% of lines it was surest of were "
                 f"{sure['accuracy_most_confident_90']:.2%} right.")
    return text


def learning_curve_frame(db: Database) -> pd.DataFrame:
    """Accuracy of each line version's suggestions on the labels people then gave (labels it never trained
    on), with n and a Wilson 95% interval; versions nobody labeled beside are left out. `trend` marks the
    points a line may join (n ≥ MIN_N): a handful of labels is a dot with its bar, not a trend."""
    from labeling.training.versions import line_versions

    rows = [{"version": int(r["version"]), "name": f"v{int(r['version'])}", "trained_on": int(r["n_labels"] or 0),
             "accuracy": r["accuracy"], "n": int(r["n"]), "low": r["ci95"][0], "high": r["ci95"][1]}
            for r in line_versions(db) if r["n"] and r["ci95"]]
    frame = pd.DataFrame(rows, columns=["version", "name", "trained_on", "accuracy", "n", "low", "high"])
    frame["trend"] = frame["n"] >= MIN_N
    return frame.sort_values("version").reset_index(drop=True)


def learning_curve_chart(frame: pd.DataFrame):
    """Vega-Lite (Altair) as Streamlit draws it: a dot per version with its 95% interval as an error bar,
    the number of labels beside it, and a line only through versions measured on at least MIN_N labels."""
    import altair as alt

    order = frame["name"].tolist()
    x = alt.X("name:N", sort=order, title="model version (the labels it learned from in the tooltip)")
    y = alt.Y("accuracy:Q", title="suggestions right (share)", scale=alt.Scale(domain=[0, 1]))
    tooltip = [alt.Tooltip("name:N", title="version"), alt.Tooltip("accuracy:Q", format=".1%"),
               alt.Tooltip("n:Q", title="labels checked"), alt.Tooltip("low:Q", format=".1%", title="95% from"),
               alt.Tooltip("high:Q", format=".1%", title="95% to"), alt.Tooltip("trained_on:Q", title="learned from")]
    base = alt.Chart(frame)
    bars = base.mark_errorbar(ticks=True).encode(x=x, y=alt.Y("low:Q", title="suggestions right (share)"),
                                                 y2="high:Q", tooltip=tooltip)
    dots = base.mark_point(filled=True, size=70).encode(
        x=x, y=y, tooltip=tooltip,
        opacity=alt.condition("datum.trend", alt.value(1.0), alt.value(0.45)))
    counts = base.mark_text(dy=-12, dx=14, fontSize=11, color="#555").encode(
        x=x, y=y, text=alt.Text("n:Q", format="d"))
    trend = alt.Chart(frame[frame["trend"]]).mark_line(strokeWidth=1.5).encode(x=x, y=y)
    layers = [bars, dots, counts] + ([trend] if int(frame["trend"].sum()) >= 2 else [])
    return alt.layer(*layers).properties(height=260)


def confusion_png(metrics: Mapping) -> bytes | None:
    block = _find_scores(metrics)
    if not block:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sklearn.metrics import ConfusionMatrixDisplay

    figure, axis = plt.subplots(figsize=(4.6, 4.0))
    display = ConfusionMatrixDisplay(np.asarray(block["confusion"], dtype=int), display_labels=list(block["labels"]))
    display.plot(ax=axis, cmap="Blues", colorbar=False, values_format="d", text_kw={"fontsize": 7})
    axis.set_xticks(axis.get_xticks(), axis.get_xticklabels(), rotation=45, ha="right", fontsize=7)
    axis.tick_params(axis="y", labelsize=7)
    axis.set_xlabel("predicted", fontsize=8)
    axis.set_ylabel("true", fontsize=8)
    return figure_png(figure)


def complexity_comparison(metrics: Mapping) -> pd.DataFrame:
    """Every complexity model compared by grouped CV: accuracy, MAE, QWK with 95% intervals; winner first."""
    cv = metrics.get("cv") if isinstance(metrics, Mapping) else None
    if not isinstance(cv, Mapping):
        return pd.DataFrame(columns=["model", "accuracy", "mae", "qwk", "winner"])
    rows = []
    for name, scores in cv.items():
        ci = scores.get("ci95", {})
        row = {"model": name, "winner": name == metrics.get("winner")}
        for key in ("accuracy", "mae", "qwk"):
            row[key] = scores.get(key)
            if key in ci and ci[key] and None not in ci[key]:
                row[f"{key} 95% CI"] = f"{ci[key][0]:.2f}–{ci[key][1]:.2f}"
        rows.append(row)
    return pd.DataFrame(rows).sort_values("winner", ascending=False, kind="stable").reset_index(drop=True)


def per_class_f1(metrics: Mapping) -> pd.DataFrame:
    block = _find_scores(metrics) or {}
    rows = [{"label": c["label"], "f1": c["f1"], "support": c.get("support")}
            for c in block.get("per_class", []) if isinstance(c, Mapping)]
    return pd.DataFrame(rows, columns=["label", "f1", "support"])


def runs_table(db: Database, limit: int = 10, *, now: float | None = None) -> pd.DataFrame:
    """The latest training runs; `seconds` is the duration, or the time so far for a running one."""
    import datetime as dt

    rows = model_store.list_runs(db, limit=limit)
    frame = pd.DataFrame(rows, columns=["run_id", "kind", "department", "status", "trigger", "requested_at",
                                        "started_at", "finished_at", "duration_s", "version", "n_labels", "error",
                                        "repredict_done", "repredict_total", "params"])
    now = time.time() if now is None else now

    def seconds(row) -> float | None:
        if pd.notna(row["duration_s"]):
            return float(row["duration_s"])
        start = row["started_at"] if isinstance(row["started_at"], str) else row["requested_at"]
        if row["status"] in ("queued", "running") and isinstance(start, str):
            return max(0.0, now - dt.datetime.fromisoformat(start).timestamp())
        return None

    frame["seconds"] = [seconds(row) for _, row in frame.iterrows()] if len(frame) else []
    return frame


# --- calibrated confidence: reliability and ECE (issue 16) ---------------------------------------

def _ece_interval(confidence: np.ndarray, correct: np.ndarray, *, resamples: int = 200, seed: int = 0
                  ) -> tuple[float, float] | None:
    """A bootstrap 95% interval of the ECE (lines resampled): small samples make ECE look worse than it is."""
    from models.lines.calibration import ece_from_confidence

    if len(confidence) < 10:
        return None
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(resamples):
        pick = rng.integers(0, len(confidence), len(confidence))
        values.append(ece_from_confidence(confidence[pick], correct[pick]))
    return float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))


def label_reliability(db: Database, *, version: int | None = None) -> dict:
    """How trustworthy the shown confidence was: every human label against the confidence the model
    showed beside its suggestion for that line (progressive validation: the model had not seen the line).

    Returns n, ece, ece_ci95, accuracy, mean_confidence and `table` (the reliability bins); n = 0 when
    no label was given beside a shown confidence yet. `version` keeps the labels given beside that
    model version's suggestions.
    """
    from models.lines.calibration import ece_from_confidence, reliability_table
    from store.confidence import shown_confidence_outcomes

    outcomes = shown_confidence_outcomes(db)
    if version is not None:
        outcomes = outcomes[outcomes["suggested_version"] == version]
    if outcomes.empty:
        return {"n": 0, "ece": None, "ece_ci95": None, "accuracy": None, "mean_confidence": None,
                "table": reliability_table([], [])}
    confidence = outcomes["confidence"].to_numpy(dtype=float)
    correct = outcomes["correct"].to_numpy(dtype=bool)
    return {"n": int(len(outcomes)), "ece": ece_from_confidence(confidence, correct),
            "ece_ci95": _ece_interval(confidence, correct), "accuracy": float(correct.mean()),
            "mean_confidence": float(confidence.mean()), "table": reliability_table(confidence, correct)}


def base_model_reliability() -> dict:
    """The shipped base model's calibration, from its `calibration.json` (held-out by grouped CV).

    Returns fitted (bool), method, warning, lines, scripts, and for "before" (raw) and "after" (the
    chosen calibrator) the held-out ECE, accuracy on the most confident 90% and reliability bins.
    """
    from labeling.training.lines import base_calibration

    found = base_calibration()
    report = found.report or {}
    cv = report.get("cv", {}) if isinstance(report.get("cv"), Mapping) else {}
    out = {"fitted": found.fitted, "method": found.calibrator.method, "warning": found.warning,
           "lines": report.get("lines"), "scripts": report.get("scripts"), "source": report.get("out_of_fold_source")}
    for name, key in (("before", "identity"), ("after", report.get("method"))):
        block = cv.get(key) if key else None
        if isinstance(block, Mapping):
            out[name] = {"ece": block.get("ece"), "accuracy_at_90": block.get("accuracy_at_90"),
                         "by_kind": block.get("by_stratum") or {},
                         "table": pd.DataFrame(block.get("reliability") or [],
                                               columns=["confidence", "accuracy", "n"])}
    return out


def reliability_png(curves: Mapping[str, pd.DataFrame]) -> bytes | None:
    """A reliability diagram: accuracy against shown confidence per bin, one curve per name; the
    diagonal is perfect calibration, points below it are overconfident."""
    curves = {name: t[t["n"] > 0] for name, t in curves.items() if t is not None and (t["n"] > 0).any()}
    if not curves:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(4.4, 4.0))
    axis.plot([0, 1], [0, 1], linestyle=":", color="grey", linewidth=1, label="perfectly calibrated")
    for name, table in curves.items():
        sizes = 12 + 60 * np.sqrt(table["n"] / table["n"].max())
        axis.plot(table["confidence"], table["accuracy"], linewidth=1)
        axis.scatter(table["confidence"], table["accuracy"], s=sizes, label=name)
    axis.set_xlim(0, 1.01)
    axis.set_ylim(0, 1.01)
    axis.set_xlabel("confidence shown", fontsize=8)
    axis.set_ylabel("share right", fontsize=8)
    axis.legend(fontsize=7, loc="upper left")
    return figure_png(figure)
