"""Line-label metrics and grouped splits: pure functions over label arrays, typed JSON-able results.

Metrics come in the full seven-label set and in the study's coarse seed scheme (SEED_SCHEME: S, C, D,
O), so our figures sit beside the published ones. Splits are always by script (never by line): lines of
one screenplay share layout and names, so a line-level split leaks.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Iterable, Iterator, Sequence

import numpy as np
from sklearn import metrics
from sklearn.model_selection import GroupKFold

from store.types import LABELS, SEED_SCHEME, ScriptlabelError

SEED_LABELS: tuple[str, ...] = ("S", "C", "D", "O")


class EvaluationError(ScriptlabelError, ValueError):
    pass


@dataclass(frozen=True)
class ClassScores:
    label: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class SchemeScores:
    """Scores in one label scheme; `confusion[i][j]` counts true `labels[i]` predicted `labels[j]`."""

    scheme: str
    labels: tuple[str, ...]
    n: int
    accuracy: float
    macro_f1: float  # over the labels present in the true labels
    per_class: tuple[ClassScores, ...]
    confusion: tuple[tuple[int, ...], ...]


@dataclass(frozen=True)
class LineEvaluation:
    full: SchemeScores
    seed: SchemeScores
    # In a project's own classes (store/scheme.py) when it has merged or added some; then `full` and `seed`
    # score the lines whose labels are both built-in ones (all of them when there are none such).
    project: SchemeScores | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self, **kwargs) -> str:
        return json.dumps(self.to_dict(), **kwargs)


def to_label_names(y: Iterable) -> np.ndarray:
    """Label strings or class indices (canonical order) → label strings; raises on unknown values."""
    out = []
    for value in y:
        if isinstance(value, (int, np.integer)):
            if not 0 <= int(value) < len(LABELS):
                raise EvaluationError(f"class index {value} is outside 0..{len(LABELS) - 1}")
            out.append(LABELS[int(value)])
        else:
            name = str(value)
            if name not in LABELS:
                raise EvaluationError(f"unknown label {name!r}: use one of {', '.join(LABELS)}")
            out.append(name)
    return np.asarray(out, dtype=object)


def confusion_matrix(y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str]) -> np.ndarray:
    if len(y_true) == 0:  # scikit-learn refuses empty input; scores_from_confusion says what is wrong
        return np.zeros((len(labels), len(labels)), dtype=np.int64)
    return metrics.confusion_matrix(list(y_true), list(y_pred), labels=list(labels)).astype(np.int64)


def scores_from_confusion(matrix: np.ndarray, labels: Sequence[str], *, scheme: str) -> SchemeScores:
    """Accuracy, per-class P/R/F1 and macro-F1 (over classes with true support) from a confusion."""
    matrix = np.asarray(matrix, dtype=np.int64)
    n = int(matrix.sum())
    if n == 0:
        raise EvaluationError("no lines to evaluate: pass at least one labeled line")
    # scikit-learn scores label vectors, so the matrix is unrolled into (true, predicted) index pairs.
    true, pred = np.divmod(np.repeat(np.arange(matrix.size), matrix.ravel()), len(labels))
    precision, recall, f1, support = metrics.precision_recall_fscore_support(
        true, pred, labels=np.arange(len(labels)), zero_division=0)
    tp = np.diag(matrix).astype(float)
    present = support > 0
    per_class = tuple(
        ClassScores(label, float(precision[i]), float(recall[i]), float(f1[i]), int(support[i]))
        for i, label in enumerate(labels)
    )
    return SchemeScores(
        scheme=scheme,
        labels=tuple(labels),
        n=n,
        accuracy=float(tp.sum() / n),
        macro_f1=float(f1[present].mean()),
        per_class=per_class,
        confusion=tuple(tuple(int(v) for v in row) for row in matrix),
    )


def evaluate_lines(y_true: Iterable, y_pred: Iterable, *, scheme=None) -> LineEvaluation:
    """Scores in the full label set and in the seed scheme (labels as strings or class indices); with a
    project's `scheme` (a store.scheme.Scheme that is not the full one) also in its classes (`project`)."""
    if scheme is not None and not scheme.is_full:
        return _in_project_classes(list(y_true), list(y_pred), scheme)
    true = to_label_names(y_true)
    pred = to_label_names(y_pred)
    if len(true) != len(pred):
        raise EvaluationError(f"{len(true)} true labels but {len(pred)} predictions")
    full = scores_from_confusion(confusion_matrix(true, pred, LABELS), LABELS, scheme="full")
    seed_true = [SEED_SCHEME[t] for t in true]
    seed_pred = [SEED_SCHEME[p] for p in pred]
    seed = scores_from_confusion(confusion_matrix(seed_true, seed_pred, SEED_LABELS), SEED_LABELS, scheme="seed")
    return LineEvaluation(full=full, seed=seed)


def _in_project_classes(y_true: list, y_pred: list, scheme) -> LineEvaluation:
    if len(y_true) != len(y_pred):
        raise EvaluationError(f"{len(y_true)} true labels but {len(y_pred)} predictions")
    true = [scheme.class_of(v) for v in y_true]
    pred = [scheme.class_of(v) for v in y_pred]
    unknown = sorted({str(v) for v, t in zip(y_true, true) if t is None})
    if unknown:
        raise EvaluationError(f"unknown label {unknown[0]!r}: use one of {', '.join(scheme.names)}")
    keep = [i for i, p in enumerate(pred) if p is not None]  # a suggestion of a class since removed: not scored
    t, p = [true[i] for i in keep], [pred[i] for i in keep]
    project = scores_from_confusion(confusion_matrix(t, p, scheme.names), scheme.names, scheme="project")
    both = [i for i in range(len(y_true)) if str(y_true[i]) in LABELS and str(y_pred[i]) in LABELS]
    if not both:
        return LineEvaluation(full=project, seed=project, project=project)
    builtin = evaluate_lines([y_true[i] for i in both], [y_pred[i] for i in both])
    return LineEvaluation(full=builtin.full, seed=builtin.seed, project=project)


def grouped_folds(groups: Sequence, n_splits: int = 5, *, seed: int = 0) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(train_idx, test_idx) over rows, each group (script) wholly on one side; balanced.

    scikit-learn's GroupKFold deals groups to folds largest first, each to the fold with fewest rows so
    far; `seed` decides among groups of the same size (they are renumbered in a seeded random order).
    """
    groups = np.asarray(groups)
    unique, inverse = np.unique(groups, return_inverse=True)
    if len(unique) < 2:
        raise EvaluationError(f"grouped folds need at least 2 scripts, got {len(unique)}")
    codes = np.random.default_rng(seed).permutation(len(unique))[inverse.ravel()]
    splitter = GroupKFold(n_splits=min(n_splits, len(unique)))
    yield from splitter.split(np.zeros(len(groups)), groups=codes)


def fold_assignment(groups: Sequence, n_splits: int = 5, *, seed: int = 0) -> np.ndarray:
    """Fold number per row, as `grouped_folds` deals them."""
    groups = np.asarray(groups)
    fold = np.empty(len(groups), dtype=np.int64)
    for k, (_, test) in enumerate(grouped_folds(groups, n_splits, seed=seed)):
        fold[test] = k
    return fold
