"""Saving and loading the line model's files: XGBoost UBJ, the content weights as a sparse `.npz`
of plain arrays (loaded with `allow_pickle=False`), the sequence labeler in Keras' own format, and a
JSON description written last (a folder without it is an incomplete save). Nothing is pickled."""

from __future__ import annotations

import json
from pathlib import Path

from models.lines.labels import ModelLoadError
from store.types import LABELS

FORMAT_VERSION = 1


def read_meta(directory: Path, kind: str) -> dict:
    path = directory / "config.json"
    if not path.exists():
        raise ModelLoadError(f"{directory}: no config.json, so no saved line model here; train one or pick another folder")
    try:
        meta = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelLoadError(f"{path}: not valid JSON ({exc}); the model folder is corrupt, retrain or restore it") from exc
    if not isinstance(meta, dict) or meta.get("kind") != kind:
        raise ModelLoadError(f"{path}: not a {kind} (kind={meta.get('kind') if isinstance(meta, dict) else None!r})")
    if meta.get("labels") != list(LABELS):
        raise ModelLoadError(f"{path}: the model's labels {meta.get('labels')} differ from {list(LABELS)}; retrain it")
    if int(meta.get("format_version", -1)) > FORMAT_VERSION:
        raise ModelLoadError(f"{path}: saved by a newer scriptlabel (format {meta.get('format_version')}); upgrade")
    return meta


def write_meta(directory: Path, name: str, meta: dict) -> None:
    (directory / name).write_text(json.dumps(meta, indent=2))
