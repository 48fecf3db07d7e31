"""The rows of a dataset export (DESIGN.md export columns), one per line."""

from __future__ import annotations

import pandas as pd
from sqlite_utils import Database

from store.flags import current_flags
from store.labels import effective_labels

EXPORT_COLUMNS = [
    "script_id", "script_title", "line_id", "line_no", "source_line_no", "page", "text", "label", "label_source",
    "confidence", "annotator", "labeled_at", "sequence_id", "sequence_code", "indent", "x0", "y0", "x1", "y1",
    # after the DESIGN.md columns: text corrections (the original kept) and annotators' flags
    "text_edited", "original_text", "flag", "flag_note",
]


def export_frame(db: Database, *, script_id: int | None = None, only_human: bool = False) -> pd.DataFrame:
    """Every line of ready scripts with its effective label (store.labels.effective_labels: human, imported,
    rule, model)."""
    where, params = ("AND l.script_id = ?", [script_id]) if script_id is not None else ("", [])
    lines = pd.read_sql_query(
        f"""SELECT l.script_id, s.title AS script_title, l.line_id, l.line_no, l.source_line_no, l.page, l.text,
                   l.original_text, l.sequence_id, q.code AS sequence_code, l.indent, l.x0, l.y0, l.x1, l.y1
            FROM lines l JOIN scripts s USING (script_id) LEFT JOIN sequences q ON q.sequence_id = l.sequence_id
            WHERE s.status = 'ready' {where} ORDER BY l.script_id, l.line_no""",
        db.conn, params=params)
    effective = effective_labels(db, script_id)[
        ["line_id", "label", "label_source", "confidence", "annotator", "labeled_at"]]
    frame = lines.merge(effective, on="line_id", how="left").merge(
        current_flags(db, script_id)[["line_id", "flag", "flag_note"]], on="line_id", how="left")
    frame["text_edited"] = frame["text"] != frame["original_text"]
    frame["original_text"] = frame["original_text"].where(frame["text_edited"])
    if only_human:
        frame = frame[frame["label_source"] == "human"]
    for column in ("source_line_no", "sequence_id"):
        frame[column] = frame[column].astype("Int64")
    return frame[EXPORT_COLUMNS].reset_index(drop=True)
