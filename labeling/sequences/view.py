"""What the Sequences page shows of one sequence: its text laid out as a screenplay, its page images."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pandas as pd

from store.types import PageInfo

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
