"""Label-error review by confident learning (Northcutt, Jiang & Chuang, JAIR 2021).

Every line a person labeled (or whose label was imported) gets an out-of-fold prediction: the line
adapter is refit without the line's fold (folds = scripts; within one script, contiguous blocks of
lines) on top of the base model, so a label never vouches for itself. A label is *suspicious* when
another class's predicted probability reaches that class's per-class threshold (the mean probability
the model gives the class on lines labeled with it — the confident joint's rule); suspicious labels
are ranked by self-confidence, 1 − p(given), most suspicious first. The probabilities are the mean of
the base model's and the out-of-fold adapter's: on held-out MovieParse movies (bench/review.py) the
base alone ranks flips best, the adapter alone worst (it learns from the noisy labels it is checking),
and the mean keeps most of the base's precision while the adapter still corrects a base that is
systematically wrong on this database's layouts. Self-confidence beat the normalized margin there.

`review_queue` returns the same `QueueItem` as `labeling.session.queue.build_queue` (suggestion = the label
the model proposes instead); `confirm_label` / `fix_label` record the reviewer's decision, after which
the line leaves the queue until its label changes again.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sqlite_utils import Database

from labeling.session.queue import QueueItem
from labeling.session.strategies import EmptyPoolError
from models.lines.classifier import BaseOutputs, LineClassifier, fit_adapter
from store import labels as label_store
from store import review as review_store
from store.types import ScriptlabelError

REVIEW_FOLDS = 5
# A key press that contradicts a suggestion at least this sure gets an "are you sure?" hint.
SURE_CONFIDENCE = 0.97


@dataclass(frozen=True)
class ReviewCandidate:
    line_id: int
    script_id: int
    line_no: int
    page: int
    text: str
    given: str
    suggested: str
    p_given: float
    p_suggested: float
    score: float  # 1 − p_given (self-confidence; higher = more suspicious)
    flagged: bool  # confident learning: p_suggested reached its class threshold

    def as_queue_item(self) -> QueueItem:
        return QueueItem(line_id=self.line_id, script_id=self.script_id, line_no=self.line_no, page=self.page,
                         text=self.text, suggestion=self.suggested, confidence=self.p_suggested,
                         group_line_ids=[self.line_id])


# --- pure parts ------------------------------------------------------------------------------------

def fold_groups(script_ids: np.ndarray, line_nos: np.ndarray, *, n_folds: int = REVIEW_FOLDS) -> np.ndarray:
    """Fold groups: scripts when there are two or more, else contiguous blocks of one script's lines."""
    script_ids = np.asarray(script_ids)
    if len(np.unique(script_ids)) >= 2:
        return script_ids
    order = np.argsort(np.asarray(line_nos), kind="stable")
    blocks = np.empty(len(order), dtype=int)
    blocks[order] = (np.arange(len(order)) * n_folds) // max(1, len(order))
    return blocks


def out_of_fold_proba(base: LineClassifier, frame: pd.DataFrame, y: np.ndarray, groups: np.ndarray, *,
                      outputs: BaseOutputs, n_folds: int = REVIEW_FOLDS, scheme=None) -> np.ndarray:
    """(n, k) probabilities where each row comes from an adapter that never saw its fold's labels; over the
    classes of `scheme` (a ClassScheme: the project's; None: the 7 built-in labels).

    A fold whose training part cannot fit an adapter (one class only) keeps the base probabilities.
    """
    from models.evaluation import grouped_folds

    frame = frame.reset_index(drop=True)
    start = outputs.proba if scheme is None else scheme.base_proba(outputs.proba)
    proba = np.array(start, dtype=float, copy=True)
    if len(np.unique(groups)) < 2:
        return proba
    for train_idx, test_idx in grouped_folds(groups, n_splits=min(n_folds, len(np.unique(groups)))):
        try:
            adapter = fit_adapter(base, frame.iloc[train_idx], y[train_idx], outputs=outputs.take(train_idx),
                                  scheme=scheme)
        except ScriptlabelError:
            continue
        proba[test_idx] = adapter.predict_proba(frame.iloc[test_idx].reset_index(drop=True),
                                                outputs=outputs.take(test_idx))
    return proba


def review_proba(base_proba: np.ndarray, oof_proba: np.ndarray) -> np.ndarray:
    """What review ranks by: the mean of the base model's and the out-of-fold adapter's probabilities."""
    return (np.asarray(base_proba, dtype=float) + np.asarray(oof_proba, dtype=float)) / 2.0


def class_thresholds(proba: np.ndarray, given: np.ndarray) -> np.ndarray:
    """Per class: mean predicted probability of the class over lines labeled with it (1.0 if none)."""
    thresholds = np.ones(proba.shape[1])
    for k in range(proba.shape[1]):
        mask = given == k
        if mask.any():
            thresholds[k] = proba[mask, k].mean()
    return thresholds


def confident_errors(proba: np.ndarray, given: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(flagged, suggested class, score) per labeled line; `given` are class indices.

    Flagged: some other class reaches its threshold, capped at SURE_CONFIDENCE (the off-diagonal of the
    confident joint). The
    suggested class is the likeliest such class (else the likeliest other class); the score is
    1 − p(given) (self-confidence).
    """
    proba = np.asarray(proba, dtype=float)
    given = np.asarray(given, dtype=int)
    rows = np.arange(len(given))
    others = proba.copy()
    others[rows, given] = -np.inf
    # A class's threshold is its mean self-confidence, but never above the "are you sure?" level: with
    # saturated probabilities (0.99988 on average) a heading labeled dialogue at 0.99986 is still a
    # confident contradiction.
    above = proba >= np.minimum(class_thresholds(proba, given), SURE_CONFIDENCE)[None, :]
    above[rows, given] = False
    flagged = above.any(axis=1)
    suggested = np.where(flagged, np.where(above, others, -np.inf).argmax(axis=1), others.argmax(axis=1))
    score = 1.0 - proba[rows, given]
    return flagged, suggested, score


def rank(flagged: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Indices of the flagged lines, most suspicious first (stable for ties)."""
    idx = np.flatnonzero(flagged)
    return idx[np.argsort(-score[idx], kind="stable")]


def sure_hint(label: str, suggestion: str | None, confidence: float | None, *,
              threshold: float = SURE_CONFIDENCE) -> str | None:
    """An "are you sure?" message when a key contradicts a very confident suggestion, else None."""
    if suggestion is None or confidence is None or label == suggestion or confidence < threshold:
        return None
    return (f"The model was {confidence:.0%} sure this line is {suggestion.replace('_', ' ')}; "
            f"you chose {label.replace('_', ' ')}. Undo if that was a slip.")


# --- on a database ---------------------------------------------------------------------------------

def review_candidates(db: Database, script_id: int | None = None) -> list[ReviewCandidate]:
    """People's labels the out-of-fold model confidently contradicts, most suspicious first.

    Lines whose current label a reviewer already confirmed (or set) are left out.
    """
    from labeling.training.lines import _outputs_for, labeled_snapshot, load_base, project_scheme

    frame, y_fit, _ = labeled_snapshot(db)
    frame, y_fit, y = _with_accepted(db, frame, y_fit)
    if frame.empty:
        return []
    frame = frame.reset_index(drop=True)
    outputs = _outputs_for(db, frame)
    groups = fold_groups(frame["script_id"].to_numpy(), frame["line_no"].to_numpy())
    classes = project_scheme(db)  # the project's classes (store/scheme.py)
    proba = review_proba(classes.base_proba(outputs.proba),
                         out_of_fold_proba(load_base(), frame, y_fit, groups, outputs=outputs, scheme=classes))
    labeled = np.flatnonzero([isinstance(v, str) for v in y])
    given = classes.encode(y[labeled], len(labeled))
    flagged, suggested, score = confident_errors(proba[labeled], given)
    reviewed = review_store.reviewed_labels(db)
    out = []
    for i in rank(flagged, score):
        row = frame.iloc[labeled[i]]
        line_id = int(row["line_id"])
        if script_id is not None and int(row["script_id"]) != script_id:
            continue
        if reviewed.get(line_id) == y[labeled[i]]:
            continue
        out.append(ReviewCandidate(
            line_id=line_id, script_id=int(row["script_id"]), line_no=int(row["line_no"]), page=int(row["page"]),
            text=str(row["text"]), given=str(y[labeled[i]]), suggested=classes.classes[suggested[i]],
            p_given=float(proba[labeled[i], given[i]]), p_suggested=float(proba[labeled[i], suggested[i]]),
            score=float(score[i]), flagged=bool(flagged[i])))
    return out


def _with_accepted(db: Database, frame: pd.DataFrame, y: np.ndarray) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """The snapshot plus lines whose label is a bulk-accepted suggestion: (frame, labels the adapters fit on
    — people's and imported only —, labels checked — those and the accepted ones)."""
    from labeling.training.lines import script_frame
    from store.scripts import visible_script_ids

    known = label_store.current_labels(db, sources=label_store.LABELED_SOURCES)
    accepted = known[known["source"] == "accepted"]
    if accepted.empty:
        return frame, y, y
    missing = sorted((set(accepted["script_id"]) & set(visible_script_ids(db)))
                     - set(frame["script_id"] if not frame.empty else []))
    if missing:
        extra = pd.concat([script_frame(db, sid) for sid in missing], ignore_index=True)
        frame = pd.concat([frame, extra], ignore_index=True) if not frame.empty else extra
        y = np.concatenate([y, np.full(len(extra), None, dtype=object)])
    checked = y.copy()
    fill = frame["line_id"].map(accepted.set_index("line_id")["label"]).to_numpy(dtype=object)
    take = np.array([isinstance(v, str) for v in fill]) & ~np.array([isinstance(v, str) for v in y])
    checked[take] = fill[take]
    return frame, y, checked


def review_queue(db: Database, script_id: int | None = None, n: int = 20) -> list[QueueItem]:
    """The `n` most suspicious labels as queue items (suggestion = the label the model proposes).

    Raises EmptyPoolError when no label is contradicted (or all were reviewed).
    """
    candidates = review_candidates(db, script_id)
    if not candidates:
        raise EmptyPoolError("no label is confidently contradicted by the model (or every such label was "
                             "reviewed): nothing to review")
    return [c.as_queue_item() for c in candidates[:n]]


def _current(db: Database, line_id: int) -> str | None:
    from store.scripts import get_line

    line = get_line(db, line_id)
    labels = label_store.current_labels(db, line["script_id"], sources=label_store.LABELED_SOURCES)
    match = labels[labels["line_id"] == line_id]
    return None if match.empty else str(match["label"].iloc[0])


def confirm_label(db: Database, line_id: int, *, annotator: str, suggested: str | None = None) -> dict:
    """The reviewer keeps the line's current label; it leaves the review queue."""
    label = _current(db, line_id)
    if label is None:
        raise ScriptlabelError(f"line {line_id} has no label to confirm; label it first")
    review_store.record_outcome(db, line_id, "confirmed", label=label, previous_label=label, suggested=suggested,
                                annotator=annotator)
    return {"line_id": line_id, "outcome": "confirmed", "label": label}


def fix_label(db: Database, line_id: int, label: str, *, annotator: str, suggested: str | None = None) -> dict:
    """The reviewer replaces the label: a new human label and the outcome, in one transaction."""
    previous = _current(db, line_id)
    review_store.record_outcome(db, line_id, "fixed", label=label, previous_label=previous, suggested=suggested,
                                annotator=annotator)
    return {"line_id": line_id, "outcome": "fixed", "label": label, "previous_label": previous}
