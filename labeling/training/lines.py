"""The line model in the labeling loop: the shipped base model plus a per-database adapter.

`train_line_version` (run by the background worker) fits a fresh adapter on a snapshot of the
labels, writes it completely into a temporary folder, renames it into place and only then makes it
current; `predict_scripts` re-predicts with whatever is current. Base-model outputs per script are
cached on disk (they depend only on the shipped model and the script's lines).
"""

from __future__ import annotations

import hashlib
import os
import uuid
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
from sqlite_utils import Database

from labeling.training.saving import save_version
from models.evaluation import evaluate_lines as score_lines
from models.lines import calibration as calib
from models.lines.classifier import (BUILTIN_SCHEME, BaseOutputs, ClassScheme, LineAdapter, LineClassifier,
                                     ModelLoadError, fit_adapter)
from store import labels as label_store
from store import models as model_store
from store import scripts as script_store
from store.db import data_dir
from store.types import ScriptlabelError

PRETRAINED_DIR = Path(__file__).resolve().parents[2] / "models" / "pretrained" / "lines"


def base_dir() -> Path:
    """The shipped base model; `$SCRIPTLABEL_LINE_BASE` points at another one (e.g. a freshly built one)."""
    return Path(os.environ.get("SCRIPTLABEL_LINE_BASE") or PRETRAINED_DIR)
PRETRAINED_VERSION = 0  # predictions of the shipped model carry version 0


class PretrainedModelMissing(ScriptlabelError):
    pass


def project_scheme(db: Database) -> ClassScheme:
    """The classes this database's line model predicts (models.lines.scheme.ClassScheme).

    Every retrain fits its adapter on them and every prediction is stored in them. The project's label
    scheme (merged and new classes, store/scheme.py) is read here; a database without one uses the 7
    built-in labels."""
    from store.scheme import load_scheme

    scheme = load_scheme(db)
    if scheme.is_full:
        return BUILTIN_SCHEME
    return ClassScheme.of(scheme.names, scheme.class_map())


def load_base() -> LineClassifier:
    return _load_base(str(base_dir()))


@lru_cache(maxsize=2)
def _load_base(directory: str) -> LineClassifier:
    path = Path(directory)
    if not path.is_dir() or not any(path.glob("*.json")):
        raise PretrainedModelMissing(
            f"{path}: the pretrained line model is missing; rebuild it with `uv run python -m labeling.corpus.build_pretrained`")
    return LineClassifier.load(path)


def _base_fingerprint() -> str:
    directory = base_dir()
    digest = hashlib.sha1(str(directory).encode())
    for file in sorted(directory.glob("*")):
        if file.name == calib.FILE_NAME:
            continue  # the cache holds raw base outputs: refitting the calibration does not change them
        digest.update(file.name.encode())
        digest.update(str(file.stat().st_size).encode())
        digest.update(str(int(file.stat().st_mtime)).encode())
    return digest.hexdigest()[:12]


def script_frame(db: Database, script_id: int) -> pd.DataFrame:
    return script_store.lines_frame(db, script_id)


def base_outputs(db: Database, frame: pd.DataFrame) -> BaseOutputs:
    """The base model's outputs for one script's lines, from the disk cache when unchanged."""
    key = hashlib.sha1(pd.util.hash_pandas_object(
        frame[["line_no", "page", "text", "indent", "gap_before", "x0", "y0", "x1", "y1"]], index=False
    ).to_numpy().tobytes()).hexdigest()[:16]
    cache = data_dir(db) / "cache" / f"base-{_base_fingerprint()}-{key}.npz"
    if cache.exists():
        try:
            with np.load(cache, allow_pickle=False) as data:
                if "context" in data:
                    return BaseOutputs(**{k: data[k] for k in ("dense", "stage1", "proba", "context")})
        except (OSError, ValueError, KeyError):
            pass
        cache.unlink(missing_ok=True)  # unreadable, or written before the adapter's context was cached
    outputs = load_base().base_outputs(frame.reset_index(drop=True))
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(cache.name + f".{uuid.uuid4().hex}.tmp.npz")
    np.savez(tmp, **outputs.arrays())
    tmp.replace(cache)
    _drop_stale_cache(cache.parent)
    return outputs


def _drop_stale_cache(folder: Path) -> None:
    """Cached outputs of a base model that is no longer the one in use are never read again: remove them."""
    current = f"base-{_base_fingerprint()}-"
    for stale in folder.glob("base-*.npz"):
        if not stale.name.startswith(current) and ".tmp." not in stale.name:
            stale.unlink(missing_ok=True)


# --- calibrated confidence -------------------------------------------------------------------
# What the app shows, the queue ranks by and exports carry is calibrated (models/lines/calibration.py):
# the base model's probabilities through the calibrator in its `calibration.json`, an adapter's
# through the temperature saved beside it, both fit on out-of-fold predictions of the base recipe
# over whole held-out scripts. A temperature fit at each retrain on the adapter's own out-of-fold
# labels was tried and made things worse (bench/calibration.py): the labeled lines are the ones the
# queue picked because they are hard, so they teach it to doubt the easy lines it is right about.


@dataclass(frozen=True)
class BaseCalibration:
    calibrator: object  # for the base model's probabilities (Identity when none is fitted)
    adapter: object  # for an adapter's probabilities (a temperature; Identity when none)
    fitted: bool
    warning: str | None = None
    report: dict | None = None


def base_calibration() -> BaseCalibration:
    """The base model's calibration; identity (with a warning) when missing or not for this model."""
    directory = base_dir()
    path = directory / calib.FILE_NAME
    stamp = path.stat().st_mtime_ns if path.exists() else 0
    return _base_calibration(str(directory), stamp, _base_fingerprint())


@lru_cache(maxsize=4)
def _base_calibration(directory: str, stamp: int, fingerprint: str) -> BaseCalibration:
    try:
        saved = calib.load_calibration(directory)
    except calib.CalibrationError as exc:
        warnings.warn(str(exc), stacklevel=3)
        return BaseCalibration(calib.Identity(), calib.Identity(), False, warning=str(exc))
    if saved is None:
        return BaseCalibration(calib.Identity(), calib.Identity(), False, warning=(
            f"{directory}: the line model has no calibration.json, so its confidence is not calibrated; "
            f"fit one with: uv run python -m labeling.corpus.calibrate --model {directory}"))
    adapter = saved.adapter or (saved.calibrator if saved.calibrator.method in ("temperature", "identity")
                                else calib.Identity())
    return BaseCalibration(saved.calibrator, adapter, True, report=saved.report)


def calibrated_base(proba: np.ndarray) -> np.ndarray:
    """The base model's probabilities as shown: through its calibration."""
    return base_calibration().calibrator.transform(proba).astype(np.float32)


def calibrated_adapter(proba: np.ndarray) -> np.ndarray:
    """An adapter's probabilities as shown: through the base model's adapter calibration."""
    return base_calibration().adapter.transform(proba).astype(np.float32)


@dataclass(frozen=True)
class CurrentLineModel:
    version: int  # 0 = the shipped pretrained model
    adapter: LineAdapter | None
    warning: str | None = None
    scheme: ClassScheme = BUILTIN_SCHEME  # the classes of the shipped model's suggestions (version 0)

    @property
    def classes(self) -> tuple[str, ...]:
        """The names of `proba_from_outputs`' columns."""
        return tuple(self.adapter.classes_) if self.adapter is not None else self.scheme.classes

    def proba_from_outputs(self, frame: pd.DataFrame, outputs: BaseOutputs) -> np.ndarray:
        """Calibrated probabilities for one script's lines, from the base model's outputs (columns: `classes`)."""
        if self.adapter is None:
            return self.scheme.base_proba(calibrated_base(outputs.proba))
        return calibrated_adapter(self.adapter.predict_proba(frame.reset_index(drop=True), outputs=outputs))

    def predict_proba(self, db: Database, frame: pd.DataFrame) -> np.ndarray:
        return self.proba_from_outputs(frame, base_outputs(db, frame))


def load_current(db: Database) -> CurrentLineModel:
    """The current line model; a version that fails to load is skipped for the one before it, with a warning."""
    base = load_base()
    warning = None
    versions = [v for v in reversed(model_store.list_versions(db, "lines"))]
    current = model_store.current_version(db, "lines")
    if current is not None:
        versions = [v for v in versions if v["version"] == current.version or (
            v["version"] < current.version and (v["promotion"] or {}).get("decision") != "candidate")]
    else:
        versions = []
    for row in versions:
        try:
            adapter = LineAdapter.load(row["path"], base)
            return CurrentLineModel(version=row["version"], adapter=adapter, warning=warning)
        except (ModelLoadError, OSError) as exc:
            warning = (f"line model version {row['version']} could not be loaded ({exc}); "
                       "using the previous version — retrain to replace it")
            warnings.warn(warning, stacklevel=2)
    return CurrentLineModel(version=PRETRAINED_VERSION, adapter=None, warning=warning, scheme=project_scheme(db))


def predict_scripts(db: Database, *, script_id: int | None = None, model: CurrentLineModel | None = None
                    ) -> list[dict]:
    """Store the current model's probabilities for every line (of one script); returns counts per script."""
    model = model or load_current(db)
    ids = [script_id] if script_id is not None else script_store.visible_script_ids(db)
    out = []
    for sid in ids:
        script_store.get_script(db, sid, include_unfinished=script_id is not None)  # ingest predicts before 'ready'
        frame = script_frame(db, sid)
        if frame.empty:
            continue
        proba = model.predict_proba(db, frame)
        model_store.save_predictions(db, model.version, frame["line_id"].tolist(), proba, classes=model.classes)
        labels = pd.Series(np.array(model.classes)[proba.argmax(axis=1)]).value_counts().to_dict()
        out.append({"script_id": sid, "version": model.version, "lines": int(len(frame)),
                    "predicted": {k: int(v) for k, v in labels.items()},
                    **({"warning": model.warning} if model.warning else {})})
    return out


def _predict_frame(base: LineClassifier, adapter: LineAdapter | None, frame: pd.DataFrame) -> np.ndarray:
    """The current model's raw probabilities for one script's lines (runs on a Dask worker)."""
    frame = frame.reset_index(drop=True)
    outputs = base.base_outputs(frame)
    return outputs.proba if adapter is None else adapter.predict_proba(frame, outputs=outputs)


def predict_scripts_on_cluster(db: Database, client, *, script_id: int | None = None,
                               model: CurrentLineModel | None = None, wave: int = 8) -> list[dict]:
    """`predict_scripts` with the model run on a Dask cluster's workers; the store stays here.

    The model is sent to every worker once; scripts go out in waves (bounded memory here) and their
    probabilities are written into the local database as they come back.
    """
    model = model or load_current(db)
    base = client.scatter(load_base(), broadcast=True)
    adapter = client.scatter(model.adapter, broadcast=True) if model.adapter is not None else None
    ids = [script_id] if script_id is not None else script_store.visible_script_ids(db)
    out = []
    for start in range(0, len(ids), wave):
        frames = {sid: script_frame(db, sid) for sid in ids[start:start + wave]}
        futures = {sid: client.submit(_predict_frame, base, adapter, frame, pure=False)
                   for sid, frame in frames.items() if not frame.empty}
        for sid, future in futures.items():
            raw = future.result()  # calibrated here: the cluster only runs the boosters
            proba = model.scheme.base_proba(calibrated_base(raw)) if model.adapter is None else calibrated_adapter(raw)
            model_store.save_predictions(db, model.version, frames[sid]["line_id"].tolist(), proba,
                                         classes=model.classes)
            labels = pd.Series(np.array(model.classes)[proba.argmax(axis=1)]).value_counts().to_dict()
            out.append({"script_id": sid, "version": model.version, "lines": int(len(frames[sid])),
                        "predicted": {k: int(v) for k, v in labels.items()}, "on": "cluster"})
    return out


def labeled_snapshot(db: Database) -> tuple[pd.DataFrame, np.ndarray, list[int]]:
    """All lines of every script that has a human or imported label, with the label (None = context)."""
    labels = label_store.current_labels(db)
    scripts = sorted(set(labels["script_id"]) & set(script_store.visible_script_ids(db)))  # never an unfinished ingest
    frames = [script_frame(db, sid) for sid in scripts]
    if not frames:
        return pd.DataFrame(), np.array([], dtype=object), []
    frame = pd.concat(frames, ignore_index=True)
    y = frame["line_id"].map(labels.set_index("line_id")["label"]).to_numpy(dtype=object)
    return frame, y, scripts


def _latest_human_script(db: Database) -> int | None:
    return label_store.latest_human_label_script(db)


def _outputs_for(db: Database, frame: pd.DataFrame) -> BaseOutputs:
    return BaseOutputs.concat([base_outputs(db, frame[frame["script_id"] == sid]) for sid in frame["script_id"].unique()])


def progressive_metrics(db: Database) -> dict:
    """How right the suggestions were on the human labels given since the current version was made.

    These lines were not in the model's training data when it suggested them: an honest estimate of
    what annotators see (biased towards hard lines by the queue, which is why a random slice is mixed in).
    """
    current = model_store.current_version(db, "lines")
    after = int(current.metrics.get("last_event_id", 0)) if current is not None else 0
    outcomes = label_store.suggestion_outcomes(db, after_event=after)
    if outcomes.empty:
        return {}
    from store.scheme import load_scheme

    evaluation = score_lines(outcomes["label"].tolist(), outcomes["suggested"].tolist(),
                             scheme=load_scheme(db)).to_dict()
    scores = evaluation.get("project") or evaluation["full"]  # in the classes people label with
    return {"suggestion_accuracy": scores["accuracy"], "suggestion_eval": evaluation,
            "suggestion_n": int(len(outcomes))}


def train_line_version(db: Database, *, predict_all: bool = True, scheme: ClassScheme | None = None
                       ) -> tuple[int, int, dict]:
    """Fit a fresh adapter on a snapshot of all labels and make it current. Returns (version, n_labels, metrics).

    The script being labeled is re-predicted at once (from the probabilities the fit already computed
    for it) and what changed there is recorded (`metrics["changed"]`, the view's "v4: 13 suggestions
    changed to dialogue"); with `predict_all=False` the rest of the library is left to
    `repredict_library` (the worker does it after the run is reported done). `scheme`: the classes to
    predict (default: `project_scheme(db)`). `metrics["timings"]` says where the seconds went.
    """
    clock = _Clock()
    n_human = label_store.count_human_labels(db)
    last_event = label_store.max_event_id(db)
    frame, y, scripts = labeled_snapshot(db)
    if frame.empty:
        raise ScriptlabelError("no labeled lines yet: label some lines and train again")
    metrics = progressive_metrics(db)
    outputs = _outputs_for(db, frame)
    base = load_base()
    scheme = scheme or project_scheme(db)
    current_script = _latest_human_script(db)
    clock.lap("snapshot")
    adapter = fit_adapter(base, frame, y, outputs=outputs, current_script=current_script, scheme=scheme)
    codes = scheme.encode(y, len(y))
    labeled = codes >= 0
    fitted = adapter.predict_proba(frame.reset_index(drop=True), outputs=outputs)
    clock.lap("fit")
    metrics.update({
        "n_labeled_lines": int(labeled.sum()), "n_human_labels": int(n_human), "scripts": [int(s) for s in scripts],
        "last_event_id": int(last_event),
        "train_accuracy": float((fitted[labeled].argmax(1) == codes[labeled]).mean()),
        "calibration": {"method": base_calibration().adapter.method, **base_calibration().adapter.params()},
    })
    from labeling.training.promotion import decide_line_promotion

    promotion = decide_line_promotion(db, metrics=metrics, frame=frame, y=y, outputs=outputs, base=base,
                                      model=load_current(db), current_script=current_script, scheme=scheme)
    clock.lap("promotion")
    in_script = (frame["script_id"] == current_script).to_numpy() if current_script is not None else None
    if promotion["decision"] == "promoted" and in_script is not None and in_script.any():
        metrics["changed"] = suggestion_changes(db, frame[in_script], calibrated_adapter(fitted[in_script]),
                                                adapter.classes_)
    promoted = promotion["decision"] == "promoted"
    fast = promoted and not predict_all and in_script is not None and in_script.any()
    version = save_version(db, adapter.save, kind="lines", folder="lines", name="adapter", metrics=metrics,
                           n_labels=n_human, make_current=promoted and not fast, promotion=promotion)
    clock.lap("save")
    if not promoted:
        metrics["timings"] = clock.laps
        return version, n_human, metrics  # a candidate: the current version keeps making the suggestions
    model = CurrentLineModel(version=version, adapter=adapter)
    if fast:
        # The script being labeled, from the fit's own probabilities, becomes current in the same
        # transaction as the version: a view that sees the new version also sees its suggestions.
        sub = frame[in_script]
        with db.atomic():
            model_store.save_predictions(db, version, sub["line_id"].tolist(), calibrated_adapter(fitted[in_script]),
                                         classes=model.classes)
            model_store.set_current(db, version)
    elif predict_all:
        predict_scripts(db, model=model)
    clock.lap("predict")
    from labeling.sequences.grouping import rederive_sequences

    for sid in scripts if predict_all else [s for s in scripts if s == current_script]:
        rederive_sequences(db, sid)
    clock.lap("sequences")
    metrics["timings"] = clock.laps
    return version, n_human, metrics


class _Clock:
    """Seconds spent per step of a retrain (metrics["timings"])."""

    def __init__(self):
        import time

        self._now = time.perf_counter
        self._last = self._now()
        self.laps: dict[str, float] = {}

    def lap(self, name: str) -> None:
        now = self._now()
        self.laps[name] = round(now - self._last, 3)
        self._last = now


def suggestion_changes(db: Database, frame: pd.DataFrame, proba: np.ndarray, classes) -> dict:
    """How a new version's suggestions for one script's unlabeled lines differ from the ones shown now:
    {"script_id", "n", "to": {class: count}} (what the Label view announces)."""
    script_id = int(frame["script_id"].iloc[0])
    shown = model_store.latest_predictions(db, script_id).set_index("line_id")["label"]
    labeled = set(label_store.current_labels(db, script_id)["line_id"])
    new = pd.Series(np.asarray(classes, dtype=object)[proba.argmax(axis=1)], index=frame["line_id"].to_numpy())
    keep = [i for i in new.index if i not in labeled and i in shown.index]
    changed = new[keep][new[keep].to_numpy() != shown[keep].to_numpy()]
    return {"script_id": script_id, "n": int(len(changed)),
            "to": {str(k): int(v) for k, v in changed.value_counts().items()}}


def repredict_library(db: Database, version: int, *, progress=None, batch_lines: int = 20_000) -> dict:
    """Re-predict every ready script with line model `version`, the current script first, in batches.

    Stops cleanly when another version became current meanwhile (a newer retrain, a rollback): that
    version's own re-prediction takes over. Returns {"done", "total", "superseded"}.
    """
    from labeling.sequences.grouping import rederive_sequences

    current = model_store.current_version(db, "lines")
    if current is None or current.version != version:
        return {"done": 0, "total": 0, "superseded": True}
    model = load_current(db)
    first = _latest_human_script(db)
    remaining = [s for s in model_store.stale_prediction_scripts(db, version) if s != first]
    labeled = set(label_store.current_labels(db)["script_id"])
    total = len(remaining)
    done = 0
    for sid in remaining:
        now_current = model_store.current_version(db, "lines")
        if now_current is None or now_current.version != version:
            return {"done": done, "total": total, "superseded": True}
        predict_scripts(db, script_id=sid, model=model)
        if sid in labeled:
            rederive_sequences(db, sid)
        done += 1
        if progress:
            progress(done, total)
    return {"done": done, "total": total, "superseded": False}


def evaluate_lines(db: Database, *, folds: int = 5) -> dict:
    """Held-out scores on this database's labels, split by script (never by line): base vs base + adapter."""
    frame, y, scripts = labeled_snapshot(db)
    if len(scripts) < 2:
        raise ScriptlabelError(
            "evaluation splits by script and needs labeled lines in at least two scripts; "
            f"this database has {len(scripts)} — label lines of another script (or ingest a Fountain/FDX file)")
    from models.evaluation import grouped_folds

    outputs = _outputs_for(db, frame)
    labeled = np.array([isinstance(v, str) for v in y])
    classes = project_scheme(db)  # scored in the project's classes (store/scheme.py)
    names = np.array(classes.classes, dtype=object)
    base_pred = names[classes.base_proba(outputs.proba).argmax(1)]
    adapted_pred = base_pred.copy()
    groups = frame["script_id"].to_numpy()
    for train_idx, test_idx in grouped_folds(groups, n_splits=min(folds, len(scripts))):
        train_y = np.where(np.isin(np.arange(len(y)), train_idx), y, None)
        try:
            adapter = fit_adapter(load_base(), frame.iloc[train_idx], train_y[train_idx],
                                  outputs=outputs.take(train_idx), scheme=classes)
        except ScriptlabelError:
            continue  # a fold whose training part has a single class keeps the base predictions
        adapted_pred[test_idx] = names[
            adapter.predict_proba(frame.iloc[test_idx].reset_index(drop=True), outputs=outputs.take(test_idx))
            .argmax(1)]
    truth = y[labeled].astype(str)
    from store.scheme import load_scheme

    scheme = load_scheme(db)
    return {"split": "by script", "scripts": len(scripts), "labeled_lines": int(labeled.sum()),
            "base": score_lines(truth, base_pred[labeled], scheme=scheme).to_dict(),
            "adapted": score_lines(truth, adapted_pred[labeled], scheme=scheme).to_dict()}

