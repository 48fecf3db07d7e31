"""Assemble positioned words (from a PDF text layer or from OCR) into screenplay lines.

Words on one baseline form a row; a row splits where the horizontal gap is wide (dual dialogue,
text in two columns), except that a scene number standing in the margin stays with the heading it
numbers (DESIGN.md: it belongs to the scene_heading) and a row in the top margin is one running header. Geometry is in PDF points from the page's
top-left; `indent` is x0 in character columns at 10 cpi (x0 / 7.2 pt).
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass

POINTS_PER_COLUMN = 7.2  # 10 characters per inch
DEFAULT_PITCH = 12.0  # 6 lines per inch
# A row that ends above this (0.75 inch from the page's top edge) is in the top margin: a running header
# such as 'SHOW 104 "EPISODE TITLE"      NETWORK DRAFT (2/15/13) 4.' is one line, not two columns.
TOP_MARGIN_PT = 54.0
_SCENE_NUMBER = re.compile(r"^[A-Z]?\d{1,4}(?:\.\d{1,3})?[A-Z]{0,2}\.?\*?$")  # 12, 12A, A12., 2.14 (episode.scene)


@dataclass(frozen=True)
class Word:
    x0: float
    y0: float
    x1: float
    y1: float
    text: str
    conf: float | None = None  # 0–1 for OCR words, None for a text layer


@dataclass(frozen=True)
class PageLine:
    """One assembled line on a page, before it gets a script-wide line number."""

    text: str
    x0: float
    y0: float
    x1: float
    y1: float
    indent: float
    gap_before: float
    ocr_confidence: float | None


def line_segments(words: list[Word], *, split_gap_columns: float = 4.0) -> list[list[Word]]:
    """The words of each line, in reading order: rows top to bottom, a row split at wide gaps, and the
    two columns of a dual-dialogue block read one after the other (`_dual_dialogue_order`)."""
    words = [w for w in words if w.text.strip()]
    if not words:
        return []
    height = _word_height(words)
    char_widths = [(w.x1 - w.x0) / len(w.text) for w in words if len(w.text) >= 3]
    char_width = statistics.median(char_widths) if char_widths else POINTS_PER_COLUMN

    rows: list[list[Word]] = []
    for word in sorted(words, key=lambda w: ((w.y0 + w.y1) / 2, w.x0)):
        centre = (word.y0 + word.y1) / 2
        if rows:
            row = rows[-1]
            row_centre = statistics.median((w.y0 + w.y1) / 2 for w in row)
            if abs(centre - row_centre) < 0.5 * height:
                row.append(word)
                continue
        rows.append([word])

    row_segments: list[list[list[Word]]] = []
    for row in rows:
        row.sort(key=lambda w: w.x0)
        segments: list[list[Word]] = [[row[0]]]
        for word in row[1:]:
            gap = word.x0 - segments[-1][-1].x1
            if gap > split_gap_columns * char_width:
                segments.append([word])
            else:
                segments[-1].append(word)
        if len(segments) > 1 and max(w.y1 for w in row) < TOP_MARGIN_PT:
            segments = [[w for segment in segments for w in segment]]  # one running header, however spaced
        row_segments.append(_attach_margin_numbers(segments))
    return _dual_dialogue_order(row_segments, height=height)


def assemble_lines(words: list[Word], *, split_gap_columns: float = 4.0) -> list[PageLine]:
    """Group words into rows, rows into lines, in reading order (top to bottom, left to right; the
    columns of dual dialogue one after the other)."""
    segments = line_segments(words, split_gap_columns=split_gap_columns)
    if not segments:
        return []
    height = _word_height([w for s in segments for w in s])
    pitch = _line_pitch(segments, min_step=0.8 * height) or DEFAULT_PITCH
    lines: list[PageLine] = []
    previous_y0: float | None = None
    for segment in segments:
        x0 = min(w.x0 for w in segment)
        y0 = min(w.y0 for w in segment)
        x1 = max(w.x1 for w in segment)
        y1 = max(w.y1 for w in segment)
        above = getattr(segment, "above_y0", previous_y0)
        if above is None:
            gap = max(0.0, y0 / pitch - 6.0)  # blank lines below a 1-inch top margin
        elif abs(y0 - above) < 0.5 * height:
            gap = 0.0  # a second segment of the same row
        else:
            gap = max(0.0, (y0 - above) / pitch - 1.0)
        previous_y0 = y0
        confs = [w.conf for w in segment if w.conf is not None]
        lines.append(
            PageLine(
                text=" ".join(w.text for w in segment),
                x0=round(x0, 2),
                y0=round(y0, 2),
                x1=round(x1, 2),
                y1=round(y1, 2),
                indent=round(x0 / POINTS_PER_COLUMN, 2),
                gap_before=round(gap, 2),
                ocr_confidence=round(sum(confs) / len(confs), 4) if confs else None,
            )
        )
    return lines


def _word_height(words: list[Word]) -> float:
    heights = [w.y1 - w.y0 for w in words if w.y1 > w.y0]
    return statistics.median(heights) if heights else DEFAULT_PITCH


class _Segment(list):
    """A line's words; `above_y0` (when set) is the top of the line above it in its own column."""

    above_y0: float | None


DUAL_MIN_ROWS = 2  # rows with both columns filled before a run of two-column rows counts as dual dialogue


def _dual_dialogue_order(rows: list[list[list[Word]]], *, height: float) -> list[list[Word]]:
    """Flatten rows of segments into lines, reading each dual-dialogue block column by column.

    Dual dialogue (two speakers side by side) prints as rows of two segments: both cues on one row,
    then both speeches line by line. Read row by row, the speeches interleave ("Fuck, we're fucked",
    "We're not fucked", ...); a reader takes the left speaker's cue and lines, then the right one's.
    A block is a run of rows without a blank line between them, each wholly left or right of one
    column boundary, starting with a two-segment row and holding at least DUAL_MIN_ROWS of them.
    Each line of the right column gets the gap above it in its own column.
    """
    out: list[list[Word]] = []
    i = 0
    while i < len(rows):
        block = _dual_block(rows, i, height=height)
        if block is None:
            out.extend(rows[i])
            i += 1
            continue
        end, left, right = block
        above_block = min(w.y0 for w in out[-1]) if out else None
        for column in (left, right):
            above = above_block
            for segment in column:
                tagged = _Segment(segment)
                tagged.above_y0 = above
                out.append(tagged)
                above = min(w.y0 for w in segment)
        i = end
    return out


def _dual_block(rows: list[list[list[Word]]], start: int, *, height: float
                ) -> tuple[int, list[list[Word]], list[list[Word]]] | None:
    """(end row, left column's lines, right column's lines) of a dual-dialogue block at `start`, or None."""
    first = rows[start]
    if len(first) != 2 or not all(_wordy(s) for s in first):
        return None
    x0 = lambda s: min(w.x0 for w in s)  # noqa: E731
    x1 = lambda s: max(w.x1 for w in s)  # noqa: E731
    top = lambda row: min(w.y0 for s in row for w in s)  # noqa: E731
    left_x1, right_x0 = x1(first[0]), x0(first[1])
    if right_x0 - left_x1 < 2 * POINTS_PER_COLUMN:
        return None
    left, right = [first[0]], [first[1]]
    end, paired = start + 1, 1
    while end < len(rows):
        row = rows[end]
        if len(row) > 2 or top(row) - top(rows[end - 1]) > 1.6 * max(height, DEFAULT_PITCH * 0.8):
            break  # a blank line (or a third column) ends the block
        if len(row) == 2:
            if not all(_wordy(s) for s in row) or x1(row[0]) >= min(right_x0, x0(row[1])) or x0(row[1]) <= left_x1 - POINTS_PER_COLUMN:
                break
            left_x1, right_x0 = max(left_x1, x1(row[0])), min(right_x0, x0(row[1]))
            left.append(row[0])
            right.append(row[1])
            paired += 1
        elif x0(row[0]) >= right_x0 - POINTS_PER_COLUMN:
            right.append(row[0])  # the right speech runs on below the left one
        elif x1(row[0]) < right_x0:
            left.append(row[0])
        else:
            break  # a line running across both columns
        end += 1
    if paired < DUAL_MIN_ROWS:
        return None
    return end, left, right


_WORDY = re.compile(r"[^\W\d_]{2}")


def _wordy(segment: list[Word]) -> bool:
    """Speech or a cue, not a revision asterisk or a scene number in the margin."""
    return any(_WORDY.search(w.text) for w in segment)


def _attach_margin_numbers(row_segments: list[list[Word]]) -> list[list[Word]]:
    """Join a lone scene number in a margin to the neighbouring text of its row."""
    if len(row_segments) < 2:
        return row_segments
    merged: list[list[Word]] = []
    for i, segment in enumerate(row_segments):
        is_number = len(segment) == 1 and _SCENE_NUMBER.match(segment[0].text) is not None
        if is_number and i == 0 and len(row_segments) > 1:
            row_segments[1] = segment + row_segments[1]
            continue
        if is_number and merged and i == len(row_segments) - 1:
            merged[-1] = merged[-1] + segment
            continue
        merged.append(segment)
    return merged


def _line_pitch(segments: list[list[Word]], *, min_step: float = 1.0) -> float | None:
    """The page's single-spacing step, from lines of text: a revision asterisk or scene number a
    little off the baseline is not a line, and steps shorter than `min_step` (most of a text line's
    height) are not line steps."""
    texty = [s for s in segments if sum(len(w.text) for w in s) >= 4]
    tops = sorted({round(min(w.y0 for w in s), 1) for s in (texty if len(texty) >= 3 else segments)})
    diffs = [b - a for a, b in zip(tops, tops[1:]) if b - a > max(1.0, min_step)]
    if not diffs:
        return None
    smallest = min(diffs)
    # The common single-spacing pitch: the most frequent small step.
    close = [d for d in diffs if d < smallest * 1.5]
    return statistics.median(close)
