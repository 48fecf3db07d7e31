"""Inner folds of the stacked base model: whole scripts per fold (scikit-learn's GroupKFold)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupKFold


def script_folds(script_ids: np.ndarray, codes: np.ndarray, n_folds: int, *, seed: int) -> np.ndarray:
    """Fold per line, whole scripts (groups) per fold, balanced by labeled lines (GroupKFold,
    shuffled by `seed`). Scripts without labels (pure context) go to fold 0: they only feed
    neighbours. With a single script, contiguous stretches of it stand in for scripts.
    """
    ids = np.asarray(script_ids)
    unique = pd.unique(ids)
    if len(unique) < 2:
        n = len(ids)
        return np.minimum((np.arange(n) * n_folds) // max(n, 1), n_folds - 1)
    labeled = np.flatnonzero(codes >= 0)
    fold_of: dict = {}
    n_groups = len(pd.unique(ids[labeled]))
    if n_groups >= 2:
        splitter = GroupKFold(n_splits=min(n_folds, n_groups), shuffle=True, random_state=seed)
        for k, (_, test) in enumerate(splitter.split(labeled, groups=ids[labeled])):
            fold_of.update(dict.fromkeys(pd.unique(ids[labeled][test]), k))
    elif n_groups == 1:
        fold_of[ids[labeled][0]] = 0
    return np.array([fold_of.get(s, 0) for s in ids], dtype=np.int64)
