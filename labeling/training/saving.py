"""Saving a trained model as a new version: written whole into a temporary folder, renamed into place,
and only then registered (one transaction), so no row ever points at a half-written model."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

from sqlite_utils import Database

from store import models as model_store
from store.db import data_dir


def save_version(db: Database, write: Callable[[Path], Path], *, kind: str, folder: str, name: str,
                 metrics: dict, n_labels: int, department: str | None = None, make_current: bool = True,
                 promotion: dict | None = None) -> int:
    """Call `write(tmp)` to write the model into a fresh temporary folder under the database's
    `models/<folder>/`; it returns the path inside `tmp` the version points at (a file, or `tmp` itself).
    The folder is renamed to `<name>-<random>` when complete, then the version is registered; returns it.
    A failed write leaves nothing behind."""
    root = data_dir(db) / "models" / folder
    tmp = root / f".tmp-{uuid.uuid4().hex}"
    tmp.mkdir(parents=True)
    try:
        inner = Path(write(tmp)).relative_to(tmp)
        final = root / f"{name}-{uuid.uuid4().hex[:10]}"
        tmp.rename(final)  # complete on disk before any row points at it
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return model_store.register_version(db, kind=kind, department=department, path=str(final / inner),
                                        metrics=metrics, n_labels=n_labels, make_current=make_current,
                                        promotion=promotion)
