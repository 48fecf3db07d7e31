"""XGBoost boosters of the line model: train (here, or on a Dask cluster), predict, load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xgboost as xgb

from models.lines.labels import N_CLASSES, ModelLoadError
from models.lines.params import BoosterParams


def train_booster(M: np.ndarray, codes: np.ndarray, weights: np.ndarray | None, params: BoosterParams,
                   *, n_jobs: int, seed: int, base_margin: np.ndarray | None = None,
                   feature_names: list[str] | None = None, client=None, num_class: int = N_CLASSES,
                   hessian_floor: float | np.ndarray = 0.0) -> xgb.Booster:
    """One booster, here or (with a Dask `client`) data-parallel on the cluster's workers (xgboost.dask).

    `hessian_floor` > 0 (one value, or one per row) boosts the softmax loss with each row's hessian raised
    to at least that (see `floored_softmax_objective`)."""
    if np.any(np.asarray(hessian_floor) > 0):
        dtrain = xgb.DMatrix(M, label=codes, weight=weights, base_margin=base_margin, feature_names=feature_names,
                             nthread=n_jobs)
        params_ = {**params.xgb_params(n_jobs=n_jobs, seed=seed, num_class=num_class), "disable_default_eval_metric": 1}
        return xgb.train(params_, dtrain, num_boost_round=params.n_estimators,
                         obj=floored_softmax_objective(hessian_floor, num_class))
    if client is not None:
        return _train_booster_on_cluster(client, M, codes, weights, params, seed=seed, base_margin=base_margin,
                                         feature_names=feature_names)
    dtrain = xgb.DMatrix(M, label=codes, weight=weights, base_margin=base_margin, feature_names=feature_names, nthread=n_jobs)
    return xgb.train(params.xgb_params(n_jobs=n_jobs, seed=seed, num_class=num_class), dtrain, num_boost_round=params.n_estimators)


def floored_softmax_objective(floor: float | np.ndarray, num_class: int):
    """The softmax cross-entropy's gradient, with each hessian at least `floor` (times the row's weight).

    Where the base is near-certain a row's hessian p(1 - p) is ~1e-4, so the rows a person relabels
    against it can never sum to `min_child_weight` and no leaf forms; with a floor, ten consistent
    corrections weigh what ten rows do, while the gradient (hence which way a leaf moves) is unchanged:
    lines the base already gets right push nothing. `floor` is one value or one per row."""
    floor = np.asarray(floor, dtype=np.float64)
    floor = floor[:, None] if floor.ndim == 1 else floor

    def objective(predt: np.ndarray, dtrain: xgb.DMatrix):
        scores = predt.reshape(-1, num_class)
        scores = scores - scores.max(axis=1, keepdims=True)
        p = np.exp(scores)
        p /= p.sum(axis=1, keepdims=True)
        y = dtrain.get_label().astype(np.int64)
        w = dtrain.get_weight()
        w = np.ones(len(y)) if w.size == 0 else w.astype(np.float64)
        grad = p.copy()
        grad[np.arange(len(y)), y] -= 1.0
        hess = np.maximum(2.0 * p * (1.0 - p), floor)
        return (grad * w[:, None]).astype(np.float32), (hess * w[:, None]).astype(np.float32)

    return objective


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
                   feature_names: list[str] | None = None, num_class: int = N_CLASSES) -> np.ndarray:
    dm = xgb.DMatrix(M, base_margin=base_margin, feature_names=feature_names, nthread=n_jobs)
    return booster.predict(dm).reshape(len(M), num_class).astype(np.float32)


def booster_margin(booster: xgb.Booster, M: np.ndarray, *, n_jobs: int, base_margin: np.ndarray,
                   feature_names: list[str] | None = None) -> np.ndarray:
    """The raw scores (base_margin + trees), before the softmax."""
    dm = xgb.DMatrix(M, base_margin=base_margin, feature_names=feature_names, nthread=n_jobs)
    return booster.predict(dm, output_margin=True).reshape(len(M), base_margin.shape[1])


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
