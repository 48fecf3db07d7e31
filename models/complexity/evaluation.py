"""Honest comparison of complexity (and tag) models on tiny data: grouped CV, bootstrap intervals.

Every model is refit from its factory inside each fold; the metrics are computed once over the
pooled out-of-fold predictions, with 95% intervals from resampling those predictions. A model
"beats" the majority baseline only when the paired bootstrap interval of its QWK gain excludes 0.
Keras is never imported here: BiLSTM factories import `models.complexity.nets` when called.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
from scipy.stats import rankdata
from sklearn.model_selection import GroupKFold, StratifiedGroupKFold

from models.complexity.baselines import (
    MajorityClassifier, TfidfLogisticClassifier, TfidfXGBClassifier,
)
from models.complexity.data import (
    COMPONENTS, MIN_RATED, RATINGS, SequenceDoc, TooFewRatingsError, check_ratings, check_tags,
)

Factory = Callable[[], Any]
BASELINE = "majority"


# -- metrics ----------------------------------------------------------------------------------
# Plain numpy versions: the bootstrap calls them thousands of times, sklearn's checks would dominate.
def quadratic_weighted_kappa(y_true, y_pred, labels: Sequence = RATINGS) -> float:
    """Cohen's kappa with quadratic weights on the rating values; 0 when no agreement is measurable."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    values = np.unique(np.concatenate([np.asarray(labels), y_true, y_pred]))
    k = len(values)
    a, b = np.searchsorted(values, y_true), np.searchsorted(values, y_pred)
    observed = np.bincount(a * k + b, minlength=k * k).reshape(k, k).astype(float)
    expected = np.outer(np.bincount(a, minlength=k), np.bincount(b, minlength=k)) / max(len(a), 1)
    positions = values.astype(float)
    weights = (positions[:, None] - positions[None, :]) ** 2
    denominator = (weights * expected).sum()
    return 0.0 if denominator == 0 else float(1 - (weights * observed).sum() / denominator)


def rating_metrics(y_true, y_pred) -> dict[str, float]:
    y_true, y_pred = np.asarray(y_true, dtype=float), np.asarray(y_pred, dtype=float)
    return {
        "accuracy": float(np.mean(y_true == y_pred)),
        "mae": float(np.mean(np.abs(y_true - y_pred))),
        "qwk": quadratic_weighted_kappa(y_true, y_pred),
    }


def _column_aucs(y_true: np.ndarray, score: np.ndarray) -> np.ndarray:
    """ROC-AUC of every column at once (Mann-Whitney, ties count half; nan where a column lacks either class)."""
    ranks = rankdata(score, axis=0)
    n_pos = y_true.sum(0)
    n_neg = len(y_true) - n_pos
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = ((ranks * y_true).sum(0) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    return np.where((n_pos > 0) & (n_neg > 0), auc, np.nan)


def tag_metrics(y_true: np.ndarray, proba: np.ndarray, folds: np.ndarray | None = None,
                threshold: float = 0.5) -> dict[str, float]:
    """Micro/macro F1 at `threshold`, and ROC-AUC averaged over (fold, tag) pairs.

    AUC is computed within each CV fold: pooling probabilities of models trained on different
    folds mixes their calibrations (a constant-per-fold baseline would score far from 0.5).
    """
    y_true = np.asarray(y_true).astype(bool)
    pred = np.asarray(proba) >= threshold
    tp = (pred & y_true).sum(0)
    fp = (pred & ~y_true).sum(0)
    fn = (~pred & y_true).sum(0)
    micro_denominator = 2 * tp.sum() + fp.sum() + fn.sum()
    per_tag_denominator = 2 * tp + fp + fn
    per_tag = np.divide(2 * tp, per_tag_denominator, out=np.zeros(len(tp)),
                        where=per_tag_denominator > 0)
    folds = np.zeros(len(y_true), dtype=int) if folds is None else np.asarray(folds)
    aucs = np.concatenate([_column_aucs(y_true[folds == f], np.asarray(proba)[folds == f])
                           for f in np.unique(folds)])
    aucs = aucs[~np.isnan(aucs)]
    return {
        "micro_f1": float(2 * tp.sum() / micro_denominator) if micro_denominator else 0.0,
        "macro_f1": float(per_tag.mean()),
        "roc_auc": float(np.mean(aucs)) if len(aucs) else float("nan"),
    }


def bootstrap_interval(statistic: Callable[[np.ndarray], float], n: int, *, n_boot: int = 1000,
                       seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of `statistic(indices)` over `n_boot` resamples of range(n)."""
    return bootstrap_intervals(lambda idx: {"value": statistic(idx)}, n, n_boot=n_boot,
                               seed=seed, level=level)["value"]


def bootstrap_intervals(statistics: Callable[[np.ndarray], dict[str, float]], n: int, *,
                        n_boot: int = 1000, seed: int = 0, level: float = 0.95
                        ) -> dict[str, tuple[float, float]]:
    """Percentile intervals of each value of `statistics(indices)` over resamples of range(n)."""
    rng = np.random.default_rng(seed)
    draws = [statistics(rng.integers(0, n, n)) for _ in range(n_boot)]
    tail = (1 - level) / 2 * 100
    out = {}
    for name in draws[0] if draws else ():
        values = np.array([d[name] for d in draws], dtype=float)
        values = values[~np.isnan(values)]
        if not len(values):
            out[name] = (float("nan"), float("nan"))
            continue
        lo, hi = np.percentile(values, [tail, 100 - tail])
        out[name] = (round(float(lo), 4), round(float(hi), 4))
    return out


@dataclass(frozen=True)
class MetricSummary:
    """Point metrics over all out-of-fold predictions and their bootstrap 95% intervals."""

    metrics: dict[str, float]
    ci95: dict[str, tuple[float, float]]

    def to_dict(self) -> dict:
        out: dict[str, Any] = {k: _json_number(v) for k, v in self.metrics.items()}
        out["ci95"] = {k: [_json_number(lo), _json_number(hi)] for k, (lo, hi) in self.ci95.items()}
        return out


def _json_number(value: float) -> float | None:
    return None if value is None or np.isnan(value) else round(float(value), 4)


def summarize_ratings(y_true, y_pred, *, n_boot: int = 1000, seed: int = 0) -> MetricSummary:
    """Accuracy, MAE and QWK of predicted ratings, each with a bootstrap 95% interval."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    ci = bootstrap_intervals(lambda idx: rating_metrics(y_true[idx], y_pred[idx]), len(y_true),
                             n_boot=n_boot, seed=seed)
    return MetricSummary(rating_metrics(y_true, y_pred), ci)


def summarize_tags(y_true, proba, folds: np.ndarray | None = None, *, n_boot: int = 1000,
                   seed: int = 0) -> MetricSummary:
    """Micro/macro F1 and ROC-AUC of tag probabilities, each with a bootstrap 95% interval."""
    y_true, proba = np.asarray(y_true), np.asarray(proba)
    folds = np.zeros(len(y_true), dtype=int) if folds is None else np.asarray(folds)
    ci = bootstrap_intervals(lambda idx: tag_metrics(y_true[idx], proba[idx], folds[idx]),
                             len(y_true), n_boot=n_boot, seed=seed)
    return MetricSummary(tag_metrics(y_true, proba, folds), ci)


# -- cross-validation -------------------------------------------------------------------------
def choose_groups(docs: Sequence[SequenceDoc], script_ids: Sequence | None = None
                  ) -> tuple[np.ndarray, str]:
    """Groups for CV: the script when the sequences come from several scripts, else the sequence."""
    if script_ids is not None and len(set(script_ids)) > 1:
        return np.asarray(script_ids), "script"
    return np.arange(len(docs)), "sequence"


def cv_splits(y: np.ndarray, groups: np.ndarray, *, n_splits: int = 5, seed: int = 0
              ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Grouped folds (stratified by rating when y is 1-D); fewer folds when there are few groups, or
    when even the most common rating has fewer members than folds (8 ratings spread over three values)."""
    k = min(n_splits, len(np.unique(groups)))
    if np.asarray(y).ndim == 1:
        k = min(k, int(np.unique(np.asarray(y), return_counts=True)[1].max()))
    if k < 2:
        raise TooFewRatingsError("all rated sequences come from one group; cross-validation "
                                 "needs at least two sequences (or scripts)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "least populated class has only n members" is expected
        if np.asarray(y).ndim == 1:
            splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
        else:
            splitter = GroupKFold(n_splits=k, shuffle=True, random_state=seed)
        return list(splitter.split(np.zeros(len(y)), y, groups))


def fold_of(splits: Sequence[tuple[np.ndarray, np.ndarray]], n: int) -> np.ndarray:
    """The fold number in which each of `n` items was held out."""
    folds = np.full(n, -1)
    for k, (_, test) in enumerate(splits):
        folds[test] = k
    return folds


def out_of_fold_proba(factory: Factory, docs: Sequence[SequenceDoc], y: np.ndarray,
                      splits: Sequence[tuple[np.ndarray, np.ndarray]],
                      classes: np.ndarray | None = None) -> np.ndarray:
    """Each sequence's probabilities from a fresh model that never saw it.

    For ratings, columns follow `classes` (all rating values rated anywhere); a fold's model learns
    only the values in its training part, the others get probability 0. A training part with a
    single rating predicts that rating with certainty, as any model would.
    """
    y = np.asarray(y)
    width = y.shape[1] if y.ndim == 2 else len(classes)
    proba = np.zeros((len(y), width))
    for train, test in splits:
        train_docs = [docs[i] for i in train]
        test_docs = [docs[i] for i in test]
        if y.ndim == 1 and len(np.unique(y[train])) < 2:
            proba[test, np.searchsorted(classes, y[train][0])] = 1.0
            continue
        model = factory().fit(train_docs, y[train])
        fold = np.asarray(model.predict_proba(test_docs), dtype=float)
        if y.ndim == 2:
            proba[test] = fold
        else:
            proba[np.ix_(test, np.searchsorted(classes, model.classes_))] = fold
    return proba


@dataclass(frozen=True)
class ModelComparison:
    """The outcome of comparing models by grouped CV; `to_dict()` is the DESIGN.md JSON shape."""

    cv: dict[str, MetricSummary]
    winner: str
    verdict: str
    n_sequences: int
    n_folds: int
    grouped_by: str
    classes: np.ndarray | None = field(default=None, repr=False)
    oof_proba: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    beats_majority: bool = False  # the winner's paired gain over the majority baseline excludes 0

    def to_dict(self) -> dict:
        return {"cv": {name: s.to_dict() for name, s in self.cv.items()},
                "winner": self.winner, "verdict": self.verdict, "beats_majority": self.beats_majority}


def compare_models(docs: Sequence[SequenceDoc], ratings: Sequence, factories: Mapping[str, Factory]
                   | None = None, *, script_ids: Sequence | None = None, n_splits: int = 5,
                   n_boot: int = 1000, seed: int = 0, min_rated: int = MIN_RATED
                   ) -> ModelComparison:
    """Cross-validate every factory on rated sequences of one department; pick a winner.

    Raises TooFewRatingsError (before any training) with fewer than `min_rated` ratings or a
    single rating value. The majority baseline is always included.
    """
    docs, y = list(docs), np.asarray(ratings)
    if len(docs) != len(y):
        raise ValueError(f"{len(docs)} sequences but {len(y)} ratings")
    check_ratings(y.tolist(), min_rated=min_rated)
    factories = dict(default_factories() if factories is None else factories)
    factories = {BASELINE: MajorityClassifier, **factories}  # always compared, listed first
    groups, grouped_by = choose_groups(docs, script_ids)
    splits = cv_splits(y, groups, n_splits=n_splits, seed=seed)
    classes = np.unique(y)
    oof = {name: out_of_fold_proba(f, docs, y, splits, classes) for name, f in factories.items()}
    preds = {name: classes[p.argmax(1)] for name, p in oof.items()}
    cv = {name: summarize_ratings(y, preds[name], n_boot=n_boot, seed=seed) for name in oof}
    winner = max(cv, key=lambda n: (round(cv[n].metrics["qwk"], 6), -cv[n].metrics["mae"],
                                    n == BASELINE))
    gain = bootstrap_interval(
        lambda idx: rating_metrics(y[idx], preds[winner][idx])["qwk"]
        - rating_metrics(y[idx], preds[BASELINE][idx])["qwk"], len(y), n_boot=n_boot, seed=seed)
    verdict = _verdict(cv, winner, gain, "qwk", "QWK", len(y), len(splits), grouped_by)
    return ModelComparison(cv, winner, verdict, len(y), len(splits), grouped_by, classes, oof,
                           beats_majority=winner != BASELINE and gain[0] > 0)


def compare_tag_models(docs: Sequence[SequenceDoc], y_tags: np.ndarray,
                       factories: Mapping[str, Factory] | None = None, *,
                       script_ids: Sequence | None = None, n_splits: int = 5, n_boot: int = 1000,
                       seed: int = 0, min_rated: int = MIN_RATED, unit: str = "sequences"
                       ) -> ModelComparison:
    """Like compare_models for multi-label tags: micro/macro-F1 and ROC-AUC; winner by ROC-AUC.

    `unit` names what was labeled in the verdict ("sequences", "scripts"...).
    """
    docs, y = list(docs), np.asarray(y_tags)
    check_tags(y, min_rated=min_rated)
    factories = dict(default_factories(tags=True) if factories is None else factories)
    factories = {BASELINE: MajorityClassifier, **factories}  # always compared, listed first
    groups, grouped_by = choose_groups(docs, script_ids)
    if grouped_by == "sequence":
        grouped_by = unit.removesuffix("s")  # each labeled item is its own group
    splits = cv_splits(y, groups, n_splits=n_splits, seed=seed)
    oof = {name: out_of_fold_proba(f, docs, y, splits) for name, f in factories.items()}
    folds = fold_of(splits, len(y))
    cv = {name: summarize_tags(y, p, folds, n_boot=n_boot, seed=seed) for name, p in oof.items()}
    winner = max(cv, key=lambda n: (np.nan_to_num(round(cv[n].metrics["roc_auc"], 6), nan=-1),
                                    cv[n].metrics["micro_f1"], n == BASELINE))
    gain = bootstrap_interval(
        lambda idx: tag_metrics(y[idx], oof[winner][idx], folds[idx])["roc_auc"]
        - tag_metrics(y[idx], oof[BASELINE][idx], folds[idx])["roc_auc"], len(y), n_boot=n_boot, seed=seed)
    verdict = _verdict(cv, winner, gain, "roc_auc", "ROC-AUC", len(y), len(splits), grouped_by,
                       unit)
    return ModelComparison(cv, winner, verdict, len(y), len(splits), grouped_by, None, oof,
                           beats_majority=winner != BASELINE and gain[0] > 0)


def _verdict(cv: Mapping[str, MetricSummary], winner: str, gain: tuple[float, float], key: str,
             label: str, n: int, folds: int, grouped_by: str, unit: str = "sequences") -> str:
    setting = f"{n} labeled {unit}, {folds}-fold CV grouped by {grouped_by}"
    base = cv[BASELINE].metrics[key]
    if winner == BASELINE:
        return (f"No model beats the majority baseline ({setting}): none scores a higher {label} "
                f"than the baseline's {base:.2f}. Label more {unit} before trusting predictions.")
    w = cv[winner]
    lo, hi = w.ci95[key]
    told = (f"{winner} scores {label} {w.metrics[key]:.2f} (95% CI {lo:.2f} to {hi:.2f}) against "
            f"the majority baseline's {base:.2f}; the paired gain's 95% CI is {gain[0]:+.2f} to "
            f"{gain[1]:+.2f}")
    if not gain[0] > 0:
        return (f"No model reliably beats the majority baseline ({setting}): the best, {told}, "
                f"which includes no gain. Label more {unit} before trusting predictions.")
    return f"{winner} beats the majority baseline ({setting}): {told}."


# -- factories --------------------------------------------------------------------------------
SENTIMENT_SUFFIX = "+sentiment"
SENTIMENT_CHOICES = ("both", "with", "without")


def default_factories(*, tags: bool = False, nets: bool = True,
                      net_params: Mapping[str, Any] | None = None, sentiment: str = "both",
                      component_nets: bool = True) -> dict[str, Factory]:
    """Fresh-estimator factories for every model compared: baselines, then the BiLSTMs.

    `sentiment`: "both" lists each capable model without and with the sentiment block (the latter
    named `<model>+sentiment`), "with" only with it, "without" only without. `component_nets=False`
    leaves out the three single-component BiLSTMs (the combined one stays).
    """
    if sentiment not in SENTIMENT_CHOICES:
        raise ValueError(f"sentiment must be one of {', '.join(SENTIMENT_CHOICES)}, not {sentiment!r}")
    # The feature baselines and the combined network take the block; the per-component networks stay
    # the study's single-component models.
    with_block: dict[str, Callable[[bool], Any]] = {
        "logistic": lambda block: TfidfLogisticClassifier(use_sentiment=block),
        "xgboost": lambda block: TfidfXGBClassifier(use_sentiment=block),
    }
    if not tags:
        with_block["ordinal_logistic"] = lambda block: TfidfLogisticClassifier(ordinal=True, use_sentiment=block)
    factories: dict[str, Factory] = {BASELINE: MajorityClassifier}
    _add_variants(factories, with_block, sentiment)
    if nets:
        params = dict(net_params or {})
        if component_nets:
            for component in COMPONENTS:
                factories[f"bilstm_{component}"] = _net_factory(component, params)
        _add_variants(factories, {"bilstm_combined": lambda block: _net_factory(
            None, {**params, "use_sentiment": block})()}, sentiment)
    return factories


def _add_variants(factories: dict[str, Factory], makers: Mapping[str, Callable[[bool], Any]],
                  sentiment: str) -> None:
    for name, make in makers.items():
        if sentiment in ("both", "without"):
            factories[name] = partial(make, False)
        if sentiment in ("both", "with"):
            factories[name + SENTIMENT_SUFFIX] = partial(make, True)


def _net_factory(component: str | None, params: dict[str, Any]) -> Factory:
    def make():
        from models.complexity import nets as complexity_nets  # Keras loads only when a BiLSTM is actually built

        if component is None:
            return complexity_nets.combined_bilstm(**params)
        return complexity_nets.component_bilstm(component, **params)

    return make


def fit_winner(comparison: ModelComparison, docs: Sequence[SequenceDoc], y,
               factories: Mapping[str, Factory] | None = None, *, tags: bool = False) -> Any:
    """A fresh copy of the comparison's winner, fit on all labeled sequences."""
    factories = default_factories(tags=tags) if factories is None else factories
    factory = factories.get(comparison.winner, MajorityClassifier)
    return factory().fit(list(docs), np.asarray(y))
