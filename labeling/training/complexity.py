"""Training the sequence-complexity models from the database (run by the background worker).

Every model (baselines included) is compared by grouped cross-validation; the winner is refit on all
rated sequences, saved (BiLSTMs as `.keras` + vocabulary JSON, baselines with skops — no pickle),
registered as the department's current version, and every sequence is predicted with uncertainty.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlite_utils import Database

from labeling.sequences.grouping import effective_labels
from labeling.training.saving import save_version
from models.complexity.data import SequenceDoc, check_ratings, docs_from_labeled_lines, predict_with_uncertainty
from models.complexity.evaluation import ModelComparison, compare_models, default_factories, fit_winner
from store import labels as label_store
from store import models as model_store
from store import scripts as script_store
from store import sequences as sequence_store
from store.types import ScriptlabelError


def sequence_docs(db: Database, script_id: int | None = None) -> list[SequenceDoc]:
    """One SequenceDoc per sequence, built from each line's best label (human, imported, model, rule)."""
    scripts = [script_id] if script_id is not None else script_store.visible_script_ids(db)
    rows = []
    for sid in scripts:
        frame = effective_labels(db, sid)
        places = script_store.line_places(db, sid)
        for r in frame.itertuples():
            sequence_id, page = places.get(r.line_no, (None, None))
            if sequence_id is not None:
                rows.append((int(sequence_id), r.label if isinstance(r.label, str) else "action", r.text, page))
    return docs_from_labeled_lines(rows)


# What `train --target complexity` compares unless told otherwise: every model with and without the
# sentiment block (bench/turning_points.py; README "Complexity models").
DEFAULT_SENTIMENT = "both"


@dataclass(frozen=True)
class DepartmentComparison:
    """Every model of a department compared on one snapshot of its ratings (before a version is saved)."""

    department: str
    comparison: ModelComparison
    docs: list[SequenceDoc]  # every sequence, to predict once a winner is chosen
    rated_docs: list[SequenceDoc]
    ratings: np.ndarray
    script_ids: list[int]
    factories: dict[str, Any]
    current: Any  # the department's current ModelVersion, or None
    last_rating_id: int
    last_event_id: int


def compare_department(db: Database, *, department: str = "overall", models: str | None = None,
                       sentiment: str | None = None, n_splits: int = 5, n_boot: int = 1000,
                       net_params: dict | None = None, component_nets: bool = True) -> DepartmentComparison:
    """Grouped CV (by script) of every model in the set on a snapshot of the department's ratings.

    `models="baselines"` leaves out the BiLSTMs; `sentiment` ("both", "with", "without"; default
    DEFAULT_SENTIMENT) says which variants of the models that take the sentiment block are compared.
    """
    models = models or "all"
    last_rating = sequence_store.max_rating_id(db)  # the snapshot: ratings after this wait for the next run
    last_event = label_store.max_event_id(db)  # and line labels after this, for the relabel trigger
    ratings = sequence_store.current_ratings(db, department=department)
    check_ratings(list(ratings["value"]))
    docs = {d.sequence_id: d for d in sequence_docs(db)}
    rated = ratings[ratings["sequence_id"].isin(docs)]
    rated_docs = [docs[s] for s in rated["sequence_id"]]
    y = rated["value"].to_numpy()
    choice = dict(sentiment=sentiment or DEFAULT_SENTIMENT, net_params=net_params, component_nets=component_nets)
    factories = default_factories(nets=models != "baselines", **choice)
    current = model_store.current_version(db, "complexity", department)
    current_family = current.metrics.get("winner") if current is not None else None
    if current_family and current_family not in factories:
        everything = default_factories(nets=True, net_params=net_params, sentiment="both")
        factories = {**factories, **{k: f for k, f in everything.items() if k == current_family}}
    script_ids = [int(s) for s in rated["script_id"]]
    comparison = compare_models(rated_docs, y, factories, script_ids=script_ids, n_splits=n_splits, n_boot=n_boot)
    return DepartmentComparison(department, comparison, list(docs.values()), rated_docs, y, script_ids,
                                factories, current, int(last_rating), int(last_event))


def train_complexity_version(db: Database, *, department: str = "overall", models: str | None = None,
                             sentiment: str | None = None, compared: DepartmentComparison | None = None
                             ) -> tuple[int, int, dict]:
    """Compare the models by grouped CV on a snapshot of the ratings, save the winner as a new version.

    The new version becomes current only if its cross-validated QWK is at least that of the current
    version's model family under the same folds (the family is added to the comparison when the
    model set would leave it out); otherwise it is kept as a non-current version and the suggestions
    stay those of the current one. `metrics["became_current"]` says which. `compared` (from
    `compare_department`) skips the comparison when it was already made.
    """
    if compared is None:
        compared = compare_department(db, department=department, models=models, sentiment=sentiment)
    department, comparison, y, current = compared.department, compared.comparison, compared.ratings, compared.current
    winner = fit_winner(comparison, compared.rated_docs, y, compared.factories)
    current_family = current.metrics.get("winner") if current is not None else None
    became_current, current_qwk = True, None
    if current is not None:
        family = comparison.cv.get(current_family) if current_family else None
        current_qwk = family.metrics["qwk"] if family is not None else None
        became_current = current_qwk is not None and \
            comparison.cv[comparison.winner].metrics["qwk"] >= current_qwk - 1e-9

    metrics = {"department": department, "n_sequences": int(len(y)), **comparison.to_dict(),
               "last_rating_id": compared.last_rating_id, "last_event_id": compared.last_event_id,
               "became_current": bool(became_current),
               "compared_with": None if current is None else {
                   "version": current.version, "model": current_family, "qwk_same_cv": current_qwk}}
    version = save_version(db, lambda tmp: _save(winner, tmp / department), kind="complexity", folder="complexity",
                           name=department, department=department, metrics=metrics, n_labels=int(len(y)),
                           make_current=became_current)
    if became_current:
        predict_sequences(db, version=version, department=department, model=winner, docs=compared.docs)
    return version, int(len(y)), metrics


def _save(model, stem: Path) -> Path:
    if hasattr(model, "save") and type(model).__name__ == "SequenceBiLSTM":
        path = stem.with_suffix(".keras")
        model.save(str(path))
        return path
    import skops.io as sio

    path = stem.with_suffix(".skops")
    sio.dump(model, path)
    return path


TRUSTED_SKOPS_TYPES = frozenset({
    "models.complexity.baselines.CountsTfidfFeatures",
    "models.complexity.baselines.MajorityClassifier",
    "models.complexity.baselines.TfidfLogisticClassifier",
    "models.complexity.baselines.TfidfXGBClassifier",
    "xgboost.core.Booster",
    "xgboost.sklearn.XGBClassifier",
})


class UntrustedModelError(ScriptlabelError):
    """A .skops file holds a type outside TRUSTED_SKOPS_TYPES (and skops' own defaults)."""


def load_complexity_model(path: str | Path):
    """Load a saved complexity model (`.keras` or `.skops`, never pickle)."""
    path = Path(path)
    if path.suffix == ".keras":
        from models.complexity.nets import load_model

        return load_model(str(path))
    import skops.io as sio

    # skops trusts its own list of scikit-learn/NumPy types; beyond that, exactly the types our baselines
    # are made of (a prefix like "sklearn." would also trust e.g. functions that run code on load).
    untrusted = set(sio.get_untrusted_types(file=path))
    unknown = sorted(untrusted - TRUSTED_SKOPS_TYPES)
    if unknown:
        raise UntrustedModelError(f"{path.name}: the model file holds types this version does not trust "
                                  f"({', '.join(unknown[:5])}); retrain the model instead of loading this file")
    return sio.load(path, trusted=sorted(untrusted))


def predict_sequences(db: Database, *, version: int, department: str, model=None,
                      docs: list[SequenceDoc] | None = None, script_id: int | None = None) -> int:
    """Predict every sequence (of a script) with a complexity version; stores value, expectation, uncertainty."""
    if model is None:
        model = load_complexity_model(model_store.get_version(db, version).path)
    docs = docs if docs is not None else sequence_docs(db, script_id)
    if not docs:
        return 0
    rows = [
        {"sequence_id": int(p.sequence_id), "value": int(p.predicted), "expected": float(p.expected),
         "uncertainty": float(p.uncertainty), "probs": {str(k): round(v, 4) for k, v in p.probabilities.items()}}
        for p in predict_with_uncertainty(model, docs)
    ]
    sequence_store.save_sequence_predictions(db, version, department, rows)
    return len(rows)


TAGS_DEPARTMENT = "tags"


def train_tags_version(db: Database, *, models: str | None = None) -> tuple[int, int, dict]:
    """Multi-label breakdown tags (crowd, water, fire…): the same model family, one-vs-rest, sigmoid outputs.

    A sequence counts as tagged once anyone set or cleared a tag on it; tags it was not given are absent.
    Predictions are stored per tag as department `tag:<name>` (value 0/1, expected = probability).
    """
    from models.complexity.data import check_tags
    from models.complexity.evaluation import compare_tag_models

    models = models or "all"
    tags_frame = sequence_store.current_tags(db)
    docs = {d.sequence_id: d for d in sequence_docs(db)}
    tags_frame = tags_frame[tags_frame["sequence_id"].isin(docs)]
    tag_names = sorted(tags_frame.loc[tags_frame["present"] == 1, "tag"].unique())
    sequences = sorted(tags_frame["sequence_id"].unique())
    present = {(r.sequence_id, r.tag) for r in tags_frame.itertuples() if r.present}
    y = np.array([[int((s, t) in present) for t in tag_names] for s in sequences]).reshape(len(sequences),
                                                                                          len(tag_names))
    check_tags(y)
    keep = (y.sum(0) > 0) & (y.sum(0) < len(y))
    tag_names = [t for t, k in zip(tag_names, keep) if k]
    y = y[:, keep]
    tagged_docs = [docs[s] for s in sequences]
    script_of = sequence_store.sequence_scripts(db)
    factories = default_factories(tags=True, nets=models != "baselines")
    comparison = compare_tag_models(tagged_docs, y, factories, script_ids=[script_of[s] for s in sequences])
    winner = fit_winner(comparison, tagged_docs, y, factories, tags=True)
    metrics = {"department": TAGS_DEPARTMENT, "tags": tag_names, "n_sequences": int(len(y)), **comparison.to_dict()}
    version = save_version(db, lambda tmp: _save(winner, tmp / "tags"), kind="complexity", folder="tags",
                           name="tags", department=TAGS_DEPARTMENT, metrics=metrics, n_labels=int(len(y)))
    all_docs = list(docs.values())
    proba = np.asarray(winner.predict_proba(all_docs), dtype=float)
    for j, tag in enumerate(tag_names):
        p = np.clip(proba[:, j], 1e-9, 1 - 1e-9)
        entropy = -(p * np.log2(p) + (1 - p) * np.log2(1 - p))
        sequence_store.save_sequence_predictions(db, version, f"tag:{tag}", [
            {"sequence_id": int(d.sequence_id), "value": int(pj >= 0.5), "expected": float(pj),
             "uncertainty": float(e), "probs": {"present": round(float(pj), 4)}}
            for d, pj, e in zip(all_docs, p, entropy)])
    return version, int(len(y)), metrics
