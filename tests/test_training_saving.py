"""labeling/training/saving.py: a model is written whole, renamed into place, then registered."""

from __future__ import annotations

import pytest

from labeling.training.saving import save_version
from store import models as model_store
from store.db import data_dir


def test_a_written_model_is_renamed_into_place_then_registered_current(db):
    def write(tmp):
        (tmp / "model.json").write_text("{}")
        return tmp / "model.json"

    version = save_version(db, write, kind="complexity", folder="complexity", name="fx", department="fx",
                           metrics={"qwk": 0.5}, n_labels=12)
    saved = model_store.get_version(db, version)
    assert saved.is_current and saved.metrics == {"qwk": 0.5}
    root = data_dir(db) / "models" / "complexity"
    assert saved.path.startswith(str(root / "fx-")) and saved.path.endswith("/model.json")
    assert [p.name for p in root.iterdir() if p.name.startswith(".tmp-")] == []


def test_a_folder_model_points_at_its_folder(db):
    version = save_version(db, lambda tmp: tmp, kind="lines", folder="lines", name="adapter", metrics={},
                           n_labels=0, make_current=False)
    saved = model_store.get_version(db, version)
    assert not saved.is_current and (data_dir(db) / "models" / "lines").joinpath(saved.path.rsplit("/", 1)[1]).is_dir()


def test_a_failed_write_leaves_no_folder_and_no_version(db):
    def write(tmp):
        (tmp / "half.bin").write_bytes(b"x")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        save_version(db, write, kind="lines", folder="lines", name="adapter", metrics={}, n_labels=0)
    assert list((data_dir(db) / "models" / "lines").iterdir()) == []
    assert model_store.list_versions(db) == []
