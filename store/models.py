"""Model versions, training runs and stored predictions."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Sequence

from sqlite_utils import Database

from store.db import now
from store.types import LABELS, ModelVersion, NotFoundError

if TYPE_CHECKING:  # numpy/pandas inside the functions that use them: the CLI's queue reads plain rows
    import numpy as np
    import pandas as pd

KEEP_PREDICTION_VERSIONS = 2
KEEP_MODEL_VERSIONS = 10  # per kind and department, besides the current and any pinned one


def register_version(db: Database, *, kind: str, path: str, metrics: dict, n_labels: int,
                     department: str | None = None, make_current: bool = True, promotion: dict | None = None) -> int:
    """Record a completely written model and (by default) make it current, atomically; `promotion` says
    why it is or is not current (see labeling's promotion rule)."""
    with db.atomic():
        cursor = db.execute(
            "INSERT INTO model_versions(kind, department, path, created_at, metrics, n_labels, promotion) "
            "VALUES (?,?,?,?,?,?,?)",
            [kind, department, path, now(), json.dumps(metrics), n_labels,
             None if promotion is None else json.dumps(promotion)],
        )
        version = int(cursor.lastrowid)
        if make_current:
            _set_current(db, kind, department, version)
    return version


def _set_current(db: Database, kind: str, department: str | None, version: int) -> None:
    db.execute("UPDATE model_versions SET is_current = 0 WHERE kind = ? AND department IS ?", [kind, department])
    db.execute("UPDATE model_versions SET is_current = 1 WHERE version = ?", [version])


def set_current(db: Database, version: int) -> ModelVersion:
    """Roll back (or forward) to `version`."""
    mv = get_version(db, version)
    with db.atomic():
        _set_current(db, mv.kind, _department(db, version), version)
    return get_version(db, version)


def version_department(db: Database, version: int) -> str | None:
    return _department(db, version)


def _department(db: Database, version: int) -> str | None:
    return db.execute("SELECT department FROM model_versions WHERE version = ?", [version]).fetchone()[0]


def _row_to_version(row: dict) -> ModelVersion:
    return ModelVersion(version=row["version"], kind=row["kind"], path=row["path"], created_at=row["created_at"],
                        metrics=json.loads(row["metrics"] or "{}"), is_current=bool(row["is_current"]),
                        promotion=json.loads(row["promotion"]) if row.get("promotion") else None)


def get_version(db: Database, version: int) -> ModelVersion:
    rows = list(db.query("SELECT * FROM model_versions WHERE version = ?", [version]))
    if not rows:
        raise NotFoundError(f"no model version {version}; list versions on the Models page or with `scriptlabel evaluate`")
    return _row_to_version(rows[0])


def current_version(db: Database, kind: str = "lines", department: str | None = None) -> ModelVersion | None:
    rows = list(db.query(
        "SELECT * FROM model_versions WHERE kind = ? AND department IS ? AND is_current = 1", [kind, department]))
    return _row_to_version(rows[0]) if rows else None


def list_versions(db: Database, kind: str | None = None) -> list[dict]:
    where, params = ("WHERE kind = ?", [kind]) if kind else ("", [])
    rows = list(db.query(f"SELECT * FROM model_versions {where} ORDER BY version", params))
    for row in rows:
        row["metrics"] = json.loads(row["metrics"] or "{}")
        row["promotion"] = json.loads(row["promotion"]) if row.get("promotion") else None
    return rows


# --- training runs ---------------------------------------------------------------------------

def create_run(db: Database, *, kind: str, trigger: str = "manual", department: str | None = None,
               params: dict | None = None) -> int:
    with db.atomic():
        cursor = db.execute(
            "INSERT INTO training_runs(kind, department, status, requested_at, trigger, params) "
            "VALUES (?,?,'queued',?,?,?)",
            [kind, department, now(), trigger, json.dumps(params or {"trigger": trigger})],
        )
    return int(cursor.lastrowid)


def add_run_params(db: Database, run_id: int, params: dict) -> None:
    """Merge `params` into what the run row says it was run with (the worker adds what it chose)."""
    with db.atomic():
        row = db.execute("SELECT params FROM training_runs WHERE run_id = ?", [run_id]).fetchone()
        if row is None:
            return
        merged = {**(json.loads(row[0]) if row[0] else {}), **params}
        db.execute("UPDATE training_runs SET params = ? WHERE run_id = ?", [json.dumps(merged, default=str), run_id])


def start_run(db: Database, run_id: int, *, pid: int | None = None) -> None:
    with db.atomic():
        db.execute("UPDATE training_runs SET status = 'running', started_at = ?, pid = ? WHERE run_id = ?",
                   [now(), pid or os.getpid(), run_id])


def claim_run(db: Database, run_id: int, *, pid: int) -> bool:
    """Mark a queued run as running in process `pid`; False when it is no longer queued (another worker has it)."""
    with db.atomic():
        cursor = db.execute("UPDATE training_runs SET status = 'running', started_at = ?, pid = ? "
                            "WHERE run_id = ? AND status = 'queued'", [now(), pid, run_id])
    return cursor.rowcount == 1


def set_run_pid(db: Database, run_id: int, pid: int) -> None:
    """The worker process started for a queued run (so a worker that never starts is noticed)."""
    with db.atomic():
        db.execute("UPDATE training_runs SET pid = ? WHERE run_id = ? AND status = 'queued'", [pid, run_id])


def finish_run(db: Database, run_id: int, *, version: int, n_labels: int, metrics: dict,
               duration_s: float | None) -> None:
    with db.atomic():
        db.execute(
            "UPDATE training_runs SET status = 'done', finished_at = ?, version = ?, n_labels = ?, metrics = ?, "
            "duration_s = ? WHERE run_id = ?",
            [now(), version, n_labels, json.dumps(metrics), duration_s, run_id],
        )


def fail_run(db: Database, run_id: int, *, error: str, duration_s: float | None = None) -> None:
    with db.atomic():
        db.execute("UPDATE training_runs SET status = 'failed', finished_at = ?, error = ?, duration_s = ? "
                   "WHERE run_id = ?", [now(), error[:2000], duration_s, run_id])


def get_run(db: Database, run_id: int) -> dict:
    rows = list(db.query("SELECT * FROM training_runs WHERE run_id = ?", [run_id]))
    if not rows:
        raise NotFoundError(f"no training run {run_id}")
    row = rows[0]
    row["metrics"] = json.loads(row["metrics"]) if row["metrics"] else None
    row["params"] = json.loads(row["params"]) if row.get("params") else None
    return row


def list_runs(db: Database, *, kind: str | None = None, limit: int = 50) -> list[dict]:
    where, params = ("WHERE kind = ?", [kind]) if kind else ("", [])
    return list(db.query(f"SELECT * FROM training_runs {where} ORDER BY run_id DESC LIMIT ?", params + [limit]))


def active_runs(db: Database, kind: str | None = None) -> list[dict]:
    where = "AND kind = ?" if kind else ""
    params = [kind] if kind else []
    return list(db.query(f"SELECT * FROM training_runs WHERE status IN ('queued','running') {where} ORDER BY run_id",
                         params))


def version_registered_during(db: Database, run: dict) -> dict | None:
    """The model version a (dead) run registered: same kind and department, created after the run
    started and claimed by no other run. None if it died before registering one."""
    if not run.get("started_at"):
        return None
    rows = list(db.query(
        "SELECT * FROM model_versions WHERE kind = ? AND department IS ? AND created_at >= ? "
        "AND version NOT IN (SELECT version FROM training_runs WHERE version IS NOT NULL) ORDER BY version LIMIT 1",
        [run["kind"], run["department"], run["started_at"]]))
    if not rows:
        return None
    row = rows[0]
    row["metrics"] = json.loads(row["metrics"] or "{}")
    return row


def is_pinned(db: Database, version: int) -> bool:
    row = db.execute("SELECT pinned FROM model_versions WHERE version = ?", [version]).fetchone()
    return bool(row and row[0])


def set_pinned(db: Database, version: int, pinned: bool = True) -> None:
    """A pinned version is kept however many newer ones follow."""
    get_version(db, version)
    with db.atomic():
        db.execute("UPDATE model_versions SET pinned = ? WHERE version = ?", [int(pinned), version])


def prune_versions(db: Database, *, kind: str, department: str | None = None, keep: int = KEEP_MODEL_VERSIONS
                   ) -> list[str]:
    """Forget versions of one kind beyond the `keep` newest (never the current or a pinned one) and
    delete their folders when they lie in this database's media folder; returns the deleted paths."""
    import shutil
    from pathlib import Path

    from store.db import data_dir

    rows = list(db.query(
        "SELECT version, path FROM model_versions WHERE kind = ? AND department IS ? AND is_current = 0 "
        "AND pinned = 0 AND version NOT IN (SELECT version FROM model_versions WHERE kind = ? AND department IS ? "
        "ORDER BY version DESC LIMIT ?) ORDER BY version", [kind, department, kind, department, keep]))
    if not rows:
        return []
    marks = ",".join("?" * len(rows))
    with db.atomic():
        db.execute(f"DELETE FROM model_versions WHERE version IN ({marks})", [r["version"] for r in rows])
    base = data_dir(db).resolve()
    removed = []
    for row in rows:
        path = Path(row["path"])
        if path.resolve().is_relative_to(base):  # never a folder another database (or a person) owns
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
            removed.append(str(path))
    return removed


# --- predictions -----------------------------------------------------------------------------

def save_predictions(db: Database, version: int, line_ids: list[int], proba: np.ndarray,
                     classes: Sequence[str] | None = LABELS) -> None:
    """Store a model version's probabilities for lines; older versions' rows beyond the last few go.

    `classes` names the columns of `proba` (the project's classes, store/scheme.py; None: LABELS); it is
    stored with them (`predictions.classes`, NULL for LABELS) so readers map them through the scheme."""
    import numpy as np

    proba = np.asarray(proba, dtype=float)
    names = list(classes) if classes is not None else list(LABELS)
    if proba.ndim != 2 or proba.shape[1] != len(names):
        raise ValueError(f"probabilities of shape {proba.shape} for {len(names)} classes")
    stored_classes = None if names == list(LABELS) else json.dumps(names)
    order = np.argsort(-proba, axis=1)
    top = proba[np.arange(len(proba)), order[:, 0]]
    second = proba[np.arange(len(proba)), order[:, 1]] if proba.shape[1] > 1 else np.zeros(len(proba))
    probs = [json.dumps(row) for row in np.round(proba, 5).tolist()]
    rows = list(zip([int(i) for i in line_ids], [version] * len(proba), [names[k] for k in order[:, 0].tolist()],
                    top.tolist(), (top - second).tolist(), probs, [stored_classes] * len(proba)))
    with db.atomic():
        db.conn.executemany(
            "INSERT OR REPLACE INTO predictions(line_id, version, label, confidence, margin, probs, classes) "
            "VALUES (?,?,?,?,?,?,?)",
            rows,
        )
        # Keep the rows of the most recently *written* versions (a rollback re-predicts with an older one).
        keep = [r[0] for r in db.execute(
            "SELECT version FROM predictions GROUP BY version ORDER BY MAX(rowid) DESC LIMIT ?",
            [KEEP_PREDICTION_VERSIONS])]
        if keep:
            marks = ",".join("?" * len(keep))
            db.execute(f"DELETE FROM predictions WHERE version NOT IN ({marks})", keep)


PREDICTION_COLUMNS = ("line_id", "version", "label", "confidence", "margin", "probs", "classes")


def latest_prediction_rows(db: Database, script_id: int | None = None) -> list[tuple]:
    """The most recently written prediction per line, as tuples of PREDICTION_COLUMNS: line_id, version,
    label, confidence, margin, probs (JSON) and classes (what `probs` is over, JSON; None = LABELS)."""
    where = "AND l.script_id = ?" if script_id is not None else ""
    params = [script_id] if script_id is not None else []
    return db.execute(f"""
        SELECT p.line_id, p.version, p.label, p.confidence, p.margin, p.probs, p.classes
        FROM predictions p JOIN lines l USING (line_id)
        WHERE p.rowid = (SELECT MAX(p2.rowid) FROM predictions p2 WHERE p2.line_id = p.line_id) {where}
    """, params).fetchall()


def latest_predictions(db: Database, script_id: int | None = None) -> pd.DataFrame:
    """`latest_prediction_rows` as a frame."""
    import pandas as pd

    return pd.DataFrame(latest_prediction_rows(db, script_id), columns=list(PREDICTION_COLUMNS))


def latest_prediction_versions(db: Database, line_ids: list[int]) -> dict[int, int]:
    """line_id → the model version of its newest prediction."""
    if not line_ids:
        return {}
    marks = ",".join("?" * len(line_ids))
    return {r[0]: r[1] for r in db.execute(
        f"""SELECT p.line_id, p.version FROM predictions p WHERE p.line_id IN ({marks})
              AND p.rowid = (SELECT MAX(p2.rowid) FROM predictions p2 WHERE p2.line_id = p.line_id)""",
        list(line_ids))}


def latest_prediction_for(db: Database, line_id: int) -> dict | None:
    rows = list(db.query("SELECT label, confidence, version FROM predictions WHERE line_id = ? "
                         "ORDER BY rowid DESC LIMIT 1", [line_id]))
    return rows[0] if rows else None


def model_token(db: Database) -> tuple:
    """Changes when a line-model training run starts or ends or the current model changes (new predictions)."""
    runs = list_runs(db, limit=1)
    current = current_version(db)
    run = (runs[0]["run_id"], runs[0]["status"]) if runs else (0, "")
    return run + (current.version if current else 0,)


def least_margin_line_ids(db: Database, limit: int) -> list[int]:
    """Lines nobody labeled, of the newest written prediction version, smallest margins first.

    Walks the (version, margin) index and skips labeled lines through the label index: the cost grows
    with `limit`, not with the library.
    """
    row = db.execute("SELECT version FROM predictions ORDER BY rowid DESC LIMIT 1").fetchone()
    if row is None:
        return []
    return [r[0] for r in db.execute(
        """SELECT p.line_id FROM predictions p WHERE p.version = ?
             AND NOT EXISTS (SELECT 1 FROM label_events e WHERE e.line_id = p.line_id AND e.action = 'set'
                               AND e.source IN ('human', 'imported', 'accepted'))
           ORDER BY p.margin LIMIT ?""", [row[0], limit])]


def latest_prediction_rows_of(db: Database, line_ids: list[int]) -> list[tuple]:
    """`latest_prediction_rows` for these lines only."""
    rows: list[tuple] = []
    for start in range(0, len(line_ids), 5000):
        chunk = list(line_ids[start:start + 5000])
        marks = ",".join("?" * len(chunk))
        rows += db.execute(
            f"""SELECT p.line_id, p.version, p.label, p.confidence, p.margin, p.probs, p.classes FROM predictions p
                WHERE p.line_id IN ({marks})
                  AND p.rowid = (SELECT MAX(p2.rowid) FROM predictions p2 WHERE p2.line_id = p.line_id)""",
            chunk).fetchall()
    return rows


def latest_predictions_of(db: Database, line_ids: list[int]) -> pd.DataFrame:
    """`latest_predictions` for these lines only."""
    import pandas as pd

    return pd.DataFrame(latest_prediction_rows_of(db, line_ids), columns=list(PREDICTION_COLUMNS))


def set_repredict_progress(db: Database, run_id: int, *, done: int, total: int) -> None:
    with db.atomic():
        db.execute("UPDATE training_runs SET repredict_done = ?, repredict_total = ? WHERE run_id = ?",
                   [done, total, run_id])


def stale_prediction_scripts(db: Database, version: int) -> list[int]:
    """Ready scripts with a line that has no prediction from `version` yet, in id order."""
    return [r[0] for r in db.execute(
        """SELECT s.script_id FROM scripts s WHERE s.status = 'ready' AND EXISTS (
               SELECT 1 FROM lines l WHERE l.script_id = s.script_id AND NOT EXISTS (
                   SELECT 1 FROM predictions p WHERE p.line_id = l.line_id AND p.version = ?))
           ORDER BY s.script_id""", [version])]



# --- which version is current, and why: pins and the progressive record of each version ---------

def clear_current(db: Database, kind: str = "lines", department: str | None = None) -> None:
    """Make the shipped base model (version 0) current: no stored version of this kind is."""
    with db.atomic():
        db.execute("UPDATE model_versions SET is_current = 0 WHERE kind = ? AND department IS ?", [kind, department])


def get_pin(db: Database, kind: str = "lines", department: str | None = None) -> dict | None:
    """The version a person pinned as current ({version, pinned_by, pinned_at}), or None."""
    rows = list(db.query("SELECT version, pinned_by, pinned_at FROM current_pins WHERE kind = ? AND department = ?",
                         [kind, department or ""]))
    return rows[0] if rows else None


def pin_current(db: Database, version: int, *, kind: str = "lines", department: str | None = None,
                by: str) -> None:
    """Pin `version` (0 = the base model) as current: retrains add candidates but never replace it."""
    with db.atomic():
        db.execute("INSERT OR REPLACE INTO current_pins(kind, department, version, pinned_by, pinned_at) "
                   "VALUES (?,?,?,?,?)", [kind, department or "", version, by, now()])
        if version:
            db.execute("UPDATE model_versions SET pinned = 1 WHERE version = ?", [version])  # and never pruned


def unpin_current(db: Database, *, kind: str = "lines", department: str | None = None) -> dict | None:
    """Lift the pin (the next retrain may replace the version again); returns the pin that was lifted."""
    pin = get_pin(db, kind, department)
    with db.atomic():
        db.execute("DELETE FROM current_pins WHERE kind = ? AND department = ?", [kind, department or ""])
    return pin


def version_promotion(db: Database, version: int) -> dict | None:
    """Why `version` is or is not current (None: unknown, pruned, or made before promotion records)."""
    row = db.execute("SELECT promotion FROM model_versions WHERE version = ?", [version]).fetchone()
    return json.loads(row[0]) if row and row[0] else None


def suggestion_record(db: Database) -> dict[int, tuple[int, int]]:
    """line model version → (labels given while it made the suggestion, how many it got right).

    Progressive validation: each human label (not undone) keeps the suggestion the person was shown
    and the version that made it; a version never saw those labels in training.
    """
    return {int(r[0]): (int(r[1]), int(r[2])) for r in db.execute(
        """SELECT e.suggested_version, COUNT(*), SUM(e.label = e.suggested) FROM label_events e
           WHERE e.source = 'human' AND e.action = 'set' AND e.suggested IS NOT NULL
             AND e.suggested_version IS NOT NULL
             AND NOT EXISTS (SELECT 1 FROM label_events u WHERE u.undoes_event_id = e.event_id)
           GROUP BY e.suggested_version""")}


def newest_version_n_labels(db: Database, kind: str = "lines") -> int:
    """Human labels the newest version of a kind was trained on (current or candidate): what "retrain
    every N labels" counts from, so a candidate that was not promoted does not retrigger at once."""
    row = db.execute("SELECT n_labels FROM model_versions WHERE kind = ? ORDER BY version DESC LIMIT 1",
                     [kind]).fetchone()
    return int(row[0]) if row else 0
