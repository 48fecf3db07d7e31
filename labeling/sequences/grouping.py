"""Rule-based sequences: each scene heading starts a new sequence (codes sq0010, sq0020, …)."""

from __future__ import annotations

import re

import pandas as pd
from sqlite_utils import Database

from store import labels as label_store
from store import sequences as sequence_store
from store.rules import looks_like_heading  # noqa: F401  (re-exported for the pages)

def effective_labels(db: Database, script_id: int) -> pd.DataFrame:
    """line_no, text and each line's effective label (store.labels.effective_labels, the one rule)."""
    return label_store.effective_labels(db, script_id, in_scheme=False)  # headings start sequences


def derive_spans(frame: pd.DataFrame) -> list[tuple[int, int, str]]:
    """(first_line_no, last_line_no, title) per sequence; lines before the first heading open the first one."""
    if frame.empty:
        return []
    heads = frame[frame["label"] == "scene_heading"]
    starts = list(heads["line_no"])
    titles = {int(r.line_no): _title(r.text) for r in heads.itertuples()}
    first_line = int(frame["line_no"].min())
    last_line = int(frame["line_no"].max())
    if not starts or starts[0] != first_line:
        starts = [first_line] + starts
        titles.setdefault(first_line, "Opening" if len(starts) > 1 else "Whole script")
    spans = []
    for i, start in enumerate(starts):
        end = starts[i + 1] - 1 if i + 1 < len(starts) else last_line
        spans.append((int(start), int(end), titles.get(int(start), "")))
    return spans


def _title(heading: str) -> str:
    text = re.sub(r"^\s*[A-Z]?\d{1,4}[A-Z]{0,2}\.?\s+", "", heading.strip())
    text = re.sub(r"\s+[A-Z]?\d{1,4}[A-Z]{0,2}\.?\*?$", "", text)
    return text.strip()


def rederive_sequences(db: Database, script_id: int, *, force: bool = False) -> int | None:
    """Re-derive a script's sequences from its labels, unless people already edited or rated them.

    Returns the number of sequences, or None when they were left alone to keep human work.
    """
    if not force and sequence_store.has_human_sequence_data(db, script_id):
        return None
    spans = derive_spans(effective_labels(db, script_id))
    return sequence_store.replace_sequences(db, script_id, spans)
