"""What the Script and Sequences pages (and the sequences export) show: a script's lines with their effective
labels, its sequences as a table, one sequence's text laid out as a screenplay and its page images."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pandas as pd
from sqlite_utils import Database

from store import flags as flag_store
from store import labels as label_store
from store import scripts as script_store
from store import sequences as sequence_store
from store.rules import character_name
from store.types import LABELS, PageInfo

WIDTH = 60  # characters per line of the layout (Courier 12 on a 6-inch text block)
# (left column, wrap width) per line type, in characters: the standard screenplay margins.
LAYOUT = {
    "scene_heading": (0, WIDTH),
    "action": (0, WIDTH),
    "character": (22, 38),
    "parenthetical": (16, 28),
    "dialogue": (10, 35),
    "transition": (None, WIDTH),  # right-aligned
}
_BLANK_BEFORE = {"scene_heading", "action", "character", "transition"}


def screenplay_text(lines: pd.DataFrame, *, first_line_no: int | None = None, last_line_no: int | None = None,
                    label_column: str = "shown") -> str:
    """The lines (text + label) as plain screenplay text; page furniture (`other`) is left out.

    Plain text on purpose: the page shows it in a code block, never as HTML, whatever the script says.
    """
    frame = lines
    if first_line_no is not None:
        frame = frame[(frame["line_no"] >= first_line_no) & (frame["line_no"] <= last_line_no)]
    out: list[str] = []
    for row in frame.sort_values("line_no").itertuples():
        label = getattr(row, label_column)
        label = label if isinstance(label, str) else "action"
        if label == "other":
            continue
        text = " ".join(str(row.text).split())
        if label in _BLANK_BEFORE and out and out[-1] != "":
            out.append("")
        left, width = LAYOUT.get(label, (0, WIDTH))
        if label in ("scene_heading", "character", "transition"):
            text = text.upper()
        for piece in textwrap.wrap(text, width) or [""]:
            out.append(piece.rjust(WIDTH) if left is None else " " * left + piece)
    return "\n".join(out).strip("\n")


def page_images(pages: dict[int, PageInfo], first_page: int, last_page: int) -> list[tuple[int, str]]:
    """(page, image path) for the sequence's pages that have an image on disk (PDF scripts)."""
    out = []
    for number in range(int(first_page), int(last_page) + 1):
        page = pages.get(number)
        if page is not None and page.image_path and Path(page.image_path).exists():
            out.append((number, page.image_path))
    return out


RATING_NAMES = {1: "1 · very simple", 2: "2 · simple", 3: "3 · moderate", 4: "4 · complex", 5: "5 · very complex"}


def run_status_text(status: dict | None, department: str) -> str:
    """One line about the department's newest complexity run, for the Sequences page."""
    if status is None:
        return f"No {department} complexity model has been trained yet; rating sequences starts one."
    trigger = {"auto-ratings": "after new ratings", "auto-relabels": "after line relabels"}.get(
        status.get("trigger"), f"({status.get('trigger')})")
    if status["status"] in ("queued", "running"):
        return f"Training the {department} complexity models {trigger}: {status['status']}… rating goes on meanwhile."
    if status["status"] == "failed":
        return f"The last {department} training run failed: {status.get('error') or 'unknown error'}"
    metrics = status.get("metrics") or {}
    if isinstance(metrics, str):
        import json

        metrics = json.loads(metrics or "{}")
    kept = metrics.get("became_current") is False
    outcome = (" — kept aside: it did not score at least as well as the current model under the same CV"
               if kept else " — now current")
    return f"Complexity model version {status.get('version')} ({department}) trained {trigger}{outcome}."


def prediction_caveat(db: Database, department: str) -> str | None:
    """What a person should know before trusting the department's predicted ratings, or None.

    The current complexity version is the grouped-CV winner; when no model reliably beat always answering
    the commonest rating, its predictions are little better than that guess and the page says so.
    """
    from store import models as model_store

    current = model_store.current_version(db, "complexity", department)
    if current is None:
        return None
    metrics = current.metrics or {}
    beats = metrics.get("beats_majority")
    if beats is None:  # versions trained before the flag was stored: read it off the verdict
        beats = not str(metrics.get("verdict", "")).startswith("No model")
    if beats:
        return None
    n = metrics.get("n_sequences")
    rated = f" on {int(n)} rated sequences" if isinstance(n, (int, float)) else ""
    return (f"Not yet better than always guessing the most common rating{rated} (grouped cross-validation): "
            "treat the prediction as a rough guess and rate more sequences.")


def script_lines(db: Database, script_id: int) -> pd.DataFrame:
    """Every line of a script with its effective label (`shown`, from `origin`: human, imported, rule or
    model), the model's suggestion, where a person and the model differ, text corrections and flags."""
    lines = script_store.lines_frame(db, script_id)[
        ["line_id", "line_no", "page", "text", "original_text", "indent", "x0", "y0", "x1", "y1", "sequence_id"]]
    effective = label_store.effective_labels(db, script_id)[
        ["line_id", "label", "label_source", "annotator", "suggestion", "suggestion_confidence"]]
    frame = lines.merge(effective, on="line_id", how="left").rename(
        columns={"label": "shown", "label_source": "origin", "suggestion_confidence": "confidence"})
    by_person = frame["origin"].isin(["adjudicated", "human", "imported"])
    frame["label"] = frame["shown"].where(by_person)
    frame["source"] = frame["origin"].where(by_person)
    frame["disagree"] = frame["source"].isin(["human", "adjudicated"]) & frame["suggestion"].notna() & (
        frame["label"] != frame["suggestion"])
    frame["edited"] = frame["text"] != frame["original_text"]
    flags = flag_store.current_flags(db, script_id)
    frame = frame.merge(flags[["line_id", "flag", "flag_note"]], on="line_id", how="left")
    # The built-in label behind each line's class (a project's scheme may merge them): sequence counts
    # and cue names read the seven labels.
    builtin = label_store.effective_labels(db, script_id, in_scheme=False)[["line_id", "label"]]
    return frame.merge(builtin.rename(columns={"label": "builtin"}), on="line_id", how="left")



def sequence_table(db: Database, script_id: int, lines: pd.DataFrame, *, department: str = "overall"
                   ) -> pd.DataFrame:
    """Sequences of a script: pages, line counts by type, characters, rating and predicted complexity."""
    seqs = sequence_store.list_sequences(db, script_id)
    ratings = sequence_store.current_ratings(db, department=department, script_id=script_id)
    rated = dict(zip(ratings["sequence_id"], ratings["value"]))
    preds = sequence_store.latest_sequence_predictions(db, department=department, script_id=script_id)
    predicted = {int(r.sequence_id): (int(r.value), float(r.expected), float(r.uncertainty))
                 for r in preds.itertuples()}
    by_sequence = lines.groupby("sequence_id")
    kinds = lines["builtin"] if "builtin" in lines else lines["shown"]
    counts = pd.crosstab(lines["sequence_id"], kinds).reindex(columns=list(LABELS), fill_value=0)
    pages = by_sequence["page"].agg(["min", "max"])
    cues = lines[kinds == "character"].groupby("sequence_id")["text"].agg(
        lambda texts: ", ".join(n for n in dict.fromkeys(character_name(t) for t in texts) if n))
    rows = []
    for seq in seqs:
        sid = seq.sequence_id
        first, last = (int(v) for v in pages.loc[sid]) if sid in pages.index else (0, 0)
        pred = predicted.get(sid)
        rows.append({
            "sequence_id": sid, "code": seq.code, "title": seq.title,
            "pages": f"{first}" if first == last else f"{first}–{last}",
            "first_line_no": seq.first_line_no, "last_line_no": seq.last_line_no, "lines": seq.lines,
            **{label: int(counts.at[sid, label]) if sid in counts.index else 0 for label in LABELS},
            "characters": cues.get(sid, ""),
            "rating": rated.get(sid),
            "predicted": pred[0] if pred else None, "expected": pred[1] if pred else None,
            "uncertainty": pred[2] if pred else None,
        })
    frame = pd.DataFrame(rows)
    if not frame.empty:
        frame["rating"] = frame["rating"].astype("Int64")
        frame["predicted"] = frame["predicted"].astype("Int64")
    return frame
