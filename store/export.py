"""The rows of a dataset export (DESIGN.md export columns), one per line."""

from __future__ import annotations

import pandas as pd
from sqlite_utils import Database

from store.labels import current_labels
from store.models import latest_predictions

EXPORT_COLUMNS = [
    "script_id", "script_title", "line_id", "line_no", "source_line_no", "page", "text", "label", "label_source",
    "confidence", "annotator", "labeled_at", "sequence_id", "sequence_code", "indent", "x0", "y0", "x1", "y1",
]


def export_frame(db: Database, *, script_id: int | None = None, only_human: bool = False,
                 rule_labels: pd.Series | None = None) -> pd.DataFrame:
    """Every line with its best label: human or imported where one exists, else the model's suggestion.

    `rule_labels` (indexed by line_id) fills lines that have neither a label nor a prediction.
    """
    where, params = ("AND l.script_id = ?", [script_id]) if script_id is not None else ("", [])
    lines = pd.read_sql_query(
        f"""SELECT l.script_id, s.title AS script_title, l.line_id, l.line_no, l.source_line_no, l.page, l.text,
                   l.sequence_id, q.code AS sequence_code, l.indent, l.x0, l.y0, l.x1, l.y1
            FROM lines l JOIN scripts s USING (script_id) LEFT JOIN sequences q ON q.sequence_id = l.sequence_id
            WHERE s.status = 'ready' {where} ORDER BY l.script_id, l.line_no""",
        db.conn, params=params)
    known = current_labels(db, script_id)
    predicted = latest_predictions(db, script_id)[["line_id", "label", "confidence"]].rename(
        columns={"label": "model_label", "confidence": "model_confidence"})
    frame = lines.merge(known.drop(columns=["script_id"]), on="line_id", how="left").merge(
        predicted, on="line_id", how="left")
    frame["label_source"] = frame["source"].where(frame["label"].notna())
    use_model = frame["label"].isna() & frame["model_label"].notna()
    frame.loc[use_model, "label"] = frame.loc[use_model, "model_label"]
    frame.loc[use_model, "label_source"] = "model"
    frame["confidence"] = frame["model_confidence"].where(frame["label_source"] == "model")
    if rule_labels is not None:
        use_rule = frame["label"].isna()
        frame.loc[use_rule, "label"] = frame.loc[use_rule, "line_id"].map(rule_labels)
        frame.loc[use_rule & frame["label"].notna(), "label_source"] = "rule"
    if only_human:
        frame = frame[frame["label_source"] == "human"]
    for column in ("source_line_no", "sequence_id"):
        frame[column] = frame[column].astype("Int64")
    return frame[EXPORT_COLUMNS].reset_index(drop=True)
