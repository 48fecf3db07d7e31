"""`export --what sequences`: one row per sequence × department, with its rating, prediction and tags."""

from __future__ import annotations

import functools
from pathlib import Path

import pandas as pd
from sqlite_utils import Database

from labeling.export import WRITERS, ExportError, write_xlsx
from labeling.export_file import check_destination, write_atomically
from labeling.sequences.view import script_lines, sequence_table
from store import scripts as script_store
from store import sequences as sequence_store
from store.types import LABELS

SEQUENCE_FORMATS = ("csv", "jsonl", "parquet", "xlsx")
SEQUENCE_COLUMNS = [
    "script_id", "script_title", "sequence_id", "code", "title", "department", "first_line_no", "last_line_no",
    "first_page", "last_page", "lines", *[f"lines_{label}" for label in LABELS], "characters",
    "rating", "annotator", "rated_at", "predicted", "expected", "uncertainty", "model_version", "tags",
]


def sequence_rows(db: Database, *, script_id: int | None = None, only_rated: bool = False,
                  departments: list[str] | None = None) -> pd.DataFrame:
    """Every sequence × department: line counts by (effective) type, characters, rating, prediction, tags.

    Line types are each line's best label (person, import, model, rule), as on the Sequences page;
    `tags` lists the tags present (`;`-separated); `expected ± uncertainty` is the model's view.
    """
    if script_id is not None:
        script_store.get_script(db, script_id)
    scripts = [s for s in script_store.list_scripts(db) if s.status == "ready"
               and (script_id is None or s.script_id == script_id)]
    departments = departments or sequence_store.departments(db)
    tags = sequence_store.current_tags(db, script_id)
    present = tags[tags["present"] == 1].sort_values("tag").groupby("sequence_id")["tag"].agg(";".join)
    frames = []
    for script in scripts:
        lines = script_lines(db, script.script_id)
        pages = lines.groupby("sequence_id")["page"].agg(["min", "max"])
        for department in departments:
            table = sequence_table(db, script.script_id, lines, department=department)
            if table.empty:
                continue
            ratings = sequence_store.current_ratings(db, department=department, script_id=script.script_id)
            ratings = ratings.set_index("sequence_id")
            preds = sequence_store.latest_sequence_predictions(db, department=department, script_id=script.script_id)
            version = preds.set_index("sequence_id")["version"]
            table = table.assign(
                script_id=script.script_id, script_title=script.title, department=department,
                first_page=table["sequence_id"].map(pages["min"]), last_page=table["sequence_id"].map(pages["max"]),
                annotator=table["sequence_id"].map(ratings["annotator"]),
                rated_at=table["sequence_id"].map(ratings["created_at"]),
                model_version=table["sequence_id"].map(version),
                tags=[present.get(sid, "") for sid in table["sequence_id"]],
                **{f"lines_{label}": table[label] for label in LABELS},
            )
            frames.append(table)
    if not frames:
        return pd.DataFrame(columns=SEQUENCE_COLUMNS)
    frame = pd.concat(frames, ignore_index=True)
    if only_rated:
        frame = frame[frame["rating"].notna()]
    for column in ("first_page", "last_page", "rating", "predicted", "model_version"):
        frame[column] = frame[column].astype("Int64")
    order = {name: i for i, name in enumerate(departments)}
    frame = frame.assign(_d=frame["department"].map(order)).sort_values(["script_id", "first_line_no", "_d"],
                                                                         kind="stable")
    return frame[SEQUENCE_COLUMNS].reset_index(drop=True)


def export_sequences(db: Database, fmt: str, out: str | Path, *, script_id: int | None = None,
                     only_rated: bool = False, force: bool = False) -> dict:
    """Write the sequence dataset and return {"what", "format", "out", "rows"}; the file appears whole or not
    at all, only where a line export may be written (labeling/export_file.py: `force` to replace a file)."""
    if fmt not in SEQUENCE_FORMATS:
        raise ExportError(f"a sequence export is {', '.join(SEQUENCE_FORMATS)}, not {fmt!r}; "
                          "Fountain and CoNLL hold lines: use --what lines")
    check_destination(out, db=db, force=force)  # before the table is built
    frame = sequence_rows(db, script_id=script_id, only_rated=only_rated)
    writer = functools.partial(write_xlsx, sheet="sequences") if fmt == "xlsx" else WRITERS[fmt]
    out = write_atomically(out, lambda tmp: writer(frame, tmp), db=db, force=force)
    return {"what": "sequences", "format": fmt, "out": str(out), "rows": int(len(frame))}


def sequence_export_payload(db_path: str | Path, fmt: str, *, script_id: int | None = None,
                            only_rated: bool = False) -> bytes:
    """The sequence export's bytes on its own connection (a download runs outside the page script)."""
    import tempfile

    from store.db import open_db

    db = open_db(db_path)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / f"sequences.{fmt}"
            export_sequences(db, fmt, out, script_id=script_id, only_rated=only_rated)
            return out.read_bytes()
    finally:
        db.close()
