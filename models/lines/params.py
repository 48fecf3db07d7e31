"""Hyper-parameters of the line model's parts: frozen dataclasses, saved beside a model as JSON.

`LineModelConfig` and `AdapterConfig` are the serialized form of `LineClassifier`'s and
`LineAdapter`'s constructor arguments (`to_dict`/`from_dict` read what older versions wrote).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field

from models.lines.features import FeatureConfig
from models.lines.labels import N_CLASSES
from models.lines.sequence import SequenceParams


def default_n_jobs() -> int:
    return max(1, min(2, os.cpu_count() or 1))


@dataclass(frozen=True)
class BoosterParams:
    n_estimators: int = 300
    max_depth: int = 6
    learning_rate: float = 0.1
    subsample: float = 0.8
    colsample_bytree: float = 0.5
    min_child_weight: float = 1.0
    reg_lambda: float = 1.0
    max_bin: int = 256

    def xgb_params(self, *, n_jobs: int, seed: int, num_class: int = N_CLASSES) -> dict:
        return {
            "max_bin": self.max_bin,
            "objective": "multi:softprob",
            "num_class": num_class,
            "tree_method": "hist",
            "max_depth": self.max_depth,
            "eta": self.learning_rate,
            "subsample": self.subsample,
            "colsample_bytree": self.colsample_bytree,
            "min_child_weight": self.min_child_weight,
            "lambda": self.reg_lambda,
            "nthread": n_jobs,
            "seed": seed,
            "eval_metric": "mlogloss",
        }


@dataclass(frozen=True)
class ContentParams:
    char_features: int = 2**19
    word_features: int = 2**18
    alpha: float = 3e-6
    epochs: int = 20


@dataclass(frozen=True)
class LineModelConfig:
    """Everything that shapes a base line model; saved with it as JSON."""

    features: FeatureConfig = field(default_factory=FeatureConfig)
    content: ContentParams | None = field(default_factory=ContentParams)
    stage1: BoosterParams = field(default_factory=BoosterParams)
    stage2: BoosterParams | None = field(default_factory=lambda: BoosterParams(n_estimators=200, max_depth=5))
    inner_folds: int = 5
    seed: int = 0
    # The sequence labeler (models.lines.sequence, a BiLSTM over each script's lines): "replace" reads
    # the dense block, the stage-1 out-of-fold probabilities and the text and stands in for stage 2;
    # "stage2" adds its out-of-fold probabilities to stage 2's columns.
    sequence: SequenceParams | None = None
    sequence_mode: str = "replace"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "LineModelConfig":
        return cls(
            features=FeatureConfig.from_dict(data.get("features", {})),
            content=ContentParams(**data["content"]) if data.get("content") else None,
            stage1=BoosterParams(**data.get("stage1", {})),
            stage2=BoosterParams(**data["stage2"]) if data.get("stage2") else None,
            inner_folds=int(data.get("inner_folds", 5)),
            seed=int(data.get("seed", 0)),
            sequence=SequenceParams.from_dict(data["sequence"]) if data.get("sequence") else None,
            sequence_mode=str(data.get("sequence_mode", "replace")),
        )


@dataclass(frozen=True)
class AdapterConfig:
    """The labeling loop's retrain: small and fast by design (see `LineAdapter`)."""

    booster: BoosterParams = field(
        default_factory=lambda: BoosterParams(
            n_estimators=20, max_depth=4, learning_rate=0.3, subsample=1.0, colsample_bytree=0.8,
            min_child_weight=0.5, reg_lambda=2.0, max_bin=64,
        )
    )
    current_script_weight: float = 5.0  # a human label on the script being labeled counts this much more
    compact: bool = True  # own-line features + base probabilities of the line, its neighbours and groups
    max_rows: int = 8000  # rows boosted on; beyond that, lines the base already gets right are sampled
    sure_p: float = 0.97  # "gets right": base probability of the true label at least this
    # Unlabeled lines of the script being labeled that the base is sure of (probability >= anchor_p)
    # join the fit with the base's label at this weight, so a few labels cannot flip a whole class.
    anchor_weight: float = 0.03  # bench/active_learning.py: no dips after a batch, 0.99 reached sooner
    anchor_p: float = 0.995
    max_anchors: int = 1000
    # The boosting starts from the base's log-probabilities (floored at log(margin_floor)); on lines of a
    # kind people consistently relabel (models.lines.agreement) they are divided by this temperature: the
    # base's certainty is discounted exactly where people keep contradicting it.
    follow_temperature: float = 2.0
    margin_floor: float = 1e-6
    hessian_floor: float = 0.05  # each row's hessian at least this (models.lines.boosters.floored_softmax_objective)
    # Per-kind agreement (models.lines.agreement): how people labeled lines of the same kind, as features,
    # and the kind's anchors dropped once at least `min_follow` labels (and `min_share` of them) disagree.
    agreement: bool = True
    agreement_prior: float = 3.0
    min_follow: int = 4
    min_share: float = 0.5

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "AdapterConfig":
        defaults = cls()
        return cls(booster=BoosterParams(**data.get("booster", {})),
                   current_script_weight=float(data.get("current_script_weight", 5.0)),
                   compact=bool(data.get("compact", False)),  # adapters saved before this option used all features
                   max_rows=int(data.get("max_rows", defaults.max_rows)),
                   sure_p=float(data.get("sure_p", defaults.sure_p)),
                   anchor_weight=float(data.get("anchor_weight", 0.0)),  # saved before anchors: none
                   anchor_p=float(data.get("anchor_p", defaults.anchor_p)),
                   max_anchors=int(data.get("max_anchors", defaults.max_anchors)),
                   # saved before issue 21: the raw margin, no agreement features
                   follow_temperature=float(data.get("follow_temperature", 1.0)),
                   margin_floor=float(data.get("margin_floor", 1e-6)),
                   hessian_floor=float(data.get("hessian_floor", 0.0)),
                   agreement=bool(data.get("agreement", False)),
                   agreement_prior=float(data.get("agreement_prior", defaults.agreement_prior)),
                   min_follow=int(data.get("min_follow", defaults.min_follow)),
                   min_share=float(data.get("min_share", defaults.min_share)))
