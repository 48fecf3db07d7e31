"""The adapter (`LineAdapter`): the labeling loop's fast retrain, boosted on top of the base.

A small XGBoost boosted *on top of* the base model's log-probabilities (`base_margin`), over the
base probabilities, their context, the dense block (the reading-state features included: open
brackets, distance to the last cue...) and how people labeled lines of the same kind (below). With
no trees it reproduces the base; each human label pushes it where the base was wrong, and lines of
the script being labeled weigh more (`current_script_weight`), so 20–50 labels fix a script with an
unusual layout and a team's convention takes about five.

**How a convention wins.** A line's *kind* is the base's class plus its shape (capitals, an opening
bracket: `models.lines.agreement`). Once at least `min_follow` (4) people's labels of a kind disagree
with the base, and they are at least `min_share` (half) of that kind's labels, the kind *follows
people*: (1) every line of it carries the kind's label shares as features (`agree_<class>`, leave-one-
out on the labeled lines, so the trees learn "lines of a kind people relabel follow them" from the
other labels, never from a line's own); (2) its lines start from the base's log-probabilities divided
by `follow_temperature`, so the base's near-certainty (99.99% on wrylies) is discounted exactly there;
(3) its labeled lines get a floor on their hessian (`hessian_floor`, a custom softmax objective in
`models.lines.boosters`): where the base is near-certain each row's hessian is ~1e-4, so without it ten
corrections never add up to `min_child_weight` and no leaf can form; (4) its unlabeled lines are no
longer anchors. Ten consistent corrections then turn the rest of the kind (bench/follow.py).

**How dissent is told apart.** A kind whose labels mostly agree with the base does not follow: its
features stay the base's class at share 1, its hessians stay the base's own (tiny where the base is
sure, so two labels cannot grow a leaf), and its unlabeled lines the base is sure of stay *anchors*
(`anchor_rows`: joined to the fit with the base's label at a small weight, so a split that moves
labeled lines must leave them alone — three labels on a front-page notice written like action once
turned 300 action lines into `other`). A label against most labels of its kind also teaches at a
fraction of its weight (`KindAgreement.label_weights`); it still decides its own line, since a
person's label always wins over any suggestion. So 2 dissenting labels among 10 leave the kind as it
was, while 10 agreeing ones move it.

**Classes.** The adapter predicts a project's classes (`scheme`, a `models.lines.scheme.ClassScheme`):
the 7 built-in labels, some merged (a merged class starts from the log of its members' summed base
probabilities) and/or new ones only people's labels define (`shot`: a low prior, learned from labels;
the base's 7 probabilities stay features). `predict_proba` has one column per `classes_`; the scheme
is saved with the adapter (one saved before schemes loads as the 7 built-in labels).

It sees a compact view of the stage-2 columns, 64 histogram bins and 20 rounds, and beyond `max_rows`
labeled lines keeps every line the base gets wrong or is unsure of plus a reweighted sample of the
rest, so a retrain takes well under a second at 20k or 50k labels on 2 cores. The base outputs for
each script, with the context features the adapter reads, are computed once and cached (`BaseOutputs`).
"""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin

from models.lines.base import BaseOutputs, LineClassifier
from models.lines.agreement import KindAgreement, kind_keys
from models.lines.boosters import booster_margin, load_booster, train_booster
from models.lines.features import validate_lines
from models.lines.labels import ModelLoadError, as_weights, check_trainable
from models.lines.params import AdapterConfig, BoosterParams, default_n_jobs
from models.lines.persistence import FORMAT_VERSION, write_meta
from models.lines.scheme import BUILTIN_SCHEME, ClassScheme

DEFAULT_ADAPTER = AdapterConfig()


def adapter_matrix(X: pd.DataFrame, outputs: BaseOutputs, base: LineClassifier,
                   rows: np.ndarray | None = None, columns: np.ndarray | None = None) -> np.ndarray:
    """The adapter's input (stage-2 layout over the base's final probabilities), for some rows/columns.

    Uses the context features cached in `outputs` when there, so a retrain only gathers rows."""
    return base.adapter_matrix(X, outputs, rows, columns)


def log_margin(proba: np.ndarray, *, temperature: float = 1.0, floor: float = 1e-6) -> np.ndarray:
    """The boosting's starting scores: log-probabilities, floored, divided by `temperature`."""
    return (np.log(np.clip(proba, floor, 1.0)) / temperature).astype(np.float32)


def softmax(scores: np.ndarray) -> np.ndarray:
    scores = scores - scores.max(axis=1, keepdims=True)
    e = np.exp(scores)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


_COMPACT_CONTEXT = ("@-1", "@+1", "@block", "@block_first", "@prev_block_last", "@level", "@same_text")


def compact_columns(names: Sequence[str]) -> np.ndarray:
    """The adapter's compact view of the stage-2 columns: the line's own features and the base
    probabilities of the line, its direct neighbours, its block, indent level and same-text lines
    (the neighbours' own dense features at ±1/±2 and probabilities at ±2/±3 are left out: a third of
    the boosting time for no measured gain on held-out scripts)."""
    return np.array([i for i, n in enumerate(names)
                     if "@" not in n or (n.startswith("p_") and n.endswith(_COMPACT_CONTEXT))], dtype=np.int64)


def sample_rows(codes: np.ndarray, proba: np.ndarray, weights: np.ndarray, keep: np.ndarray, *,
                max_rows: int, sure_p: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows to boost on and their weights, at most about `max_rows` (gradient-based one-side sampling).

    Every labeled row the base gets wrong or is unsure of (probability of the true label below
    `sure_p`) and every row in `keep` stays; the rest — lines the base already gets confidently right,
    whose gradients are near zero — are sampled uniformly and weighted up by the inverse rate, so the
    loss stays an unbiased estimate and a retrain costs about the same at 20k labels as at 8k.
    """
    labeled = np.flatnonzero(codes >= 0)
    if len(labeled) <= max_rows:
        return labeled, weights[labeled]
    p_true = proba[labeled, codes[labeled]]
    must = (p_true < sure_p) | keep[labeled]
    hard, easy = labeled[must], labeled[~must]
    room = max(max_rows - len(hard), min(len(easy), max_rows // 4))
    if room >= len(easy):
        return labeled, weights[labeled]
    rng = np.random.default_rng(seed)
    picked = np.sort(rng.choice(easy, size=room, replace=False))
    rows = np.concatenate([hard, picked])
    w = weights[rows].copy()
    w[len(hard):] *= len(easy) / room
    order = np.argsort(rows, kind="stable")
    return rows[order], w[order]


def anchor_rows(codes: np.ndarray, proba: np.ndarray, in_script: np.ndarray, *, min_p: float, max_rows: int,
                seed: int, exclude: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unlabeled lines of the script being labeled that the base is sure of, as (rows, the base's label,
    weight multiplier): at most `max_rows`, sampled uniformly and weighted up by the inverse rate.
    Lines in `exclude` (kinds people consistently relabel) are never anchors."""
    candidates = (codes < 0) & in_script & (proba.max(axis=1) >= min_p)
    if exclude is not None:
        candidates &= ~exclude
    rows = np.flatnonzero(candidates)
    scale = 1.0
    if len(rows) > max_rows > 0:
        rng = np.random.default_rng(seed + 1)
        scale = len(rows) / max_rows
        rows = np.sort(rng.choice(rows, size=max_rows, replace=False))
    elif max_rows <= 0:
        rows = rows[:0]
    return rows, proba[rows].argmax(axis=1), np.full(len(rows), scale, dtype=np.float32)


class LineAdapter(ClassifierMixin, BaseEstimator):
    """Per-loop correction boosted on the base model's log-probabilities (see module docstring).

    A scikit-learn estimator over a fitted `base`; its hyper-parameters are constructor arguments
    (`AdapterConfig` is their saved form) and `scheme` (a `ClassScheme`) the classes it predicts.
    It reads the base only through its public surface: `base_outputs`, `adapter_matrix`,
    `adapter_feature_names` and `seed`."""

    def __init__(self, base: LineClassifier, *, booster: BoosterParams = DEFAULT_ADAPTER.booster,
                 current_script_weight: float = DEFAULT_ADAPTER.current_script_weight,
                 compact: bool = DEFAULT_ADAPTER.compact, max_rows: int = DEFAULT_ADAPTER.max_rows,
                 sure_p: float = DEFAULT_ADAPTER.sure_p, anchor_weight: float = DEFAULT_ADAPTER.anchor_weight,
                 anchor_p: float = DEFAULT_ADAPTER.anchor_p, max_anchors: int = DEFAULT_ADAPTER.max_anchors,
                 follow_temperature: float = DEFAULT_ADAPTER.follow_temperature,
                 margin_floor: float = DEFAULT_ADAPTER.margin_floor,
                 hessian_floor: float = DEFAULT_ADAPTER.hessian_floor, agreement: bool = DEFAULT_ADAPTER.agreement,
                 agreement_prior: float = DEFAULT_ADAPTER.agreement_prior,
                 min_follow: int = DEFAULT_ADAPTER.min_follow, min_share: float = DEFAULT_ADAPTER.min_share,
                 scheme: ClassScheme = BUILTIN_SCHEME, n_jobs: int | None = None):
        self.base = base
        self.booster = booster
        self.current_script_weight = current_script_weight
        self.compact = compact
        self.max_rows = max_rows
        self.sure_p = sure_p
        self.anchor_weight = anchor_weight
        self.anchor_p = anchor_p
        self.max_anchors = max_anchors
        self.follow_temperature = follow_temperature
        self.margin_floor = margin_floor
        self.hessian_floor = hessian_floor
        self.agreement = agreement
        self.agreement_prior = agreement_prior
        self.min_follow = min_follow
        self.min_share = min_share
        self.scheme = scheme
        self.n_jobs = n_jobs

    @classmethod
    def from_config(cls, base: LineClassifier, config: AdapterConfig | None = None, *,
                    scheme: ClassScheme | None = None, n_jobs: int | None = None) -> "LineAdapter":
        config = config or AdapterConfig()
        return cls(base, **{f.name: getattr(config, f.name) for f in fields(config)},
                   scheme=scheme or BUILTIN_SCHEME, n_jobs=n_jobs)

    @property
    def config(self) -> AdapterConfig:
        return AdapterConfig(**{f.name: getattr(self, f.name) for f in fields(AdapterConfig)})

    @property
    def _threads(self) -> int:
        return self.n_jobs or default_n_jobs()

    def _columns(self) -> np.ndarray:
        names = self.base.adapter_feature_names()
        return compact_columns(names) if self.compact else np.arange(len(names))

    def _feature_names(self) -> list[str]:
        names = [self.base.adapter_feature_names()[i] for i in self.columns_]
        return names + [f"agree_{c}" for c in self.scheme.classes] if self.agreement else names

    def _margin(self, proba: np.ndarray, follows: np.ndarray) -> np.ndarray:
        """The boosting's starting scores: the base's log-probabilities, tempered on kinds that follow people."""
        margin = log_margin(proba, floor=self.margin_floor)
        margin[follows] /= self.follow_temperature
        return margin

    def _new_class_outside_follow_kinds(self, raw: np.ndarray, follows: np.ndarray) -> np.ndarray:
        """A class only people's labels define is suggested only on kinds people consistently label with
        it: scene headings look like shot lines to the trees (capitals, action margin), but nobody called
        one a shot, and the base says nothing of a class it does not know."""
        new = np.array([not self.scheme.members(c) for c in self.scheme.classes])
        if new.any():
            raw[np.ix_(~follows, new)] = np.log(self.margin_floor)
        return raw

    def _kinds(self, X: pd.DataFrame, proba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each line's kind key and the scheme class the base gives it (`proba`: the base's, for X)."""
        return kind_keys(X, proba.argmax(axis=1)), self.scheme.base_proba(proba).argmax(axis=1)

    def _matrix(self, X: pd.DataFrame, outputs: BaseOutputs, rows: np.ndarray | None,
                shares: np.ndarray | None) -> np.ndarray:
        M = self.base.adapter_matrix(X, outputs, rows, self.columns_)
        return M if shares is None else np.hstack([M, shares if rows is None else shares[rows]])

    def fit(self, X: pd.DataFrame, y, sample_weight=None, *, outputs: BaseOutputs | None = None,
            current_script=None) -> "LineAdapter":
        """Fit on labeled lines (labels of one kind are enough: the base supplies the others).
        `outputs` (the base's, for X) skips recomputing them; `current_script` (a script_id)
        multiplies its lines' weight by `current_script_weight`."""
        validate_lines(X)
        X = X.reset_index(drop=True)
        codes = self.scheme.encode(y, len(X))
        check_trainable(codes, what="training the line adapter", min_classes=1)
        outputs = outputs if outputs is not None else self.base.base_outputs(X)
        proba = self.scheme.base_proba(outputs.proba)
        weights = as_weights(sample_weight, len(X))
        weights = np.ones(len(X), dtype=np.float32) if weights is None else weights.copy()
        in_script = X["script_id"].to_numpy() == current_script if current_script is not None else np.zeros(len(X), bool)
        weights[in_script] *= self.current_script_weight
        seed = self.base.seed
        shares, follows = None, np.zeros(len(X), bool)
        if self.agreement:
            # Kinds only where they are read (labeled lines, and the script's lines that may be anchors):
            # a snapshot at 20k labels holds 100k+ context lines.
            needed = np.flatnonzero((codes >= 0) | in_script)
            keys_n, target_n = self._kinds(X.iloc[needed], outputs.proba[needed])
            self.agreement_ = KindAgreement.fit(keys_n, codes[needed], len(self.scheme.classes),
                                                prior=self.agreement_prior, min_follow=self.min_follow,
                                                min_share=self.min_share)
            shares = np.zeros((len(X), len(self.scheme.classes)), dtype=np.float32)
            shares[needed], _ = self.agreement_.features(keys_n, target_n, codes[needed])  # leave-one-out
            _, follows[needed] = self.agreement_.features(keys_n, target_n)
            weights[needed] *= self.agreement_.label_weights(keys_n, codes[needed]).astype(np.float32)
        rows, row_weights = sample_rows(codes, proba, weights, in_script, max_rows=self.max_rows,
                                        sure_p=self.sure_p, seed=seed)
        targets = codes[rows]
        if self.anchor_weight > 0:
            anchors, anchor_codes, scale = anchor_rows(codes, proba, in_script, min_p=self.anchor_p,
                                                       max_rows=self.max_anchors, seed=seed, exclude=follows)
            rows = np.concatenate([rows, anchors])
            targets = np.concatenate([targets, anchor_codes])
            row_weights = np.concatenate([row_weights, (self.anchor_weight * scale).astype(np.float32)])
        self.columns_ = self._columns()
        self.feature_names_ = self._feature_names()
        M = self._matrix(X, outputs, rows, shares)
        # Only rows of a kind people consistently relabel get the hessian floor: elsewhere a near-certain
        # base keeps its tiny hessian, so two dissenting labels cannot grow a leaf against it.
        floor = np.where(follows[rows], self.hessian_floor, 0.0) if self.agreement else \
            np.full(len(rows), self.hessian_floor)
        self.booster_ = train_booster(
            M, targets, row_weights, self.booster, n_jobs=self._threads, seed=seed,
            base_margin=self._margin(proba[rows], follows[rows]), feature_names=self.feature_names_,
            num_class=len(self.scheme.classes), hessian_floor=floor,
        )
        self.classes_ = np.array(self.scheme.classes, dtype=object)
        return self

    def predict_proba(self, X: pd.DataFrame, *, outputs: BaseOutputs | None = None) -> np.ndarray:
        """(n, len(scheme.classes)) probabilities, columns in `classes_` order."""
        if not hasattr(self, "booster_"):
            raise ModelLoadError("this adapter is not trained yet: call fit() or load() first")
        X = X.reset_index(drop=True)
        k = len(self.scheme.classes)
        if len(X) == 0:
            return np.zeros((0, k), dtype=np.float32)
        outputs = outputs if outputs is not None else self.base.base_outputs(X)
        shares, follows = None, np.zeros(len(X), bool)
        if self.agreement:
            keys, base_target = self._kinds(X, outputs.proba)
            shares, follows = self.agreement_.features(keys, base_target)
        M = self._matrix(X, outputs, None, shares)
        raw = booster_margin(self.booster_, M, n_jobs=self._threads,
                             base_margin=self._margin(self.scheme.base_proba(outputs.proba), follows),
                             feature_names=self.feature_names_)
        return softmax(self._new_class_outside_follow_kinds(raw, follows))

    def predict(self, X: pd.DataFrame, *, outputs: BaseOutputs | None = None) -> np.ndarray:
        return self.classes_[self.predict_proba(X, outputs=outputs).argmax(axis=1)]

    def save(self, directory: str | Path) -> Path:
        """Write the adapter (adapter.ubj + adapter.json) to `directory`; the base is saved separately."""
        if not hasattr(self, "booster_"):
            raise ModelLoadError("this adapter is not trained yet: nothing to save")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.booster_.save_model(directory / "adapter.ubj")
        meta = {"kind": "scriptlabel-line-adapter", "format_version": FORMAT_VERSION,
                "labels": list(self.scheme.classes), "scheme": self.scheme.to_dict(),
                "config": self.config.to_dict(), "features": self.feature_names_}
        if self.agreement:
            meta["agreement"] = self.agreement_.to_dict()
        write_meta(directory, "adapter.json", meta)
        return directory

    @classmethod
    def load(cls, directory: str | Path, base: LineClassifier, *, n_jobs: int | None = None) -> "LineAdapter":
        """An adapter saved by `save`; one saved before class schemes loads as the 7 built-in labels."""
        directory = Path(directory)
        path = directory / "adapter.json"
        if not path.exists():
            raise ModelLoadError(f"{directory}: no adapter.json, so no saved adapter here; retrain it")
        try:
            meta = json.loads(path.read_text())
            config = AdapterConfig.from_dict(meta["config"])
            names = list(meta["features"])
            scheme = ClassScheme.from_dict(meta.get("scheme"))
            agreement = KindAgreement.from_dict(meta["agreement"]) if config.agreement else None
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
            raise ModelLoadError(f"{path}: corrupt adapter description ({exc}); retrain the adapter") from exc
        if meta.get("kind") != "scriptlabel-line-adapter" or meta.get("labels") != list(scheme.classes):
            raise ModelLoadError(f"{path}: not a line adapter for labels {list(scheme.classes)}; retrain it")
        adapter = cls.from_config(base, config, scheme=scheme, n_jobs=n_jobs)
        adapter.columns_ = adapter._columns()
        if agreement is not None:
            adapter.agreement_ = agreement
        if names != adapter._feature_names():
            raise ModelLoadError(f"{path}: the adapter was trained on another base model's features; retrain it")
        adapter.booster_ = load_booster(directory / "adapter.ubj")
        adapter.feature_names_ = names
        adapter.classes_ = np.array(scheme.classes, dtype=object)
        return adapter
