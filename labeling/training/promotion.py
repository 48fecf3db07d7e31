"""When a retrained line model may replace the current one (issue 16).

A new version becomes current only if it is not worse than the current one, beyond noise, on the
newest human labels that neither of them trained on. The current version never saw labels given after
its snapshot (`metrics.last_event_id`), so its predictions on them are honest as they are; the new
version did train on them, so its predictions there come from cross-fitting: the same recipe refit with
each block of those labels left out (every older label kept). The paired outcomes go through a
one-sided exact McNemar test: the new version stays a `candidate` (the reason stored with it) when it
gets significantly more of those lines wrong than the current one, or when a person pinned the
current version (labeling.training.versions).
"""

from __future__ import annotations

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


def compare_with_current(db: Database, frame: pd.DataFrame, y: np.ndarray, outputs, *, base, model,
                         until_event: int, current_script: int | None = None, recent: int = RECENT_LABELS,
                         folds: int = FOLDS, scheme=None) -> Comparison | None:
    """The current line model vs the recipe of a new one on the newest labels neither trained on.

    `frame`, `y`, `outputs` are the new version's training snapshot, `base` the base model it adapts and
    `model` the current line model (labeling.training.lines), `scheme` the classes the new version
    predicts (a label counts as right when it names the same class). None when no such label exists.
    """
    from models.lines.classifier import BUILTIN_SCHEME, fit_adapter

    scheme = scheme or BUILTIN_SCHEME

    current = model_store.current_version(db, "lines")
    after = int(current.metrics.get("last_event_id", 0)) if current is not None else 0
    rows = _recent_rows(db, frame, y, after_event=after, until_event=until_event, limit=recent)
    if len(rows) == 0:
        return None
    frame = frame.reset_index(drop=True)
    truth = scheme.encode(y[rows], len(rows))
    sub = frame.iloc[rows].reset_index(drop=True)
    if model.adapter is None:
        current_pred = outputs.proba[rows].argmax(1)  # a built-in label: the class it counts as
        current_pred = np.array([scheme.classes.index(scheme.target(LABELS[c])) for c in current_pred], dtype=int)
    else:  # an older version may predict other classes: compared by name
        names = model.adapter.classes_[model.adapter.predict_proba(sub, outputs=outputs.take(rows)).argmax(1)]
        current_pred = scheme.encode([n if str(n).lower() in {c.lower() for c in scheme.classes} or n in LABELS
                                      else None for n in names], len(names))
    candidate_pred = np.full(len(rows), -2, dtype=int)
    for block in np.array_split(np.arange(len(rows)), min(folds, len(rows))):
        held = rows[block]
        y_train = y.copy()
        y_train[held] = None
        try:
            adapter = fit_adapter(base, frame, y_train, outputs=outputs, current_script=current_script, scheme=scheme)
        except ScriptlabelError:
            continue  # too few labels left to fit: these lines are not compared
        proba = adapter.predict_proba(frame.iloc[held].reset_index(drop=True), outputs=outputs.take(held))
        candidate_pred[block] = proba.argmax(1)
    compared = candidate_pred != -2
    return paired_comparison((current_pred == truth)[compared], (candidate_pred == truth)[compared],
                             current_version=model.version)


def decide_line_promotion(db: Database, *, metrics: dict, frame: pd.DataFrame, y: np.ndarray, outputs, base,
                          model, current_script: int | None = None, scheme=None) -> dict:
    """Whether a new line version (trained on this snapshot) may become current: the promotion record
    (decision, reason, the paired comparison), also added to `metrics` under "promotion" so the run's
    row and `train --wait` show it. The caller registers the version current only if "promoted"."""
    pin = model_store.get_pin(db, "lines")
    current = model_store.current_version(db, "lines")
    comparison = compare_with_current(db, frame, y, outputs, base=base, model=model,
                                      until_event=int(metrics.get("last_event_id", 0)), current_script=current_script,
                                      scheme=scheme)
    promotion = decide(comparison, pin=pin, current_version=current.version if current else BASE_VERSION)
    metrics["promotion"] = promotion
    return promotion
