"""Calibrated confidence for the line model: calibrators, their choice by grouped CV, ECE, reliability.

A probability the app shows should mean what it says: of the lines shown at 90%, about 90% are right.
The base model's raw probabilities are not (its stacked boosters are overconfident on scripts it has
never seen), and neither is the adapter's after a retrain on a handful of labels. So:

- the base model gets a calibrator fit on *out-of-fold* probabilities (every line predicted by a
  model that never saw its script), chosen among temperature scaling, vector scaling, Dirichlet
  calibration and one-vs-rest isotonic regression by grouped cross-validation of the calibrator
  itself (`choose_calibrator`), saved as `calibration.json` in the model folder;
- an adapter (boosted over that base from a database's labels) gets a temperature fit on the same
  out-of-fold data, saved in the same file: its output has the base's scale and shape, and a
  temperature keeps every suggestion while correcting how sure it says it is.

Every calibrator is a small JSON document (no pickle) and maps probabilities (n, k) to probabilities.
Scores follow Guo et al. (2017): top-label ECE over 15 equal-width bins.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np
import pandas as pd
from scipy.optimize import minimize, minimize_scalar

from store.types import LABELS, ScriptlabelError

N_BINS = 15
EPS = 1e-7
FORMAT_VERSION = 1
KIND = "scriptlabel-calibration"
FILE_NAME = "calibration.json"


class CalibrationError(ScriptlabelError):
    """A calibration file is unreadable, or the data given cannot fit a calibrator."""


# --- scores ------------------------------------------------------------------------------------


def _as_proba(proba) -> np.ndarray:
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim != 2:
        raise CalibrationError(f"probabilities must be a 2-d array (lines × classes), got shape {p.shape}")
    return p


def top_label(proba) -> tuple[np.ndarray, np.ndarray]:
    """(confidence, predicted class) of each row: the largest probability and its index."""
    p = _as_proba(proba)
    pred = p.argmax(axis=1)
    return p[np.arange(len(p)), pred], pred


def reliability_table(confidence, correct, *, n_bins: int = N_BINS) -> pd.DataFrame:
    """Equal-width confidence bins: lo, hi, n, confidence (mean shown), accuracy (share right), gap."""
    conf = np.asarray(confidence, dtype=np.float64)
    right = np.asarray(correct, dtype=np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # Right-closed bins, as in Guo et al.: 1.0 falls in the last one, 0.0 in the first.
    which = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, n_bins - 1)
    rows = []
    for b in range(n_bins):
        m = which == b
        n = int(m.sum())
        rows.append({"lo": edges[b], "hi": edges[b + 1], "n": n,
                     "confidence": float(conf[m].mean()) if n else np.nan,
                     "accuracy": float(right[m].mean()) if n else np.nan})
    table = pd.DataFrame(rows)
    table["gap"] = table["accuracy"] - table["confidence"]
    return table


def ece_from_confidence(confidence, correct, *, n_bins: int = N_BINS) -> float:
    """Expected calibration error: the n-weighted mean |accuracy − confidence| over the bins."""
    table = reliability_table(confidence, correct, n_bins=n_bins)
    total = table["n"].sum()
    if total == 0:
        return float("nan")
    used = table[table["n"] > 0]
    return float((used["n"] * (used["accuracy"] - used["confidence"]).abs()).sum() / total)


def ece(proba, codes, *, n_bins: int = N_BINS) -> float:
    """Top-label ECE of probabilities `proba` against true class indices `codes`."""
    conf, pred = top_label(proba)
    return ece_from_confidence(conf, pred == np.asarray(codes), n_bins=n_bins)


def nll(proba, codes) -> float:
    p = _as_proba(proba)
    codes = np.asarray(codes)
    return float(-np.log(np.clip(p[np.arange(len(p)), codes], EPS, 1.0)).mean())


def accuracy_at_coverage(proba, codes, coverage: float = 0.9) -> float:
    """Accuracy on the most confident `coverage` share of rows (what accepting them unseen would cost)."""
    conf, pred = top_label(proba)
    n = max(1, int(round(coverage * len(conf))))
    order = np.argsort(-conf, kind="stable")[:n]
    return float((pred[order] == np.asarray(codes)[order]).mean())


def scores(proba, codes, *, n_bins: int = N_BINS) -> dict:
    """ECE, accuracy, accuracy on the most confident 90%, mean confidence, NLL, and n."""
    conf, pred = top_label(proba)
    codes = np.asarray(codes)
    return {"n": int(len(codes)), "ece": round(ece(proba, codes, n_bins=n_bins), 4),
            "accuracy": round(float((pred == codes).mean()), 4) if len(codes) else None,
            "accuracy_at_90": round(accuracy_at_coverage(proba, codes, 0.9), 4) if len(codes) else None,
            "mean_confidence": round(float(conf.mean()), 4) if len(codes) else None,
            "nll": round(nll(proba, codes), 4) if len(codes) else None,
            "errors_above_0.9": int(((conf > 0.9) & (pred != codes)).sum())}


# --- calibrators ---------------------------------------------------------------------------------


def _log(proba) -> np.ndarray:
    return np.log(np.clip(_as_proba(proba), EPS, 1.0))


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _weights(weights, n: int) -> np.ndarray:
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    return w / w.mean() if w.sum() > 0 else np.ones(n)


class Calibrator(Protocol):
    method: str

    def fit(self, proba, codes, weights=None) -> "Calibrator": ...

    def transform(self, proba) -> np.ndarray: ...

    def params(self) -> dict: ...


class Identity:
    """No change: what a model without calibration shows."""

    method = "identity"

    def fit(self, proba, codes, weights=None) -> "Identity":
        return self

    def transform(self, proba) -> np.ndarray:
        return _as_proba(proba).copy()

    def params(self) -> dict:
        return {}

    @classmethod
    def from_params(cls, params: dict) -> "Identity":
        return cls()


class Temperature:
    """One temperature T over the log-probabilities: softmax(log p / T). Keeps every argmax."""

    method = "temperature"

    def __init__(self, temperature: float = 1.0):
        self.temperature = float(temperature)

    def fit(self, proba, codes, weights=None) -> "Temperature":
        logp, codes = _log(proba), np.asarray(codes)
        w = _weights(weights, len(codes))

        def loss(log_t: float) -> float:
            z = logp / np.exp(log_t)
            z = z - z.max(axis=1, keepdims=True)
            lse = np.log(np.exp(z).sum(axis=1))
            return float((w * (lse - z[np.arange(len(z)), codes])).mean())

        self.temperature = float(np.exp(minimize_scalar(loss, bounds=(-3.0, 3.0), method="bounded").x))
        return self

    def transform(self, proba) -> np.ndarray:
        return _softmax(_log(proba) / self.temperature)

    def params(self) -> dict:
        return {"temperature": self.temperature}

    @classmethod
    def from_params(cls, params: dict) -> "Temperature":
        return cls(float(params["temperature"]))


class _LinearOnLogits:
    """softmax(W · log p + b), fit by L-BFGS on the weighted NLL with an L2 pull towards identity."""

    method = "linear"
    full = False

    def __init__(self, W=None, b=None, reg: float = 1e-3):
        self.W = None if W is None else np.asarray(W, dtype=np.float64)
        self.b = None if b is None else np.asarray(b, dtype=np.float64)
        self.reg = reg

    def _unpack(self, theta: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        if self.full:
            return theta[:k * k].reshape(k, k), theta[k * k:]
        return np.diag(theta[:k]), theta[k:]

    def fit(self, proba, codes, weights=None):
        logp, codes = _log(proba), np.asarray(codes)
        n, k = logp.shape
        w = _weights(weights, n)
        onehot = np.eye(k)[codes]
        start = np.concatenate([np.eye(k).ravel() if self.full else np.ones(k), np.zeros(k)])
        identity = start.copy()

        def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
            W, b = self._unpack(theta, k)
            p = _softmax(logp @ W.T + b)
            value = float((w * -np.log(np.clip((p * onehot).sum(1), 1e-300, 1))).mean())
            g = (w[:, None] * (p - onehot)) / n  # d loss / d z
            gW, gb = g.T @ logp, g.sum(0)
            grad = np.concatenate([gW.ravel() if self.full else np.diag(gW), gb])
            diff = theta - identity
            return value + self.reg * float(diff @ diff), grad + 2 * self.reg * diff

        theta = minimize(loss, start, jac=True, method="L-BFGS-B", options={"maxiter": 500}).x
        self.W, self.b = self._unpack(theta, k)
        return self

    def transform(self, proba) -> np.ndarray:
        return _softmax(_log(proba) @ self.W.T + self.b)

    def params(self) -> dict:
        return {"W": np.round(self.W, 6).tolist(), "b": np.round(self.b, 6).tolist(), "reg": self.reg}

    @classmethod
    def from_params(cls, params: dict):
        return cls(params["W"], params["b"], float(params.get("reg", 1e-3)))


class VectorScaling(_LinearOnLogits):
    """A scale and a bias per class over the log-probabilities (Guo et al.'s vector scaling)."""

    method = "vector"
    full = False


class Dirichlet(_LinearOnLogits):
    """A full linear map over the log-probabilities (Kull et al.'s Dirichlet calibration), kept near identity."""

    method = "dirichlet"
    full = True


class Isotonic:
    """One-vs-rest isotonic regression per class, renormalized (scikit-learn's multi-class recipe)."""

    method = "isotonic"

    def __init__(self, knots: Sequence[tuple[Sequence[float], Sequence[float]]] | None = None):
        self.knots = None if knots is None else [(np.asarray(x, float), np.asarray(y, float)) for x, y in knots]

    def fit(self, proba, codes, weights=None) -> "Isotonic":
        from sklearn.isotonic import IsotonicRegression

        p, codes = _as_proba(proba), np.asarray(codes)
        w = _weights(weights, len(codes))
        self.knots = []
        for c in range(p.shape[1]):
            iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
            iso.fit(p[:, c], (codes == c).astype(float), sample_weight=w)
            self.knots.append((iso.X_thresholds_, iso.y_thresholds_))
        return self

    def transform(self, proba) -> np.ndarray:
        p = _as_proba(proba)
        out = np.column_stack([np.interp(p[:, c], x, y) if len(x) else p[:, c]
                               for c, (x, y) in enumerate(self.knots)])
        out = np.clip(out, 1e-6, 1.0)
        return out / out.sum(axis=1, keepdims=True)

    def params(self) -> dict:
        return {"knots": [[x.tolist(), y.tolist()] for x, y in self.knots]}

    @classmethod
    def from_params(cls, params: dict) -> "Isotonic":
        return cls([tuple(pair) for pair in params["knots"]])


class TopLabelIsotonic:
    """Isotonic regression of "the suggestion is right" on the top probability (top-label calibration,
    Gupta & Ramdas 2022); the other classes share the rest in their old proportions. The suggestion
    never changes; only how sure it is said to be."""

    method = "toplabel"

    def __init__(self, x: Sequence[float] | None = None, y: Sequence[float] | None = None):
        self.x = None if x is None else np.asarray(x, float)
        self.y = None if y is None else np.asarray(y, float)

    def fit(self, proba, codes, weights=None) -> "TopLabelIsotonic":
        from sklearn.isotonic import IsotonicRegression

        conf, pred = top_label(proba)
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
        iso.fit(conf, (pred == np.asarray(codes)).astype(float), sample_weight=_weights(weights, len(conf)))
        self.x, self.y = iso.X_thresholds_, iso.y_thresholds_
        return self

    def transform(self, proba) -> np.ndarray:
        p = _as_proba(proba)
        conf, pred = top_label(p)
        rows = np.arange(len(p))
        new = np.clip(np.interp(conf, self.x, self.y), 1e-6, 1 - 1e-6)
        rest = np.clip(1.0 - conf, 1e-12, None)
        out = p * ((1.0 - new) / rest)[:, None]
        out[rows, pred] = new
        # where the old top took everything, the rest is shared evenly
        empty = (1.0 - conf) < 1e-12
        if empty.any():
            out[empty] = ((1.0 - new[empty]) / (p.shape[1] - 1))[:, None]
            out[rows[empty], pred[empty]] = new[empty]
        flipped = out.argmax(axis=1) != pred  # a top pulled below another class: keep that line as it was
        out[flipped] = p[flipped]
        return out

    def params(self) -> dict:
        return {"x": self.x.tolist(), "y": self.y.tolist()}

    @classmethod
    def from_params(cls, params: dict) -> "TopLabelIsotonic":
        return cls(params["x"], params["y"])


METHODS = {cls.method: cls for cls in (Identity, Temperature, VectorScaling, Dirichlet, Isotonic, TopLabelIsotonic)}
ALL_METHODS = tuple(METHODS)


def make_calibrator(method: str) -> Calibrator:
    if method not in METHODS:
        raise CalibrationError(f"unknown calibration method {method!r}: use one of {', '.join(METHODS)}")
    return METHODS[method]()


# --- choosing a calibrator by grouped cross-validation ----------------------------------------


def calibrator_cv(proba, codes, groups, *, methods: Sequence[str] = ALL_METHODS, folds: int = 5, weights=None,
                  strata=None, seed: int = 0) -> dict[str, dict]:
    """Each method fit on some scripts' out-of-fold probabilities and scored on the others' (pooled, and
    per stratum — e.g. the kind of source — as `by_stratum` and `worst_ece` when `strata` is given)."""
    from models.evaluation import grouped_folds

    p, codes, groups = _as_proba(proba), np.asarray(codes), np.asarray(groups)
    if len(np.unique(groups)) < 2:
        raise CalibrationError("choosing a calibrator needs lines of at least 2 scripts")
    held = {m: np.zeros_like(p) for m in methods}
    for train, test in grouped_folds(groups, n_splits=folds, seed=seed):
        w = None if weights is None else np.asarray(weights)[train]
        for m in methods:
            held[m][test] = make_calibrator(m).fit(p[train], codes[train], w).transform(p[test])
    out = {m: {**scores(held[m], codes), "reliability": reliability_rows(held[m], codes)} for m in methods}
    if strata is not None:
        strata = np.asarray(strata)
        for m in methods:
            out[m]["by_stratum"] = {str(s): round(ece(held[m][strata == s], codes[strata == s]), 4)
                                    for s in np.unique(strata)}
            out[m]["worst_ece"] = max(out[m]["by_stratum"].values())
    return out


def reliability_rows(proba, codes, *, n_bins: int = N_BINS) -> list[list[float]]:
    """The non-empty reliability bins as [mean confidence, accuracy, n] (compact, for JSON)."""
    conf, pred = top_label(proba)
    table = reliability_table(conf, pred == np.asarray(codes), n_bins=n_bins)
    return [[round(r.confidence, 5), round(r.accuracy, 5), int(r.n)] for r in table.itertuples() if r.n]


def choose_calibrator(proba, codes, groups, *, methods: Sequence[str] | None = None, folds: int = 5,
                      weights=None, strata=None) -> tuple[Calibrator, dict]:
    """The method with the lowest held-out ECE — the worst of the strata's when `strata` is given, so
    every kind of script is calibrated, not only their mix — refit on every line given.

    A method whose held-out accuracy falls more than 0.0005 below the raw model's (it changes
    suggestions for the worse) is not chosen. ECE is noisy: among methods within 0.001 of the best,
    the lowest held-out NLL wins.
    """
    methods = tuple(methods or ALL_METHODS)
    if "identity" not in methods:
        methods = ("identity",) + methods
    cv = calibrator_cv(proba, codes, groups, methods=methods, folds=folds, weights=weights, strata=strata)
    key = "worst_ece" if strata is not None else "ece"
    allowed = [m for m in methods if cv[m]["accuracy"] >= cv["identity"]["accuracy"] - 0.0005]
    floor = min(cv[m][key] for m in allowed)
    best = min((m for m in allowed if cv[m][key] <= floor + 0.001), key=lambda m: cv[m]["nll"])
    return make_calibrator(best).fit(proba, codes, weights), cv


# --- persistence -----------------------------------------------------------------------------


def model_fingerprint(directory: str | Path) -> str:
    """A hash of the model's own files (not the calibration): a calibration only fits the model it was made for."""
    directory = Path(directory)
    digest = hashlib.sha1()
    for path in sorted(directory.rglob("*")):
        relative = path.relative_to(directory)
        if relative == Path(FILE_NAME) or not path.is_file() or any(p.startswith(".") for p in relative.parts):
            continue
        digest.update(str(relative).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class SavedCalibration:
    calibrator: Calibrator  # for the base model's own probabilities
    report: dict
    adapter: Calibrator | None = None  # for the outputs of adapters boosted over this base (a temperature)


def to_document(calibrator: Calibrator, *, report: dict | None = None, fingerprint: str | None = None,
                adapter: Calibrator | None = None) -> dict:
    doc = {"kind": KIND, "format_version": FORMAT_VERSION, "labels": list(LABELS), "method": calibrator.method,
           "params": calibrator.params(), "model_fingerprint": fingerprint, "report": report or {}}
    if adapter is not None:
        doc["adapter"] = {"method": adapter.method, "params": adapter.params()}
    return doc


def from_document(doc: dict, *, where: str = "calibration") -> Calibrator:
    if not isinstance(doc, dict) or doc.get("kind") != KIND:
        raise CalibrationError(f"{where}: not a scriptlabel calibration file; refit it "
                               "(uv run python -m labeling.corpus.calibrate --model DIR)")
    if doc.get("labels") != list(LABELS):
        raise CalibrationError(f"{where}: calibrated for labels {doc.get('labels')}, not {list(LABELS)}; refit it")
    if int(doc.get("format_version", -1)) > FORMAT_VERSION:
        raise CalibrationError(f"{where}: written by a newer scriptlabel; upgrade")
    try:
        return METHODS[doc["method"]].from_params(doc["params"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CalibrationError(f"{where}: incomplete calibration ({exc}); refit it "
                               "(uv run python -m labeling.corpus.calibrate --model DIR)") from exc


def save_calibration(directory: str | Path, calibrator: Calibrator, *, report: dict | None = None,
                     adapter: Calibrator | None = None, bind_to_model: bool = True) -> Path:
    """Write `calibration.json` into a model folder (atomically: a temporary file renamed)."""
    directory = Path(directory)
    doc = to_document(calibrator, report=report, adapter=adapter,
                      fingerprint=model_fingerprint(directory) if bind_to_model else None)
    path = directory / FILE_NAME
    tmp = directory / f".{FILE_NAME}.tmp"
    tmp.write_text(json.dumps(doc, indent=1))
    tmp.replace(path)
    return path


def load_calibration(directory: str | Path) -> SavedCalibration | None:
    """The calibration saved in a model folder; None when there is none.

    Raises CalibrationError when the file is unreadable or was fit for other model files.
    """
    path = Path(directory) / FILE_NAME
    if not path.exists():
        return None
    try:
        doc = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError, OSError) as exc:
        raise CalibrationError(f"{path}: not valid JSON ({exc}); refit it "
                               "(uv run python -m labeling.corpus.calibrate --model DIR)") from exc
    calibrator = from_document(doc, where=str(path))
    expected = doc.get("model_fingerprint")
    if expected and expected != model_fingerprint(directory):
        raise CalibrationError(f"{path}: fit for other model files than the ones in {directory} (the model was "
                               "rebuilt); refit it: uv run python -m labeling.corpus.calibrate --model "
                               f"{directory}")
    adapter = None
    if isinstance(doc.get("adapter"), dict):
        adapter = from_document({**doc, **doc["adapter"], "kind": KIND}, where=f"{path} (adapter)")
    return SavedCalibration(calibrator, doc.get("report") or {}, adapter)
