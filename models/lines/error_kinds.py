"""The kinds of zero-shot error a reader would never make (issue 26), counted per script.

Each wrong line is put in the first kind it fits, in this order, so the counts add up to the errors:

- `start_of_file_other`: called `other` within the first 30 lines of the file, but not `other`
  (a file that begins mid-scene read as a title page);
- `multiline_parenthetical`: a parenthetical/dialogue mix-up on a line inside a bracket that spans
  lines (a wrapped "(...)"), or a line where speech follows a closing bracket;
- `prose_heading`: a scene heading missed whose INT./EXT. is not where a slug line has it (a numbered
  heading written as a sentence, a shot line with "EXT." inside);
- `lowercase_transition`: a transition missed that is not written in capitals ("Cut to.");
- `short_cue`: a speaker cue of at most 4 words called `other` or action;
- `other_kind`: everything else.

Pure functions over one script's texts (reading order), its true labels (None = unlabeled) and the
predicted labels; `bench/line_accuracy.py` reports the counts before/after a change.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Sequence

import numpy as np

ERROR_KINDS = ("start_of_file_other", "multiline_parenthetical", "prose_heading", "lowercase_transition",
               "short_cue", "other_kind")
START_LINES = 30

_SLUG = re.compile(r"^\W*(?:[\d.]+[A-Z]{0,2}\W*)?(?:INT|EXT|I/E|E/I|INTERIOR|EXTERIOR)\b", re.I)
_CLOSE_THEN_TEXT = re.compile(r"\)\s*[A-Za-z]")


def bracket_runs(texts: Sequence[str], gaps: Sequence[float] | None = None) -> np.ndarray:
    """True for the lines of a bracket that spans more than one line (opened on one line, closed on a
    later one); a blank line (gap > 0.5) closes what is open."""
    n = len(texts)
    inside = np.zeros(n, dtype=bool)
    depth, opened = 0, -1
    for i, text in enumerate(texts):
        if gaps is not None and gaps[i] > 0.5:
            depth, opened = 0, -1
        before = depth
        depth = max(0, depth + text.count("(") - text.count(")"))
        if before == 0 and depth > 0:
            opened = i
        elif before > 0:
            inside[opened: i + 1] = True
            if depth == 0:
                opened = -1
    return inside


def error_kind(i: int, text: str, truth: str, pred: str, *, in_bracket_run: bool) -> str:
    """The kind of one wrong line (`truth != pred`) at position `i` of its file."""
    text = str(text).strip()
    if pred == "other" and truth != "other" and i < START_LINES:
        return "start_of_file_other"
    if {truth, pred} <= {"parenthetical", "dialogue"} and (in_bracket_run or _CLOSE_THEN_TEXT.search(text)):
        return "multiline_parenthetical"
    if truth == "scene_heading" and not _SLUG.match(text):
        return "prose_heading"
    if truth == "transition" and re.search(r"[a-z]", text):
        return "lowercase_transition"
    if truth == "character" and pred in ("other", "action") and len(text.split()) <= 4:
        return "short_cue"
    return "other_kind"


def count_error_kinds(texts: Sequence[str], truth: Sequence, pred: Sequence, gaps: Sequence[float] | None = None,
                      *, offset: int = 0) -> Counter:
    """Errors of one script by kind; `offset` is the first line's position in its file."""
    runs = bracket_runs([str(t) for t in texts], gaps)
    counts: Counter = Counter()
    for i, (text, t, p) in enumerate(zip(texts, truth, pred)):
        if t is None or t == p:
            continue
        counts[error_kind(i + offset, text, t, p, in_bracket_run=bool(runs[i]))] += 1
    return counts


def kinds_report(counts: Counter) -> dict[str, int]:
    """Every kind (zeros included) and the total, JSON-ready."""
    out = {kind: int(counts.get(kind, 0)) for kind in ERROR_KINDS}
    out["errors"] = int(sum(out.values()))
    return out
