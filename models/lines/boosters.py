"""XGBoost boosters of the line model: train (here, or on a Dask cluster), predict, load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xgboost as xgb

from models.lines.labels import N_CLASSES, ModelLoadError
from models.lines.params import BoosterParams


def train_booster(M: np.ndarray, codes: np.ndarray, weights: np.ndarray | None, params: BoosterParams,
                   *, n_jobs: int, seed: int, base_margin: np.ndarray | None = None,
                   feature_names: list[str] | None = None, client=None) -> xgb.Booster:
    """One booster, here or (with a Dask `client`) data-parallel on the cluster's workers (xgboost.dask)."""
    if client is not None:
        return _train_booster_on_cluster(client, M, codes, weights, params, seed=seed, base_margin=base_margin,
                                         feature_names=feature_names)
    dtrain = xgb.DMatrix(M, label=codes, weight=weights, base_margin=base_margin, feature_names=feature_names, nthread=n_jobs)
    return xgb.train(params.xgb_params(n_jobs=n_jobs, seed=seed), dtrain, num_boost_round=params.n_estimators)


def _train_booster_on_cluster(client, M: np.ndarray, codes: np.ndarray, weights: np.ndarray | None,
                              params: BoosterParams, *, seed: int, base_margin: np.ndarray | None,
                              feature_names: list[str] | None) -> xgb.Booster:
    import dask.array as da
    from xgboost import dask as dxgb

    workers = max(1, len(client.scheduler_info().get("workers", {})))
    rows = max(1, -(-len(M) // workers))  # one block of rows per worker

    def blocks(a):
        return None if a is None else da.from_array(a, chunks=(rows,) + a.shape[1:])

    dtrain = dxgb.DaskDMatrix(client, blocks(M), label=blocks(codes.astype(np.float32)), weight=blocks(weights),
                              base_margin=blocks(base_margin), feature_names=feature_names)
    # Each worker uses its own threads: nthread is the worker's, not this process's.
    xgb_params = {k: v for k, v in params.xgb_params(n_jobs=1, seed=seed).items() if k != "nthread"}
    out = dxgb.train(client, xgb_params, dtrain, num_boost_round=params.n_estimators)
    return out["booster"]


def booster_proba(booster: xgb.Booster, M: np.ndarray, *, n_jobs: int, base_margin: np.ndarray | None = None,
                   feature_names: list[str] | None = None) -> np.ndarray:
    dm = xgb.DMatrix(M, base_margin=base_margin, feature_names=feature_names, nthread=n_jobs)
    return booster.predict(dm).reshape(len(M), N_CLASSES).astype(np.float32)


def load_booster(path: Path) -> xgb.Booster:
    if not path.exists():
        raise ModelLoadError(f"{path} is missing: the model folder is incomplete; retrain or restore it")
    booster = xgb.Booster()
    try:
        booster.load_model(path)
    except xgb.core.XGBoostError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "unreadable"
        raise ModelLoadError(f"{path}: XGBoost cannot read this model file ({first}); retrain or restore it") from exc
    return booster
