"""Line-model versions people can trust: every version with its record, pins, version 0.

Accuracy per version is progressive validation: each human label keeps the suggestion it was given
with and the version that made it (store.models.suggestion_record), shown with n and a Wilson 95%
interval. Version 0 is the shipped base model, with the held-out evaluation from its manifest. A
version a person rolled back to is pinned: retrains then add candidates and never replace it, until
someone unpins it (labeling.training.promotion decides the rest).
"""

from __future__ import annotations

import json

from sqlite_utils import Database

from labeling.training.lines import base_dir
from labeling.training.promotion import ALPHA, BASE_VERSION, FOLDS, RECENT_LABELS, wilson_interval
from store import models as model_store
from store.types import ScriptlabelError


def run_params() -> dict:
    """What a line run is run with, for its row: the adapter's settings and the promotion rule's."""
    from models.lines.classifier import AdapterConfig

    return {"adapter": AdapterConfig().to_dict(), "base_model": str(base_dir().name),
            "promotion": {"recent_labels": RECENT_LABELS, "folds": FOLDS, "alpha": ALPHA,
                          "test": "one-sided exact McNemar, new version cross-fitted"}}


def make_line_version_current(db: Database, version: int, *, by: str) -> dict:
    """A person makes `version` current (0 = the shipped base model).

    Rolling back (to an older version) pins it: retrains add candidates until someone unpins it.
    Rolling forward (to a newer version, e.g. a candidate) lifts any pin. Returns {version, pinned}.
    """
    current = model_store.current_version(db, "lines")
    now_version = current.version if current is not None else BASE_VERSION
    if version == BASE_VERSION:
        model_store.clear_current(db, "lines")
    else:
        if model_store.get_version(db, version).kind != "lines":
            raise ScriptlabelError(f"v{version} is not a line model version")
        model_store.set_current(db, version)
    pinned = version < now_version or (version == now_version and model_store.get_pin(db, "lines") is not None)
    if pinned:
        model_store.pin_current(db, version, kind="lines", by=by)
    else:
        model_store.unpin_current(db, kind="lines")
    return {"version": version, "pinned": pinned}


# --- version 0: the shipped base model ----------------------------------------------------------

def base_model_card() -> dict:
    """What the base model's manifest (config.json) says about it: what it was trained on and its
    held-out evaluation (grouped CV on MovieParse, scores on held-out studio PDFs), if it was recorded."""
    path = base_dir() / "config.json"
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError):
        return {"path": str(path), "error": f"{path}: the base model's manifest cannot be read"}
    metrics = manifest.get("metrics") or {}
    trained_on = metrics.get("trained_on") or {}
    measured = _measured_evaluation(path.parent / "manifest.json")
    return {"path": str(path),
            "trained_on": {k: v for k, v in trained_on.items() if isinstance(v, dict)},
            "scripts": sum(int(v.get("scripts", 0)) for v in trained_on.values() if isinstance(v, dict)),
            "labeled_lines": sum(int(v.get("labeled_lines", 0)) for v in trained_on.values() if isinstance(v, dict)),
            "cv_movieparse": metrics.get("cv_movieparse") or measured.get("cv_movieparse"),
            "held_out": metrics.get("held_out") or measured.get("held_out"),
            "training": manifest.get("training") or {}}


def _measured_evaluation(path) -> dict:
    """The held-out figures the benches measured for the shipped recipe (`evaluation` in manifest.json,
    written after a build without held-out scripts or CV), in the card's shape; {} when there are none."""
    try:
        evaluation = json.loads(path.read_text()).get("evaluation") or {}
    except (OSError, ValueError, AttributeError):
        return {}
    out = {}
    for key, block in (("held_out", evaluation.get("held_out_studio")), ("cv_movieparse", evaluation.get("grouped_cv"))):
        if isinstance(block, dict) and block.get("accuracy") is not None:
            out[key] = {"accuracy": block["accuracy"], "macro_f1": block.get("macro_f1"), "n": block.get("lines"),
                        "earlier_recipe": block.get("this_recipe") is False}
    return out


def base_evaluation_text(card: dict) -> str:
    """One line on the base model's held-out evaluation, as its manifest records it (or that it does not)."""
    if card.get("error"):
        return card["error"]
    parts = []
    for key, what in (("held_out", "held-out studio PDFs"), ("cv_movieparse", "MovieParse, grouped CV by movie")):
        block = card.get(key)
        if isinstance(block, dict) and block.get("accuracy") is not None:
            n = block.get("n")
            n_text = f", n = {n:,}" if isinstance(n, int) else ""
            f1 = f", macro-F1 {block['macro_f1']:.3f}" if block.get("macro_f1") is not None else ""
            earlier = " (an earlier recipe)" if block.get("earlier_recipe") else ""
            parts.append(f"{what}{earlier}: accuracy {block['accuracy']:.3f}{f1}{n_text}")
    if not parts:
        return ("its manifest records no held-out evaluation (it was built with --no-cv and no --hold-out); "
                "its accuracy here is the progressive record below")
    return "; ".join(parts)


# --- every line version, as the Models page and `scriptlabel versions` show them -----------------

def _status(row: dict) -> str:
    if row["is_current"]:
        return "current"
    promotion = row.get("promotion") or {}
    return "candidate" if promotion.get("decision") == "candidate" else "previous"


def line_versions(db: Database) -> list[dict]:
    """Version 0 (the shipped base model) and every stored line version, newest first: status (current,
    candidate, previous), pinned, labels trained on, progressive accuracy with n and a Wilson 95% interval,
    and why it is or is not current."""
    record = model_store.suggestion_record(db)
    pin = model_store.get_pin(db, "lines")
    rows = model_store.list_versions(db, "lines")
    any_current = any(r["is_current"] for r in rows)
    card = base_model_card()
    out = []
    for row in rows[::-1]:
        n, correct = record.get(row["version"], (0, 0))
        promotion = row.get("promotion") or {}
        out.append(_version_row(
            version=row["version"], status=_status(row), pinned=pin is not None and pin["version"] == row["version"],
            created_at=row["created_at"], n_labels=row["n_labels"], n=n, correct=correct,
            reason=promotion.get("reason") or "made before promotion checks were recorded"))
    n, correct = record.get(BASE_VERSION, (0, 0))
    out.append(_version_row(
        version=BASE_VERSION, status="current" if not any_current else "previous",
        pinned=pin is not None and pin["version"] == BASE_VERSION, created_at=None,
        n_labels=0, n=n, correct=correct,
        reason=f"the shipped base model ({card.get('scripts', '?')} scripts, {card.get('labeled_lines', 0):,} "
               f"labeled lines); held-out: {base_evaluation_text(card)}"))
    return out


def _version_row(*, version: int, status: str, pinned: bool, created_at: str | None, n_labels: int, n: int,
                 correct: int, reason: str) -> dict:
    interval = wilson_interval(correct, n)
    return {"version": version, "status": status, "pinned": pinned, "created_at": created_at, "n_labels": n_labels,
            "accuracy": correct / n if n else None, "n": n,
            "ci95": None if interval is None else [round(interval[0], 4), round(interval[1], 4)],
            "reason": reason}


def pin_note(db: Database) -> str | None:
    """What the UI says about a pin (None without one)."""
    pin = model_store.get_pin(db, "lines")
    if pin is None:
        return None
    return (f"v{pin['version']} is pinned as the current line model (by {pin['pinned_by']}, "
            f"{str(pin['pinned_at'])[:16].replace('T', ' ')} UTC): retrains add candidates and never replace it "
            "until someone unpins it.")
