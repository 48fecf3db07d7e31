"""The line classifier: a heavy base model trained offline and a fast per-labeling-loop adapter.

This module is the front door; the parts live beside it, one concern each:

| module | what |
|---|---|
| `features` | the dense block: text look, script-relative layout, neighbours, reading state |
| `content` | linear softmax over hashed n-grams of the text |
| `sequence` | the BiLSTM sequence labeler over a script's lines (the only Keras import) |
| `base` | `LineClassifier`: content → stage 1 → stage 2 / sequence labeler, `BaseOutputs` |
| `adapter` | `LineAdapter`: the loop's retrain boosted on the base's log-probabilities |
| `agreement`, `scheme` | how people label each kind of line; a project's classes (`ClassScheme`) |
| `params` | hyper-parameters (`BoosterParams`, `LineModelConfig`, `AdapterConfig`...) |
| `folds`, `boosters`, `labels`, `persistence` | grouped inner folds, XGBoost helpers, label codes and errors, files |

Persistence: XGBoost's own UBJ files, the content weights as a sparse `.npz` of plain arrays, the
sequence labeler as a `.keras` file, and a JSON config; nothing is pickled.
"""

from __future__ import annotations

import pandas as pd

from models.lines.adapter import LineAdapter, adapter_matrix, compact_columns, log_margin, sample_rows
from models.lines.base import BaseOutputs, LineClassifier
from models.lines.boosters import booster_proba, load_booster, train_booster
from models.lines.content import ContentModel, content_matrix
from models.lines.folds import script_folds
from models.lines.labels import N_CLASSES, ModelLoadError, TrainingDataError, encode_labels
from models.lines.params import AdapterConfig, BoosterParams, ContentParams, LineModelConfig, default_n_jobs
from models.lines.persistence import FORMAT_VERSION
from models.lines.scheme import BUILTIN_SCHEME, ClassScheme, SchemeError
from models.lines.sequence import SequenceParams

__all__ = [
    "BUILTIN_SCHEME", "FORMAT_VERSION", "N_CLASSES", "AdapterConfig", "BaseOutputs", "BoosterParams", "ClassScheme",
    "ContentModel", "ContentParams", "SchemeError",
    "LineAdapter", "LineClassifier", "LineModelConfig", "ModelLoadError", "SequenceParams", "TrainingDataError",
    "adapter_matrix", "booster_proba", "compact_columns", "content_matrix", "default_n_jobs", "encode_labels",
    "fit_adapter", "fit_base", "load_booster", "log_margin", "make_line_classifier", "sample_rows", "script_folds",
    "train_booster",
]


def make_line_classifier(config: LineModelConfig | dict | None = None, *, n_jobs: int | None = None) -> LineClassifier:
    """A fresh, unfitted base model (each retrain builds a new one; nothing module-global)."""
    if isinstance(config, dict):
        config = LineModelConfig.from_dict(config)
    return LineClassifier.from_config(config, n_jobs=n_jobs)


def fit_base(X: pd.DataFrame, y, sample_weight=None, *, config: LineModelConfig | dict | None = None,
             n_jobs: int | None = None, client=None) -> LineClassifier:
    """Train the heavy base model (offline: minutes on a corpus; with a Dask `client`, on its workers)."""
    return make_line_classifier(config, n_jobs=n_jobs).fit(X, y, sample_weight=sample_weight, client=client)


def fit_adapter(base: LineClassifier, X: pd.DataFrame, y, sample_weight=None, *, outputs: BaseOutputs | None = None,
                current_script=None, config: AdapterConfig | None = None, scheme: ClassScheme | None = None,
                n_jobs: int | None = None) -> LineAdapter:
    """Train a fresh adapter over `base` on the labeled lines of X (the labeling loop's retrain), predicting
    the classes of `scheme` (None: the 7 built-in labels)."""
    return LineAdapter.from_config(base, config, scheme=scheme, n_jobs=n_jobs).fit(
        X, y, sample_weight=sample_weight, outputs=outputs, current_script=current_script)
