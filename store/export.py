"""The rows of a dataset export (DESIGN.md export columns), one per line."""

from __future__ import annotations

import pandas as pd
from sqlite_utils import Database

from store.labels import effective_labels

EXPORT_COLUMNS = [
    "script_id", "script_title", "line_id", "line_no", "source_line_no", "page", "text", "label", "label_source",
    "confidence", "annotator", "labeled_at", "sequence_id", "sequence_code", "indent", "x0", "y0", "x1", "y1",
    # after the DESIGN.md columns: text corrections (the original kept) and annotators' flags
    "text_edited", "original_text", "flag", "flag_note",
]


def export_frame(db: Database, *, script_id: int | None = None, only_human: bool = False,
                 script_ids: list[int] | None = None, in_scheme: bool = True) -> pd.DataFrame:
    """Every line of ready scripts (one, a list, or all) with its effective label
    (store.labels.effective_labels: adjudicated, human, imported, accepted, rule, model), read in one query;
    the label in the project's scheme's terms, or (`in_scheme=False`) as a built-in label."""
    frame = effective_labels(
        db, script_id, script_ids=script_ids, in_scheme=in_scheme,
        extra_columns=""", s.title AS script_title, l.source_line_no, l.page, l.original_text, l.sequence_id,
                          q.code AS sequence_code, l.indent, l.x0, l.y0, l.x1, l.y1,
                          f.kind AS flag, f.note AS flag_note""",
        joins="""LEFT JOIN sequences q ON q.sequence_id = l.sequence_id
                 LEFT JOIN line_flags f ON f.flag_id = (SELECT MAX(g.flag_id) FROM line_flags g
                                                        WHERE g.line_id = l.line_id)""")
    frame = frame[frame["script_id"].isin(_ready(db))] if script_id is None and script_ids else frame
    cleared = frame["flag"] == "cleared"
    frame.loc[cleared, ["flag", "flag_note"]] = None
    frame["text_edited"] = frame["text"] != frame["original_text"]
    frame["original_text"] = frame["original_text"].where(frame["text_edited"])
    if only_human:
        frame = frame[frame["label_source"].isin(["human", "adjudicated"])]  # a lead's decision is a person's
    for column in ("source_line_no", "sequence_id"):
        frame[column] = frame[column].astype("Int64")
    return frame[EXPORT_COLUMNS].reset_index(drop=True)


def _ready(db: Database) -> list[int]:
    return [r[0] for r in db.execute("SELECT script_id FROM scripts WHERE status = 'ready'")]
