"""Line-model versions people can trust: when a retrain may replace the current model, pins, version 0.

A new version becomes current only if it is not worse than the current one, beyond noise, on the
newest human labels that neither of them trained on. The current version never saw labels given after
its snapshot (`metrics.last_event_id`), so its predictions on them are honest as they are; the new
version did train on them, so its predictions there come from cross-fitting: the same recipe refit with
each block of those labels left out (every older label kept). The paired outcomes go through a
one-sided exact McNemar test: the new version stays a `candidate` (the reason stored with it) when it
gets significantly more of those lines wrong than the current one. A version a person rolled back to
is pinned: retrains then add candidates and never replace it, until someone unpins it.

Accuracy per version is progressive validation: each human label keeps the suggestion it was given
with and the version that made it (store.models.suggestion_record), shown with n and a Wilson 95%
interval. Version 0 is the shipped base model, with the held-out evaluation from its manifest.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from sqlite_utils import Database

from store import models as model_store
from store.types import LABELS, ScriptlabelError

RECENT_LABELS = 200  # the newest labels the comparison reads (both versions predict each of them)
FOLDS = 5  # cross-fitting blocks over those labels
ALPHA = 0.05  # one-sided: a candidate is "worse beyond noise" when p < ALPHA
BASE_VERSION = 0


# --- pure parts ----------------------------------------------------------------------------------

def wilson_interval(correct: int, n: int, *, z: float = 1.959964) -> tuple[float, float] | None:
    """The Wilson score 95% interval of a proportion `correct / n` (None without observations)."""
    if n <= 0:
        return None
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class Comparison:
    """Paired outcomes of the current version and a new one on the same labels."""

    current_version: int
    n: int
    current_correct: int
    candidate_correct: int
    only_current: int  # lines only the current version got right
    only_candidate: int  # lines only the new version got right
    p_value: float  # one-sided exact McNemar: P(only_current this large | both equally good)

    def as_json(self) -> dict:
        return {**asdict(self), "p_value": round(self.p_value, 5), "test": "one-sided exact McNemar"}


def paired_comparison(current_right, candidate_right, *, current_version: int) -> Comparison:
    """Compare two versions' right/wrong on the same lines (booleans, aligned)."""
    from scipy.stats import binomtest

    current_right = np.asarray(current_right, dtype=bool)
    candidate_right = np.asarray(candidate_right, dtype=bool)
    b = int((current_right & ~candidate_right).sum())
    c = int((~current_right & candidate_right).sum())
    p = binomtest(b, b + c, 0.5, alternative="greater").pvalue if b + c else 1.0
    return Comparison(current_version=current_version, n=int(len(current_right)),
                      current_correct=int(current_right.sum()), candidate_correct=int(candidate_right.sum()),
                      only_current=b, only_candidate=c, p_value=float(p))


def decide(comparison: Comparison | None, *, pin: dict | None = None, alpha: float = ALPHA,
           current_version: int = BASE_VERSION) -> dict:
    """The promotion record of a new version: {"decision": "promoted" | "candidate", "reason", ...}."""
    record: dict = {"alpha": alpha}
    if comparison is not None:
        record["comparison"] = comparison.as_json()
    if pin is not None:
        return {**record, "decision": "candidate", "pinned": pin["version"],
                "reason": f"v{pin['version']} is pinned as current (by {pin['pinned_by']}, "
                          f"{str(pin['pinned_at'])[:16].replace('T', ' ')}): unpin it to let a retrain replace it"}
    if comparison is None or comparison.n == 0:
        return {**record, "decision": "promoted",
                "reason": f"no label since v{current_version} that both could predict: nothing to compare on"}
    cur, new, n = comparison.current_correct / comparison.n, comparison.candidate_correct / comparison.n, comparison.n
    numbers = (f"{new:.1%} vs {cur:.1%} for v{comparison.current_version} on the {n} newest labels neither "
               f"trained on ({comparison.only_current} right only by v{comparison.current_version}, "
               f"{comparison.only_candidate} only by the new one; one-sided McNemar p = {comparison.p_value:.3f})")
    if comparison.only_current > comparison.only_candidate and comparison.p_value < alpha:
        return {**record, "decision": "candidate", "reason": f"worse beyond noise: {numbers}"}
    return {**record, "decision": "promoted", "reason": f"not worse beyond noise: {numbers}"}


# --- on a database ----------------------------------------------------------------------------

def _recent_rows(db: Database, frame: pd.DataFrame, y: np.ndarray, *, after_event: int, until_event: int,
                 limit: int) -> np.ndarray:
    """Positions in the snapshot of the newest human-labeled lines (labels in (after, until]), oldest first."""
    from store.labels import suggestion_outcomes

    outcomes = suggestion_outcomes(db, after_event=after_event)
    ids = []
    if not outcomes.empty:
        outcomes = outcomes[outcomes["event_id"] <= until_event]
        ids = list(dict.fromkeys(outcomes["line_id"].tolist()[::-1]))[:limit][::-1]  # newest lines, once each
    position = pd.Series(np.arange(len(frame)), index=frame["line_id"].to_numpy())
    rows = [int(position[i]) for i in ids if i in position.index]
    return np.array([r for r in rows if isinstance(y[r], str)], dtype=int)


def compare_with_current(db: Database, frame: pd.DataFrame, y: np.ndarray, outputs, *, until_event: int,
                         current_script: int | None = None, recent: int = RECENT_LABELS,
                         folds: int = FOLDS) -> Comparison | None:
    """The current line model vs the recipe of a new one on the newest labels neither trained on.

    `frame`, `y`, `outputs` are the new version's training snapshot (labeling.training.lines). None when
    no such label exists.
    """
    from labeling.training.lines import load_base, load_current
    from models.lines.classifier import fit_adapter

    current = model_store.current_version(db, "lines")
    after = int(current.metrics.get("last_event_id", 0)) if current is not None else 0
    rows = _recent_rows(db, frame, y, after_event=after, until_event=until_event, limit=recent)
    if len(rows) == 0:
        return None
    frame = frame.reset_index(drop=True)
    truth = y[rows].astype(str)
    model = load_current(db)
    sub = frame.iloc[rows].reset_index(drop=True)
    current_proba = outputs.proba[rows] if model.adapter is None else \
        model.adapter.predict_proba(sub, outputs=outputs.take(rows))
    candidate_pred = np.full(len(rows), None, dtype=object)
    base = load_base()
    for block in np.array_split(np.arange(len(rows)), min(folds, len(rows))):
        held = rows[block]
        y_train = y.copy()
        y_train[held] = None
        try:
            adapter = fit_adapter(base, frame, y_train, outputs=outputs, current_script=current_script)
        except ScriptlabelError:
            continue  # too few labels left to fit: these lines are not compared
        proba = adapter.predict_proba(frame.iloc[held].reset_index(drop=True), outputs=outputs.take(held))
        candidate_pred[block] = np.array(LABELS)[proba.argmax(1)]
    compared = np.array([p is not None for p in candidate_pred])
    current_pred = np.array(LABELS)[current_proba.argmax(1)]
    return paired_comparison((current_pred == truth)[compared], (candidate_pred == truth)[compared],
                             current_version=model.version)


def register_line_version(db: Database, *, path: str, metrics: dict, n_labels: int, frame: pd.DataFrame,
                          y: np.ndarray, outputs, current_script: int | None = None) -> int:
    """Register a completely written line adapter; current only if the promotion rule allows it.

    The decision (with the paired comparison) is stored with the version and added to `metrics`
    under "promotion", so a run's row and `train --wait` show it.
    """
    pin = model_store.get_pin(db, "lines")
    current = model_store.current_version(db, "lines")
    comparison = compare_with_current(db, frame, y, outputs, until_event=int(metrics.get("last_event_id", 0)),
                                      current_script=current_script)
    promotion = decide(comparison, pin=pin, current_version=current.version if current else BASE_VERSION)
    metrics["promotion"] = promotion
    return model_store.register_version(db, kind="lines", path=path, metrics=metrics, n_labels=n_labels,
                                        make_current=promotion["decision"] == "promoted", promotion=promotion)


def run_params() -> dict:
    """What a line run is run with, for its row: the adapter's settings and the promotion rule's."""
    from labeling.training.lines import base_dir
    from models.lines.classifier import AdapterConfig

    return {"adapter": AdapterConfig().to_dict(), "base_model": str(base_dir().name),
            "promotion": {"recent_labels": RECENT_LABELS, "folds": FOLDS, "alpha": ALPHA,
                          "test": "one-sided exact McNemar, new version cross-fitted"}}


def make_line_version_current(db: Database, version: int, *, by: str) -> dict:
    """A person makes `version` current (0 = the shipped base model).

    Rolling back (to an older version) pins it: retrains add candidates until someone unpins it.
    Rolling forward (to a newer version, e.g. a candidate) lifts any pin. Returns {version, pinned}.
    """
    current = model_store.current_version(db, "lines")
    now_version = current.version if current is not None else BASE_VERSION
    if version == BASE_VERSION:
        model_store.clear_current(db, "lines")
    else:
        if model_store.get_version(db, version).kind != "lines":
            raise ScriptlabelError(f"v{version} is not a line model version")
        model_store.set_current(db, version)
    pinned = version < now_version or (version == now_version and model_store.get_pin(db, "lines") is not None)
    if pinned:
        model_store.pin_current(db, version, kind="lines", by=by)
    else:
        model_store.unpin_current(db, kind="lines")
    return {"version": version, "pinned": pinned}


# --- version 0: the shipped base model ----------------------------------------------------------

def base_model_card() -> dict:
    """What the base model's manifest (config.json) says about it: what it was trained on and its
    held-out evaluation (grouped CV on MovieParse, scores on held-out studio PDFs), if it was recorded."""
    from labeling.training.lines import base_dir

    path = base_dir() / "config.json"
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError):
        return {"path": str(path), "error": f"{path}: the base model's manifest cannot be read"}
    metrics = manifest.get("metrics") or {}
    trained_on = metrics.get("trained_on") or {}
    return {"path": str(path),
            "trained_on": {k: v for k, v in trained_on.items() if isinstance(v, dict)},
            "scripts": sum(int(v.get("scripts", 0)) for v in trained_on.values() if isinstance(v, dict)),
            "labeled_lines": sum(int(v.get("labeled_lines", 0)) for v in trained_on.values() if isinstance(v, dict)),
            "cv_movieparse": metrics.get("cv_movieparse"), "held_out": metrics.get("held_out"),
            "training": manifest.get("training") or {}}


def base_evaluation_text(card: dict) -> str:
    """One line on the base model's held-out evaluation, as its manifest records it (or that it does not)."""
    if card.get("error"):
        return card["error"]
    parts = []
    for key, what in (("held_out", "held-out studio PDFs"), ("cv_movieparse", "MovieParse, grouped CV by movie")):
        block = card.get(key)
        if isinstance(block, dict) and block.get("accuracy") is not None:
            n = block.get("n")
            n_text = f", n = {n:,}" if isinstance(n, int) else ""
            f1 = f", macro-F1 {block['macro_f1']:.3f}" if block.get("macro_f1") is not None else ""
            parts.append(f"{what}: accuracy {block['accuracy']:.3f}{f1}{n_text}")
    if not parts:
        return ("its manifest records no held-out evaluation (it was built with --no-cv and no --hold-out); "
                "its accuracy here is the progressive record below")
    return "; ".join(parts)


# --- every line version, as the Models page and `scriptlabel versions` show them -----------------

def _status(row: dict, pin: dict | None) -> str:
    if row["is_current"]:
        return "current"
    promotion = row.get("promotion") or {}
    return "candidate" if promotion.get("decision") == "candidate" else "previous"


def line_versions(db: Database) -> list[dict]:
    """Version 0 (the shipped base model) and every stored line version, newest first: status (current,
    candidate, previous), pinned, labels trained on, progressive accuracy with n and a Wilson 95% interval,
    and why it is or is not current."""
    record = model_store.suggestion_record(db)
    pin = model_store.get_pin(db, "lines")
    rows = model_store.list_versions(db, "lines")
    any_current = any(r["is_current"] for r in rows)
    card = base_model_card()
    out = []
    for row in rows[::-1]:
        n, correct = record.get(row["version"], (0, 0))
        promotion = row.get("promotion") or {}
        out.append(_version_row(
            version=row["version"], status=_status(row, pin), pinned=pin is not None and pin["version"] == row["version"],
            created_at=row["created_at"], n_labels=row["n_labels"], n=n, correct=correct,
            reason=promotion.get("reason") or ("made before promotion checks were recorded" if row["is_current"]
                                               or not promotion else "")))
    n, correct = record.get(BASE_VERSION, (0, 0))
    out.append(_version_row(
        version=BASE_VERSION, status="current" if not any_current else "previous",
        pinned=pin is not None and pin["version"] == BASE_VERSION, created_at=None,
        n_labels=0, n=n, correct=correct,
        reason=f"the shipped base model ({card.get('scripts', '?')} scripts, {card.get('labeled_lines', 0):,} "
               f"labeled lines); held-out: {base_evaluation_text(card)}"))
    return out


def _version_row(*, version: int, status: str, pinned: bool, created_at: str | None, n_labels: int, n: int,
                 correct: int, reason: str) -> dict:
    interval = wilson_interval(correct, n)
    return {"version": version, "status": status, "pinned": pinned, "created_at": created_at, "n_labels": n_labels,
            "accuracy": correct / n if n else None, "n": n,
            "ci95": None if interval is None else [round(interval[0], 4), round(interval[1], 4)],
            "reason": reason}


def pin_note(db: Database) -> str | None:
    """What the UI says about a pin (None without one)."""
    pin = model_store.get_pin(db, "lines")
    if pin is None:
        return None
    return (f"v{pin['version']} is pinned as the current line model (by {pin['pinned_by']}, "
            f"{str(pin['pinned_at'])[:16].replace('T', ' ')} UTC): retrains add candidates and never replace it "
            "until someone unpins it.")
