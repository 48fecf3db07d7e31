"""Labels as the line model reads them, and the errors it raises."""

from __future__ import annotations

from typing import Any

import numpy as np

from store.types import LABEL_INDEX, LABELS, ScriptlabelError

N_CLASSES = len(LABELS)


class ModelLoadError(ScriptlabelError):
    """A saved line model is missing, incomplete or corrupt."""


class TrainingDataError(ScriptlabelError, ValueError):
    """The labels given to fit cannot train a model (none, one class, misaligned...)."""


def encode_labels(y: Any, n: int) -> np.ndarray:
    """Label strings / class indices → int codes; -1 marks an unlabeled (context-only) line."""
    if y is None:
        raise TrainingDataError("fit needs labels: pass y with one label (or None) per line")
    values = list(y)
    if len(values) != n:
        raise TrainingDataError(f"{n} lines but {len(values)} labels: pass one label (or None) per line")
    codes = np.full(n, -1, dtype=np.int64)
    for i, value in enumerate(values):
        if value is None or (isinstance(value, float) and np.isnan(value)):
            continue
        if isinstance(value, (int, np.integer)):
            if value < 0:
                continue
            if value >= N_CLASSES:
                raise TrainingDataError(f"class index {value} is outside 0..{N_CLASSES - 1}")
            codes[i] = int(value)
        else:
            name = str(value).strip().lower()
            if name not in LABEL_INDEX:
                raise TrainingDataError(f"unknown label {value!r} on line {i}: use one of {', '.join(LABELS)}")
            codes[i] = LABEL_INDEX[name]
    return codes


def check_trainable(codes: np.ndarray, *, what: str, min_classes: int = 2) -> None:
    """Raise unless there are labeled lines of at least `min_classes` kinds (the adapter needs one: the
    base supplies the others)."""
    labeled = codes[codes >= 0]
    if len(labeled) == 0:
        raise TrainingDataError(f"{what}: no labeled lines; label some lines and train again")
    if len(np.unique(labeled)) < min_classes:
        only = LABELS[int(labeled[0])]
        raise TrainingDataError(
            f"{what}: every labeled line is {only!r}; label at least one line of another kind and train again"
        )


def as_weights(sample_weight, n: int) -> np.ndarray | None:
    if sample_weight is None:
        return None
    w = np.asarray(sample_weight, dtype=np.float32)
    if w.shape != (n,):
        raise TrainingDataError(f"sample_weight must have one value per line ({n}), got shape {w.shape}")
    return w
